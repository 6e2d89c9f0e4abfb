//! A position fix as devices report it: WGS-84 micro-degrees and an accuracy radius.

/// A position fix (WGS-84).
///
/// Micro-degrees keep 11 cm resolution in 4 bytes and avoid floating point on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Location {
    /// Latitude in millionths of a degree, north positive, within ±90 000 000.
    pub lat_e6: i32,
    /// Longitude in millionths of a degree, east positive, within ±180 000 000.
    pub lon_e6: i32,
    /// Estimated horizontal accuracy (radius) in metres; `0xFFFF` means unknown or worse.
    pub accuracy_m: u16,
}

impl Location {
    /// Bytes on the wire: latitude i32, longitude i32, accuracy u16.
    pub const WIRE_LEN: usize = 10;
    /// Largest latitude magnitude in micro-degrees.
    pub const MAX_LAT_E6: i32 = 90_000_000;
    /// Largest longitude magnitude in micro-degrees.
    pub const MAX_LON_E6: i32 = 180_000_000;

    /// Latitude in degrees.
    pub fn lat(&self) -> f64 {
        f64::from(self.lat_e6) / 1e6
    }

    /// Longitude in degrees.
    pub fn lon(&self) -> f64 {
        f64::from(self.lon_e6) / 1e6
    }

    /// The name of the first out-of-range field, if any.
    pub(crate) const fn invalid_field(&self) -> Option<&'static str> {
        if self.lat_e6 < -Self::MAX_LAT_E6 || self.lat_e6 > Self::MAX_LAT_E6 {
            Some("latitude")
        } else if self.lon_e6 < -Self::MAX_LON_E6 || self.lon_e6 > Self::MAX_LON_E6 {
            Some("longitude")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_at_the_edges() {
        let ok = Location {
            lat_e6: 90_000_000,
            lon_e6: -180_000_000,
            accuracy_m: 5,
        };
        assert_eq!(ok.invalid_field(), None);
        let lat = Location {
            lat_e6: -90_000_001,
            ..ok
        };
        assert_eq!(lat.invalid_field(), Some("latitude"));
        let lon = Location {
            lon_e6: 180_000_001,
            ..ok
        };
        assert_eq!(lon.invalid_field(), Some("longitude"));
    }

    #[test]
    fn degrees() {
        let jizhou = Location {
            lat_e6: 27_110_000,
            lon_e6: 114_980_000,
            accuracy_m: 10,
        };
        assert!((jizhou.lat() - 27.11).abs() < 1e-9);
        assert!((jizhou.lon() - 114.98).abs() < 1e-9);
    }
}
