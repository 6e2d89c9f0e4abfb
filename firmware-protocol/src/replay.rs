//! Replay protection: which sequence numbers of one sender have been seen.
//!
//! A sender numbers its frames with an increasing `u32`. The receiver remembers the highest number seen
//! and a 64-bit bitmap of the 64 numbers at and below it (12 bytes per sender), which tells a retry of a
//! recent frame from a new one and refuses anything older.
//!
//! Sequence numbers must never go backwards, across reboots too: a device keeps its counter in flash,
//! e.g. it reserves blocks of numbers (write `next + 1024` to flash whenever `next` reaches the stored
//! value; on boot start from the stored value), so a reboot skips ahead instead of reusing numbers.
//! The server persists each device's window ([`ReplayWindow::to_parts`]) with the device.

/// How many sequence numbers at and below the highest the window remembers.
pub const WINDOW_SIZE: u32 = 64;

/// Where a sequence number falls relative to a [`ReplayWindow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqClass {
    /// Higher than any seen (or the first): accept.
    Fresh,
    /// Inside the window and already seen: a retry. The server answers `duplicate` without storing.
    Repeat,
    /// Older than the highest, inside the window, not seen yet (frames reordered): accept.
    InWindowUnseen,
    /// Below the window: reject with `RejectReason::Replay`.
    TooOld,
}

impl SeqClass {
    /// True for `Fresh` and `InWindowUnseen`: the frame is new and should be processed.
    pub const fn is_new(self) -> bool {
        matches!(self, SeqClass::Fresh | SeqClass::InWindowUnseen)
    }

    /// Stable snake_case name (logs, metrics labels).
    pub const fn as_str(self) -> &'static str {
        match self {
            SeqClass::Fresh => "fresh",
            SeqClass::Repeat => "repeat",
            SeqClass::InWindowUnseen => "in_window_unseen",
            SeqClass::TooOld => "too_old",
        }
    }
}

/// The sequence numbers seen from one sender: the highest, and a bitmap of the 64 at and below it.
///
/// Classify first, process, and only then [`mark_seen`](Self::mark_seen): the server marks a frame seen
/// after it is durably stored, so that a retry of a frame whose storing failed is processed again
/// instead of being answered `duplicate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReplayWindow {
    highest: u32,
    /// Bit `i` set: `highest - i` was seen. Zero only while nothing has been seen.
    seen: u64,
}

impl ReplayWindow {
    /// A window that has seen nothing: every number is `Fresh`.
    pub const fn new() -> Self {
        ReplayWindow {
            highest: 0,
            seen: 0,
        }
    }

    /// Restores a window saved with [`to_parts`](Self::to_parts).
    pub const fn from_parts(highest: u32, seen: u64) -> Self {
        // The highest is seen by definition, unless nothing is.
        let seen = if seen == 0 { 0 } else { seen | 1 };
        ReplayWindow { highest, seen }
    }

    /// A window from only the highest number stored. Older numbers inside the window count as unseen,
    /// so the receiver must also deduplicate by (device, seq) in its store.
    pub const fn resume(highest: u32) -> Self {
        ReplayWindow { highest, seen: 1 }
    }

    /// The state to persist: the highest number and the bitmap (`seen == 0` means nothing seen).
    pub const fn to_parts(&self) -> (u32, u64) {
        (self.highest, self.seen)
    }

    /// The highest number seen, or `None` if none has been.
    pub const fn highest(&self) -> Option<u32> {
        if self.seen == 0 {
            None
        } else {
            Some(self.highest)
        }
    }

    /// Where `seq` falls; changes nothing.
    pub const fn classify(&self, seq: u32) -> SeqClass {
        if self.seen == 0 || seq > self.highest {
            return SeqClass::Fresh;
        }
        let age = self.highest - seq;
        if age >= WINDOW_SIZE {
            SeqClass::TooOld
        } else if self.seen & (1 << age) != 0 {
            SeqClass::Repeat
        } else {
            SeqClass::InWindowUnseen
        }
    }

    /// Records `seq` as seen. Numbers below the window are ignored.
    pub const fn mark_seen(&mut self, seq: u32) {
        if self.seen == 0 {
            self.highest = seq;
            self.seen = 1;
        } else if seq > self.highest {
            let shift = seq - self.highest;
            self.seen = if shift >= WINDOW_SIZE {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.highest = seq;
        } else {
            let age = self.highest - seq;
            if age < WINDOW_SIZE {
                self.seen |= 1 << age;
            }
        }
    }

    /// Classifies `seq` and marks it seen if new: for receivers that act on a frame at once (a device
    /// receiving commands).
    pub const fn check_and_mark(&mut self, seq: u32) -> SeqClass {
        let class = self.classify(seq);
        if class.is_new() {
            self.mark_seen(seq);
        }
        class
    }
}

#[cfg(test)]
mod tests {
    use super::SeqClass::*;
    use super::*;

    #[test]
    fn empty_window_accepts_anything_including_zero() {
        let w = ReplayWindow::new();
        assert_eq!(w.highest(), None);
        assert_eq!(w.classify(0), Fresh);
        assert_eq!(w.classify(u32::MAX), Fresh);
        let mut w = w;
        assert_eq!(w.check_and_mark(0), Fresh);
        assert_eq!(w.highest(), Some(0));
        assert_eq!(w.classify(0), Repeat);
    }

    #[test]
    fn in_order_sequence() {
        let mut w = ReplayWindow::new();
        for seq in 1..=200 {
            assert_eq!(w.check_and_mark(seq), Fresh);
            assert_eq!(w.check_and_mark(seq), Repeat);
        }
        assert_eq!(w.highest(), Some(200));
        assert_eq!(w.classify(137), Repeat, "oldest inside the window");
        assert_eq!(w.classify(136), TooOld, "first outside the window");
        assert_eq!(w.classify(1), TooOld);
    }

    #[test]
    fn reordered_frames_inside_the_window_are_accepted_once() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check_and_mark(100), Fresh);
        assert_eq!(w.check_and_mark(103), Fresh);
        assert_eq!(w.classify(101), InWindowUnseen);
        assert_eq!(w.check_and_mark(101), InWindowUnseen);
        assert_eq!(w.check_and_mark(101), Repeat);
        assert_eq!(w.classify(102), InWindowUnseen);
        assert_eq!(w.classify(100), Repeat);
        assert_eq!(w.classify(99), InWindowUnseen);
        assert_eq!(w.classify(103 - 63), InWindowUnseen);
        assert_eq!(w.classify(103 - 64), TooOld);
    }

    #[test]
    fn a_big_jump_forgets_the_old_bitmap() {
        let mut w = ReplayWindow::new();
        w.mark_seen(10);
        w.mark_seen(10 + 64);
        assert_eq!(w.classify(10), TooOld);
        assert_eq!(w.classify(11), InWindowUnseen);
        w.mark_seen(1_000_000);
        assert_eq!(w.to_parts(), (1_000_000, 1));
        assert_eq!(w.classify(1_000_000 - 1), InWindowUnseen);
    }

    #[test]
    fn shift_by_exactly_63_keeps_the_old_highest() {
        let mut w = ReplayWindow::new();
        w.mark_seen(1);
        w.mark_seen(64);
        assert_eq!(w.classify(1), Repeat);
        assert_eq!(w.classify(0), TooOld);
    }

    #[test]
    fn classify_does_not_change_the_window() {
        let mut w = ReplayWindow::new();
        w.mark_seen(5);
        let before = w;
        let _ = w.classify(6);
        assert_eq!(w, before);
        assert_eq!(w.classify(6), Fresh);
    }

    #[test]
    fn too_old_is_not_marked() {
        let mut w = ReplayWindow::new();
        w.mark_seen(500);
        let before = w;
        assert_eq!(w.check_and_mark(10), TooOld);
        w.mark_seen(10);
        assert_eq!(w, before);
    }

    #[test]
    fn persisting_and_resuming() {
        let mut w = ReplayWindow::new();
        for seq in [7, 9, 12] {
            w.mark_seen(seq);
        }
        let (highest, seen) = w.to_parts();
        let restored = ReplayWindow::from_parts(highest, seen);
        assert_eq!(restored, w);
        assert_eq!(restored.classify(9), Repeat);
        assert_eq!(restored.classify(10), InWindowUnseen);

        let resumed = ReplayWindow::resume(12);
        assert_eq!(resumed.classify(12), Repeat);
        assert_eq!(resumed.classify(9), InWindowUnseen, "unknown: store dedups");
        assert_eq!(resumed.classify(13), Fresh);

        assert_eq!(ReplayWindow::from_parts(0, 0), ReplayWindow::new());
        assert_eq!(ReplayWindow::from_parts(4, 2).classify(4), Repeat);
    }

    #[test]
    fn top_of_the_range() {
        let mut w = ReplayWindow::new();
        w.mark_seen(u32::MAX);
        assert_eq!(w.classify(u32::MAX), Repeat);
        assert_eq!(w.classify(u32::MAX - 63), InWindowUnseen);
        assert_eq!(w.classify(u32::MAX - 64), TooOld);
        assert_eq!(w.classify(0), TooOld);
    }

    #[test]
    fn names() {
        assert_eq!(Fresh.as_str(), "fresh");
        assert_eq!(TooOld.as_str(), "too_old");
        assert!(InWindowUnseen.is_new());
        assert!(!Repeat.is_new());
    }
}
