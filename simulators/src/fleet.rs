//! A fleet of native devices: each connects, says hello, heartbeats, and raises alarms, waiting for
//! the server's ACK and retrying the SAME frame (same sequence number) when none comes in time, the
//! way the firmware does. Counts outcomes and the device→ACK latency (HdrHistogram, microseconds).
//!
//! Two ways to pace alarms ([`Pace`]): `BackToBack` (each device sends its next alarm as soon as the
//! previous one is ACKed: the server's maximum throughput) and `Every` (each device one alarm per
//! period with a random phase: a fixed offered load; `poisson` makes the gaps exponential).
//!
//! Realism knobs for demos: a share of SOS presses is followed by a repeated press a few seconds later,
//! and a share of alarms is cancelled ("I'm OK") within 30 s.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use onekey_protocol::{AckStatus, Alarm, AlarmKind, Cancel, Key, Location, Message, RejectReason};
use tokio_util::sync::CancellationToken;

use crate::dataset::Rng;
use crate::native::{DeviceError, NativeDevice};

/// How each device paces its alarms.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Next alarm as soon as the previous one is ACKed.
    BackToBack,
    /// One alarm per `period` per device, random phase; exponential gaps when `poisson`.
    Every {
        /// Mean period per device.
        period: Duration,
        /// Exponential gaps instead of fixed ones.
        poisson: bool,
    },
}

/// Fleet settings.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The server's native listener, `host:port`.
    pub addr: String,
    /// Devices to run: (device id, key).
    pub devices: Vec<(u64, Key)>,
    /// Alarm pacing.
    pub pace: Pace,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// How long to wait for an ACK before sending the same frame again.
    pub ack_timeout: Duration,
    /// Sends of one frame before giving up on it (first send included).
    pub max_sends: u32,
    /// Share of SOS alarms followed by a repeated press 2–6 s later.
    pub repeat_share: f64,
    /// Share of alarms cancelled ("I'm OK") within 30 s.
    pub cancel_share: f64,
    /// Send a mix of alarm kinds (SOS, fall, low battery…) instead of only SOS.
    pub mixed_kinds: bool,
    /// First sequence number; `None` derives one from the clock so that a restarted fleet never
    /// reuses numbers the server has seen (as a device's flash-reserved counter does).
    pub seq_base: Option<u32>,
    /// Connections opened at once (a ramp, so that 1,000 devices do not SYN-flood the listener).
    pub connect_concurrency: usize,
    /// Seed for phases and kinds.
    pub seed: u64,
}

impl FleetConfig {
    /// Defaults for `addr` and `devices`: one alarm per device per minute, mixed kinds, 10 % repeats,
    /// 10 % cancels, 60 s heartbeats, 5 s ACK timeout, 4 sends.
    pub fn new(addr: impl Into<String>, devices: Vec<(u64, Key)>) -> FleetConfig {
        FleetConfig {
            addr: addr.into(),
            devices,
            pace: Pace::Every {
                period: Duration::from_secs(60),
                poisson: true,
            },
            heartbeat: Duration::from_secs(60),
            ack_timeout: Duration::from_secs(5),
            max_sends: 4,
            repeat_share: 0.1,
            cancel_share: 0.1,
            mixed_kinds: true,
            seq_base: None,
            connect_concurrency: 64,
            seed: 1,
        }
    }
}

/// Live counters of a fleet run; cheap to read while it runs.
pub struct FleetStats {
    /// Devices connected and past hello.
    pub connected: AtomicU64,
    /// Alarms sent (first sends).
    pub alarms: AtomicU64,
    /// Alarms ACKed `stored`.
    pub stored: AtomicU64,
    /// Alarms ACKed `duplicate` (a retry whose first send was stored).
    pub duplicates: AtomicU64,
    /// Frames ACKed `rejected`.
    pub rejected: AtomicU64,
    /// Re-sends of the same frame after an ACK timeout.
    pub retries: AtomicU64,
    /// Alarms given up after `max_sends`.
    pub lost: AtomicU64,
    /// Cancels ACKed.
    pub cancels: AtomicU64,
    /// Heartbeats ACKed.
    pub heartbeats: AtomicU64,
    /// Connection errors (each followed by a reconnect).
    pub errors: AtomicU64,
    /// Device→ACK latency of alarms, microseconds, from the first send.
    pub latency: Mutex<Histogram<u64>>,
}

impl Default for FleetStats {
    fn default() -> Self {
        FleetStats {
            connected: AtomicU64::new(0),
            alarms: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            cancels: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            // 1 µs .. 10 min, 3 significant digits: the bounds are constants, so this cannot fail.
            latency: Mutex::new(
                Histogram::new_with_bounds(1, 600_000_000, 3)
                    .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!())),
            ),
        }
    }
}

impl FleetStats {
    /// Alarms ACKed (stored or duplicate).
    pub fn acked(&self) -> u64 {
        self.stored.load(Ordering::Relaxed) + self.duplicates.load(Ordering::Relaxed)
    }

    /// A copy of the latency histogram.
    pub fn latency(&self) -> Histogram<u64> {
        match self.latency.lock() {
            Ok(h) => h.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// One line: connected, alarms, acked, retries, p50/p99.
    pub fn summary(&self) -> String {
        let h = self.latency();
        format!(
            "devices {} · alarms {} · acked {} (dup {}) · rejected {} · retries {} · lost {} · cancels {} · heartbeats {} · errors {} · p50 {:.1} ms · p99 {:.1} ms",
            self.connected.load(Ordering::Relaxed),
            self.alarms.load(Ordering::Relaxed),
            self.acked(),
            self.duplicates.load(Ordering::Relaxed),
            self.rejected.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
            self.cancels.load(Ordering::Relaxed),
            self.heartbeats.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
        )
    }

    fn record(&self, latency: Duration) {
        let us = (latency.as_micros() as u64).max(1);
        let mut h = match self.latency.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        h.saturating_record(us);
    }
}

/// A sequence base from the clock: 32 numbers per second since 2026-01-01, so a restarted device
/// never reuses a number unless it sent more than 32 frames a second on average before.
pub fn clock_seq_base() -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (now.saturating_sub(1_767_225_600).saturating_mul(32)).min(u64::from(u32::MAX / 2)) as u32 + 1
}

/// Runs the fleet until `stop` is cancelled; returns when every device task has ended.
pub async fn run(config: FleetConfig, stats: Arc<FleetStats>, stop: CancellationToken) {
    let config = Arc::new(config);
    let seq_base = config.seq_base.unwrap_or_else(clock_seq_base);
    let gate = Arc::new(tokio::sync::Semaphore::new(
        config.connect_concurrency.max(1),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, &(id, key)) in config.devices.iter().enumerate() {
        let (config, stats, stop, gate) =
            (config.clone(), stats.clone(), stop.clone(), gate.clone());
        let rng = Rng::new(config.seed ^ id.rotate_left(17) ^ i as u64);
        tasks.spawn(async move {
            device_loop(&config, id, key, seq_base, rng, &stats, &stop, &gate).await
        });
    }
    while tasks.join_next().await.is_some() {}
}

enum Pending {
    Repeat(Instant),
    Cancel(Instant, u32),
}

#[allow(clippy::too_many_arguments)]
async fn device_loop(
    config: &FleetConfig,
    id: u64,
    key: Key,
    seq_base: u32,
    mut rng: Rng,
    stats: &FleetStats,
    stop: &CancellationToken,
    gate: &tokio::sync::Semaphore,
) {
    let mut seq = seq_base;
    let mut device: Option<NativeDevice> = None;
    let mut pending: Vec<Pending> = Vec::new();
    let now = Instant::now();
    let mut next_alarm = match config.pace {
        Pace::BackToBack => now,
        Pace::Every { period, .. } => now + period.mul_f64(rng.unit()),
    };
    let mut next_heartbeat = now + config.heartbeat.mul_f64(rng.unit());
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        if device.is_none() {
            let connected = {
                let _permit = gate.acquire().await;
                connect(config, id, key, &mut seq).await
            };
            match connected {
                Ok(d) => {
                    device = Some(d);
                    backoff = Duration::from_millis(100);
                    stats.connected.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        }
        // What is due next: an alarm, a heartbeat, a repeated press or a cancel.
        let due_pending = pending
            .iter()
            .map(|p| match p {
                Pending::Repeat(t) | Pending::Cancel(t, _) => *t,
            })
            .min();
        let wake = [Some(next_alarm), Some(next_heartbeat), due_pending]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_heartbeat);
        if wake > Instant::now() {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        let now = Instant::now();
        let message;
        let mut is_alarm = false;
        if let Some(pos) = pending.iter().position(|p| match p {
            Pending::Repeat(t) | Pending::Cancel(t, _) => *t <= now,
        }) {
            message = match pending.swap_remove(pos) {
                Pending::Repeat(_) => {
                    is_alarm = true;
                    alarm(AlarmKind::Sos)
                }
                Pending::Cancel(_, alarm_seq) => Message::Cancel(Cancel { alarm_seq }),
            };
        } else if next_alarm <= now {
            let kind = if config.mixed_kinds {
                pick_kind(&mut rng)
            } else {
                AlarmKind::Sos
            };
            message = alarm(kind);
            is_alarm = true;
            next_alarm = match config.pace {
                Pace::BackToBack => now,
                Pace::Every { period, poisson } => {
                    let gap = if poisson {
                        period.mul_f64(-(1.0 - rng.unit()).ln())
                    } else {
                        period
                    };
                    // Fixed pacing keeps its schedule even if an ACK was slow.
                    if poisson { now + gap } else { next_alarm + gap }
                }
            };
            if config.repeat_share > 0.0
                && kind == AlarmKind::Sos
                && rng.chance(config.repeat_share)
            {
                let after = Duration::from_millis(2_000 + rng.below(4_000));
                pending.push(Pending::Repeat(now + after));
            }
            if config.cancel_share > 0.0 && rng.chance(config.cancel_share) {
                let after = Duration::from_millis(3_000 + rng.below(27_000));
                pending.push(Pending::Cancel(now + after, seq));
            }
        } else if next_heartbeat <= now {
            message = Message::Heartbeat(onekey_protocol::Heartbeat {
                battery_percent: Some(60 + rng.below(40) as u8),
                mains_power: rng.chance(0.98),
                signal_percent: Some(50 + rng.below(50) as u8),
                location: None,
            });
            next_heartbeat = now + config.heartbeat;
        } else {
            continue;
        }
        let this_seq = seq;
        seq = seq.wrapping_add(1);
        if is_alarm {
            stats.alarms.fetch_add(1, Ordering::Relaxed);
        }
        match send_until_acked(
            config,
            &mut device,
            id,
            key,
            &message,
            this_seq,
            stats,
            stop,
        )
        .await
        {
            Some((status, latency)) => match (status, &message) {
                (AckStatus::Rejected, _) => {
                    stats.rejected.fetch_add(1, Ordering::Relaxed);
                }
                (status, Message::Alarm(_)) => {
                    if status == AckStatus::Duplicate {
                        stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    } else {
                        stats.stored.fetch_add(1, Ordering::Relaxed);
                    }
                    stats.record(latency);
                }
                (_, Message::Cancel(_)) => {
                    stats.cancels.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    stats.heartbeats.fetch_add(1, Ordering::Relaxed);
                }
            },
            None if stop.is_cancelled() => break,
            None => {
                if is_alarm {
                    stats.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

fn alarm(kind: AlarmKind) -> Message {
    Message::Alarm(Alarm {
        kind,
        location: (kind == AlarmKind::Fall).then_some(Location {
            lat_e6: 27_110_000,
            lon_e6: 114_980_000,
            accuracy_m: 30,
        }),
    })
}

fn pick_kind(rng: &mut Rng) -> AlarmKind {
    let r = rng.unit();
    if r < 0.60 {
        AlarmKind::Sos
    } else if r < 0.75 {
        AlarmKind::Fall
    } else if r < 0.85 {
        AlarmKind::LowBattery
    } else if r < 0.90 {
        AlarmKind::Inactivity
    } else if r < 0.95 {
        AlarmKind::PowerLoss
    } else {
        AlarmKind::Smoke
    }
}

async fn connect(
    config: &FleetConfig,
    id: u64,
    key: Key,
    seq: &mut u32,
) -> Result<NativeDevice, DeviceError> {
    let mut d = NativeDevice::connect(&config.addr, id, key).await?;
    d.seq = *seq;
    let hello = d.hello(config.ack_timeout).await;
    *seq = d.seq;
    match hello?.message {
        Message::Ack(a) if a.status != AckStatus::Rejected => Ok(d),
        other => Err(DeviceError::BadReply(format!(
            "hello answered with {other:?}"
        ))),
    }
}

/// Sends `message` as `seq`, waits for its ACK, re-sends the same bytes on timeout and after a
/// reconnect. Returns the status and the latency from the first send, or `None` when it gave up.
#[allow(clippy::too_many_arguments)]
async fn send_until_acked(
    config: &FleetConfig,
    device: &mut Option<NativeDevice>,
    id: u64,
    key: Key,
    message: &Message,
    seq: u32,
    stats: &FleetStats,
    stop: &CancellationToken,
) -> Option<(AckStatus, Duration)> {
    let started = Instant::now();
    let mut bytes: Option<Vec<u8>> = None;
    for attempt in 0..config.max_sends.max(1) {
        if attempt > 0 {
            stats.retries.fetch_add(1, Ordering::Relaxed);
        }
        if device.is_none() {
            // Reconnect without hello (its sequence number would jump past `seq`).
            match NativeDevice::connect(&config.addr, id, key).await {
                Ok(d) => *device = Some(d),
                Err(_) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let d = device.as_mut()?;
        let frame = bytes.get_or_insert_with(|| d.frame_with_seq(*message, seq));
        if d.send_raw(frame).await.is_err() {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            *device = None;
            continue;
        }
        let deadline = tokio::time::Instant::now() + config.ack_timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let reply = tokio::select! {
                _ = stop.cancelled() => return None,
                r = d.recv(left) => r,
            };
            match reply {
                Ok(frame) => match frame.message {
                    Message::Ack(a) if a.acked_seq == seq => {
                        if a.status == AckStatus::Rejected && a.reason == RejectReason::Replay {
                            *device = None; // the server closes the connection
                        }
                        return Some((a.status, started.elapsed()));
                    }
                    _ => continue, // a command or a late ACK of an earlier frame
                },
                Err(DeviceError::Timeout(_)) => break,
                Err(_) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    *device = None;
                    break;
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_base_grows_with_time_and_leaves_headroom() {
        let b = clock_seq_base();
        assert!(b > 1, "after 2026-01-01 the base is above 1: {b}");
        assert!(b <= u32::MAX / 2 + 1);
    }

    #[test]
    fn kinds_are_mostly_sos_but_mixed() {
        let mut rng = Rng::new(5);
        let kinds: Vec<AlarmKind> = (0..1000).map(|_| pick_kind(&mut rng)).collect();
        let sos = kinds.iter().filter(|k| **k == AlarmKind::Sos).count();
        assert!((500..700).contains(&sos), "{sos}");
        assert!(kinds.contains(&AlarmKind::Fall));
        assert!(kinds.contains(&AlarmKind::LowBattery));
    }
}
