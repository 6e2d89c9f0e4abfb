//! What can go wrong when decoding, authenticating or encoding a frame.
//!
//! Every error has a short, stable `as_str()` name for logs and metrics labels, and a `Display` text
//! for people.

use core::fmt;

use crate::message::MessageType;

/// Why bytes could not be read as a frame.
///
/// After [`DecodeError::Incomplete`] wait for more bytes. After `BadMagic`, `UnsupportedVersion`,
/// `UnknownMessageType` or `TooLong` the stream has lost its framing: close the connection. After
/// `BadLength` or `BadField` the frame's length is known ([`crate::frame_len`]), so a receiver may skip
/// the frame; OneKey's server closes the connection anyway, because no honest device sends one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a whole frame yet: at least `needed` more bytes must arrive.
    Incomplete {
        /// The minimum number of bytes still missing (more may be needed once they arrive).
        needed: usize,
    },
    /// The frame does not start with the magic bytes `"OK"`.
    BadMagic,
    /// The version byte is not one this code speaks.
    UnsupportedVersion {
        /// The version byte received.
        version: u8,
    },
    /// The message type byte is not defined in this version.
    UnknownMessageType {
        /// The type byte received.
        code: u8,
    },
    /// The body length field exceeds [`crate::MAX_BODY_LEN`].
    TooLong {
        /// The body length announced in the header.
        body_len: usize,
    },
    /// The body length does not fit the message type.
    BadLength {
        /// The message type announced in the header.
        message_type: MessageType,
        /// The body length announced in the header.
        body_len: usize,
    },
    /// A field holds a value outside its range or an unknown code.
    BadField {
        /// The field's name, as in `PROTOCOL.md`.
        field: &'static str,
    },
}

impl DecodeError {
    /// Stable snake_case name (logs, metrics labels).
    pub const fn as_str(&self) -> &'static str {
        match self {
            DecodeError::Incomplete { .. } => "incomplete",
            DecodeError::BadMagic => "bad_magic",
            DecodeError::UnsupportedVersion { .. } => "unsupported_version",
            DecodeError::UnknownMessageType { .. } => "unknown_message_type",
            DecodeError::TooLong { .. } => "too_long",
            DecodeError::BadLength { .. } => "bad_length",
            DecodeError::BadField { .. } => "bad_field",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Incomplete { needed } => {
                write!(f, "incomplete frame: at least {needed} more bytes needed")
            }
            DecodeError::BadMagic => f.write_str("frame does not start with \"OK\""),
            DecodeError::UnsupportedVersion { version } => {
                write!(f, "unsupported protocol version {version}")
            }
            DecodeError::UnknownMessageType { code } => {
                write!(f, "unknown message type 0x{code:02x}")
            }
            DecodeError::TooLong { body_len } => write!(
                f,
                "body length {body_len} exceeds the maximum of {}",
                crate::MAX_BODY_LEN
            ),
            DecodeError::BadLength {
                message_type,
                body_len,
            } => write!(f, "body length {body_len} is wrong for {message_type}"),
            DecodeError::BadField { field } => write!(f, "invalid value in field {field}"),
        }
    }
}

/// Why a well-formed frame failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// The tag does not match: the frame was altered, or it was made with another key.
    BadTag,
}

impl AuthError {
    /// Stable snake_case name (logs, metrics labels).
    pub const fn as_str(&self) -> &'static str {
        match self {
            AuthError::BadTag => "bad_tag",
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::BadTag => f.write_str("authentication tag does not match"),
        }
    }
}

/// Why a frame could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is shorter than the frame.
    BufferTooSmall {
        /// The frame's full length in bytes.
        needed: usize,
    },
    /// A field holds a value the protocol cannot carry (e.g. battery 150 %).
    InvalidField {
        /// The field's name, as in `PROTOCOL.md`.
        field: &'static str,
    },
}

impl EncodeError {
    /// Stable snake_case name (logs, metrics labels).
    pub const fn as_str(&self) -> &'static str {
        match self {
            EncodeError::BufferTooSmall { .. } => "buffer_too_small",
            EncodeError::InvalidField { .. } => "invalid_field",
        }
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: the frame needs {needed} bytes")
            }
            EncodeError::InvalidField { field } => {
                write!(f, "field {field} holds a value the protocol cannot carry")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}
#[cfg(feature = "std")]
impl std::error::Error for AuthError {}
#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_snake_case() {
        let names = [
            DecodeError::Incomplete { needed: 1 }.as_str(),
            DecodeError::BadMagic.as_str(),
            DecodeError::UnsupportedVersion { version: 9 }.as_str(),
            DecodeError::UnknownMessageType { code: 0x7f }.as_str(),
            DecodeError::TooLong { body_len: 999 }.as_str(),
            DecodeError::BadLength {
                message_type: MessageType::Alarm,
                body_len: 3,
            }
            .as_str(),
            DecodeError::BadField { field: "x" }.as_str(),
            AuthError::BadTag.as_str(),
            EncodeError::BufferTooSmall { needed: 1 }.as_str(),
            EncodeError::InvalidField { field: "x" }.as_str(),
        ];
        for (i, a) in names.iter().enumerate() {
            assert!(
                a.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{a}"
            );
            for b in &names[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
