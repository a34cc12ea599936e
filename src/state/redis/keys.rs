//! Key and channel names. Every key of a session carries the hash tag `{<session id>}`, so a
//! session's record, stream index and streams live in one Redis Cluster slot and a Lua script
//! can touch them together.

use crate::state::{SessionId, StreamKey};

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// The session record (a JSON string with a sliding TTL).
    pub fn session(&self, id: &SessionId) -> String {
        format!("{}:s:{{{}}}", self.prefix, id)
    }

    /// The sessions one owner (token subject) holds, for the per-user cap (zset: session id ->
    /// creation ms). Subjects are free text, so the key names a digest of it; the hash tag is
    /// the owner's, not a session's.
    pub fn user_sessions(&self, subject: &str) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(subject.as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:u:{{{hex}}}", self.prefix)
    }

    /// Bytes of event data buffered per replay stream of a session (hash: stream name ->
    /// bytes), for the byte cap of the replay buffers.
    pub fn stream_bytes(&self, id: &SessionId) -> String {
        format!("{}:b:{{{}}}", self.prefix, id)
    }

    /// The index of a session's replay streams (zset: name -> eviction order).
    pub fn stream_index(&self, id: &SessionId) -> String {
        format!("{}:e:{{{}}}", self.prefix, id)
    }

    /// What a stream name is appended to, to form the stream's key.
    pub fn stream_prefix(&self, id: &SessionId) -> String {
        format!("{}:x:{{{}}}:", self.prefix, id)
    }

    /// One replay stream (a Redis Stream).
    pub fn stream(&self, key: &StreamKey) -> String {
        format!("{}{}", self.stream_prefix(&key.session), key.stream)
    }

    /// The pub/sub channel that carries a session's new events to live readers on every node.
    pub fn events_channel(&self, id: &SessionId) -> String {
        format!("{}:ev:{}", self.prefix, id)
    }

    /// The pub/sub channel of a `Bus` topic.
    pub fn topic_channel(&self, topic: &str) -> String {
        format!("{}:bus:{}", self.prefix, topic)
    }

    /// An OAuth record: `code` (by hash).
    pub fn auth_record(&self, kind: &str, key: &str) -> String {
        format!("{}:oa:{kind}:{key}", self.prefix)
    }

    /// A registered OAuth client (a JSON string). Every client and the index share the hash
    /// tag `{<prefix>-clients}`, so one script counts and inserts them on a cluster too.
    pub fn client(&self, id: &str) -> String {
        format!("{p}:cl:{{{p}-clients}}:{id}", p = self.prefix)
    }

    /// The index of registered clients (zset: client id -> when it expires unless used).
    pub fn client_index(&self) -> String {
        format!("{p}:cl:{{{p}-clients}}", p = self.prefix)
    }

    /// A refresh-token family (hash: gen, rotated_at, grant). Its revocation markers share its
    /// hash tag, so one `EXISTS` checks a token and its family even on a cluster.
    pub fn refresh_family(&self, family: &str) -> String {
        format!("{}:rf:{{{family}}}", self.prefix)
    }

    /// Set while a whole family is revoked.
    pub fn revoked_family(&self, family: &str) -> String {
        format!("{}:rv:{{{family}}}", self.prefix)
    }

    /// Set while one access token (`jti`) is revoked.
    pub fn revoked_token(&self, family: &str, jti: &str) -> String {
        format!("{}:rv:{{{family}}}:{jti}", self.prefix)
    }

    /// The pattern every key of this deployment matches (for operators and tests).
    pub fn all(&self) -> String {
        format!("{}:*", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sessions_keys_share_one_hash_tag() {
        let keys = Keys::new("mcp");
        let id = SessionId::parse("abc123").unwrap();
        let tag = "{abc123}";
        assert_eq!(keys.session(&id), "mcp:s:{abc123}");
        assert!(keys.stream_index(&id).contains(tag));
        assert_eq!(keys.stream(&StreamKey::new(&id, "g")), "mcp:x:{abc123}:g");
        assert!(!keys.events_channel(&id).contains('{'));
    }
}
