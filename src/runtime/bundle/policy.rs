//! What a bundle may contain, checked on the archive's central directory before a single byte
//! is written: plain relative paths only (no traversal, absolute paths or drive letters),
//! regular files and folders only (no links, devices, fifos), bounded entry count, sizes and
//! compression ratios, no duplicate or case-colliding names, and the module at the root.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::Cursor;
use std::path::PathBuf;

use bytes::Bytes;
use zip::{CompressionMethod, ZipArchive};

/// Bounds on one bundle. The defaults hold any reasonable Python package with vendored
/// dependencies and refuse archives built to exhaust the disk or memory.
#[derive(Debug, Clone)]
pub struct ZipLimits {
    /// The compressed archive (checked against the store's size before the download).
    pub max_zip_bytes: u64,
    /// Entries in the archive, folders included.
    pub max_entries: usize,
    /// Declared uncompressed bytes of all entries together.
    pub max_total_bytes: u64,
    /// Declared uncompressed bytes of one entry.
    pub max_entry_bytes: u64,
    /// Uncompressed / compressed size of one entry ...
    pub max_ratio: u64,
    /// ... for entries larger than this (a 2 KiB file of blanks compresses 200:1 and is
    /// harmless; bombs are large by definition).
    pub ratio_min_bytes: u64,
    /// Bytes of one entry's path.
    pub max_path_bytes: usize,
    /// Folders deep.
    pub max_depth: usize,
}

impl Default for ZipLimits {
    fn default() -> Self {
        Self {
            max_zip_bytes: 64 << 20,
            max_entries: 10_000,
            max_total_bytes: 256 << 20,
            max_entry_bytes: 64 << 20,
            max_ratio: 100,
            ratio_min_bytes: 64 << 10,
            max_path_bytes: 1024,
            max_depth: 32,
        }
    }
}

/// One entry that passed, as it will be written.
#[derive(Debug)]
pub(super) struct Planned {
    pub index: usize,
    /// Relative, normalised (`a/b/c.py`).
    pub path: PathBuf,
    pub dir: bool,
    pub executable: bool,
    pub size: u64,
}

/// An archive that passed the policy, ready to extract.
pub(super) struct Plan {
    pub archive: ZipArchive<Cursor<Bytes>>,
    pub entries: Vec<Planned>,
    /// `requirements.txt` at the root.
    pub requirements: bool,
    /// A `wheels/` folder at the root (then pip installs offline from it).
    pub wheels: bool,
}

/// Checks `bytes` against `limits` and requires `module` at the root. The error is the reason
/// alone; the caller names the bundle.
pub(super) fn check(bytes: Bytes, module: &str, limits: &ZipLimits) -> Result<Plan, String> {
    if bytes.len() as u64 > limits.max_zip_bytes {
        return Err(format!(
            "the archive is {} bytes, over the limit of {}",
            bytes.len(),
            limits.max_zip_bytes
        ));
    }
    let archive =
        ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("corrupt archive: {e}"))?;
    if archive.has_duplicate_names() {
        return Err("the archive holds two entries with the same name".into());
    }
    if archive.len() > limits.max_entries {
        return Err(format!(
            "the archive holds {} entries, over the limit of {}",
            archive.len(),
            limits.max_entries
        ));
    }
    let mut entries = Vec::with_capacity(archive.len());
    // Lower-cased path -> (path as written, is a folder): a case-insensitive file system (and
    // anyone reading the bundle) would see colliding names as one.
    let mut names: HashMap<String, (String, bool)> = HashMap::new();
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|e| format!("corrupt archive: {e}"))?;
        let raw = entry
            .name()
            .map_err(|e| format!("entry {index} has an unreadable name: {e}"))?;
        let name = raw.to_string();
        let (path, dir_by_name) = normalise(&name, limits)?;
        let mode = entry.unix_mode().unwrap_or(0);
        let dir = match mode & 0o170000 {
            0 | 0o100000 => dir_by_name,
            0o040000 => true,
            0o120000 => return Err(format!("entry '{name}' is a symbolic link")),
            0o020000 | 0o060000 => return Err(format!("entry '{name}' is a device file")),
            0o010000 => return Err(format!("entry '{name}' is a named pipe")),
            0o140000 => return Err(format!("entry '{name}' is a socket")),
            other => return Err(format!("entry '{name}' has an unknown file type {other:o}")),
        };
        if entry.encrypted() {
            return Err(format!("entry '{name}' is encrypted"));
        }
        let method = entry.compression();
        if method != CompressionMethod::Stored && method != CompressionMethod::Deflated {
            return Err(format!(
                "entry '{name}' uses an unsupported compression method ({method})"
            ));
        }
        let size = entry.size();
        if dir && size > 0 {
            return Err(format!("folder entry '{name}' has content"));
        }
        if size > limits.max_entry_bytes {
            return Err(format!(
                "entry '{name}' unpacks to {size} bytes, over the limit of {} per entry",
                limits.max_entry_bytes
            ));
        }
        total = total.saturating_add(size);
        if total > limits.max_total_bytes {
            return Err(format!(
                "the archive unpacks to more than {} bytes in total",
                limits.max_total_bytes
            ));
        }
        let packed = entry.compressed_size().max(1);
        if size > limits.ratio_min_bytes && size / packed > limits.max_ratio {
            return Err(format!(
                "entry '{name}' has a compression ratio of {} (over {}): a zip bomb?",
                size / packed,
                limits.max_ratio
            ));
        }
        remember(&mut names, &path, dir)?;
        let executable = !dir && mode & 0o111 != 0;
        entries.push(Planned {
            index,
            path: PathBuf::from(path),
            dir,
            executable,
            size,
        });
    }
    let is_file = |p: &str| names.get(p).is_some_and(|(orig, dir)| !dir && orig == p);
    let is_dir = |p: &str| names.get(p).is_some_and(|(orig, dir)| *dir && orig == p);
    if !is_file(&format!("{module}/__init__.py")) && !is_file(&format!("{module}.py")) {
        return Err(format!(
            "no {module}/__init__.py or {module}.py at the root of the archive"
        ));
    }
    Ok(Plan {
        archive,
        entries,
        requirements: is_file("requirements.txt"),
        wheels: is_dir("wheels"),
    })
}

/// The entry's name as a plain relative path (and whether it names a folder), or why not.
fn normalise(name: &str, limits: &ZipLimits) -> Result<(String, bool), String> {
    let refuse = |why: &str| Err(format!("entry '{name}' {why}"));
    if name.contains('\0') {
        return refuse("contains a NUL byte");
    }
    if name.contains('\\') {
        return refuse("contains a backslash");
    }
    if name.starts_with('/') {
        return refuse("is an absolute path");
    }
    if name.len() > limits.max_path_bytes {
        return refuse("has a path longer than the limit");
    }
    let dir = name.ends_with('/');
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    if trimmed.is_empty() {
        return refuse("has an empty path");
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    if parts.len() > limits.max_depth {
        return refuse("is nested deeper than the limit");
    }
    for (i, part) in parts.iter().enumerate() {
        match *part {
            ".." => return refuse("escapes the bundle folder (..)"),
            "." | "" => return refuse("has an empty or '.' path segment"),
            p if i == 0 && p.len() == 2 && p.ends_with(':') => return refuse("names a drive"),
            p if p.len() > 255 => return refuse("has a name longer than 255 bytes"),
            _ => {}
        }
    }
    Ok((trimmed.to_string(), dir))
}

/// Records `path` and the folders it implies; fails on a duplicate, a case collision, or a
/// name used both as a file and as a folder.
fn remember(
    names: &mut HashMap<String, (String, bool)>,
    path: &str,
    dir: bool,
) -> Result<(), String> {
    let ends = path
        .match_indices('/')
        .map(|(i, _)| i)
        .chain(std::iter::once(path.len()));
    for end in ends {
        let part = &path[..end];
        let is_dir = end < path.len() || dir;
        match names.entry(part.to_lowercase()) {
            Entry::Vacant(v) => {
                v.insert((part.to_string(), is_dir));
            }
            // The same folder named again (explicitly or by a child) is fine.
            Entry::Occupied(o) if o.get().1 && is_dir && o.get().0 == part => {}
            Entry::Occupied(o) => {
                let (seen, seen_dir) = o.get();
                return Err(if seen != part {
                    format!("entries '{seen}' and '{part}' differ only in case")
                } else if *seen_dir != is_dir {
                    format!("'{part}' is both a file and a folder")
                } else {
                    format!("entry '{path}' appears twice")
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_or_refused() {
        let l = ZipLimits::default();
        assert_eq!(
            normalise("m/__init__.py", &l).unwrap(),
            ("m/__init__.py".into(), false)
        );
        assert_eq!(normalise("m/", &l).unwrap(), ("m".into(), true));
        for (bad, why) in [
            ("../x", ".."),
            ("m/../../x", ".."),
            ("m/../x", ".."),
            ("/etc/x", "absolute"),
            ("C:/x", "drive"),
            ("a\\b", "backslash"),
            ("a//b", "empty"),
            ("./a", "'.'"),
            ("/", "absolute"),
        ] {
            let err = normalise(bad, &l).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let deep = vec!["d"; 40].join("/");
        assert!(normalise(&deep, &l).unwrap_err().contains("deeper"));
    }

    #[test]
    fn collisions_are_found() {
        let mut n = HashMap::new();
        remember(&mut n, "m/__init__.py", false).unwrap();
        remember(&mut n, "m", true).unwrap();
        remember(&mut n, "m/sub/x.py", false).unwrap();
        remember(&mut n, "m/sub", true).unwrap();
        assert!(
            remember(&mut n, "M/y.py", false)
                .unwrap_err()
                .contains("case")
        );
        assert!(
            remember(&mut n, "m/__INIT__.py", false)
                .unwrap_err()
                .contains("case")
        );
        assert!(
            remember(&mut n, "m/__init__.py", false)
                .unwrap_err()
                .contains("twice")
        );
        // A file where a folder is implied, and the other way round.
        assert!(remember(&mut n, "m/sub", false).is_err());
        assert!(remember(&mut n, "m/__init__.py/z", false).is_err());
    }
}
