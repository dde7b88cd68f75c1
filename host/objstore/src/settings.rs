//! How to reach a bucket: the settings the daemon's config resolves and checks, which build
//! without the `io` feature (no object_store, reqwest or sled), so the config crate can name
//! them.

use std::time::Duration;

/// How to reach the bucket. `Debug` never shows the secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub url: String,
    /// Endpoint of an S3-compatible server (`http://127.0.0.1:3900`); AWS when `None`.
    pub endpoint: Option<String>,
    /// Region (Garage's default is `garage`; AWS needs the bucket's).
    pub region: String,
    /// Access key id (`AWS_ACCESS_KEY_ID` when `None`).
    pub access_key_id: Option<String>,
    /// Secret key (`AWS_SECRET_ACCESS_KEY` when `None`).
    pub secret_access_key: Option<String>,
    /// Timeout of one request.
    pub timeout: Duration,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Splits `s3://bucket/prefix` into bucket and prefix; an error names what is wrong.
pub fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| {
        format!("invalid object-store.url {url:?}: expected s3://bucket[/prefix]")
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !valid_bucket {
        return Err(format!(
            "invalid bucket name {bucket:?} in object-store.url {url:?}: 3-63 lowercase letters, digits, '-' or '.'"
        ));
    }
    let prefix = prefix.trim_matches('/').to_owned();
    if prefix.split('/').any(|s| s == "." || s == "..") {
        return Err(format!(
            "invalid prefix {prefix:?} in object-store.url {url:?}"
        ));
    }
    Ok((bucket.to_owned(), prefix))
}
