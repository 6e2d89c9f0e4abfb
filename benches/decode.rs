//! Frames decoded per second, per protocol: the CPU cost of the first step of an alarm's path.
//! Each benchmark decodes one real alarm frame (from `device-protocols/tests/vectors`, or built with the native
//! protocol) exactly as the server does: native = decode + HMAC verify; others = the codec's `parse`.
//!
//! `cargo bench --bench decode` (HTML report with charts in `target/criterion/report/`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use onekey_device_protocols::{gt06, h02, sia, watch};
use onekey_protocol::{Alarm, AlarmKind, Header, Location, Message};

const GT06_SOS: &str =
    "787826161709130f3a2dcc02c55f2a089f9af9005c210901360481fe066d9b03413e420102035f92fe0d0a";
const GT06_LOGIN: &str = "78780d01086471700328358100093f040d0a";
const WATCH_SOS: &[u8] =
    b"[3G*6907919734*003e*AL_LTE,170525,214118,V,0,N,0,E,0,0,0,0,0,22,0,0,00010000,0,0,0]";
const H02_SOS: &[u8] =
    b"*HQ,4106011660,V1,124552,A,2706.7800,N,11458.8000,E,0.00,0,281126,FFFFFFFD#";
const SIA_CID: &[u8] =
    b"\n87CD0037\"ADM-CID\"9876R579BDFL789ABC#12345A[#12345A|1110 00 129]_14:12:04,09-25-2011\r";

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));

    let key = [7u8; 32];
    let header = Header {
        device_id: 860_123_456_789_012,
        seq: 42,
        timestamp: 1_795_000_000,
    };
    let message = Message::Alarm(Alarm {
        kind: AlarmKind::Sos,
        location: Some(Location {
            lat_e6: 27_113_000,
            lon_e6: 114_981_000,
            accuracy_m: 15,
        }),
    });
    let mut buf = [0u8; 128];
    let n = onekey_protocol::encode(&header, &message, &key, &mut buf).expect("encode");
    let native = &buf[..n];
    group.bench_function("native", |b| {
        b.iter(|| {
            let (unverified, _) = onekey_protocol::decode(black_box(native)).expect("decode");
            unverified.verify(&key).expect("verify")
        })
    });

    let login = hex::decode(GT06_LOGIN).expect("hex");
    let alarm = hex::decode(GT06_SOS).expect("hex");
    let mut session = gt06::Session::new();
    gt06::parse(&login, &mut session).expect("login");
    group.bench_function("gt06", |b| {
        b.iter(|| gt06::parse(black_box(&alarm), &mut session).expect("gt06"))
    });

    let mut session = watch::Session::new();
    group.bench_function("watch", |b| {
        b.iter(|| watch::parse(black_box(WATCH_SOS), &mut session).expect("watch"))
    });

    let mut session = h02::Session::new();
    group.bench_function("h02", |b| {
        b.iter(|| h02::parse(black_box(H02_SOS), &mut session).expect("h02"))
    });

    group.bench_function("sia", |b| {
        b.iter(|| {
            let mut session = sia::Session::accept_all();
            sia::parse(black_box(SIA_CID), &mut session, 1_632_579_124).expect("sia")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
