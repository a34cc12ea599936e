//! The HS256 keys that sign our access tokens, seal the login forms and MAC refresh tokens.
//! Every key has a `kid` (a hash of the key, so no name has to be configured); tokens are
//! signed with the current key and verified with it or any previous one, so keys rotate
//! without logging everyone out. Without `JWT_SECRET_KEY` a single node generates a key into
//! its data folder on first start; a cluster must be given one.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("JWT_SECRET_KEY must be at least 32 characters")]
    Short,
    #[error("cannot read or create the signing key file {path}: {error}")]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// One secret and its id.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    pub secret: Vec<u8>,
    /// Keyed once; cloned per MAC.
    hmac: Hmac<Sha256>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.kid)
    }
}

impl Key {
    pub fn new(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::Short);
        }
        let digest = Sha256::digest(secret);
        let kid = hex(&digest[..8]);
        let hmac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(secret).map_err(|_| KeyError::Short)?;
        Ok(Self {
            kid,
            secret: secret.to_vec(),
            hmac,
        })
    }

    /// HMAC-SHA256 of `purpose` and `parts` (each length-prefixed, so the joins are
    /// unambiguous): a MAC made for one use can never be replayed as another.
    pub fn mac(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = self.hmac.clone();
        m.update(purpose.as_bytes());
        for p in parts {
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

#[derive(Debug, Clone)]
pub struct SigningKeys {
    pub current: Key,
    pub previous: Vec<Key>,
}

impl SigningKeys {
    pub fn new(current: &str, previous: &[String]) -> Result<Self, KeyError> {
        Ok(Self {
            current: Key::new(current.as_bytes())?,
            previous: previous
                .iter()
                .map(|p| Key::new(p.as_bytes()))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Reads `<dir>/jwt_secret`, creating it (mode 0600, 256 random bits) on first start.
    pub fn generated(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join("jwt_secret");
        let err = |error| KeyError::File {
            path: path.clone(),
            error,
        };
        match std::fs::read_to_string(&path) {
            Ok(s) => return Self::new(s.trim(), &[]),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
            Err(_) => {}
        }
        std::fs::create_dir_all(dir).map_err(err)?;
        let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        // Written whole to a private temp file, then linked into place: a second process
        // starting on the same folder never reads a half-written key, and the first key wins.
        let tmp = dir.join(format!("jwt_secret.{}.tmp", std::process::id()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(err)?;
        f.write_all(secret.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let s = std::fs::read_to_string(&path).map_err(err)?;
                return Self::new(s.trim(), &[]);
            }
            Err(e) => return Err(err(e)),
        }
        tracing::info!(path = %path.display(), "generated a signing key for access tokens");
        Self::new(&secret, &[])
    }

    pub fn by_kid(&self, kid: &str) -> Option<&Key> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.kid == kid)
    }

    pub fn all(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.current).chain(&self.previous)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random URL-safe token of 256 bits (codes, refresh secrets, client ids, CSRF values).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// SHA-256 as URL-safe base64: what is stored in place of a secret.
pub fn digest(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(s.as_bytes()))
}

/// Compares secrets without leaking where they differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_stable_ids_and_refuse_short_secrets() {
        let a = SigningKeys::new(&"a".repeat(32), &["b".repeat(40)]).unwrap();
        let again = SigningKeys::new(&"a".repeat(32), &[]).unwrap();
        assert_eq!(a.current.kid, again.current.kid);
        assert_ne!(a.current.kid, a.previous[0].kid);
        assert!(a.by_kid(&a.previous[0].kid).is_some());
        assert!(SigningKeys::new("short", &[]).is_err());
        assert_ne!(
            a.current.mac("x", &[b"ab", b"c"]),
            a.current.mac("x", &[b"a", b"bc"])
        );
        assert_ne!(a.current.mac("x", &[b"a"]), a.current.mac("y", &[b"a"]));
    }

    #[test]
    fn a_generated_key_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = SigningKeys::generated(dir.path()).unwrap();
        let second = SigningKeys::generated(dir.path()).unwrap();
        assert_eq!(first.current.kid, second.current.kid);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("jwt_secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
