//! The `[MM*ID*(IIII*)LLLL*` header shared by framing, parsing and replies.

/// Whether the bytes at a `[` look like the start of a watch frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StartCheck {
    /// `[` + two alphanumerics + `*` + an alphanumeric (the first byte of the id).
    Yes,
    /// Consistent so far, but too few bytes to tell.
    NeedMore,
    /// Not a frame start.
    No,
}

/// Checks `s` (starting at a `[`) for a plausible frame start.
pub(crate) fn check_start(s: &[u8]) -> StartCheck {
    let pattern: [fn(u8) -> bool; 5] = [
        |b| b == b'[',
        |b| b.is_ascii_alphanumeric(),
        |b| b.is_ascii_alphanumeric(),
        |b| b == b'*',
        |b| b.is_ascii_alphanumeric(),
    ];
    for (i, ok) in pattern.iter().enumerate() {
        match s.get(i) {
            None => return StartCheck::NeedMore,
            Some(&b) if !ok(b) => return StartCheck::No,
            Some(_) => {}
        }
    }
    StartCheck::Yes
}

/// The parsed header of one frame, borrowing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    /// Manufacturer code (`3G`, `SG`, `CS`, `ZJ`…).
    pub manufacturer: &'a str,
    /// Device id (10 or 15 digits in practice).
    pub id: &'a str,
    /// The 4-hex index of the `[MM*ID*IIII*LLLL*…]` variant.
    pub index: Option<&'a str>,
    /// The 4-hex length field as sent.
    pub length: &'a str,
    /// Everything between the length field's `*` and the closing `]`.
    pub content: &'a [u8],
}

impl<'a> Header<'a> {
    /// Parses `[MM*ID*(IIII*)LLLL*CONTENT]`; `None` when the frame does not have that shape.
    pub fn parse(frame: &'a [u8]) -> Option<Self> {
        let inner = frame.strip_prefix(b"[")?.strip_suffix(b"]")?;
        let (manufacturer, rest) = field(inner)?;
        let (id, rest) = field(rest)?;
        let (first, after_first) = field(rest)?;
        if !is_hex4(first) {
            return None;
        }
        let (index, length, content) = match field(after_first) {
            Some((second, content)) if is_hex4(second) => (Some(first), second, content),
            _ => (None, first, after_first),
        };
        let ok = manufacturer.len() == 2
            && manufacturer.iter().all(u8::is_ascii_alphanumeric)
            && (1..=20).contains(&id.len())
            && id.iter().all(u8::is_ascii_alphanumeric);
        if !ok {
            return None;
        }
        Some(Self {
            manufacturer: ascii(manufacturer)?,
            id: ascii(id)?,
            index: index.and_then(ascii),
            length: ascii(length)?,
            content,
        })
    }

    /// Whether the length field equals the number of content bytes in the frame as given.
    pub fn length_matches(&self) -> bool {
        usize::from_str_radix(self.length, 16).is_ok_and(|n| n == self.content.len())
    }

    /// The message type: the content up to the first comma.
    pub fn kind(&self) -> &'a [u8] {
        self.content
            .split(|&b| b == b',')
            .next()
            .unwrap_or_default()
    }
}

/// Splits at the first `*`.
fn field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let star = s.iter().position(|&b| b == b'*')?;
    Some((s.get(..star)?, s.get(star + 1..)?))
}

fn is_hex4(s: &[u8]) -> bool {
    s.len() == 4 && s.iter().all(u8::is_ascii_hexdigit)
}

fn ascii(s: &[u8]) -> Option<&str> {
    std::str::from_utf8(s).ok()
}

/// Builds `[MM*ID*(IIII*)LLLL*CONTENT]` with a lowercase `%04x` content length.
pub(crate) fn frame(manufacturer: &str, id: &str, index: Option<&str>, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + id.len() + 16);
    out.push(b'[');
    out.extend_from_slice(manufacturer.as_bytes());
    out.push(b'*');
    out.extend_from_slice(id.as_bytes());
    out.push(b'*');
    if let Some(index) = index {
        out.extend_from_slice(index.as_bytes());
        out.push(b'*');
    }
    out.extend_from_slice(format!("{:04x}", content.len()).as_bytes());
    out.push(b'*');
    out.extend_from_slice(content);
    out.push(b']');
    out
}
