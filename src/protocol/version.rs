//! MCP protocol revisions this server speaks, and what each revision allows.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A legacy-era (initialize-based) MCP revision. Ordered oldest first so `>=` compares dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ProtocolVersion {
    #[serde(rename = "2024-11-05")]
    V2024_11_05,
    #[serde(rename = "2025-03-26")]
    V2025_03_26,
    #[serde(rename = "2025-06-18")]
    V2025_06_18,
    #[serde(rename = "2025-11-25")]
    V2025_11_25,
}

impl ProtocolVersion {
    /// Every supported revision, newest first (the order `initialize` errors list them in).
    pub const ALL: [ProtocolVersion; 4] = [
        ProtocolVersion::V2025_11_25,
        ProtocolVersion::V2025_06_18,
        ProtocolVersion::V2025_03_26,
        ProtocolVersion::V2024_11_05,
    ];

    /// What `initialize` answers when the client asks for a revision we do not speak.
    pub const LATEST: ProtocolVersion = ProtocolVersion::V2025_11_25;

    /// The revision a streamable-HTTP request without `MCP-Protocol-Version` is assumed to use
    /// (spec 2025-11-25 basic/transports §Protocol Version Header).
    pub const ASSUMED_WITHOUT_HEADER: ProtocolVersion = ProtocolVersion::V2025_03_26;

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "2024-11-05" => Some(Self::V2024_11_05),
            "2025-03-26" => Some(Self::V2025_03_26),
            "2025-06-18" => Some(Self::V2025_06_18),
            "2025-11-25" => Some(Self::V2025_11_25),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2024_11_05 => "2024-11-05",
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
        }
    }

    /// JSON-RPC batches exist only in 2025-03-26 (removed in 2025-06-18).
    pub fn allows_batches(self) -> bool {
        self == Self::V2025_03_26
    }

    /// SEP-1699 priming event: older clients crash on an empty `data:` line.
    pub fn wants_priming_event(self) -> bool {
        self >= Self::V2025_11_25
    }

    /// `outputSchema`/`structuredContent`, `title` and elicitation arrived in 2025-06-18.
    pub fn has_structured_output(self) -> bool {
        self >= Self::V2025_06_18
    }

    /// Versions the spec lists in `data.supported` of an unsupported-version error.
    pub fn supported_strings() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.as_str()).collect()
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_supported_revision_and_nothing_else() {
        for v in ProtocolVersion::ALL {
            assert_eq!(ProtocolVersion::parse(v.as_str()), Some(v));
        }
        assert_eq!(ProtocolVersion::parse("2024-10-07"), None);
        assert_eq!(ProtocolVersion::parse("2026-07-28"), None);
        assert_eq!(ProtocolVersion::parse(""), None);
    }

    #[test]
    fn only_2025_03_26_allows_batches() {
        let allowed: Vec<_> = ProtocolVersion::ALL
            .into_iter()
            .filter(|v| v.allows_batches())
            .collect();
        assert_eq!(allowed, vec![ProtocolVersion::V2025_03_26]);
    }

    #[test]
    fn priming_only_from_2025_11_25() {
        assert!(ProtocolVersion::V2025_11_25.wants_priming_event());
        assert!(!ProtocolVersion::V2025_06_18.wants_priming_event());
    }
}
