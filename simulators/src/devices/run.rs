//! The runner: one task per device, shared counters, the progress bar.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use hdrhistogram::Histogram;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Targets;
use super::conn::{Conn, MqttTarget};
use super::deployed::{Gt06Wire, H02Wire, WatchWire};
use super::json::JsonWire;
use super::native::NativeWire;
use super::report::{DeviceReport, histogram};
use super::sia::SiaWire;
use super::wire::{AckKey, Out, Reply, Wire};
use crate::clock::{Ms, SimClock};
use crate::dataset::Rng;
use crate::plan::{Action, DevicePlan, Link, Sent};

/// Connection attempts in progress at once, all devices together.
const CONNECT_CONCURRENCY: usize = 64;
/// Battery per cent lost per heartbeat.
const DRAIN_PER_HEARTBEAT: f64 = 0.25;

struct LinkStats {
    sent: AtomicU64,
    acked: AtomicU64,
    unsupported: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

struct Ctx {
    targets: Targets,
    clock: SimClock,
    until: Ms,
    stop: CancellationToken,
    gate: tokio::sync::Semaphore,
    seq_base: u32,
    /// Server clock minus simulation clock, ms, as learned from replies.
    offset_ms: AtomicI64,
    ack_timeout: Duration,
    connects: AtomicU64,
    reconnects: AtomicU64,
    errors: AtomicU64,
    links: Vec<LinkStats>,
}

impl Ctx {
    fn link(&self, link: Link) -> &LinkStats {
        let i = Link::ALL.iter().position(|l| *l == link).unwrap_or(0);
        &self.links[i]
    }

    fn learn(&self, server_s: Option<i64>) {
        if let Some(s) = server_s {
            let offset = s * 1000 + 500 - self.clock.now();
            let old = self.offset_ms.load(Ordering::Relaxed);
            if (offset - old).abs() > 2_000 {
                self.offset_ms.store(offset, Ordering::Relaxed);
            }
        }
    }

    fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs every plan against `targets` until the clock reads `until` (or `stop`), one task per
/// device, and reports what each sent and how the server answered. The server must have the
/// plans' devices registered (the world's dataset imported).
pub async fn run(
    plans: Vec<DevicePlan>,
    targets: Targets,
    clock: SimClock,
    until: Ms,
    progress: Option<indicatif::ProgressBar>,
    stop: CancellationToken,
) -> DeviceReport {
    let links_present: std::collections::BTreeSet<Link> = plans.iter().map(|p| p.link).collect();
    let ctx = Arc::new(Ctx {
        targets,
        clock,
        until,
        stop,
        gate: tokio::sync::Semaphore::new(CONNECT_CONCURRENCY),
        seq_base: crate::fleet::clock_seq_base(),
        offset_ms: AtomicI64::new(0),
        ack_timeout: clock.real(5_000).max(Duration::from_secs(1)),
        connects: AtomicU64::new(0),
        reconnects: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        links: Link::ALL
            .iter()
            .map(|_| LinkStats {
                sent: AtomicU64::new(0),
                acked: AtomicU64::new(0),
                unsupported: AtomicU64::new(0),
                latency: Mutex::new(histogram()),
            })
            .collect(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for plan in plans {
        let ctx = ctx.clone();
        tasks.spawn(async move { Device::new(plan, ctx).run().await });
    }
    let ticker = progress.map(|bar| {
        let ctx = ctx.clone();
        tokio::spawn(async move { tick(bar, ctx).await })
    });
    let mut sent = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(mine) => sent.extend(mine),
            Err(_) => ctx.error(),
        }
    }
    if let Some(t) = ticker {
        t.abort();
    }
    sent.sort_by(|a, b| (a.planned_at, &a.ident).cmp(&(b.planned_at, &b.ident)));
    let mut latency_us = BTreeMap::new();
    let mut unsupported = BTreeMap::new();
    for link in links_present {
        let s = ctx.link(link);
        let h = match s.latency.lock() {
            Ok(h) => h.clone(),
            Err(p) => p.into_inner().clone(),
        };
        latency_us.insert(link, h);
        let n = s.unsupported.load(Ordering::Relaxed);
        if n > 0 {
            unsupported.insert(link, n);
        }
    }
    DeviceReport {
        sent,
        latency_us,
        connects: ctx.connects.load(Ordering::Relaxed),
        reconnects: ctx.reconnects.load(Ordering::Relaxed),
        errors: ctx.errors.load(Ordering::Relaxed),
        unsupported,
        clock_offset_ms: ctx.offset_ms.load(Ordering::Relaxed),
    }
}

async fn tick(bar: indicatif::ProgressBar, ctx: Arc<Ctx>) {
    let start = ctx.clock.now();
    let span = (ctx.until - start).max(1);
    bar.set_length(1000);
    loop {
        let done = ((ctx.clock.now() - start).clamp(0, span) * 1000 / span) as u64;
        bar.set_position(done);
        let (mut sent, mut acked) = (0, 0);
        for l in &ctx.links {
            sent += l.sent.load(Ordering::Relaxed);
            acked += l.acked.load(Ordering::Relaxed);
        }
        bar.set_message(format!(
            "{} connects · {sent} sent · {acked} acked · {} errors",
            ctx.connects.load(Ordering::Relaxed),
            ctx.errors.load(Ordering::Relaxed)
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// FNV-1a of the ident: the device's seed.
fn seed_of(ident: &str) -> u64 {
    ident.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn key32(hex_key: Option<&str>) -> Option<[u8; 32]> {
    hex::decode(hex_key?).ok()?.try_into().ok()
}

fn wire_for(plan: &DevicePlan, seq_base: u32, rng: &mut Rng) -> Option<Box<dyn Wire>> {
    let id = plan.ident.as_str();
    let key = plan.key_hex.as_deref();
    let wire: Box<dyn Wire> = match plan.link {
        Link::NativeTcp | Link::NativeMqtt => {
            Box::new(NativeWire::new(id.parse().ok()?, key32(key)?, seq_base))
        }
        Link::MqttJson => Box::new(JsonWire::new(id, key32(key)?, seq_base)),
        Link::Gt06 => Box::new(Gt06Wire::new(id, 1)?),
        Link::Watch => Box::new(WatchWire::new(id)?),
        Link::H02 => Box::new(H02Wire::new(id)?),
        Link::Sia => Box::new(SiaWire::new(id, None, Rng::new(rng.next_u64()))?),
        Link::SiaAes => Box::new(SiaWire::new(
            id,
            Some(hex::decode(key?).ok()?),
            Rng::new(rng.next_u64()),
        )?),
    };
    Some(wire)
}

/// How waiting for an ACK ended.
enum Wait {
    Acked(bool),
    Nak,
    Timeout,
    Lost,
    Stopped,
}

struct Device {
    plan: DevicePlan,
    ctx: Arc<Ctx>,
    rng: Rng,
    conn: Option<Conn>,
    buf: BytesMut,
    battery: f64,
    backoff: Duration,
    connected_before: bool,
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Device {
    fn new(plan: DevicePlan, ctx: Arc<Ctx>) -> Device {
        Device {
            rng: Rng::new(seed_of(&plan.ident)),
            battery: f64::from(plan.battery_start.min(100)),
            plan,
            ctx,
            conn: None,
            buf: BytesMut::new(),
            backoff: BACKOFF_MIN,
            connected_before: false,
        }
    }

    /// The device's own clock: the simulation's plus what it learned from the server.
    fn device_now(&self) -> Ms {
        self.ctx.clock.now() + self.ctx.offset_ms.load(Ordering::Relaxed)
    }

    fn battery(&self) -> u8 {
        self.battery.clamp(1.0, 100.0) as u8
    }

    async fn run(mut self) -> Vec<Sent> {
        let Some(mut wire) = wire_for(&self.plan, self.ctx.seq_base, &mut self.rng) else {
            tracing::warn!(ident = %self.plan.ident, link = ?self.plan.link, "device without a usable ident or key");
            self.ctx.error();
            return Vec::new();
        };
        let ctx = self.ctx.clone();
        let heartbeat = self.plan.heartbeat_ms.max(1_000);
        let mut next_hb = ctx.clock.now() + self.rng.below(heartbeat as u64) as Ms;
        let actions = std::mem::take(&mut self.plan.actions);
        let mut next = 0;
        let mut sent = Vec::new();
        loop {
            let action_at = actions.get(next).map(|(t, _)| *t);
            let due = action_at.map_or(next_hb, |t| t.min(next_hb));
            if due >= ctx.until {
                self.idle(ctx.until, wire.as_mut()).await;
                break;
            }
            if !self.idle(due, wire.as_mut()).await {
                break;
            }
            if action_at.is_some_and(|t| t <= next_hb) {
                let (planned_at, action) = actions[next].clone();
                next += 1;
                if action == Action::GoSilent {
                    break;
                }
                let link = ctx.link(self.plan.link);
                match wire.action(&action, self.battery(), self.device_now()) {
                    Err(_) => {
                        link.unsupported.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(out) => {
                        link.sent.fetch_add(1, Ordering::Relaxed);
                        let (sent_at, acked_at, sends, ack_us) =
                            self.until_acked(&out, wire.as_mut()).await;
                        if acked_at.is_some() {
                            link.acked.fetch_add(1, Ordering::Relaxed);
                        }
                        sent.push(Sent {
                            ident: self.plan.ident.clone(),
                            link: self.plan.link,
                            action,
                            planned_at,
                            sent_at: sent_at.unwrap_or(planned_at),
                            acked_at,
                            sends,
                            ack_us,
                        });
                    }
                }
            } else {
                self.battery = (self.battery - DRAIN_PER_HEARTBEAT).max(1.0);
                if let Some(out) = wire.heartbeat(self.battery(), self.device_now()) {
                    self.once(&out, wire.as_mut()).await;
                }
                next_hb += heartbeat;
                if next_hb <= ctx.clock.now() {
                    next_hb = ctx.clock.now() + heartbeat;
                }
            }
        }
        if let Some(c) = self.conn.take() {
            c.close().await;
        }
        sent
    }

    /// Keeps the connection (reconnecting when it drops, reading and discarding what the server
    /// sends) until the clock reads `at`; false when stopped.
    async fn idle(&mut self, at: Ms, wire: &mut dyn Wire) -> bool {
        loop {
            if self.ctx.stop.is_cancelled() {
                return false;
            }
            let left = at - self.ctx.clock.now();
            if left <= 0 {
                return true;
            }
            if self.conn.is_none() && !self.connect(wire).await {
                continue;
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let wake = Instant::now() + self.ctx.clock.real(left);
            let stop = self.ctx.stop.clone();
            let got = tokio::select! {
                _ = stop.cancelled() => return false,
                _ = tokio::time::sleep_until(wake) => return true,
                r = conn.recv(&mut self.buf) => r,
            };
            if got.is_err() {
                self.lost();
                continue;
            }
            while let Some(reply) = wire.reply(&mut self.buf) {
                if let Reply::Ack { server_s, .. } | Reply::Nak { server_s } = reply {
                    self.ctx.learn(server_s);
                }
            }
        }
    }

    fn lost(&mut self) {
        self.conn = None;
        self.buf.clear();
        self.ctx.error();
    }

    /// One connection attempt (with the protocol's hello); on failure, waits the backoff.
    /// True when connected.
    async fn connect(&mut self, wire: &mut dyn Wire) -> bool {
        let ctx = self.ctx.clone();
        if ctx.stop.is_cancelled() || ctx.clock.now() >= ctx.until {
            return false;
        }
        let opened = {
            let _permit = ctx.gate.acquire().await;
            self.open(wire).await
        };
        if opened {
            ctx.connects.fetch_add(1, Ordering::Relaxed);
            if self.connected_before {
                ctx.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            self.connected_before = true;
            self.backoff = BACKOFF_MIN;
            return true;
        }
        self.conn = None;
        self.buf.clear();
        ctx.error();
        // Jitter: uniform in [d/2, d].
        let d = self.backoff.as_millis() as u64;
        let wait = Duration::from_millis(d / 2 + self.rng.below(d / 2 + 1));
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        tokio::select! {
            _ = ctx.stop.cancelled() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        false
    }

    async fn open(&mut self, wire: &mut dyn Wire) -> bool {
        let t = &self.ctx.targets;
        let within = Duration::from_secs(10);
        let conn = match self.plan.link {
            Link::NativeTcp => Conn::tcp(&t.native, within).await,
            Link::Gt06 => Conn::tcp(&t.gt06, within).await,
            Link::Watch => Conn::tcp(&t.watch, within).await,
            Link::H02 => Conn::tcp(&t.h02, within).await,
            Link::Sia | Link::SiaAes => Conn::tcp(&t.sia, within).await,
            Link::NativeMqtt | Link::MqttJson => {
                let base = format!("{}/dev/{}", t.mqtt_prefix, self.plan.ident);
                let up = if self.plan.link == Link::MqttJson {
                    format!("{base}/up/json")
                } else {
                    format!("{base}/up")
                };
                let target = MqttTarget {
                    broker: t.mqtt.clone(),
                    user: t.mqtt_user.clone(),
                    up,
                    down: format!("{base}/down"),
                    client_id: format!("sim-{}", self.plan.ident),
                };
                Conn::mqtt(&target, within).await
            }
        };
        let Ok(conn) = conn else {
            return false;
        };
        self.conn = Some(conn);
        self.buf.clear();
        let Some(hello) = wire.hello(self.device_now()) else {
            return true;
        };
        self.send(&hello.bytes).await
            && matches!(self.wait(hello.key, wire).await.0, Wait::Acked(true))
    }

    async fn send(&mut self, bytes: &[u8]) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        if conn.send(bytes).await.is_ok() {
            return true;
        }
        self.conn = None;
        false
    }

    /// Reads replies until the ACK of `key`, a NAK, the ACK timeout or a lost connection; the
    /// wall time it took.
    async fn wait(&mut self, key: AckKey, wire: &mut dyn Wire) -> (Wait, Duration) {
        let started = Instant::now();
        let deadline = started + self.ctx.ack_timeout;
        loop {
            while let Some(reply) = wire.reply(&mut self.buf) {
                match reply {
                    Reply::Ack {
                        key: k,
                        ok,
                        server_s,
                    } => {
                        self.ctx.learn(server_s);
                        if k == key {
                            return (Wait::Acked(ok), started.elapsed());
                        }
                    }
                    Reply::Nak { server_s } => {
                        self.ctx.learn(server_s);
                        return (Wait::Nak, started.elapsed());
                    }
                    Reply::Other => {}
                }
            }
            let Some(conn) = self.conn.as_mut() else {
                return (Wait::Lost, started.elapsed());
            };
            let stop = self.ctx.stop.clone();
            let got = tokio::select! {
                _ = stop.cancelled() => return (Wait::Stopped, started.elapsed()),
                _ = tokio::time::sleep_until(deadline) => return (Wait::Timeout, started.elapsed()),
                r = conn.recv(&mut self.buf) => r,
            };
            if got.is_err() {
                self.conn = None;
                self.buf.clear();
                return (Wait::Lost, started.elapsed());
            }
        }
    }

    fn record(&self, took: Duration) {
        let link = self.ctx.link(self.plan.link);
        let mut h = match link.latency.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        h.saturating_record((took.as_micros() as u64).max(1));
    }

    /// A heartbeat: one copy, its ACK latency recorded when it comes in time.
    async fn once(&mut self, out: &Out, wire: &mut dyn Wire) {
        if self.conn.is_none() || !self.send(&out.bytes).await {
            return;
        }
        match self.wait(out.key, wire).await {
            (Wait::Acked(true), took) => self.record(took),
            (Wait::Lost, _) => self.lost(),
            (Wait::Nak, _) => {
                // DC-09 closes the connection after a NAK.
                self.conn = None;
                self.buf.clear();
            }
            _ => {}
        }
    }

    /// Sends `out` until it is ACKed: the first copy's clock time, the ACK's clock time, copies
    /// sent and the ACKed copy's latency.
    async fn until_acked(
        &mut self,
        out: &Out,
        wire: &mut dyn Wire,
    ) -> (Option<Ms>, Option<Ms>, u32, Option<u64>) {
        let ctx = self.ctx.clone();
        let (mut first, mut copies) = (None, 0u32);
        loop {
            if ctx.stop.is_cancelled() || (copies > 0 && ctx.clock.now() >= ctx.until) {
                break;
            }
            if self.conn.is_none() && !self.connect(wire).await {
                if ctx.clock.now() >= ctx.until {
                    break;
                }
                continue;
            }
            let bytes = if copies == 0 {
                out.bytes.clone()
            } else {
                wire.again(out, self.device_now())
            };
            if !self.send(&bytes).await {
                ctx.error();
                continue;
            }
            copies += 1;
            first.get_or_insert(ctx.clock.now());
            match self.wait(out.key, wire).await {
                (Wait::Acked(true), took) => {
                    self.record(took);
                    let us = (took.as_micros() as u64).max(1);
                    return (first, Some(ctx.clock.now()), copies, Some(us));
                }
                (Wait::Acked(false), _) => {
                    // Refused for good (a replayed sequence, a code the receiver cannot use).
                    ctx.error();
                    break;
                }
                (Wait::Nak, _) => {
                    self.conn = None;
                    self.buf.clear();
                }
                (Wait::Lost, _) => ctx.error(),
                (Wait::Timeout, _) => {}
                (Wait::Stopped, _) => break,
            }
        }
        (first, None, copies, None)
    }
}
