//! What a run of devices saw, and its per-link table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::plan::{Action, Link, Sent};

/// Per-link results after a run.
#[derive(Debug, Clone, Default)]
pub struct DeviceReport {
    /// Every action sent, ordered by planned time and ident.
    pub sent: Vec<Sent>,
    /// Frame→ACK latency of every ACKed frame (actions and heartbeats), microseconds, per link.
    pub latency_us: BTreeMap<Link, Histogram<u64>>,
    /// Connections opened (hello answered).
    pub connects: u64,
    /// Of those, connections opened again after a drop.
    pub reconnects: u64,
    /// Connection errors, lost connections and frames the server refused for good.
    pub errors: u64,
    /// Planned actions the link's protocol cannot express (not sent), per link.
    pub unsupported: BTreeMap<Link, u64>,
    /// The server's clock minus the simulation's, ms, as the devices learned it from replies
    /// (0 when none said): add it to a plan time to find it on the server's clock.
    pub clock_offset_ms: i64,
}

/// One row of [`DeviceReport::rows`].
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRow {
    /// The link.
    pub link: Link,
    /// Actions sent.
    pub sent: u64,
    /// Of those, ACKed.
    pub acked: u64,
    /// Not ACKed by the end.
    pub unacked: u64,
    /// Copies sent beyond the first.
    pub retries: u64,
    /// Actions the protocol cannot express.
    pub unsupported: u64,
    /// Frame→ACK latency percentiles and maximum, milliseconds: p50, p90, p99, max.
    pub latency_ms: [f64; 4],
}

/// An empty latency histogram: 1 µs to 10 min, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .or_else(|_| Histogram::new(3))
        .unwrap_or_else(|_| unreachable!("constant bounds are valid"))
}

impl DeviceReport {
    /// One row per link that had devices or sent anything.
    pub fn rows(&self) -> Vec<LinkRow> {
        Link::ALL
            .iter()
            .filter(|l| {
                self.latency_us.contains_key(l)
                    || self.unsupported.contains_key(l)
                    || self.sent.iter().any(|s| s.link == **l)
            })
            .map(|&link| {
                let mine = self.sent.iter().filter(|s| s.link == link);
                let (mut sent, mut acked, mut retries) = (0, 0, 0);
                for s in mine {
                    sent += 1;
                    acked += u64::from(s.acked_at.is_some());
                    retries += u64::from(s.sends.saturating_sub(1));
                }
                let ms = |v: u64| v as f64 / 1000.0;
                let latency_ms =
                    self.latency_us
                        .get(&link)
                        .filter(|h| !h.is_empty())
                        .map_or([0.0; 4], |h| {
                            [
                                ms(h.value_at_quantile(0.5)),
                                ms(h.value_at_quantile(0.9)),
                                ms(h.value_at_quantile(0.99)),
                                ms(h.max()),
                            ]
                        });
                LinkRow {
                    link,
                    sent,
                    acked,
                    unacked: sent - acked,
                    retries,
                    unsupported: self.unsupported.get(&link).copied().unwrap_or(0),
                    latency_ms,
                }
            })
            .collect()
    }

    /// Alarms that were never ACKed.
    pub fn unacked_alarms(&self) -> Vec<&Sent> {
        self.sent
            .iter()
            .filter(|s| matches!(s.action, Action::Alarm { .. }) && s.acked_at.is_none())
            .collect()
    }

    /// The per-link table: sent, acked, unacked, retries, unsupported, p50/p90/p99/max ms.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<12} {:>7} {:>7} {:>8} {:>8} {:>12} {:>9} {:>9} {:>9} {:>9}\n",
            "link",
            "sent",
            "acked",
            "unacked",
            "retries",
            "unsupported",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms"
        );
        for r in self.rows() {
            let [p50, p90, p99, max] = r.latency_ms;
            let _ = writeln!(
                out,
                "{:<12} {:>7} {:>7} {:>8} {:>8} {:>12} {p50:>9.2} {p90:>9.2} {p99:>9.2} {max:>9.2}",
                r.link.as_str(),
                r.sent,
                r.acked,
                r.unacked,
                r.retries,
                r.unsupported
            );
        }
        let _ = writeln!(
            out,
            "connects {} · reconnects {} · errors {}",
            self.connects, self.reconnects, self.errors
        );
        out
    }
}
