//! The URL layout of the MCP and admin endpoints: `/mcp`, `/sse`, `/messages`, `/http`, each
//! optionally under one endpoint id (`/{id}/mcp`), plus the admin paths (`/graphql`,
//! `/{id}/mcp_core_graphql`, `/{id}/mcp_daemon_graphql`, `/admin/cache`,
//! `/{id}/admin/cache...`). The router, the request guard, the bearer guard and OAuth resource
//! validation all ask here, so they cannot disagree about what is protected (commit `df05bb9`
//! was exactly two copies of this layout disagreeing).

use super::partition::{PartitionError, PartitionKey, valid_endpoint_id};

/// What an endpoint path serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Streamable HTTP.
    Mcp,
    /// Legacy HTTP+SSE: the stream.
    Sse,
    /// Legacy HTTP+SSE: where the client posts (belongs to the `/sse` resource).
    Messages,
    /// Plain HTTP: one JSON-RPC message in, one response out.
    Http,
    /// The GraphQL admin API (`/graphql`, `/{id}/mcp_core_graphql`, `/{id}/mcp_daemon_graphql`).
    Graphql,
    /// The original's cache routes (`/admin/cache`, `/{id}/admin/cache[/refresh|/status]`).
    Cache(CacheRoute),
}

/// The cache routes, by their last segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheRoute {
    /// `/admin/cache` or `/{id}/admin/cache` (DELETE).
    Cache,
    /// `/{id}/admin/cache/refresh` (POST).
    Refresh,
    /// `/{id}/admin/cache/status` (GET).
    Status,
}

/// What a request path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind<'a> {
    /// A real endpoint: served, and protected when auth is on. `id` is the endpoint id of the
    /// path (`None` for the bare paths).
    Endpoint {
        id: Option<&'a str>,
        endpoint: Endpoint,
    },
    /// The layout of an endpoint, but the prefix is not an endpoint id (`/a.b/mcp`): 400 with
    /// the reason, as the original answers "Invalid endpoint_id".
    BadId(&'a str),
    /// Looks like an endpoint under the RFC 8615 `/.well-known/` prefix, which no endpoint id
    /// can be: 404, never served.
    Impostor,
    /// Metadata, the authorization server, health, or nothing at all (the router answers 404).
    Public,
}

/// The last segment of an endpoint path under an optional id.
fn leaf(name: &str) -> Option<Endpoint> {
    Some(match name {
        "mcp" => Endpoint::Mcp,
        "sse" => Endpoint::Sse,
        "messages" => Endpoint::Messages,
        "http" => Endpoint::Http,
        _ => return None,
    })
}

/// The segments after an endpoint id (`mcp`, `admin/cache/refresh`, ...).
fn under_id(rest: &[&str]) -> Option<Endpoint> {
    match rest {
        [name] => leaf(name).or(match *name {
            "mcp_core_graphql" | "mcp_daemon_graphql" => Some(Endpoint::Graphql),
            _ => None,
        }),
        ["admin", "cache"] => Some(Endpoint::Cache(CacheRoute::Cache)),
        ["admin", "cache", "refresh"] => Some(Endpoint::Cache(CacheRoute::Refresh)),
        ["admin", "cache", "status"] => Some(Endpoint::Cache(CacheRoute::Status)),
        _ => None,
    }
}

impl<'a> PathKind<'a> {
    /// The one parser of the layout. A trailing slash is ignored (`/messages/` is routed).
    pub fn of(path: &'a str) -> Self {
        let trimmed = path.trim_matches('/');
        let segments: Vec<&'a str> = trimmed.split('/').collect();
        let bare = match segments.as_slice() {
            [name] => leaf(name).or((*name == "graphql").then_some(Endpoint::Graphql)),
            ["admin", "cache"] => Some(Endpoint::Cache(CacheRoute::Cache)),
            _ => None,
        };
        if let Some(endpoint) = bare {
            return Self::Endpoint { id: None, endpoint };
        }
        let Some((id, rest)) = segments.split_first() else {
            return Self::Public;
        };
        match under_id(rest) {
            None => Self::Public,
            Some(_) if *id == ".well-known" => Self::Impostor,
            Some(_) if !valid_endpoint_id(id) => Self::BadId(id),
            Some(endpoint) => Self::Endpoint {
                id: Some(id),
                endpoint,
            },
        }
    }

    /// The endpoint, for paths that are one.
    pub fn endpoint(&self) -> Option<Endpoint> {
        match self {
            Self::Endpoint { endpoint, .. } => Some(*endpoint),
            _ => None,
        }
    }

    /// Whether the path needs a caller (a bearer when auth is on): every endpoint, and the
    /// paths that only look like one (they are refused before, but must never be public).
    pub fn is_protected(&self) -> bool {
        !matches!(self, Self::Public)
    }

    /// The partition of a request to this path with `part_id` from its `Part-ID` header.
    /// `None` for paths that are no endpoint.
    pub fn partition(&self, part_id: Option<&str>) -> Option<Result<PartitionKey, PartitionError>> {
        match self {
            Self::Endpoint { id, .. } => Some(PartitionKey::new(*id, part_id)),
            Self::BadId(id) => Some(Err(PartitionError::EndpointId(id.to_string()))),
            Self::Impostor | Self::Public => None,
        }
    }

    /// The protected resource (RFC 8707/9728) a token must name to be used on this path:
    /// `/x/messages` belongs to `/x/sse`; the admin paths of an endpoint id belong to its
    /// `/x/mcp` (a token for `/a/mcp` is not valid on `/b/...`). `None` for public paths.
    pub fn resource(&self) -> Option<String> {
        let (id, endpoint) = match self {
            Self::Endpoint { id, endpoint } => (*id, *endpoint),
            Self::BadId(_) | Self::Impostor | Self::Public => return None,
        };
        let prefix = id.map(|i| format!("/{i}")).unwrap_or_default();
        let leaf = match endpoint {
            Endpoint::Mcp | Endpoint::Graphql | Endpoint::Cache(_) => "mcp",
            Endpoint::Sse | Endpoint::Messages => "sse",
            Endpoint::Http => "http",
        };
        Some(format!("{prefix}/{leaf}"))
    }

    /// Whether the path itself names a protected resource (`/mcp`, `/sse`, `/http`, under an
    /// optional endpoint id): what a `resource` indicator and RFC 9728 metadata may name.
    pub fn is_resource(&self) -> bool {
        matches!(
            self.endpoint(),
            Some(Endpoint::Mcp | Endpoint::Sse | Endpoint::Http)
        )
    }
}

impl Endpoint {
    /// The router's paths for this endpoint (axum syntax, `{endpoint_id}` for the id). The
    /// tests parse every one of them back, so the routes and `PathKind::of` agree.
    pub fn routes(self) -> &'static [&'static str] {
        match self {
            Self::Mcp => &["/mcp", "/{endpoint_id}/mcp"],
            Self::Sse => &["/sse", "/{endpoint_id}/sse"],
            Self::Messages => &["/messages", "/messages/", "/{endpoint_id}/messages"],
            Self::Http => &["/http", "/{endpoint_id}/http"],
            Self::Graphql => &[
                "/graphql",
                "/{endpoint_id}/mcp_core_graphql",
                "/{endpoint_id}/mcp_daemon_graphql",
            ],
            Self::Cache(CacheRoute::Cache) => &["/admin/cache", "/{endpoint_id}/admin/cache"],
            Self::Cache(CacheRoute::Refresh) => &["/{endpoint_id}/admin/cache/refresh"],
            Self::Cache(CacheRoute::Status) => &["/{endpoint_id}/admin/cache/status"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Endpoint; 8] = [
        Endpoint::Mcp,
        Endpoint::Sse,
        Endpoint::Messages,
        Endpoint::Http,
        Endpoint::Graphql,
        Endpoint::Cache(CacheRoute::Cache),
        Endpoint::Cache(CacheRoute::Refresh),
        Endpoint::Cache(CacheRoute::Status),
    ];

    #[test]
    fn every_route_parses_back_to_its_endpoint() {
        for e in ALL {
            for route in e.routes() {
                let path = route.replace("{endpoint_id}", "team-a");
                let kind = PathKind::of(&path);
                assert_eq!(kind.endpoint(), Some(e), "{route}");
                let id = route.contains("{endpoint_id}").then_some("team-a");
                assert_eq!(kind, PathKind::Endpoint { id, endpoint: e }, "{route}");
            }
        }
    }

    #[test]
    fn paths_name_their_resource() {
        let r = |p: &str| PathKind::of(p).resource();
        assert_eq!(r("/mcp").as_deref(), Some("/mcp"));
        assert_eq!(r("/team/mcp").as_deref(), Some("/team/mcp"));
        assert_eq!(r("/messages/").as_deref(), Some("/sse"));
        assert_eq!(r("/team/messages").as_deref(), Some("/team/sse"));
        assert_eq!(r("/http").as_deref(), Some("/http"));
        assert_eq!(r("/team/mcp_core_graphql").as_deref(), Some("/team/mcp"));
        assert_eq!(r("/team/admin/cache/refresh").as_deref(), Some("/team/mcp"));
        assert_eq!(r("/graphql").as_deref(), Some("/mcp"));
        assert_eq!(r("/health"), None);
        assert_eq!(r("/.well-known/oauth-protected-resource/mcp"), None);
        assert_eq!(r("/token"), None);
        assert!(PathKind::of("/team/sse").is_resource());
        assert!(!PathKind::of("/team/messages").is_resource());
        assert!(!PathKind::of("/graphql").is_resource());
        assert!(!PathKind::of("/a.b/mcp").is_resource());
    }

    #[test]
    fn odd_prefixes_are_refused_and_never_public() {
        assert_eq!(PathKind::of("/.well-known/mcp"), PathKind::Impostor);
        assert!(PathKind::of("/.well-known/mcp").is_protected());
        assert_eq!(PathKind::of("/a.b/mcp"), PathKind::BadId("a.b"));
        assert_eq!(PathKind::of("/a.b/admin/cache"), PathKind::BadId("a.b"));
        assert!(PathKind::of("/a.b/mcp").is_protected());
        let err = PathKind::of("/a.b/mcp")
            .partition(None)
            .unwrap()
            .unwrap_err();
        assert_eq!(err, PartitionError::EndpointId("a.b".into()));
        for public in [
            "/",
            "/health",
            "/a/b/mcp",
            "/team/other",
            "/authorize",
            "/a.b",
        ] {
            assert_eq!(PathKind::of(public), PathKind::Public, "{public}");
        }
    }

    #[test]
    fn the_partition_comes_from_the_path_and_the_part_id() {
        let p = |path: &str, part: Option<&str>| {
            PathKind::of(path)
                .partition(part)
                .unwrap()
                .map(|k| k.to_string())
        };
        assert_eq!(p("/mcp", Some("x")).unwrap(), "default");
        assert_eq!(p("/a/mcp", None).unwrap(), "a");
        assert_eq!(p("/a/sse", Some("x")).unwrap(), "a#x");
        assert!(p("/a/http", Some("x y")).is_err());
        assert!(PathKind::of("/health").partition(None).is_none());
    }
}
