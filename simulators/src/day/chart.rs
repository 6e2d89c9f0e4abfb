//! The day as a picture: one self-contained HTML page of three SVG charts — alarms per hour,
//! answer times against the 60 s and 2 min targets, and incidents open over the day.

use std::fmt::Write;

use serde_json::Value;

use super::report::{ACCEPT_TARGET_MS, ACK_TARGET_MS, DayReport};
use crate::clock::Ms;
use crate::plan::{Action, Sent};
use crate::world::HOUR;

const W: f64 = 900.0;
const H: f64 = 220.0;
const PAD: f64 = 40.0;

fn x_of(t: Ms, start: Ms, span: Ms) -> f64 {
    PAD + (t - start).clamp(0, span) as f64 / span as f64 * (W - 2.0 * PAD)
}

fn frame(out: &mut String, title: &str, y_max: f64, y_label: &str, hours: i64) {
    let _ = write!(
        out,
        "<h2>{title}</h2><svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" \
         font-family=\"sans-serif\" font-size=\"11\">\
         <line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#444\"/>\
         <line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{b}\" stroke=\"#444\"/>\
         <text x=\"4\" y=\"{t}\">{y_max:.0} {y_label}</text>",
        b = H - PAD,
        r = W - PAD,
        t = PAD - 6.0,
    );
    for h in (0..=hours).step_by(3) {
        let x = PAD + h as f64 / hours as f64 * (W - 2.0 * PAD);
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{y}\" text-anchor=\"middle\">{h:02}:00</text>",
            y = H - PAD + 14.0
        );
    }
}

fn y_of(v: f64, max: f64) -> f64 {
    let top = PAD;
    let bottom = H - PAD;
    bottom - (v.min(max) / max.max(1e-9)) * (bottom - top)
}

/// The page for a day from `start`, `hours` long.
pub fn html(
    report: &DayReport,
    sent: &[Sent],
    incidents: &[Value],
    start: Ms,
    hours: i64,
) -> String {
    let span = hours * HOUR;
    let mut out = String::from(
        "<!doctype html><meta charset=\"utf-8\"><title>OneKey: a simulated day</title>\
         <body style=\"font-family:sans-serif;max-width:960px;margin:auto\">",
    );
    let _ = write!(
        out,
        "<h1>A day of {} — {} elders, {} responders</h1><p>{} alarms sent, {} ACKed, {} lost, \
         {} duplicated; {} of {} emergencies reached a person within policy; {:.1} % acknowledged \
         within 60 s, {:.1} % accepted within 2 min.</p>",
        report.preset,
        report.elders,
        report.responders,
        report.alarms_sent,
        report.alarms_acked,
        report.lost,
        report.duplicated,
        report.emergencies_reached_person,
        report.emergencies,
        report.acked_within_60s_pct,
        report.accepted_within_2min_pct
    );

    // Alarms per hour.
    let mut per_hour = vec![0u64; hours.max(1) as usize];
    for s in sent {
        if matches!(s.action, Action::Alarm { .. }) {
            let h = ((s.planned_at - start) / HOUR).clamp(0, hours - 1) as usize;
            per_hour[h] += 1;
        }
    }
    let max = per_hour.iter().copied().max().unwrap_or(1).max(1) as f64;
    frame(&mut out, "Alarms per hour", max, "alarms", hours);
    let bar = (W - 2.0 * PAD) / hours as f64;
    for (h, n) in per_hour.iter().enumerate() {
        let y = y_of(*n as f64, max);
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#c0392b\">\
             <title>{h:02}:00 {n}</title></rect>",
            PAD + h as f64 * bar + 1.0,
            bar - 2.0,
            H - PAD - y
        );
    }
    out.push_str("</svg>");

    // Answer times.
    let cap = 300.0;
    frame(
        &mut out,
        "Emergencies: operator acknowledgement (blue) and first acceptance (green), seconds",
        cap,
        "s",
        hours,
    );
    for (ms, colour) in [(ACK_TARGET_MS, "#2980b9"), (ACCEPT_TARGET_MS, "#27ae60")] {
        let y = y_of(ms as f64 / 1000.0, cap);
        let _ = write!(
            out,
            "<line x1=\"{PAD}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"{colour}\" \
             stroke-dasharray=\"4 3\"/>",
            W - PAD
        );
    }
    for row in incidents {
        let inc = &row["incident"];
        if inc["category"] != "emergency" {
            continue;
        }
        let received = inc["received_at"].as_i64().unwrap_or(start);
        let x = x_of(received, start, span);
        for (key, colour) in [("acked_at", "#2980b9"), ("accepted_at", "#27ae60")] {
            if let Some(at) = inc[key].as_i64() {
                let s = (at - received) as f64 / 1000.0;
                let _ = write!(
                    out,
                    "<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{colour}\" \
                     fill-opacity=\"0.7\"><title>#{} {key} {s:.0} s</title></circle>",
                    y_of(s, cap),
                    inc["id"]
                );
            }
        }
    }
    out.push_str("</svg>");

    // Open incidents over the day, every ten minutes.
    let step = 10 * 60_000;
    let points: Vec<(Ms, usize)> = (0..=span / step)
        .map(|i| {
            let t = start + i * step;
            let open = incidents
                .iter()
                .filter(|row| {
                    let inc = &row["incident"];
                    let opened = inc["received_at"].as_i64().unwrap_or(Ms::MAX) <= t;
                    let closed = inc["closed_at"].as_i64().is_some_and(|c| c <= t);
                    opened && !closed
                })
                .count();
            (t, open)
        })
        .collect();
    let max = points.iter().map(|p| p.1).max().unwrap_or(1).max(1) as f64;
    frame(&mut out, "Incidents open", max, "open", hours);
    let path: Vec<String> = points
        .iter()
        .map(|(t, n)| format!("{:.1},{:.1}", x_of(*t, start, span), y_of(*n as f64, max)))
        .collect();
    let _ = write!(
        out,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#8e44ad\" stroke-width=\"2\"/></svg>",
        path.join(" ")
    );
    out.push_str("</body>");
    out
}
