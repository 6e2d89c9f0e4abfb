//! The directory exchange format `onekey-dataset/1`: areas, responders, elders and devices, by
//! reference (area `code`, `ref`), never by database id. `onekey import` and `POST /api/v1/import`
//! read it; `onekey-sim dataset` writes a generated one.
//!
//! # The generated district (`onekey-sim`)
//! A synthetic but faithful Jizhou district (吉州区, Ji'an): areas, grid workers, elders, devices and
//! responders, deterministic from a seed. `onekey import` reads the JSON it writes; `onekey-sim demo`
//! and the load harness generate one in memory.
//!
//! # Geography
//! Six streets/towns and fifteen communities named in the 2014 article (文山街道: 思源, 光明, 西苑;
//! 永叔街道: 太平桥, 高峰坡; 习溪桥街道: 仓口, 民德巷, 新村; 北门街道: 北门, 马铺前; 古南镇街道: 螺湖,
//! 保太巷, 桃树下; 兴桥镇: 黄余村, 高家村), placed on the west bank of the Gan river around
//! 27.11° N, 114.98° E. The real district has 305 grids in 35 communities (about 9 per community); the
//! dataset scales that down to 2–9 grids per community depending on the number of elders, each a
//! small square with one grid worker (网格员).
//!
//! # JSON format (`onekey-dataset/1`)
//! ```json
//! {
//!   "format": "onekey-dataset/1",
//!   "seed": 42,
//!   "areas": [
//!     {"code": "JZ", "level": "district", "name": "吉州区", "parent": null, "boundary": []},
//!     {"code": "JZ-WS", "level": "street", "name": "文山街道", "parent": "JZ", "boundary": []},
//!     {"code": "JZ-WS-SY", "level": "community", "name": "思源社区", "parent": "JZ-WS", "boundary": []},
//!     {"code": "JZ-WS-SY-01", "level": "grid", "name": "思源社区第1网格", "parent": "JZ-WS-SY",
//!      "worker": "R0001", "boundary": [[27.1, 114.9], …]}
//!   ],
//!   "responders": [
//!     {"ref": "R0001", "name": "刘建华", "phone": "13907960001", "kind": "grid_worker",
//!      "team": "思源社区网格站", "skills": ["first_aid"], "grid": "JZ-WS-SY-01",
//!      "home_lat": 27.11, "home_lon": 114.97, "max_tasks": 2}
//!   ],
//!   "elders": [
//!     {"ref": "E0001", "name": "胡秀英", "phone": "0796-8123456", "address": "吉州区文山街道思源社区…",
//!      "lat": 27.11, "lon": 114.97, "grid": "JZ-WS-SY-01", "living": "alone",
//!      "health_notes": "高血压", "medications": "硝苯地平缓释片", "key_safe_code": "4821",
//!      "checkin_hours": 24,
//!      "contacts": [{"name": "罗志强", "relation": "儿子（在广州）", "phone": "139…", "key_holder": false}]}
//!   ],
//!   "devices": [
//!     {"protocol": "native", "ident": "860100012345678", "secret_hex": "64 hex digits",
//!      "model": "OK-P1 一键通挂件", "elder": "E0001", "heartbeat_s": 300}
//!   ]
//! }
//! ```
//! References are by code (`parent`, `grid`) and by `ref` (`worker`, `elder`), never by database id,
//! so a file imports into any database. `living` is `alone` (独居), `empty_nest` (空巢), `three_no`
//! (三无) or `with_family`; `kind` is a responder kind of the server (`volunteer`, `grid_worker`,
//! `social_worker`, `nursing_student`, `family`, `carer`, `provider`, `staff`).
//!
//! Native devices' `ident` is the decimal device id and `secret_hex` its 32-byte key, so the fleet
//! simulator can speak for them.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// The format tag written into every dataset.
pub const FORMAT: &str = "onekey-dataset/1";

/// A whole dataset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Dataset {
    /// Always [`FORMAT`].
    pub format: String,
    /// The seed it was generated from.
    #[serde(default)]
    pub seed: u64,
    /// District, streets, communities, grids: parents before children.
    #[serde(default)]
    pub areas: Vec<AreaRec>,
    /// Grid workers first, then everyone else.
    #[serde(default)]
    pub responders: Vec<ResponderRec>,
    /// Elders.
    #[serde(default)]
    pub elders: Vec<ElderRec>,
    /// Devices.
    #[serde(default)]
    pub devices: Vec<DeviceRec>,
}

/// One area.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AreaRec {
    /// Stable code, e.g. `JZ-WS-SY-03`.
    pub code: String,
    /// `district`, `street`, `community` or `grid`.
    pub level: String,
    /// Display name.
    pub name: String,
    /// Parent's code.
    #[serde(default)]
    pub parent: Option<String>,
    /// The grid worker's `ref`.
    #[serde(default)]
    pub worker: Option<String>,
    /// Outline as `[lat, lon]` pairs.
    #[serde(default)]
    pub boundary: Vec<[f64; 2]>,
}

/// One responder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResponderRec {
    /// Reference inside the file.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Name (a person or an organisation).
    pub name: String,
    /// Phone.
    pub phone: String,
    /// Responder kind.
    pub kind: String,
    /// Team.
    #[serde(default)]
    pub team: Option<String>,
    /// Skills.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Home grid's code.
    #[serde(default)]
    pub grid: Option<String>,
    /// Home latitude.
    pub home_lat: f64,
    /// Home longitude.
    pub home_lon: f64,
    /// Most tasks at once.
    #[serde(default = "one")]
    pub max_tasks: i64,
    /// Recurring weekly shifts in local time (available inside them without going on duty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shifts: Vec<ShiftRec>,
    /// A password for the responder app, if the file sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A weekly shift: weekdays as a bit set (bit 0 = Monday), start and end in minutes after local
/// midnight (an end before the start crosses midnight).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShiftRec {
    /// Weekday bits.
    pub weekdays: u8,
    /// Start, minutes after midnight.
    pub start_min: u32,
    /// End, minutes after midnight.
    pub end_min: u32,
}

fn one() -> i64 {
    1
}

/// A contact of an elder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContactRec {
    /// Name.
    pub name: String,
    /// Relation.
    #[serde(default)]
    pub relation: String,
    /// Phone.
    pub phone: String,
    /// Holds a key.
    #[serde(default)]
    pub key_holder: bool,
}

/// One elder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ElderRec {
    /// Reference inside the file.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Name.
    pub name: String,
    /// Phone at home.
    #[serde(default)]
    pub phone: Option<String>,
    /// Address.
    pub address: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Grid's code.
    #[serde(default)]
    pub grid: Option<String>,
    /// `alone`, `empty_nest`, `three_no`, `with_family`.
    pub living: String,
    /// Health notes.
    #[serde(default)]
    pub health_notes: String,
    /// Medications.
    #[serde(default)]
    pub medications: String,
    /// Contacts.
    #[serde(default)]
    pub contacts: Vec<ContactRec>,
    /// Key-safe code.
    #[serde(default)]
    pub key_safe_code: Option<String>,
    /// Welfare-check period in hours.
    #[serde(default = "day")]
    pub checkin_hours: i64,
}

fn day() -> i64 {
    24
}

/// One device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceRec {
    /// `native`, `gt06`, `watch`, `h02`, `sia`.
    pub protocol: String,
    /// Identity on the wire.
    pub ident: String,
    /// Secret, hex.
    #[serde(default)]
    pub secret_hex: Option<String>,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// The elder's `ref`.
    #[serde(default)]
    pub elder: Option<String>,
    /// Heartbeat period, seconds.
    #[serde(default = "five_minutes")]
    pub heartbeat_s: i64,
}

fn five_minutes() -> i64 {
    300
}

impl Dataset {
    /// The native devices as (device id, key), for the fleet simulator.
    pub fn native_devices(&self) -> Vec<(u64, [u8; 32])> {
        self.devices
            .iter()
            .filter(|d| d.protocol == "native")
            .filter_map(|d| {
                let id = d.ident.parse::<u64>().ok()?;
                let bytes = hex::decode(d.secret_hex.as_deref()?).ok()?;
                let key: [u8; 32] = bytes.try_into().ok()?;
                Some((id, key))
            })
            .collect()
    }
}
