//! Local users: a JSON file of bcrypt hashes and roles (`LOCAL_USER_FILE`), edited by
//! `mcp-daemon user add|list|remove` and read by the daemon, which picks up edits on the next
//! sign-in and, for the bearer guard (`current`), within `RECHECK_MS`. The bootstrap admin
//! comes from `ADMIN_USERNAME` / `ADMIN_PASSWORD`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::scope::ADMIN_ROLE;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("cannot read or write the user file {path}: {error}")]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the user file {path} is not valid: {error}")]
    Parse {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("user name must be 1-64 letters, digits or '.', '_', '-', '@', got {0:?}")]
    BadName(String),
    #[error("password must be 8 to 72 bytes")]
    BadPassword,
    #[error("user {0} already exists")]
    Exists(String),
    #[error("no user {0}")]
    NotFound(String),
    #[error("hashing failed: {0}")]
    Hash(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub password_hash: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UserFile {
    users: Vec<User>,
}

pub struct UserDb {
    path: PathBuf,
    cache: RwLock<(Option<SystemTime>, Vec<User>)>,
    cost: u32,
    /// Checked when the user does not exist, so a wrong name costs as long as a wrong
    /// password and sign-in does not reveal which names exist.
    decoy: String,
    /// When `current` last looked at the file (Clock ms): every bearer request asks, and one
    /// `stat` a second is enough for a removal to take effect within about a second.
    checked_at: AtomicU64,
}

/// How often `current` looks at the user file for changes.
pub const RECHECK_MS: u64 = 1_000;

impl UserDb {
    pub fn open(path: &Path, cost: u32) -> Result<Self, UserError> {
        let db = Self {
            path: path.to_path_buf(),
            cache: RwLock::new((None, Vec::new())),
            cost,
            decoy: bcrypt::hash(super::keys::random_token(), cost)
                .map_err(|e| UserError::Hash(e.to_string()))?,
            checked_at: AtomicU64::new(0),
        };
        db.refresh()?;
        Ok(db)
    }

    fn read(&self) -> Result<Vec<User>, UserError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice::<UserFile>(&bytes)
                .map(|f| f.users)
                .map_err(|error| UserError::Parse {
                    path: self.path.clone(),
                    error,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(error) => Err(self.file_err(error)),
        }
    }

    fn file_err(&self, error: std::io::Error) -> UserError {
        UserError::File {
            path: self.path.clone(),
            error,
        }
    }

    /// Re-reads the file when it changed since the last read.
    fn refresh(&self) -> Result<(), UserError> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if self.cache.read().0 == mtime && mtime.is_some() {
            return Ok(());
        }
        let users = self.read()?;
        *self.cache.write() = (mtime, users);
        Ok(())
    }

    /// Writes the whole file atomically (temp file + rename), readable by the owner only.
    fn write(&self, users: Vec<User>) -> Result<(), UserError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.file_err(e))?;
        }
        let body = serde_json::to_vec_pretty(&UserFile {
            users: users.clone(),
        })
        .map_err(|e| UserError::Hash(e.to_string()))?;
        let tmp = self.path.with_extension("tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(|e| self.file_err(e))?;
        std::io::Write::write_all(&mut f, &body).map_err(|e| self.file_err(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.file_err(e))?;
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        *self.cache.write() = (mtime, users);
        Ok(())
    }

    pub fn list(&self) -> Result<Vec<User>, UserError> {
        self.refresh()?;
        Ok(self.cache.read().1.clone())
    }

    pub fn add(&self, username: &str, password: &str, roles: &[String]) -> Result<(), UserError> {
        valid_name(username)?;
        if !(8..=72).contains(&password.len()) {
            return Err(UserError::BadPassword);
        }
        let mut users = self.read()?;
        if users.iter().any(|u| u.username == username) {
            return Err(UserError::Exists(username.into()));
        }
        let password_hash =
            bcrypt::hash(password, self.cost).map_err(|e| UserError::Hash(e.to_string()))?;
        users.push(User {
            username: username.into(),
            password_hash,
            roles: roles.to_vec(),
        });
        self.write(users)
    }

    pub fn remove(&self, username: &str) -> Result<(), UserError> {
        let mut users = self.read()?;
        let before = users.len();
        users.retain(|u| u.username != username);
        if users.len() == before {
            return Err(UserError::NotFound(username.into()));
        }
        self.write(users)
    }

    /// The user as last read from the file.
    fn cached(&self, username: &str) -> Option<User> {
        self.cache
            .read()
            .1
            .iter()
            .find(|u| u.username == username)
            .cloned()
    }

    pub fn find(&self, username: &str) -> Result<Option<User>, UserError> {
        self.refresh()?;
        Ok(self.cached(username))
    }

    /// The user as the file says now, give or take `RECHECK_MS` (the bearer guard's view: a
    /// removed user's tokens stop working within about a second, on every node that reads
    /// the file). A file that cannot be read is an error, not "no change".
    pub fn current(&self, username: &str, now_ms: u64) -> Result<Option<User>, UserError> {
        let last = self.checked_at.load(Ordering::Relaxed);
        if now_ms.abs_diff(last) >= RECHECK_MS {
            self.refresh()?;
            self.checked_at.store(now_ms, Ordering::Relaxed);
        }
        Ok(self.cached(username))
    }

    /// The user when the password matches. Slow on purpose (bcrypt): call it off the runtime's
    /// worker threads (`spawn_blocking`).
    pub fn verify(&self, username: &str, password: &str) -> Result<Option<User>, UserError> {
        let user = self.find(username)?;
        let hash = user
            .as_ref()
            .map_or(self.decoy.as_str(), |u| u.password_hash.as_str());
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        Ok(user.filter(|_| ok))
    }

    /// Creates the bootstrap admin when it does not exist. Returns the generated password when
    /// none was given, for the caller to print once.
    pub fn ensure_admin(
        &self,
        username: &str,
        password: Option<&str>,
    ) -> Result<Option<String>, UserError> {
        if self.find(username)?.is_some() {
            return Ok(None);
        }
        let generated = password
            .is_none()
            .then(|| super::keys::random_token()[..24].to_string());
        let pw = password.or(generated.as_deref()).unwrap_or_default();
        self.add(username, pw, &[ADMIN_ROLE.to_string()])?;
        Ok(generated)
    }
}

fn valid_name(name: &str) -> Result<(), UserError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(UserError::BadName(name.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_added_verified_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let db = UserDb::open(&path, 4).unwrap();
        db.add("alice", "correct horse", &["ops".into()]).unwrap();
        assert!(matches!(
            db.add("alice", "another one", &[]),
            Err(UserError::Exists(_))
        ));
        assert!(matches!(
            db.add("a b", "password1", &[]),
            Err(UserError::BadName(_))
        ));
        assert!(matches!(
            db.add("bob", "short", &[]),
            Err(UserError::BadPassword)
        ));
        let alice = db.verify("alice", "correct horse").unwrap().unwrap();
        assert_eq!(alice.roles, vec!["ops"]);
        assert!(db.verify("alice", "wrong horse").unwrap().is_none());
        assert!(db.verify("nobody", "correct horse").unwrap().is_none());
        let raw = std::fs::read_to_string(&path).unwrap();
        assert!(!raw.contains("correct horse") && raw.contains("$2b$"));
        // Another process (the CLI) edits the file: the daemon's copy follows.
        let other = UserDb::open(&path, 4).unwrap();
        other.remove("alice").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(db.find("alice").unwrap().is_none());
        assert!(matches!(db.remove("alice"), Err(UserError::NotFound(_))));
    }

    #[test]
    fn the_current_view_follows_the_file_at_most_a_recheck_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let db = UserDb::open(&path, 4).unwrap();
        db.add("alice", "correct horse", &["ops".into()]).unwrap();
        let t = 10 * RECHECK_MS;
        assert_eq!(db.current("alice", t).unwrap().unwrap().roles, vec!["ops"]);
        let cli = UserDb::open(&path, 4).unwrap();
        cli.remove("alice").unwrap();
        // Within the recheck interval the cached view answers (no stat per request) ...
        assert!(db.current("alice", t + RECHECK_MS - 1).unwrap().is_some());
        // ... and after it the removal is seen. mtime may not have moved if the clock of the
        // file system is coarse, so make sure it did.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(db.current("alice", t + RECHECK_MS).unwrap().is_none());
        std::fs::write(&path, b"not json").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later + std::time::Duration::from_secs(5))
            .unwrap();
        assert!(
            db.current("bob", t + 2 * RECHECK_MS).is_err(),
            "an unreadable file fails closed"
        );
    }

    #[test]
    fn the_bootstrap_admin_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = UserDb::open(&dir.path().join("u.json"), 4).unwrap();
        let pw = db.ensure_admin("admin", None).unwrap().unwrap();
        assert!(
            db.verify("admin", &pw)
                .unwrap()
                .unwrap()
                .roles
                .contains(&"admin".into())
        );
        assert_eq!(db.ensure_admin("admin", None).unwrap(), None);
    }
}
