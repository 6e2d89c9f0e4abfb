//! The directory the console administers: areas of the grid, elders, their devices, responders.

use serde::{Deserialize, Serialize};

use super::Millis;

/// A level of the city grid: 区 > 街道 > 社区 > 网格.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AreaLevel {
    /// 区
    District,
    /// 街道 or 镇
    Street,
    /// 社区
    Community,
    /// 网格: the smallest unit, with one responsible grid worker.
    Grid,
}

impl AreaLevel {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AreaLevel::District => "district",
            AreaLevel::Street => "street",
            AreaLevel::Community => "community",
            AreaLevel::Grid => "grid",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<AreaLevel> {
        use AreaLevel::*;
        [District, Street, Community, Grid]
            .into_iter()
            .find(|l| l.as_str() == s)
    }

    /// The level a parent of this level must have (`None` for a district).
    pub fn parent_level(self) -> Option<AreaLevel> {
        match self {
            AreaLevel::District => None,
            AreaLevel::Street => Some(AreaLevel::District),
            AreaLevel::Community => Some(AreaLevel::Street),
            AreaLevel::Grid => Some(AreaLevel::Community),
        }
    }
}

/// One node of the grid hierarchy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Area {
    /// Row id.
    pub id: i64,
    /// The enclosing area (`None` for a district).
    pub parent_id: Option<i64>,
    /// Level in the hierarchy.
    pub level: AreaLevel,
    /// Stable code used by imports (e.g. `JZ-WS-SY-03`).
    pub code: String,
    /// Display name.
    pub name: String,
    /// The responsible grid worker (a responder), for grids.
    pub worker_id: Option<i64>,
    /// Outline as `[lat, lon]` pairs, for the map.
    pub boundary: Vec<[f64; 2]>,
    /// Last change.
    pub updated_at: Millis,
}

/// How an elder lives; decides welfare checks and who is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LivingSituation {
    /// 独居
    Alone,
    /// 空巢: with a spouse, children far away.
    EmptyNest,
    /// 三无: no income, no ability to work, no one to support them.
    ThreeNo,
    /// Lives with family.
    WithFamily,
}

/// A person to call: family, neighbour, key holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Contact {
    /// Name.
    pub name: String,
    /// Relation to the elder (daughter, neighbour…).
    #[serde(default)]
    pub relation: String,
    /// Phone number.
    pub phone: String,
    /// Holds a key to the elder's home.
    #[serde(default)]
    pub key_holder: bool,
}

/// An elder served by the centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Elder {
    /// Row id.
    pub id: i64,
    /// Full name.
    pub name: String,
    /// Phone at home, if any.
    pub phone: Option<String>,
    /// Street address as a responder would need it.
    pub address: String,
    /// Home latitude.
    pub lat: f64,
    /// Home longitude.
    pub lon: f64,
    /// The grid the home is in.
    pub grid_id: Option<i64>,
    /// Living situation.
    pub living: LivingSituation,
    /// Health notes for responders (shown after accepting a task).
    pub health_notes: String,
    /// Medications.
    pub medications: String,
    /// Emergency contacts and key holders.
    pub contacts: Vec<Contact>,
    /// Code of the key safe at the door (shown only to the accepted responder).
    pub key_safe_code: Option<String>,
    /// Hours without a check-in or activity before a welfare visit is due.
    pub checkin_hours: i64,
    /// Served now; a disabled elder keeps their history but gets no welfare checks.
    #[serde(default = "yes")]
    pub active: bool,
    /// Last change.
    pub updated_at: Millis,
}

/// A device's connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Registered, never connected.
    NeverSeen,
    /// Heard from within its heartbeat period.
    Online,
    /// Silent past its heartbeat period.
    Silent,
}

/// A call device installed for an elder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Device {
    /// Row id.
    pub id: i64,
    /// Protocol it speaks: `native`, `gt06`, `watch`, `h02`, `sia`, `mqtt`.
    pub protocol: String,
    /// Its identity on the wire: native id, IMEI, watch id or DC-09 account.
    pub ident: String,
    /// Model name (for false-alarm statistics per model).
    pub model: String,
    /// The elder it belongs to.
    pub elder_id: Option<i64>,
    /// Disabled devices are refused.
    pub enabled: bool,
    /// Expected heartbeat period in seconds.
    pub heartbeat_s: i64,
    /// Connection state.
    pub state: DeviceState,
    /// Last battery percent.
    pub battery_pct: Option<i64>,
    /// On mains power.
    pub mains: Option<bool>,
    /// Last signal strength 0–100.
    pub signal_pct: Option<i64>,
    /// Last reported latitude.
    pub lat: Option<f64>,
    /// Last reported longitude.
    pub lon: Option<f64>,
    /// Last frame received.
    pub last_seen: Option<Millis>,
    /// Last change.
    pub updated_at: Millis,
}

/// What a responder is; decides which tasks they are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponderKind {
    /// 志愿者
    Volunteer,
    /// Family member or neighbour caregiver, often a key holder.
    Family,
    /// 网格员: responsible for a grid.
    GridWorker,
    /// 社工
    SocialWorker,
    /// 护理学生
    NursingStudent,
    /// Professional carer.
    Carer,
    /// 服务商: a service-provider organisation.
    Provider,
    /// Centre staff.
    Staff,
}

impl ResponderKind {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponderKind::Volunteer => "volunteer",
            ResponderKind::Family => "family",
            ResponderKind::GridWorker => "grid_worker",
            ResponderKind::SocialWorker => "social_worker",
            ResponderKind::NursingStudent => "nursing_student",
            ResponderKind::Carer => "carer",
            ResponderKind::Provider => "provider",
            ResponderKind::Staff => "staff",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<ResponderKind> {
        use ResponderKind::*;
        [
            Volunteer,
            Family,
            GridWorker,
            SocialWorker,
            NursingStudent,
            Carer,
            Provider,
            Staff,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A weekly recurring shift in local time: on `weekdays` (bit 0 = Monday … bit 6 = Sunday), from
/// `start_min` to `end_min` minutes after midnight (an end before the start runs past midnight
/// into the next day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Shift {
    /// Bit `d` set: the shift starts on weekday `d` (0 = Monday); at least one weekday.
    #[schema(minimum = 1, maximum = 127)]
    pub weekdays: u8,
    /// Start, minutes after local midnight.
    #[schema(maximum = 1439)]
    pub start_min: u32,
    /// End, minutes after local midnight.
    #[schema(maximum = 1440)]
    pub end_min: u32,
}

impl Shift {
    /// Whether local time `local_ms` (milliseconds since the Unix epoch, already shifted to local
    /// time) falls in this shift.
    pub fn covers(&self, local_ms: i64) -> bool {
        let minute = local_ms.div_euclid(60_000);
        let day = minute.div_euclid(1440);
        let m = minute.rem_euclid(1440) as u32;
        // 1970-01-01 was a Thursday (weekday 3).
        let weekday = |d: i64| ((d + 3).rem_euclid(7)) as u8;
        let starts_on = |d: i64| self.weekdays & (1 << weekday(d)) != 0;
        if self.start_min <= self.end_min {
            starts_on(day) && (self.start_min..self.end_min).contains(&m)
        } else {
            (starts_on(day) && m >= self.start_min) || (starts_on(day - 1) && m < self.end_min)
        }
    }

    /// True when the fields make sense: some weekday, times within a day.
    pub fn is_valid(&self) -> bool {
        self.weekdays & 0x7f != 0 && self.start_min < 1440 && self.end_min <= 1440
    }
}

/// A person (or organisation) who goes to elders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Responder {
    /// Row id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Phone.
    pub phone: String,
    /// Role.
    pub kind: ResponderKind,
    /// Volunteer team, if any.
    pub team: Option<String>,
    /// Skills (`first_aid`, `nursing`, `housekeeping`…).
    pub skills: Vec<String>,
    /// Home grid.
    pub grid_id: Option<i64>,
    /// Home latitude.
    pub home_lat: f64,
    /// Home longitude.
    pub home_lon: f64,
    /// Live latitude while on duty.
    pub lat: Option<f64>,
    /// Live longitude while on duty.
    pub lon: Option<f64>,
    /// On duty now.
    pub on_duty: bool,
    /// Recurring weekly shifts: inside one, the responder is available even when not on duty.
    #[serde(default)]
    pub shifts: Vec<Shift>,
    /// Most tasks at once.
    pub max_tasks: i64,
    /// Enabled; a disabled responder is offered nothing and cannot sign in.
    #[serde(default = "yes")]
    pub active: bool,
    /// Last change.
    pub updated_at: Millis,
    /// How offers reach them.
    #[serde(default)]
    pub notify_by: NotifyBy,
}

/// How a responder is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyBy {
    /// The app (push over MQTT and the app's stream); an offer it does not confirm in time goes
    /// out again as an SMS.
    #[default]
    App,
    /// SMS only: no app; every offer and update is a text with reply codes.
    Sms,
}

impl NotifyBy {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyBy::App => "app",
            NotifyBy::Sms => "sms",
        }
    }

    /// Parses [`NotifyBy::as_str`] (anything else is the app).
    pub fn parse(s: &str) -> NotifyBy {
        if s == "sms" {
            NotifyBy::Sms
        } else {
            NotifyBy::App
        }
    }
}

fn yes() -> bool {
    true
}

/// A phone number as the SMS centre sees it: digits only, without China's country code (`+86`,
/// `0086`, `86` before an 11-digit mobile number), so a reply from `8613800000001` matches a
/// contact registered as `138 0000 0001`.
pub fn normalize_phone(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let national = digits
        .strip_prefix("0086")
        .or_else(|| digits.strip_prefix("86").filter(|rest| rest.len() == 11))
        .unwrap_or(&digits);
    national.to_string()
}

#[cfg(test)]
mod phone_tests {
    use super::normalize_phone;

    #[test]
    fn country_code_and_separators_are_dropped() {
        for p in [
            "13800000001",
            "138 0000 0001",
            "+86 138-0000-0001",
            "8613800000001",
            "008613800000001",
        ] {
            assert_eq!(normalize_phone(p), "13800000001", "{p}");
        }
        assert_eq!(normalize_phone("0796-8221234"), "07968221234");
    }
}
