//! The MQTT topic tree (`firmware-protocol/MQTT.md`).
//!
//! - `<prefix>/dev/<device>/up`: binary native frames from a device;
//! - `<prefix>/dev/<device>/up/json`: JSON uplinks (`ingress::mqtt::json_uplink`);
//! - `<prefix>/dev/<device>/down`: ACKs and commands to a device (binary for binary devices, JSON for
//!   JSON devices);
//! - `<prefix>/responder/<id>/tasks`: task offers, updates and stand-downs for one responder's app;
//! - `<prefix>/responder/<id>/receipt`: the app confirms what it received.

/// Longest device or responder id accepted in a topic.
pub const MAX_ID_LEN: usize = 64;

/// Which uplink a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uplink {
    /// Binary native frames.
    Binary,
    /// JSON documents.
    Json,
}

/// The topic names of one deployment.
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

/// True when `id` can be one topic level: non-empty, short, no `/`, `+`, `#` or control characters.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id
            .chars()
            .any(|c| c == '/' || c == '+' || c == '#' || c.is_control())
}

impl Topics {
    /// Topics under `prefix` (surrounding slashes are ignored; an empty prefix means `onekey`).
    pub fn new(prefix: &str) -> Topics {
        let prefix = prefix.trim_matches('/');
        Topics {
            prefix: if prefix.is_empty() {
                "onekey".into()
            } else {
                prefix.to_string()
            },
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Subscription filters for device uplinks; `share_group` makes them MQTT shared subscriptions
    /// (`$share/<group>/…`) so several instances split the traffic.
    pub fn uplink_filters(&self, share_group: Option<&str>) -> [String; 2] {
        let share = share_group
            .filter(|g| valid_id(g))
            .map(|g| format!("$share/{g}/"))
            .unwrap_or_default();
        [
            format!("{share}{}/dev/+/up", self.prefix),
            format!("{share}{}/dev/+/up/json", self.prefix),
        ]
    }

    /// The device and uplink kind a topic names, or `None` when it is not an uplink topic of ours.
    pub fn parse_uplink<'a>(&self, topic: &'a str) -> Option<(&'a str, Uplink)> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("/dev/")?;
        let (device, kind) = if let Some(d) = rest.strip_suffix("/up/json") {
            (d, Uplink::Json)
        } else {
            (rest.strip_suffix("/up")?, Uplink::Binary)
        };
        valid_id(device).then_some((device, kind))
    }

    /// A device's downlink topic.
    pub fn downlink(&self, device: &str) -> String {
        format!("{}/dev/{device}/down", self.prefix)
    }

    /// A responder's task topic.
    pub fn responder(&self, responder: &str) -> String {
        format!("{}/responder/{responder}/tasks", self.prefix)
    }

    /// The filter for every app's receipts; `share_group` as for [`Topics::uplink_filters`].
    pub fn receipt_filter(&self, share_group: Option<&str>) -> String {
        let share = share_group
            .filter(|g| valid_id(g))
            .map(|g| format!("$share/{g}/"))
            .unwrap_or_default();
        format!("{share}{}/responder/+/receipt", self.prefix)
    }

    /// The responder a receipt topic names.
    pub fn parse_receipt<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let id = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("/responder/")?
            .strip_suffix("/receipt")?;
        valid_id(id).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uplink_topics_parse() {
        let t = Topics::new("/site-a/");
        assert_eq!(t.prefix(), "site-a");
        assert_eq!(
            t.parse_uplink("site-a/dev/42/up"),
            Some(("42", Uplink::Binary))
        );
        assert_eq!(
            t.parse_uplink("site-a/dev/btn-7/up/json"),
            Some(("btn-7", Uplink::Json))
        );
        assert_eq!(t.parse_uplink("site-a/dev/42/down"), None);
        assert_eq!(t.parse_uplink("site-b/dev/42/up"), None);
        assert_eq!(t.parse_uplink("site-a/dev//up"), None);
        assert_eq!(t.parse_uplink("site-a/dev/a/b/up"), None);
        assert_eq!(t.parse_uplink("site-a/dev/42/up/jsonx"), None);
        assert_eq!(t.downlink("42"), "site-a/dev/42/down");
        assert_eq!(t.responder("9"), "site-a/responder/9/tasks");
        assert_eq!(t.parse_receipt("site-a/responder/9/receipt"), Some("9"));
        assert_eq!(t.parse_receipt("site-a/responder/9/tasks"), None);
        assert_eq!(t.parse_receipt("site-a/responder/a/b/receipt"), None);
        assert_eq!(
            t.receipt_filter(Some("g")),
            "$share/g/site-a/responder/+/receipt"
        );
    }

    #[test]
    fn shared_subscriptions() {
        let t = Topics::new("p");
        assert_eq!(t.uplink_filters(None)[0], "p/dev/+/up");
        assert_eq!(t.uplink_filters(Some("g"))[1], "$share/g/p/dev/+/up/json");
        assert_eq!(t.uplink_filters(Some("bad/group"))[0], "p/dev/+/up");
    }

    #[test]
    fn ids() {
        assert!(valid_id("r-1"));
        assert!(!valid_id("a+b"));
        assert!(!valid_id("#"));
        assert!(!valid_id(&"x".repeat(65)));
    }
}
