//! Big-endian cursors over byte slices that never panic: running off the end is reported, not a crash.

/// Reads big-endian integers from the front of a slice.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    /// The next `N` bytes, or `None` if fewer remain.
    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.rest.split_first_chunk::<N>()?;
        self.rest = rest;
        Some(*head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    pub(crate) fn i32(&mut self) -> Option<i32> {
        self.array().map(i32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    /// True when every byte has been read.
    pub(crate) const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

/// Writes big-endian integers into a slice, front to back.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    /// Appends `bytes`, or returns `None` (writing nothing) if they do not fit.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(bytes.len())?;
        self.buf.get_mut(self.pos..end)?.copy_from_slice(bytes);
        self.pos = end;
        Some(())
    }

    pub(crate) fn u8(&mut self, v: u8) -> Option<()> {
        self.put(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> Option<()> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> Option<()> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn i32(&mut self, v: i32) -> Option<()> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> Option<()> {
        self.put(&v.to_be_bytes())
    }

    /// Bytes written so far.
    pub(crate) const fn position(&self) -> usize {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reads_big_endian_and_stops_at_the_end() {
        let mut r = Reader::new(&[0x01, 0x02, 0x03, 0xff, 0xff, 0xff, 0xfe, 0x09]);
        assert_eq!(r.u16(), Some(0x0102));
        assert_eq!(r.u8(), Some(0x03));
        assert_eq!(r.i32(), Some(-2));
        assert_eq!(r.u16(), None);
        assert!(!r.is_empty());
        assert_eq!(r.u8(), Some(0x09));
        assert!(r.is_empty());
        assert_eq!(r.u64(), None);
        assert_eq!(r.u32(), None);
    }

    #[test]
    fn writer_refuses_to_overflow() {
        let mut buf = [0u8; 7];
        let mut w = Writer::new(&mut buf);
        assert_eq!(w.u32(0xdead_beef), Some(()));
        assert_eq!(w.u32(1), None);
        assert_eq!(w.u16(0x0102), Some(()));
        assert_eq!(w.position(), 6);
        assert_eq!(w.u64(1), None);
        assert_eq!(w.i32(-1), None);
        assert_eq!(w.u8(7), Some(()));
        assert_eq!(buf, [0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x07]);
    }
}
