//! Authentication and tenant resolution: the one function ([`Auth::resolve`]) every HTTP and
//! gRPC entry point asks, before it reads a request body, which tenant a request belongs to.
//!
//! With bearer tokens configured (`--auth.tokens-file`, `SPOOR_AUTH_TOKENS`), the token decides
//! the tenant; it is compared with every known token in constant time (no early exit, the time
//! depends only on the presented token's length and the number of tokens). Without tokens but
//! with multi-tenancy on, the tenant header (`x-tenant`, as Jaeger) decides. Tokens never appear
//! in logs, errors or `Debug` output.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use parking_lot::{Mutex, RwLock};

pub use spoor_config::auth::{AuthSettings, TenantId, TokenTable};

/// Why a request is refused before it is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No credentials, or unknown ones (401 / UNAUTHENTICATED).
    #[error("{0}")]
    Unauthenticated(String),
    /// Known credentials, but not for this tenant, or the tenant is not allowed
    /// (403 / PERMISSION_DENIED).
    #[error("{0}")]
    Forbidden(String),
    /// The tenant header is not a tenant name (400 / INVALID_ARGUMENT).
    #[error("{0}")]
    BadTenant(String),
    /// The tenant's storage could not be opened (503 / UNAVAILABLE).
    #[error("{0}")]
    Unavailable(String),
}

impl Denied {
    /// The HTTP reply: plain text, with `WWW-Authenticate: Bearer` on a 401.
    pub fn http_response(&self) -> Response {
        let status = match self {
            Denied::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Denied::Forbidden(_) => StatusCode::FORBIDDEN,
            Denied::BadTenant(_) => StatusCode::BAD_REQUEST,
            Denied::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut resp = (status, format!("{self}\n")).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"spoor\""),
            );
        }
        resp
    }

    /// The gRPC status.
    pub fn grpc_status(&self) -> tonic::Status {
        let m = self.to_string();
        match self {
            Denied::Unauthenticated(_) => tonic::Status::unauthenticated(m),
            Denied::Forbidden(_) => tonic::Status::permission_denied(m),
            Denied::BadTenant(_) => tonic::Status::invalid_argument(m),
            Denied::Unavailable(_) => tonic::Status::unavailable(m),
        }
    }
}

/// What identifies one version of the tokens file: modification time and length.
type Version = Option<(SystemTime, u64)>;

fn version_of(path: &Path) -> Version {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The resolver every entry point asks.
pub struct Auth {
    settings: AuthSettings,
    /// File tokens merged with the list; swapped on reload.
    tokens: RwLock<Arc<TokenTable>>,
    seen: Mutex<Version>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// The resolver for validated settings; an error names a token that is in both the file
    /// and the list (by line of the file, never the token).
    pub fn new(settings: AuthSettings) -> Result<Auth, String> {
        let tokens = settings.tokens()?;
        let seen = settings.tokens_file.as_deref().and_then(version_of);
        Ok(Auth {
            settings,
            tokens: RwLock::new(Arc::new(tokens)),
            seen: Mutex::new(seen),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Re-reads the tokens file if it changed: `Ok(true)` when a new version is in force,
    /// `Ok(false)` when nothing changed (or there is no file), `Err` naming the line when the
    /// new version is bad (the last good tokens stay; the same bad version is reported once).
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let Some(path) = &self.settings.tokens_file else {
            return Ok(false);
        };
        let version = version_of(path);
        {
            let mut seen = self.seen.lock();
            if *seen == version && version.is_some() {
                return Ok(false);
            }
            *seen = version;
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read tokens file {}: {e}", path.display()))?;
        let file = TokenTable::parse_file(&text, path).map_err(|e| e.to_string())?;
        let mut tokens = self.settings.list_tokens.clone();
        tokens
            .merge(&file)
            .map_err(|e| format!("auth.tokens and tokens file {}: {e}", path.display()))?;
        *self.tokens.write() = Arc::new(tokens);
        Ok(true)
    }

    /// The tenant of a request, from its headers (HTTP headers or gRPC metadata).
    pub fn resolve(&self, headers: &HeaderMap) -> Result<TenantId, Denied> {
        let named = match headers.get(&self.settings.header) {
            None => None,
            Some(v) => {
                let text = v.to_str().map_err(|_| {
                    Denied::BadTenant(format!(
                        "invalid tenant name in header {}: not visible ASCII",
                        self.settings.header
                    ))
                })?;
                Some(TenantId::parse(text).map_err(Denied::BadTenant)?)
            }
        };
        let tenant = if self.settings.uses_tokens() {
            let presented = bearer(headers)?;
            let tokens = Arc::clone(&self.tokens.read());
            let Some(owner) = tokens.lookup(presented) else {
                return Err(Denied::Unauthenticated("unknown bearer token".to_string()));
            };
            if let Some(named) = named {
                if named != *owner {
                    return Err(Denied::Forbidden(format!(
                        "the bearer token is not valid for tenant {:?}",
                        named.as_str()
                    )));
                }
            }
            owner.clone()
        } else {
            named.ok_or_else(|| {
                Denied::Unauthenticated(format!("missing tenant header {}", self.settings.header))
            })?
        };
        self.check_known(&tenant)?;
        Ok(tenant)
    }

    /// Whether this daemon serves `tenant`: it is in `--multi-tenancy.tenants` (when given) and,
    /// with bearer tokens, some token belongs to it. For tenants that arrive without a token
    /// (on a span-log message, or from a query node on the ingesters' internal endpoint).
    pub fn check_known(&self, tenant: &TenantId) -> Result<(), Denied> {
        let allowed = self.settings.allowed.as_ref();
        let unknown = allowed.is_some_and(|a| !a.contains(tenant))
            || (self.settings.uses_tokens() && !self.tokens.read().has_tenant(tenant));
        if unknown {
            return Err(Denied::Forbidden(format!(
                "unknown tenant {:?}",
                tenant.as_str()
            )));
        }
        Ok(())
    }
}

/// The token of `Authorization: Bearer T`.
fn bearer(headers: &HeaderMap) -> Result<&[u8], Denied> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Err(Denied::Unauthenticated(
            "missing bearer token (send `Authorization: Bearer TOKEN`)".to_string(),
        ));
    };
    let raw = v.as_bytes();
    let scheme_ok = raw.len() > 7 && raw[..7].eq_ignore_ascii_case(b"bearer ");
    if !scheme_ok {
        return Err(Denied::Unauthenticated(
            "the authorization header is not `Bearer TOKEN`".to_string(),
        ));
    }
    Ok(raw[7..].trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;
    use spoor_config::auth::DEFAULT_TENANT_HEADER;

    fn t(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    fn settings(list: &str, allowed: Option<&[&str]>) -> AuthSettings {
        AuthSettings {
            tokens_file: None,
            file_tokens: TokenTable::default(),
            list_tokens: TokenTable::parse_list(list).unwrap(),
            header: HeaderName::from_static(DEFAULT_TENANT_HEADER),
            allowed: allowed.map(|a| a.iter().map(|n| t(n)).collect()),
            max_tenants: 100,
            udp_tenant: None,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn resolution_with_tokens() {
        let auth = Auth::new(settings("ta=a,tb=b", None)).unwrap();
        let r = |pairs: &[(&'static str, &str)]| auth.resolve(&headers(pairs));
        assert_eq!(r(&[("authorization", "Bearer ta")]), Ok(t("a")));
        assert_eq!(r(&[("authorization", "bearer tb")]), Ok(t("b")));
        assert_eq!(
            r(&[("authorization", "Bearer ta"), ("x-tenant", "a")]),
            Ok(t("a"))
        );
        let unauth = |m: &str| Err(Denied::Unauthenticated(m.to_string()));
        assert_eq!(
            r(&[]),
            unauth("missing bearer token (send `Authorization: Bearer TOKEN`)")
        );
        assert_eq!(
            r(&[("authorization", "Bearer nope")]),
            unauth("unknown bearer token")
        );
        assert_eq!(
            r(&[("authorization", "Basic dGE6")]),
            unauth("the authorization header is not `Bearer TOKEN`")
        );
        assert_eq!(
            r(&[("authorization", "Bearer ta"), ("x-tenant", "b")]),
            Err(Denied::Forbidden(
                "the bearer token is not valid for tenant \"b\"".to_string()
            ))
        );
        assert!(matches!(
            r(&[("authorization", "Bearer ta"), ("x-tenant", "a/b")]),
            Err(Denied::BadTenant(_))
        ));
    }

    #[test]
    fn known_tenants_are_those_of_the_list_and_the_tokens() {
        let auth = Auth::new(settings("ta=a,tb=b", Some(&["a", "c"]))).unwrap();
        assert_eq!(auth.check_known(&t("a")), Ok(()));
        let unknown = |n: &str| Err(Denied::Forbidden(format!("unknown tenant {n:?}")));
        assert_eq!(auth.check_known(&t("b")), unknown("b"), "not in the list");
        assert_eq!(auth.check_known(&t("c")), unknown("c"), "no token");
        let header_only = Auth::new(settings("", None)).unwrap();
        assert_eq!(header_only.check_known(&t("any")), Ok(()));
    }

    #[test]
    fn resolution_with_the_header_only() {
        let mut s = settings("", Some(&["a", "b"]));
        s.header = HeaderName::from_static("x-scope");
        let auth = Auth::new(s).unwrap();
        let r = |pairs: &[(&'static str, &str)]| auth.resolve(&headers(pairs));
        assert_eq!(r(&[("x-scope", "a")]), Ok(t("a")));
        assert_eq!(
            r(&[("x-tenant", "a")]),
            Err(Denied::Unauthenticated(
                "missing tenant header x-scope".to_string()
            ))
        );
        assert_eq!(
            r(&[("x-scope", "c")]),
            Err(Denied::Forbidden("unknown tenant \"c\"".to_string()))
        );
    }

    #[test]
    fn a_bad_tokens_file_keeps_the_last_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "ta a\n").unwrap();
        let mut s = settings("", None);
        s.file_tokens = TokenTable::parse_file("ta a\n", &file).unwrap();
        s.tokens_file = Some(file.clone());
        let auth = Auth::new(s).unwrap();
        let bearer = |tok: &str| headers(&[("authorization", &format!("Bearer {tok}"))]);
        assert_eq!(auth.resolve(&bearer("ta")), Ok(t("a")));
        assert_eq!(auth.reload_if_changed(), Ok(false));
        std::fs::write(&file, "ta a\ntb b\n").unwrap();
        assert_eq!(auth.reload_if_changed(), Ok(true));
        assert_eq!(auth.resolve(&bearer("tb")), Ok(t("b")));
        std::fs::write(&file, "ta a\ntb b\ntc\n").unwrap();
        let err = auth.reload_if_changed().unwrap_err();
        assert!(
            err.ends_with("line 3: expected `TOKEN TENANT`, got 1 fields"),
            "{err}"
        );
        assert_eq!(
            auth.resolve(&bearer("tb")),
            Ok(t("b")),
            "the last good file stays"
        );
        assert_eq!(auth.reload_if_changed(), Ok(false), "reported once");
    }
}
