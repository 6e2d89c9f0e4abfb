//! Matching time: nearest fitting candidates for one emergency among 10k, 100k and 1M available
//! responders spread over a 20 km square around Jizhou.

use std::collections::BTreeSet;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use onekey::dispatch::{Available, DispatchPolicy, Matcher};
use onekey::domain::{Category, GeoPoint, ResponderKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn responders(n: usize) -> Vec<Available> {
    let mut rng = StdRng::seed_from_u64(n as u64);
    let kinds = [
        ResponderKind::Volunteer,
        ResponderKind::NursingStudent,
        ResponderKind::SocialWorker,
        ResponderKind::Provider,
    ];
    (0..n)
        .map(|i| Available {
            id: i as i64,
            kind: kinds[i % kinds.len()],
            skills: if i % 3 == 0 {
                vec!["housekeeping".into()]
            } else {
                vec![]
            },
            lat: 27.11 + rng.random_range(-0.09..0.09),
            lon: 114.98 + rng.random_range(-0.1..0.1),
            load: rng.random_range(0..3),
            max_tasks: 2,
        })
        .collect()
}

fn matching(c: &mut Criterion) {
    let policy = DispatchPolicy::default();
    let team = policy.team(Category::Emergency, "sos");
    let visit = policy.team(Category::Service, "emotional_care");
    let at = GeoPoint {
        lat: 27.113,
        lon: 114.975,
        accuracy_m: None,
    };
    let none = BTreeSet::new();
    let mut g = c.benchmark_group("matching");
    g.sample_size(30);
    for n in [10_000usize, 100_000, 1_000_000] {
        let m = Matcher::new(27.11, responders(n));
        g.bench_with_input(
            BenchmarkId::new("emergency_5_nearest_500m", n),
            &n,
            |b, _| b.iter(|| black_box(m.nearest(at, 500.0, &team.slots[0], &none, 5))),
        );
        g.bench_with_input(BenchmarkId::new("team_1_2_5_3km", n), &n, |b, _| {
            b.iter(|| black_box(m.fill_team(&visit, at, 3000.0, 3)))
        });
    }
    g.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
