//! A per-source rate (token buckets keyed by the caller's address), bounded in memory: at most
//! `MAX_SOURCES` buckets, and a bucket that has refilled is forgotten, since a fresh one would
//! say the same. IPv6 callers are keyed by their /64, the block one subscriber usually holds,
//! so rotating addresses inside it buys nothing. Per node: each node counts what it serves.

use std::collections::HashMap;
use std::net::IpAddr;

use parking_lot::Mutex;

/// Most sources tracked at once. Past it, sweeping drops refilled buckets; if every bucket is
/// still in use a new source is refused until one refills (failing closed: the memory stays
/// bounded and the sources already counted are not forgotten).
pub const MAX_SOURCES: usize = 10_000;

/// Where a request came from, as the rate counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    V4(u32),
    /// The upper 64 bits of an IPv6 address.
    V6(u64),
    /// No peer address known (requests that did not come through a socket, e.g. in-process).
    Unknown,
}

impl Source {
    pub fn of(ip: Option<IpAddr>) -> Self {
        match ip {
            None => Source::Unknown,
            Some(IpAddr::V4(v4)) => Source::V4(v4.into()),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.into()),
                None => Source::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

struct Bucket {
    /// Requests still allowed, in thousandths (integer arithmetic, no float drift).
    milli: u64,
    at_ms: u64,
}

/// `per_minute` requests per source per minute, in bursts of up to `per_minute`.
pub struct SourceRate {
    per_minute: u64,
    buckets: Mutex<HashMap<Source, Bucket>>,
}

impl SourceRate {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: u64::from(per_minute.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn full(&self) -> u64 {
        self.per_minute * 1000
    }

    /// The bucket's content at `now_ms`.
    fn level(&self, b: &Bucket, now_ms: u64) -> u64 {
        // per_minute requests per 60_000 ms is per_minute milli-requests per 60 ms.
        let refill = now_ms.saturating_sub(b.at_ms) * self.per_minute / 60;
        (b.milli + refill).min(self.full())
    }

    /// Takes one request from `source`'s bucket; `Err(seconds)`: refused, try again then.
    pub fn take(&self, source: Source, now_ms: u64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock();
        if !buckets.contains_key(&source) && buckets.len() >= MAX_SOURCES {
            buckets.retain(|_, b| self.level(b, now_ms) < self.full());
            if buckets.len() >= MAX_SOURCES {
                return Err(60);
            }
        }
        let full = self.full();
        let b = buckets.entry(source).or_insert(Bucket {
            milli: full,
            at_ms: now_ms,
        });
        let level = self.level(b, now_ms);
        b.at_ms = now_ms;
        if level >= 1000 {
            b.milli = level - 1000;
            return Ok(());
        }
        b.milli = level;
        // Milliseconds until the bucket holds one whole request again, rounded up to seconds.
        let wait_ms = (1000 - level) * 60 / self.per_minute;
        Err(wait_ms.div_ceil(1000).max(1))
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Source {
        Source::of(Some(s.parse().unwrap()))
    }

    #[test]
    fn a_source_gets_its_burst_then_waits_for_the_refill() {
        let r = SourceRate::new(3);
        let a = ip("203.0.113.7");
        for _ in 0..3 {
            assert_eq!(r.take(a, 1_000), Ok(()));
        }
        assert_eq!(r.take(a, 1_000), Err(20), "one request refills in 20 s");
        assert_eq!(r.take(ip("203.0.113.8"), 1_000), Ok(()), "others are apart");
        assert_eq!(r.take(a, 15_000), Err(6));
        assert_eq!(r.take(a, 21_000), Ok(()));
        assert!(r.take(a, 21_000).is_err());
    }

    #[test]
    fn ipv6_sources_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let r = SourceRate::new(1);
        assert_eq!(r.take(ip("2001:db8:1:2::1"), 0), Ok(()));
        assert!(r.take(ip("2001:db8:1:2:ffff::9"), 0).is_err());
        assert_eq!(r.take(ip("2001:db8:1:3::1"), 0), Ok(()));
        assert_eq!(r.take(ip("198.51.100.1"), 0), Ok(()));
        assert!(r.take(ip("::ffff:198.51.100.1"), 0).is_err());
    }

    #[test]
    fn the_table_of_sources_stays_bounded() {
        let r = SourceRate::new(1);
        for i in 0..MAX_SOURCES as u32 {
            assert_eq!(r.take(Source::V4(i), 0), Ok(()));
        }
        assert_eq!(r.tracked(), MAX_SOURCES);
        // Every bucket is still empty: a new source is refused rather than tracked.
        assert_eq!(r.take(Source::V4(u32::MAX), 1), Err(60));
        assert_eq!(r.tracked(), MAX_SOURCES);
        // A minute later the buckets have refilled: they are forgotten and room is made.
        assert_eq!(r.take(Source::V4(u32::MAX), 60_000), Ok(()));
        assert_eq!(r.tracked(), 1);
    }
}
