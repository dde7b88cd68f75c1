//! Bearer tokens and tenant names as the config gives them: [`TenantId`] (a checked tenant
//! name), [`TokenTable`] (tokens and their tenants, compared in constant time) and the
//! validated [`AuthSettings`]. The daemon's resolver (`Auth` in `host/spoor/src/auth.rs`)
//! answers requests with them. Tokens never appear in errors or `Debug` output.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::HeaderName;

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

    /// The tokens and their tenants, for [`crate::Settings::to_toml`] only.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&[u8], &TenantId)> {
        self.entries.iter().map(|(t, n)| (&**t, n))
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

    /// Every token in force: the list's and the file's; an error names a token that is in
    /// both (by line of the file, never the token).
    pub fn tokens(&self) -> Result<TokenTable, String> {
        let mut tokens = self.list_tokens.clone();
        tokens
            .merge(&self.file_tokens)
            .map_err(|e| format!("auth.tokens and auth.tokens-file: {e}"))?;
        Ok(tokens)
    }
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
}
