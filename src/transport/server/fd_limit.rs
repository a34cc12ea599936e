//! The default connection cap: what the open-file limit leaves once the rest of the process
//! (Redis connections, worker pipes, files, outgoing HTTP) has its reserve. Past the limit
//! `accept` fails with EMFILE and every new client waits in the backlog; shedding below it
//! answers them instead.

use rustix::process::{Resource, getrlimit};

/// Connections allowed when `RLIMIT_NOFILE` is unlimited (or cannot be read).
const WITHOUT_LIMIT: usize = 65_536;

/// The cap for this process's current (soft) open-file limit.
pub fn default_max_connections() -> usize {
    cap_for(getrlimit(Resource::Nofile).current)
}

/// `limit` less a quarter of it, the reserve kept between 32 and 1024 files; at least 1.
pub fn cap_for(limit: Option<u64>) -> usize {
    let Some(limit) = limit else {
        return WITHOUT_LIMIT;
    };
    let reserve = (limit / 4).clamp(32, 1024);
    let cap = limit.saturating_sub(reserve).max(1);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_a_reserve_below_the_open_file_limit() {
        assert_eq!(cap_for(Some(512)), 384);
        assert_eq!(cap_for(Some(1024)), 768);
        assert_eq!(cap_for(Some(64)), 32, "at least 32 files stay free");
        assert_eq!(cap_for(Some(1_048_576)), 1_047_552, "at most 1024 are kept");
        assert_eq!(cap_for(Some(10)), 1);
        assert_eq!(cap_for(None), WITHOUT_LIMIT);
        let now = default_max_connections();
        assert!(now >= 1);
    }
}
