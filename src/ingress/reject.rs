//! Why ingress refused a frame or closed a connection: one enum, whose stable names are the
//! `reason` label of `onekey_frames_rejected_total` and `onekey_mqtt_rejected_total`.

use bytes::Bytes;

/// Why a frame was refused or a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The bytes are not a frame of the protocol.
    Malformed,
    /// The frame (or MQTT payload) is larger than allowed.
    Oversized,
    /// The authentication tag (native HMAC, JSON MAC, DC-09 ciphertext) does not verify.
    BadMac,
    /// The device has no usable key registered.
    NoKey,
    /// The sequence number is older than the device's replay window.
    Replay,
    /// No device is registered under the claimed identity.
    UnknownDevice,
    /// The device is registered but disabled.
    Disabled,
    /// The device was disabled, re-keyed or removed while this connection was open.
    Revoked,
    /// The store could not be asked who the device is.
    StoreUnavailable,
    /// A frame that needs a logged-in connection came first.
    NotLoggedIn,
    /// A connection of one device claimed another identity.
    IdentityChanged,
    /// No frame before the first-frame deadline.
    FirstFrameTimeout,
    /// Silent past the device's heartbeat period.
    IdleTimeout,
    /// Still not authenticated when the listener's handshake cap needed its place.
    HandshakeEvicted,
    /// Frames faster than a connection may send them.
    Flood,
    /// Writing the reply failed.
    WriteFailed,
    /// An MQTT topic that is not an uplink topic.
    BadTopic,
    /// An MQTT uplink whose device differs from its topic's.
    TopicMismatch,
    /// A DC-09 message in clear from an account registered with an AES key.
    Unencrypted,
    /// A DC-09 message whose timestamp is outside the receiver's window.
    StaleTimestamp,
    /// A DC-09 message refused for another reason (answered `NAK`).
    Refused,
    /// A DC-09 message understood but not processable (answered `DUH`).
    Unsupported,
}

impl Reason {
    /// The stable metrics label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::Oversized => "oversized",
            Reason::BadMac => "bad_mac",
            Reason::NoKey => "no_key",
            Reason::Replay => "replay",
            Reason::UnknownDevice => "unknown_device",
            Reason::Disabled => "disabled",
            Reason::Revoked => "revoked",
            Reason::StoreUnavailable => "store_unavailable",
            Reason::NotLoggedIn => "not_logged_in",
            Reason::IdentityChanged => "identity_changed",
            Reason::FirstFrameTimeout => "first_frame_timeout",
            Reason::IdleTimeout => "idle_timeout",
            Reason::HandshakeEvicted => "handshake_evicted",
            Reason::Flood => "flood",
            Reason::WriteFailed => "write_failed",
            Reason::BadTopic => "bad_topic",
            Reason::TopicMismatch => "topic_mismatch",
            Reason::Unencrypted => "unencrypted",
            Reason::StaleTimestamp => "stale_timestamp",
            Reason::Refused => "refused",
            Reason::Unsupported => "unsupported",
        }
    }

    /// Routine ends of a connection, logged at info level rather than as a warning.
    pub const fn is_routine(self) -> bool {
        matches!(
            self,
            Reason::FirstFrameTimeout
                | Reason::IdleTimeout
                | Reason::Revoked
                | Reason::HandshakeEvicted
        )
    }

    /// The server's fault, not the device's: logged as an error.
    pub const fn is_server_side(self) -> bool {
        matches!(self, Reason::StoreUnavailable)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: the connection logs it, counts it, sends `reply` if any and closes.
#[derive(Debug)]
pub struct Reject {
    /// Why.
    pub reason: Reason,
    /// Detail for the log (never a key or other secret).
    pub detail: String,
    /// Bytes to send before closing (a protocol-level NAK), if any.
    pub reply: Option<Bytes>,
}

impl Reject {
    /// A rejection without a reply.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Reject {
        Reject {
            reason,
            detail: detail.into(),
            reply: None,
        }
    }

    /// The same rejection with a reply to send before closing.
    pub fn with_reply(mut self, reply: Option<Bytes>) -> Reject {
        self.reply = reply;
        self
    }
}
