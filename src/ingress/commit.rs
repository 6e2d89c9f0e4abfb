//! The one rule every uplink follows, whatever carried it: submit the frame's events, and answer
//! only once every one of them is committed; when the commit fails, withhold the answer so that the
//! device's retry brings the frame back. The TCP connection loop and the MQTT uplink both call
//! [`answer_frame`] (the JSON uplink, which has no [`Adapter`], calls [`commit_events`]).

use bytes::Bytes;
use onekey_protocol::SeqClass;

use super::{Adapter, DeviceAuth, GatewayContext, Reject};
use crate::domain::{DeviceEvent, Millis};
use crate::store::{StoreOutcome, Stored};

/// Commits `events` through intake, all or none answered: `None` when any was not committed
/// (logged, and counted as `onekey_acks_withheld_total{protocol}`), so the caller sends no ACK.
pub async fn commit_events(
    ctx: &GatewayContext,
    protocol: &'static str,
    events: Vec<DeviceEvent>,
) -> Option<Vec<Stored>> {
    if events.is_empty() {
        return Some(Vec::new());
    }
    let submits = events.into_iter().map(|event| ctx.intake.submit(event));
    match futures_util::future::join_all(submits)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(stored) => Some(stored),
        Err(e) => {
            // Never ACK what is not stored: the device retries and nothing is lost.
            tracing::error!(error = %e, protocol, "events not committed; withholding the ACK");
            metrics::counter!("onekey_acks_withheld_total", "protocol" => protocol).increment(1);
            None
        }
    }
}

/// True when the store found the frame older than the device's replay window.
pub fn replayed(stored: &[Stored]) -> bool {
    stored.iter().any(|s| s.outcome == StoreOutcome::Replayed)
}

/// Handles one authenticated frame of `adapter`: decodes it, claims its sequence number, records
/// the heartbeat state, commits its events, and returns the reply to send (`None`: nothing to send,
/// because the protocol has no reply or the commit failed). `protocol` labels the metrics (`mqtt`
/// for native frames over MQTT). A refusal carries the protocol's own refusal reply, if any.
pub async fn answer_frame<A: Adapter>(
    adapter: &A,
    protocol: &'static str,
    ctx: &GatewayContext,
    frame: A::Frame,
    device: &DeviceAuth,
    session: &mut A::Session,
    now: Millis,
) -> Result<Option<Bytes>, Reject> {
    let mut handled = adapter.handle(&frame, device, session, now)?;
    ctx.traffic.frame(protocol, device.grid_id);
    let seq = handled.seq.and_then(|s| u32::try_from(s).ok());
    if let (Some(seq), true) = (seq, handled.events.is_empty()) {
        // Nothing to commit: claim the number now. Events claim it in their own transaction.
        let class = ctx.registry.claim(device, seq).await?;
        adapter.sequenced(&mut handled, class, device)?;
    }
    ctx.intake.report_status(
        device.device_id,
        device.elder_id,
        A::PROTOCOL == "native",
        handled.status.unwrap_or_default(),
        now,
        handled.seq,
    );
    let mut events = std::mem::take(&mut handled.events);
    if !events.is_empty() {
        let raw = Bytes::copy_from_slice(frame.as_ref());
        for event in &mut events {
            event.raw = Some(raw.clone());
        }
    }
    let Some(stored) = commit_events(ctx, protocol, events).await else {
        return Ok(None);
    };
    if replayed(&stored) {
        adapter.sequenced(&mut handled, SeqClass::TooOld, device)?;
    }
    Ok(adapter.reply(handled.pending, &stored, device, session))
}
