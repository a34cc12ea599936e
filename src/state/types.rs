//! The records and ids the state traits speak in.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::{PartitionKey, ProtocolVersion};

/// An `Mcp-Session-Id`: 128 random bits from the OS CSPRNG, hex-encoded (visible ASCII only,
/// as spec 2025-11-25 basic/transports §Session Management requires).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(String);

impl SessionId {
    pub fn random() -> Self {
        let bytes: [u8; 16] = rand::rng().random();
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Accepts what a client sends back: 1..=128 visible ASCII characters. Anything else cannot
    /// be one of ours and is rejected before it reaches a store.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| (0x21..=0x7e).contains(&b));
        ok.then(|| Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 5424 severities as MCP `logging` names them, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Notice => "notice",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
            Self::Alert => "alert",
            Self::Emergency => "emergency",
        }
    }
}

/// A JSON value kept as compact text: cheap to clone (an `Arc`) and small to keep. Session
/// records hold what the client declared this way; a parsed `Value` would cost a map node of
/// over 600 bytes per JSON object, per session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(Arc<str>);

impl JsonText {
    pub fn from_value(v: &Value) -> Self {
        Self(v.to_string().into())
    }

    pub fn empty_object() -> Self {
        Self("{}".into())
    }

    /// Length of the JSON text in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// Whether the top-level object has `key` with a non-null value.
    pub fn has(&self, key: &str) -> bool {
        if self.0.len() <= 2 {
            return false; // `{}` or `null`
        }
        let map: Result<serde_json::Map<String, Value>, _> = serde_json::from_str(&self.0);
        map.is_ok_and(|m| m.get(key).is_some_and(|v| !v.is_null()))
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(self.0.to_string())
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        Ok(Self(raw.get().into()))
    }
}

/// Which transport opened a session; it decides where server-initiated messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    StreamableHttp,
    LegacySse,
    Stdio,
}

/// One MCP session as stored. Everything a node needs to serve the session's next request is
/// here, so any node can serve it once this lives in Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: SessionId,
    /// Owner: the principal's subject. Requests from anyone else get 404.
    pub subject: String,
    /// The partition the session was opened in (endpoint id + `Part-ID`). A request for the
    /// session under any other partition is treated as naming an unknown session (404), so
    /// one tenant's session id never reaches another tenant's catalog. Records written before
    /// partitions existed read as `default`.
    #[serde(default)]
    pub partition: PartitionKey,
    pub transport: TransportKind,
    /// Negotiated revision; `None` on a legacy SSE session until `initialize` arrives.
    pub protocol_version: Option<ProtocolVersion>,
    pub client_info: JsonText,
    pub client_capabilities: JsonText,
    /// Set by `logging/setLevel`; `None` sends every level.
    pub log_level: Option<LogLevel>,
    /// Resource URIs this session subscribed to.
    pub subscriptions: BTreeSet<String>,
    pub created_ms: u64,
    pub last_active_ms: u64,
}

impl SessionRecord {
    pub fn new(subject: &str, transport: TransportKind, now_ms: u64) -> Self {
        Self {
            id: SessionId::random(),
            subject: subject.to_string(),
            partition: PartitionKey::default(),
            transport,
            protocol_version: None,
            client_info: JsonText::from_value(&Value::Null),
            client_capabilities: JsonText::empty_object(),
            log_level: None,
            subscriptions: BTreeSet::new(),
            created_ms: now_ms,
            last_active_ms: now_ms,
        }
    }

    /// Whether the client declared a capability in `initialize` (e.g. `sampling`).
    pub fn client_supports(&self, capability: &str) -> bool {
        self.client_capabilities.has(capability)
    }
}

/// One SSE stream of one session: `g` is the standalone GET stream, `s` the legacy SSE stream,
/// `p…` a POST response stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub session: SessionId,
    pub stream: String,
}

impl StreamKey {
    pub const GET_STREAM: &'static str = "g";
    pub const LEGACY_SSE_STREAM: &'static str = "s";

    pub fn new(session: &SessionId, stream: &str) -> Self {
        Self {
            session: session.clone(),
            stream: stream.to_string(),
        }
    }

    /// A fresh POST stream name, unique within the session.
    pub fn new_post_stream(session: &SessionId) -> Self {
        let n: u64 = rand::rng().random();
        Self::new(session, &format!("p{n:016x}"))
    }

    /// The SSE `id:` of event `seq` on this stream: `<stream>-<seq>`.
    pub fn event_id(&self, seq: u64) -> String {
        format!("{}-{}", self.stream, seq)
    }

    /// Splits a `Last-Event-ID` back into (stream, seq). Only ids of the shape we mint parse.
    pub fn parse_event_id(id: &str) -> Option<(String, u64)> {
        let (stream, seq) = id.trim().rsplit_once('-')?;
        let valid = !stream.is_empty()
            && stream.len() <= 32
            && stream.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            return None;
        }
        Some((stream.to_string(), seq.parse().ok()?))
    }
}

/// Where a subscriber starts reading a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// Every buffered event (a fresh POST stream's reader).
    Start,
    /// Events after this sequence number (`Last-Event-ID` resumption).
    After(u64),
    /// Only events appended from now on (a new standalone GET stream).
    Live,
}

/// One buffered SSE event. `data` is the JSON-RPC message text (empty for a priming event).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: u64,
    pub data: Arc<str>,
    pub last: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_random_visible_ascii() {
        let a = SessionId::random();
        let b = SessionId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().bytes().all(|c| (0x21..=0x7e).contains(&c)));
        assert!(SessionId::parse("has space").is_none());
        assert!(SessionId::parse("").is_none());
        assert!(SessionId::parse(&"a".repeat(129)).is_none());
    }

    #[test]
    fn event_ids_round_trip_and_reject_foreign_shapes() {
        let key = StreamKey::new(&SessionId::random(), "p00ff");
        assert_eq!(
            StreamKey::parse_event_id(&key.event_id(7)),
            Some(("p00ff".into(), 7))
        );
        assert_eq!(StreamKey::parse_event_id("g-0"), Some(("g".into(), 0)));
        assert_eq!(StreamKey::parse_event_id("nope"), None);
        assert_eq!(StreamKey::parse_event_id("../x-1"), None);
        assert_eq!(StreamKey::parse_event_id("g-x"), None);
    }

    #[test]
    fn json_text_round_trips_inside_records() {
        let mut rec = SessionRecord::new("a", TransportKind::StreamableHttp, 1);
        rec.client_capabilities =
            JsonText::from_value(&serde_json::json!({"sampling": {}, "roots": null}));
        assert!(rec.client_supports("sampling"));
        assert!(!rec.client_supports("roots"), "null is not declared");
        assert!(!rec.client_supports("elicitation"));
        let text = serde_json::to_string(&rec).unwrap();
        assert!(
            text.contains(r#""client_capabilities":{"roots":null,"sampling":{}}"#),
            "{text}"
        );
        let back: SessionRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, rec);
        assert!(!JsonText::empty_object().has("x"));
    }

    #[test]
    fn log_levels_order_by_severity() {
        assert!(LogLevel::Debug < LogLevel::Info);
        assert!(LogLevel::Alert < LogLevel::Emergency);
        assert_eq!(LogLevel::parse("warning"), Some(LogLevel::Warning));
        assert_eq!(LogLevel::parse("verbose"), None);
    }
}
