//! Timestamps as pynamodb stores them (`UTCDateTimeAttribute`: `YYYY-MM-DDTHH:MM:SS.ffffff+0000`,
//! type S), so the Python daemon reads what we write and we read what it wrote, and the keys
//! the original generates (`uuid1().int % 10**20`, 20 zero-padded digits).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::{StoreError, StoreErrorKind};

/// A UTC instant with microsecond precision. Its `Display` is pynamodb's format, which also
/// sorts as text in time order (what `updated_at-index` relies on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Microseconds since the Unix epoch.
    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// From a `Clock`'s milliseconds.
    pub fn from_millis(ms: u64) -> Self {
        Self(i64::try_from(ms).unwrap_or(i64::MAX / 1000) * 1000)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// Reads pynamodb's format; also the ISO-8601 forms a client may send
    /// (`...Z`, `...+00:00`, no fraction, fewer than 6 fraction digits). Other offsets are
    /// converted to UTC.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        parse(s).ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Invalid,
                format!("{s:?} is not a datetime like 2026-01-31T12:00:00.000000+0000"),
            )
        })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+0000",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

impl FromStr for Timestamp {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        Self::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let (date, rest) = s.split_once(['T', ' '])?;
    let mut ymd = date.split('-');
    let (y, m, d) = (
        digits(ymd.next()?)?,
        digits(ymd.next()?)?,
        digits(ymd.next()?)?,
    );
    if ymd.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Split the clock from the offset: `Z`, `+HHMM`, `+HH:MM`, `-...`, or nothing (UTC).
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0)
    } else if let Some(at) = rest.rfind(['+', '-']) {
        let (c, off) = rest.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let hm = off[1..].replace(':', "");
        if hm.len() != 4 {
            return None;
        }
        let (h, mi) = (digits(&hm[..2])?, digits(&hm[2..])?);
        (c, sign * (h * 3600 + mi * 60))
    } else {
        (rest, 0)
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.split(':');
    let (h, mi, sec) = (
        digits(parts.next()?)?,
        digits(parts.next()?)?,
        digits(parts.next()?)?,
    );
    if parts.next().is_some() || h > 23 || mi > 59 || sec > 60 || frac.len() > 9 {
        return None;
    }
    let micros = if frac.is_empty() {
        0
    } else {
        let padded = format!("{frac:0<6}");
        digits(&padded[..6])?
    };
    let days = days_from_civil(y, m, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(Timestamp(secs * 1_000_000 + micros))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (the inverse of `days_from_civil`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// A new key the way the original generates `setting_id` and `mcp_function_call_uuid`
/// (`f"{uuid.uuid1().int % 10**20:020d}"`): a version-1 UUID from `now` (100 ns ticks since
/// 1582-10-15), a random clock sequence and a random multicast node id, taken modulo 10^20.
pub fn new_key(now: Timestamp) -> String {
    let ticks = (now.micros() as i128 * 10 + 0x01B2_1DD2_1381_4000) as u128 & ((1 << 60) - 1);
    let time_low = ticks & 0xFFFF_FFFF;
    let time_mid = (ticks >> 32) & 0xFFFF;
    let time_hi = ((ticks >> 48) & 0x0FFF) | 0x1000;
    let clock_seq = (rand::random::<u16>() & 0x3FFF) | 0x8000;
    let node = (rand::random::<u64>() & 0xFFFF_FFFF_FFFF) | 0x0100_0000_0000;
    let uuid = (time_low << 96)
        | (time_mid << 80)
        | (time_hi << 64)
        | ((clock_seq as u128) << 48)
        | node as u128;
    format!("{:020}", uuid % 100_000_000_000_000_000_000)
}

/// The store's clock: the `Clock`'s time, made strictly increasing within this process, so
/// two writes in one millisecond still get ordered audit ids and `updated_at`s (writes from
/// other processes in the same microsecond are ordered by a random suffix).
pub struct Ticker {
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    last: std::sync::atomic::AtomicI64,
}

impl Ticker {
    pub fn new(clock: std::sync::Arc<dyn crate::clock::Clock>) -> Self {
        Self {
            clock,
            last: std::sync::atomic::AtomicI64::new(0),
        }
    }

    pub fn now(&self) -> Timestamp {
        use std::sync::atomic::Ordering;
        let wall = Timestamp::from_millis(self.clock.now_ms()).micros();
        let mut prev = self.last.load(Ordering::SeqCst);
        loop {
            let next = wall.max(prev + 1);
            match self
                .last
                .compare_exchange(prev, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Timestamp(next),
                Err(seen) => prev = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pynamodb_format_round_trips() {
        let t = Timestamp::parse("2026-02-25T13:04:05.123456+0000").unwrap();
        assert_eq!(t.to_string(), "2026-02-25T13:04:05.123456+0000");
        assert_eq!(
            Timestamp::from_micros(0).to_string(),
            "1970-01-01T00:00:00.000000+0000"
        );
        assert_eq!(
            Timestamp::from_millis(1_700_000_000_123).to_string(),
            "2023-11-14T22:13:20.123000+0000"
        );
        for (other, want) in [
            ("2026-02-25T13:04:05Z", "2026-02-25T13:04:05.000000+0000"),
            (
                "2026-02-25T13:04:05.5+00:00",
                "2026-02-25T13:04:05.500000+0000",
            ),
            (
                "2026-02-25T15:04:05.000001+02:00",
                "2026-02-25T13:04:05.000001+0000",
            ),
            ("2024-02-29 00:00:00", "2024-02-29T00:00:00.000000+0000"),
        ] {
            assert_eq!(
                Timestamp::parse(other).unwrap().to_string(),
                want,
                "{other}"
            );
        }
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00",
            "2026-01-01T25:00:00",
            "2026-01-01",
        ] {
            let err = Timestamp::parse(bad).unwrap_err();
            assert_eq!(err.kind, StoreErrorKind::Invalid, "{bad}");
        }
        // Text order is time order (the updated_at index sorts strings).
        let a = Timestamp::parse("2026-02-25T09:59:59.999999+0000").unwrap();
        let b = Timestamp::parse("2026-02-25T10:00:00.000000+0000").unwrap();
        assert!(a < b && a.to_string() < b.to_string());
    }

    #[test]
    fn keys_are_twenty_digits_and_differ() {
        let now = Timestamp::from_millis(1_765_000_000_000);
        let keys: std::collections::HashSet<String> = (0..1000).map(|_| new_key(now)).collect();
        assert_eq!(keys.len(), 1000);
        assert!(
            keys.iter()
                .all(|k| k.len() == 20 && k.bytes().all(|b| b.is_ascii_digit()))
        );
    }
}
