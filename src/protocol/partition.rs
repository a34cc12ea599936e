//! Partitions: the tenant a request belongs to, as the Python daemon keys its records
//! (`partition_key` in every table). The endpoint id comes from the URL path
//! (`/{endpoint_id}/mcp`, and the same prefix on every transport), the optional part id from
//! the `Part-ID` header (any case); the key is `endpoint_id#part_id`, or `endpoint_id` alone.
//! The bare paths (`/mcp`, `/sse`, `/http`) and stdio are the `default` partition, which holds
//! the config file; a `Part-ID` header there does not make another partition (as the issue
//! and the original's static config define it). `/default/mcp` is the default partition too.
//!
//! Both parts are checked here, once, so a key read back from a store or a session record
//! always splits the way it was joined: no `#` inside a part, nothing outside a small ASCII set.

use std::fmt;

/// The name of the partition of the bare paths and stdio.
pub const DEFAULT_PARTITION: &str = "default";
/// The longest endpoint id or part id accepted.
pub const MAX_PART_LEN: usize = 64;

/// A checked partition key: `default`, `<endpoint_id>` or `<endpoint_id>#<part_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey(String);

/// Why a partition key was refused (the message names the part and the rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    #[error(
        "invalid endpoint id {0:?}: 1 to 64 characters of letters, digits, '_' and '-' expected"
    )]
    EndpointId(String),
    #[error(
        "invalid Part-ID {0:?}: 1 to 64 characters of letters, digits, '_', '-', '.', ':' and '@' expected"
    )]
    PartId(String),
}

/// Endpoint ids: 1..=64 of `[A-Za-z0-9_-]` (the Python daemon's rule, ASCII only).
pub fn valid_endpoint_id(id: &str) -> bool {
    (1..=MAX_PART_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Part ids: 1..=64 of `[A-Za-z0-9_.:@-]` (tenant ids, emails' local parts, ARNs' pieces).
pub fn valid_part_id(id: &str) -> bool {
    (1..=MAX_PART_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:@".contains(&b))
}

impl PartitionKey {
    /// The partition of the bare paths and stdio.
    pub fn default_partition() -> Self {
        Self(DEFAULT_PARTITION.to_string())
    }

    /// The partition of a request: `endpoint_id` from its path (`None` for a bare path) and
    /// `part_id` from its `Part-ID` header. On a bare path the part id is not looked at.
    pub fn new(endpoint_id: Option<&str>, part_id: Option<&str>) -> Result<Self, PartitionError> {
        let Some(endpoint) = endpoint_id else {
            return Ok(Self::default_partition());
        };
        if !valid_endpoint_id(endpoint) {
            return Err(PartitionError::EndpointId(endpoint.to_string()));
        }
        match part_id {
            None => Ok(Self(endpoint.to_string())),
            Some(part) if valid_part_id(part) => Ok(Self(format!("{endpoint}#{part}"))),
            Some(part) => Err(PartitionError::PartId(part.to_string())),
        }
    }

    /// A key in its stored form (`a`, `a#b`), checked as `new` checks it.
    pub fn parse(key: &str) -> Result<Self, PartitionError> {
        match key.split_once('#') {
            Some((endpoint, part)) => Self::new(Some(endpoint), Some(part)),
            None => Self::new(Some(key), None),
        }
    }

    /// The stored form: `partition_key` in every table.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The endpoint id (`default` for the default partition).
    pub fn endpoint_id(&self) -> &str {
        self.0.split_once('#').map_or(self.0.as_str(), |(e, _)| e)
    }

    /// The part id, if the key has one.
    pub fn part_id(&self) -> Option<&str> {
        self.0.split_once('#').map(|(_, p)| p)
    }

    /// Whether this is the default partition (the config file's; never recorded).
    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_PARTITION
    }
}

impl Default for PartitionKey {
    fn default() -> Self {
        Self::default_partition()
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for PartitionKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for PartitionKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_join_and_split_as_the_python_daemon_keys_its_records() {
        let plain = PartitionKey::new(Some("acme"), None).unwrap();
        assert_eq!(plain.as_str(), "acme");
        assert_eq!((plain.endpoint_id(), plain.part_id()), ("acme", None));
        let part = PartitionKey::new(Some("acme"), Some("tenant-7")).unwrap();
        assert_eq!(part.as_str(), "acme#tenant-7");
        assert_eq!(
            (part.endpoint_id(), part.part_id()),
            ("acme", Some("tenant-7"))
        );
        assert_eq!(PartitionKey::parse("acme#tenant-7").unwrap(), part);
        assert!(
            PartitionKey::new(None, Some("ignored"))
                .unwrap()
                .is_default()
        );
        assert!(PartitionKey::parse("default").unwrap().is_default());
        assert_eq!(PartitionKey::default().as_str(), "default");
    }

    #[test]
    fn odd_characters_are_refused_with_the_part_they_are_in() {
        for bad in ["", "a b", "a/b", "a#b", "ä", &"x".repeat(65), "a.b"] {
            let err = PartitionKey::new(Some(bad), None).unwrap_err();
            assert_eq!(err, PartitionError::EndpointId(bad.to_string()), "{bad:?}");
        }
        for bad in ["", "a b", "a#b", "a/b", "\u{0}", &"y".repeat(65)] {
            let err = PartitionKey::new(Some("acme"), Some(bad)).unwrap_err();
            assert_eq!(err, PartitionError::PartId(bad.to_string()), "{bad:?}");
        }
        assert!(PartitionKey::parse("a#b#c").is_err(), "one separator");
        assert!(serde_json::from_str::<PartitionKey>("\"a#\"").is_err());
        assert_eq!(
            serde_json::to_string(&PartitionKey::parse("a#b.c").unwrap()).unwrap(),
            "\"a#b.c\""
        );
    }
}
