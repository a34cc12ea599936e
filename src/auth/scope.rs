//! Scopes: the names a token carries, how a broad scope covers narrow ones, and what a tool
//! requires of its caller (scopes a client can ask for, roles only the person can have).

use serde::Deserialize;

use super::Principal;

/// Every token for the MCP endpoints needs this scope (or a broader one that covers it).
pub const BASE_SCOPE: &str = "mcp";
/// The role that guards admin APIs and sees every tool.
pub const ADMIN_ROLE: &str = "admin";

/// Whether `held` covers `needed`: equal, or a parent in the `a:b:c` hierarchy (`mcp` covers
/// `mcp:tools`), as the 2026-07-28 authorization spec asks servers to honour.
pub fn covers(held: &str, needed: &str) -> bool {
    held == needed
        || needed
            .strip_prefix(held)
            .is_some_and(|rest| rest.starts_with(':'))
}

pub fn has(scopes: &[String], needed: &str) -> bool {
    scopes.iter().any(|s| covers(s, needed))
}

/// Space-separated scope string (RFC 6749 §3.3) to a list without duplicates.
pub fn parse(raw: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in raw.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

/// What a tool (or any guarded item) asks of its caller, from the config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Access {
    /// Every one of these scopes is needed (a client can request them: 403 names them).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// At least one of these roles is needed (only the person's account grants them).
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Why a caller may not use something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// Scopes the token lacks: the client can get them by asking (step-up authorization).
    Scopes(Vec<String>),
    /// A role the person lacks: asking again would not help.
    Role,
}

impl Access {
    pub fn is_open(&self) -> bool {
        self.scopes.is_empty() && self.roles.is_empty()
    }

    pub fn missing(&self, p: &Principal) -> Option<Missing> {
        if !self.roles.is_empty() && !self.roles.iter().any(|r| p.roles.contains(r)) {
            return Some(Missing::Role);
        }
        let lacking: Vec<String> = self
            .scopes
            .iter()
            .filter(|s| !has(&p.scopes, s))
            .cloned()
            .collect();
        (!lacking.is_empty()).then_some(Missing::Scopes(lacking))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broad_scopes_cover_narrow_ones_only_at_a_boundary() {
        assert!(covers("mcp", "mcp"));
        assert!(covers("mcp", "mcp:tools"));
        assert!(covers("mcp:tools", "mcp:tools:write"));
        assert!(!covers("mcp", "mcpx"));
        assert!(!covers("mcp:tools", "mcp"));
        assert_eq!(parse(" a b  a "), vec!["a", "b"]);
    }

    #[test]
    fn access_names_what_is_missing() {
        let mut p = Principal::anonymous();
        p.authenticated = true;
        p.scopes = vec!["mcp".into()];
        let a = Access {
            scopes: vec!["files:write".into(), "mcp:tools".into()],
            roles: vec![],
        };
        assert_eq!(
            a.missing(&p),
            Some(Missing::Scopes(vec!["files:write".into()]))
        );
        assert!(!p.may_use(&a));
        p.scopes.push("files".into());
        assert!(p.may_use(&a));
        let r = Access {
            scopes: vec![],
            roles: vec!["ops".into()],
        };
        assert_eq!(r.missing(&p), Some(Missing::Role));
        p.roles.push(ADMIN_ROLE.into());
        assert!(p.may_use(&r), "admins see everything");
        assert!(
            Principal::anonymous().may_use(&r),
            "no auth: nothing is hidden"
        );
    }
}
