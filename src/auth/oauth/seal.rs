//! Sealed values: JSON plus an expiry, MACed with the signing key, so the login and consent
//! pages carry the pending authorization request through the browser without any node having
//! to remember it — and nobody can change it on the way.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::keys::{SigningKeys, same};

#[derive(Serialize, serde::Deserialize)]
struct Envelope<T> {
    exp: u64,
    v: T,
}

pub fn seal<T: Serialize>(keys: &SigningKeys, purpose: &str, value: &T, exp_s: u64) -> String {
    let body = serde_json::to_vec(&Envelope {
        exp: exp_s,
        v: value,
    })
    .unwrap_or_default();
    let mac = keys.current.mac(purpose, &[&body]);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&body),
        URL_SAFE_NO_PAD.encode(mac)
    )
}

/// The value, when the MAC verifies under any current or previous key and it has not expired.
pub fn open<T: DeserializeOwned>(
    keys: &SigningKeys,
    purpose: &str,
    sealed: &str,
    now_s: u64,
) -> Option<T> {
    let (body, mac) = sealed.split_once('.')?;
    let body = URL_SAFE_NO_PAD.decode(body).ok()?;
    let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
    keys.all().find(|k| same(&k.mac(purpose, &[&body]), &mac))?;
    let env: Envelope<T> = serde_json::from_slice(&body).ok()?;
    (env.exp > now_s).then_some(env.v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_intact_unexpired_and_for_their_purpose() {
        let k = SigningKeys::new(&"s".repeat(32), &[]).unwrap();
        let s = seal(&k, "login", &"alice".to_string(), 100);
        assert_eq!(
            open::<String>(&k, "login", &s, 99).as_deref(),
            Some("alice")
        );
        assert_eq!(open::<String>(&k, "login", &s, 100), None, "expired");
        assert_eq!(open::<String>(&k, "consent", &s, 99), None, "other purpose");
        let (body, mac) = s.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"exp":100,"v":"mallory"}"#);
        assert_eq!(
            open::<String>(&k, "login", &format!("{forged}.{mac}"), 99),
            None
        );
        assert!(open::<String>(&k, "login", &format!("{body}.{mac}"), 99).is_some());
    }
}
