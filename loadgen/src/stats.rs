//! Latency percentiles, a small random source for tool arguments, and duration parsing.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// `{p50_us, p90_us, p99_us, max_us}` of latencies in microseconds (sorts them).
pub fn percentiles(latencies: &mut [u64]) -> Value {
    latencies.sort_unstable();
    let at = |q: f64| -> Value {
        if latencies.is_empty() {
            return Value::Null;
        }
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        json!(latencies[rank - 1])
    };
    json!({
        "p50_us": at(0.50),
        "p90_us": at(0.90),
        "p99_us": at(0.99),
        "max_us": latencies.last(),
    })
}

/// xorshift64*: enough randomness to make every tool call's expected answer different.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `-range..=range`.
    pub fn int(&mut self, range: i64) -> i64 {
        let span = (2 * range + 1) as u64;
        (self.next_u64() % span) as i64 - range
    }
}

/// `10s`, `500ms`, `2m` or plain seconds (`10`, `0.5`).
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .with_context(|| format!("bad duration {text}"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => bail!("bad duration unit in {text} (use ms, s or m)"),
    };
    Duration::try_from_secs_f64(secs).with_context(|| format!("bad duration {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let p = percentiles(&mut v);
        assert_eq!(p["p50_us"], 50);
        assert_eq!(p["p90_us"], 90);
        assert_eq!(p["p99_us"], 99);
        assert_eq!(p["max_us"], 100);
        assert_eq!(percentiles(&mut [])["p50_us"], Value::Null);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn ints_stay_in_range() {
        let mut r = Rng::new(7);
        assert!((0..1000).map(|_| r.int(5)).all(|x| (-5..=5).contains(&x)));
    }
}
