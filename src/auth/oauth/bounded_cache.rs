//! A small expiring cache with hard bounds on entries and bytes, for what unauthenticated
//! requests can make us remember (client metadata documents and the URLs we refused). Past a
//! bound, the oldest insertions go first; expired entries go whenever room is needed.

use std::collections::{HashMap, VecDeque};

pub struct BoundedCache<V> {
    map: HashMap<String, Entry<V>>,
    /// Keys in insertion order, with the sequence number of that insertion (an entry inserted
    /// again leaves a stale position behind, recognised by its old number).
    order: VecDeque<(String, u64)>,
    seq: u64,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

struct Entry<V> {
    value: V,
    until_ms: u64,
    seq: u64,
    size: usize,
}

impl<V: Clone> BoundedCache<V> {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    /// The live value under `key`.
    pub fn get(&self, key: &str, now_ms: u64) -> Option<V> {
        self.map
            .get(key)
            .filter(|e| e.until_ms > now_ms)
            .map(|e| e.value.clone())
    }

    /// Keeps `value` (about `size` bytes besides its key) until `until_ms`. Something larger
    /// than the whole byte bound is not kept.
    pub fn insert(&mut self, key: &str, value: V, size: usize, until_ms: u64, now_ms: u64) {
        let size = size + key.len();
        self.remove(key);
        if size > self.max_bytes || self.max_entries == 0 {
            return;
        }
        if self.map.len() >= self.max_entries || self.bytes + size > self.max_bytes {
            self.drop_expired(now_ms);
        }
        while self.map.len() >= self.max_entries || self.bytes + size > self.max_bytes {
            let Some((k, seq)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&k).is_some_and(|e| e.seq == seq) {
                self.remove(&k);
            }
        }
        self.seq += 1;
        self.map.insert(
            key.to_string(),
            Entry {
                value,
                until_ms,
                seq: self.seq,
                size,
            },
        );
        self.order.push_back((key.to_string(), self.seq));
        self.bytes += size;
        // Stale positions are bounded too: never more than one per live entry.
        if self.order.len() > 2 * self.max_entries {
            let map = &self.map;
            self.order
                .retain(|(k, seq)| map.get(k).is_some_and(|e| e.seq == *seq));
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.map.remove(key) {
            self.bytes -= e.size;
        }
    }

    fn drop_expired(&mut self, now_ms: u64) {
        let before = self.map.len();
        self.map.retain(|_, e| e.until_ms > now_ms);
        if self.map.len() != before {
            self.bytes = self.map.values().map(|e| e.size).sum();
        }
    }

    #[cfg(test)]
    pub fn footprint(&self) -> (usize, usize, usize) {
        (self.map.len(), self.bytes, self.order.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_bytes_stay_within_their_bounds() {
        let mut c = BoundedCache::new(3, 100);
        for i in 0..10 {
            c.insert(&format!("k{i}"), i, 10, 1_000, 0);
            let (n, bytes, order) = c.footprint();
            assert!(n <= 3 && bytes <= 100 && order <= 6, "{n} {bytes} {order}");
        }
        assert_eq!(c.get("k9", 0), Some(9));
        assert_eq!(c.get("k0", 0), None, "the oldest went first");
        // Bytes: an 80-byte entry pushes out older ones until it fits.
        c.insert("big", 99, 77, 1_000, 0);
        let (n, bytes, _) = c.footprint();
        assert!(bytes <= 100 && n <= 2, "{n} {bytes}");
        assert_eq!(c.get("big", 0), Some(99));
        // Larger than the whole bound: not kept.
        c.insert("huge", 1, 500, 1_000, 0);
        assert_eq!(c.get("huge", 0), None);
        // Expired entries answer nothing and make room.
        assert_eq!(c.get("big", 1_000), None);
        c.insert("late", 7, 10, 5_000, 2_000);
        assert_eq!(c.footprint().0, 1);
    }

    #[test]
    fn inserting_one_key_again_and_again_stays_bounded() {
        let mut c = BoundedCache::new(4, 1_000);
        for i in 0..1_000 {
            c.insert("same", i, 1, u64::MAX, 0);
        }
        let (n, bytes, order) = c.footprint();
        assert_eq!((n, bytes), (1, 5));
        assert!(order <= 8, "{order}");
        assert_eq!(c.get("same", 0), Some(999));
    }
}
