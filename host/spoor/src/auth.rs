//! Authentication and tenant resolution: the one function ([`Auth::resolve`]) every HTTP and
//! gRPC entry point asks, before it reads a request body, which tenant a request belongs to.
//!
//! With bearer tokens configured (`--auth.tokens-file`, `SPOOR_AUTH_TOKENS`), the token decides
//! the tenant; it is compared with every known token in constant time (no early exit, the time
//! depends only on the presented token's length and the number of tokens). Without tokens but
//! with multi-tenancy on, the tenant header (`x-tenant`, as Jaeger) decides. Tokens never appear
//! in logs, errors or `Debug` output.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use parking_lot::{Mutex, RwLock};

/// Jaeger's default tenant header.
pub const DEFAULT_TENANT_HEADER: &str = "x-tenant";

/// Longest tenant name.
pub const MAX_TENANT_LEN: usize = 64;

/// A tenant name, checked: `[A-Za-z0-9._-]{1,64}`, and neither `.` nor `..` (it names a
/// directory of the sled backend).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

impl TenantId {
    /// The name if it is a valid tenant name.
    pub fn parse(name: &str) -> Result<TenantId, String> {
        let ok_chars = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if name.is_empty()
            || name.len() > MAX_TENANT_LEN
            || !ok_chars
            || name == "."
            || name == ".."
        {
            return Err(format!(
                "invalid tenant name {name:?}: expected 1 to {MAX_TENANT_LEN} of A-Z a-z 0-9 . _ -"
            ));
        }
        Ok(TenantId(Arc::from(name)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bearer tokens and the tenant each is bound to. `Debug` shows only how many there are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TokenTable {
    entries: Vec<(Box<[u8]>, TenantId)>,
}

impl std::fmt::Debug for TokenTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenTable({} tokens)", self.entries.len())
    }
}

/// Why a tokens file or `SPOOR_AUTH_TOKENS` was refused; names the line (or entry), never the
/// token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin} {place}: {message}")]
pub struct TokenError {
    /// `tokens file PATH` or `SPOOR_AUTH_TOKENS`.
    pub origin: String,
    /// `line N` or `entry N`.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

/// A token must be visible ASCII (what fits an `Authorization` header), 1 to 4096 bytes.
fn check_token(token: &str) -> Result<(), String> {
    if token.is_empty() || token.len() > 4096 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the token must be 1 to 4096 visible ASCII characters".to_string());
    }
    Ok(())
}

impl TokenTable {
    /// Parses a tokens file: one `TOKEN TENANT` pair per line, separated by whitespace; blank
    /// lines and lines starting with `#` are skipped. Errors name the line.
    pub fn parse_file(text: &str, path: &Path) -> Result<TokenTable, TokenError> {
        let err = |line: usize, message: String| TokenError {
            origin: format!("tokens file {}", path.display()),
            place: format!("line {line}"),
            message,
        };
        let mut table = TokenTable::default();
        let mut first_line = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [token, tenant] = fields[..] else {
                return Err(err(
                    n,
                    format!("expected `TOKEN TENANT`, got {} fields", fields.len()),
                ));
            };
            check_token(token).map_err(|m| err(n, m))?;
            let tenant = TenantId::parse(tenant).map_err(|m| err(n, m))?;
            if let Some(earlier) = first_line.insert(token.to_string(), n) {
                return Err(err(n, format!("the token is already on line {earlier}")));
            }
            table.entries.push((token.as_bytes().into(), tenant));
        }
        if table.entries.is_empty() {
            return Err(TokenError {
                origin: format!("tokens file {}", path.display()),
                place: "line 1".to_string(),
                message: "no `TOKEN TENANT` lines".to_string(),
            });
        }
        Ok(table)
    }

    /// Parses `tok1=tenant-a,tok2=tenant-b` (`SPOOR_AUTH_TOKENS`, `--auth.tokens`, TOML
    /// `auth.tokens`). Errors name the entry (counted from 1).
    pub fn parse_list(text: &str) -> Result<TokenTable, TokenError> {
        let err = |entry: usize, message: String| TokenError {
            origin: "auth.tokens".to_string(),
            place: format!("entry {entry}"),
            message,
        };
        let mut table = TokenTable::default();
        for (i, item) in text.split(',').enumerate() {
            let n = i + 1;
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let Some((token, tenant)) = item.rsplit_once('=') else {
                return Err(err(n, "expected `TOKEN=TENANT`".to_string()));
            };
            check_token(token).map_err(|m| err(n, m))?;
            let tenant = TenantId::parse(tenant).map_err(|m| err(n, m))?;
            table
                .push(token.as_bytes(), tenant)
                .map_err(|m| err(n, m))?;
        }
        Ok(table)
    }

    /// Adds the tokens of `other`; an error names what collides.
    pub fn merge(&mut self, other: &TokenTable) -> Result<(), String> {
        for (token, tenant) in &other.entries {
            self.push(token, tenant.clone())?;
        }
        Ok(())
    }

    fn push(&mut self, token: &[u8], tenant: TenantId) -> Result<(), String> {
        if self.entries.iter().any(|(t, _)| **t == *token) {
            return Err("the same token is given twice".to_string());
        }
        self.entries.push((token.into(), tenant));
        Ok(())
    }

    /// How many tokens there are.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether some token belongs to `tenant` (tenant names are not secret: no constant time).
    pub fn has_tenant(&self, tenant: &TenantId) -> bool {
        self.entries.iter().any(|(_, t)| t == tenant)
    }

    /// The tenant of `presented`: compared with every token, always all of them, each in time
    /// that depends on the presented token's length only.
    pub fn lookup(&self, presented: &[u8]) -> Option<&TenantId> {
        let mut found = usize::MAX;
        for (i, (token, _)) in self.entries.iter().enumerate() {
            let mask = usize::from(ct_eq(presented, token)).wrapping_neg();
            found = (found & !mask) | (i & mask);
        }
        self.entries
            .get(std::hint::black_box(found))
            .map(|(_, t)| t)
    }
}

/// Constant-time equality: reads every byte of `presented` (the attacker's input, whose length
/// they know) against `secret` cycled, and folds the differences without branching.
pub fn ct_eq(presented: &[u8], secret: &[u8]) -> bool {
    let mut diff = u8::from(presented.len() != secret.len());
    if secret.is_empty() {
        return presented.is_empty();
    }
    for (i, &b) in presented.iter().enumerate() {
        diff |= b ^ secret[i % secret.len()];
    }
    std::hint::black_box(diff) == 0
}

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

/// Authentication settings, validated (`Settings::auth`; `None` there: no tenancy).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `--auth.tokens-file`, re-read when it changes.
    pub tokens_file: Option<PathBuf>,
    /// Its contents at start-up.
    pub file_tokens: TokenTable,
    /// `--auth.tokens` / `SPOOR_AUTH_TOKENS` / TOML `auth.tokens`.
    pub list_tokens: TokenTable,
    /// `--multi-tenancy.header`.
    pub header: HeaderName,
    /// `--multi-tenancy.tenants` (`None`: any tenant).
    pub allowed: Option<BTreeSet<TenantId>>,
    /// `--multi-tenancy.max-tenants`.
    pub max_tenants: usize,
    /// `--auth.udp-tenant`: the tenant of spans received over Jaeger UDP (`None`: UDP off).
    pub udp_tenant: Option<TenantId>,
}

impl AuthSettings {
    /// Whether requests carry bearer tokens (else the tenant header decides).
    pub fn uses_tokens(&self) -> bool {
        self.tokens_file.is_some() || !self.list_tokens.is_empty()
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
        let mut tokens = settings.list_tokens.clone();
        tokens
            .merge(&settings.file_tokens)
            .map_err(|e| format!("auth.tokens and auth.tokens-file: {e}"))?;
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

    fn path() -> PathBuf {
        PathBuf::from("/etc/spoor/tokens")
    }

    fn t(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[test]
    fn token_files_parse_and_bad_lines_are_named() {
        let good = "# tokens\n\ns3cret-a a\n  s3cret-b\tteam.b  \n#x y\n";
        let table = TokenTable::parse_file(good, &path()).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(table.lookup(b"s3cret-a"), Some(&t("a")));
        assert_eq!(table.lookup(b"s3cret-b"), Some(&t("team.b")));
        assert_eq!(table.lookup(b"s3cret-c"), None);

        let cases = [
            ("a\n", "tokens file /etc/spoor/tokens line 1: expected `TOKEN TENANT`, got 1 fields"),
            ("# c\nx a b\n", "tokens file /etc/spoor/tokens line 2: expected `TOKEN TENANT`, got 3 fields"),
            ("k a\nk2 bad/name\n", "tokens file /etc/spoor/tokens line 2: invalid tenant name \"bad/name\": expected 1 to 64 of A-Z a-z 0-9 . _ -"),
            ("k a\nk ..\n", "tokens file /etc/spoor/tokens line 2: invalid tenant name \"..\": expected 1 to 64 of A-Z a-z 0-9 . _ -"),
            ("k a\n\nk b\n", "tokens file /etc/spoor/tokens line 3: the token is already on line 1"),
            ("# only comments\n", "tokens file /etc/spoor/tokens line 1: no `TOKEN TENANT` lines"),
        ];
        for (text, want) in cases {
            let err = TokenTable::parse_file(text, &path())
                .unwrap_err()
                .to_string();
            assert_eq!(err, want, "{text:?}");
        }
        // the token never appears in an error
        let err = TokenTable::parse_file("topsecret a b\n", &path())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("topsecret"), "{err}");
    }

    #[test]
    fn token_lists_parse_and_bad_entries_are_named() {
        let table = TokenTable::parse_list("tok1=tenant-a, tok2=tenant-b,").unwrap();
        assert_eq!(table.lookup(b"tok2"), Some(&t("tenant-b")));
        assert_eq!(format!("{table:?}"), "TokenTable(2 tokens)");
        let cases = [
            ("tok1", "auth.tokens entry 1: expected `TOKEN=TENANT`"),
            ("a=x,b=", "auth.tokens entry 2: invalid tenant name \"\": expected 1 to 64 of A-Z a-z 0-9 . _ -"),
            ("a=x,a=y", "auth.tokens entry 2: the same token is given twice"),
            ("=x", "auth.tokens entry 1: the token must be 1 to 4096 visible ASCII characters"),
        ];
        for (text, want) in cases {
            let err = TokenTable::parse_list(text).unwrap_err().to_string();
            assert_eq!(err, want, "{text:?}");
        }
    }

    #[test]
    fn constant_time_compare() {
        let cases: [(&[u8], &[u8], bool); 7] = [
            (b"abc", b"abc", true),
            (b"abd", b"abc", false),
            (b"ab", b"abc", false),
            (b"abcabc", b"abc", false),
            (b"", b"abc", false),
            (b"", b"", true),
            (b"x", b"", false),
        ];
        for (presented, secret, want) in cases {
            assert_eq!(ct_eq(presented, secret), want, "{presented:?} {secret:?}");
        }
        // every token is compared: a match on the first or the last one is found alike
        let table = TokenTable::parse_list("first=a,middle=b,last=c").unwrap();
        assert_eq!(table.lookup(b"first"), Some(&t("a")));
        assert_eq!(table.lookup(b"last"), Some(&t("c")));
        assert_eq!(table.lookup(b"las"), None);
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
