//! Sealing MRTR `requestState` (MCP 2026-07-28 basic/patterns/mrtr): the client holds it between
//! rounds and may tamper with it, so it travels as `payload.mac` with an HMAC-SHA256 over the
//! payload, and the payload binds the state to who asked, for which call, until when.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::clock::Clock;

/// What a state is bound to: the caller and the call it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding<'a> {
    pub subject: &'a str,
    pub method: &'a str,
    pub name: &'a str,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("requestState is malformed or was altered")]
    Tampered,
    #[error("requestState has expired")]
    Expired,
    #[error("requestState belongs to another caller or request")]
    Mismatch,
}

pub struct StateSealer {
    /// The keyed MAC, cloned per use.
    mac: Hmac<Sha256>,
    ttl_ms: u64,
    clock: Arc<dyn Clock>,
}

impl StateSealer {
    pub fn new(
        key: &[u8],
        ttl_ms: u64,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, hmac::digest::InvalidLength> {
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)?;
        Ok(Self { mac, ttl_ms, clock })
    }

    fn mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }

    pub fn seal(&self, state: &Value, binding: &Binding<'_>) -> String {
        let payload = json!({
            "s": state,
            "sub": binding.subject,
            "m": binding.method,
            "n": binding.name,
            "exp": self.clock.now_ms() + self.ttl_ms,
        });
        let body = URL_SAFE_NO_PAD.encode(payload.to_string());
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{tag}")
    }

    pub fn open(&self, token: &str, binding: &Binding<'_>) -> Result<Value, SealError> {
        let (body, tag) = token.split_once('.').ok_or(SealError::Tampered)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| SealError::Tampered)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&tag).map_err(|_| SealError::Tampered)?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Tampered)?;
        let payload: Value = serde_json::from_slice(&raw).map_err(|_| SealError::Tampered)?;
        let exp = payload
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(SealError::Tampered)?;
        if self.clock.now_ms() > exp {
            return Err(SealError::Expired);
        }
        let bound = payload.get("sub").and_then(Value::as_str) == Some(binding.subject)
            && payload.get("m").and_then(Value::as_str) == Some(binding.method)
            && payload.get("n").and_then(Value::as_str) == Some(binding.name);
        if !bound {
            return Err(SealError::Mismatch);
        }
        Ok(payload.get("s").cloned().unwrap_or(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn sealer(clock: Arc<ManualClock>) -> StateSealer {
        StateSealer::new(b"0123456789abcdef0123456789abcdef", 60_000, clock).unwrap()
    }

    #[test]
    fn seals_opens_and_rejects_tampering_expiry_and_rebinding() {
        let clock = Arc::new(ManualClock::new(1_000));
        let s = sealer(clock.clone());
        let b = Binding {
            subject: "alice",
            method: "tools/call",
            name: "t",
        };
        let token = s.seal(&json!({"step": 2}), &b);
        assert_eq!(s.open(&token, &b).unwrap(), json!({"step": 2}));

        let mut forged = token.clone().into_bytes();
        forged[3] ^= 1;
        assert_eq!(
            s.open(&String::from_utf8(forged).unwrap(), &b),
            Err(SealError::Tampered)
        );
        assert_eq!(s.open("garbage", &b), Err(SealError::Tampered));
        let other = Binding {
            subject: "mallory",
            ..b.clone()
        };
        assert_eq!(s.open(&token, &other), Err(SealError::Mismatch));
        let other_tool = Binding {
            name: "u",
            ..b.clone()
        };
        assert_eq!(s.open(&token, &other_tool), Err(SealError::Mismatch));
        let other_key = StateSealer::new(b"another key", 60_000, clock.clone()).unwrap();
        assert_eq!(other_key.open(&token, &b), Err(SealError::Tampered));
        clock.advance_ms(60_001);
        assert_eq!(s.open(&token, &b), Err(SealError::Expired));
    }
}
