//! Spoor's history in S3-compatible object storage (AWS S3, Cloudflare R2, GCS through its S3
//! API, MinIO, Garage, Ceph), through the `object_store` crate.
//!
//! - [`block`]: the immutable block format (data object of zstd frames in the core block codec,
//!   index object with a resident head and an on-demand body).
//! - [`aggregates`]: dependency links and RED span metrics, one object per time partition and
//!   node, overwritten until it converges, summed over nodes by readers.
//! - [`seal`]: the sealer (sled time partitions → blocks, dropped locally only after the
//!   upload was confirmed; changed aggregates → aggregate objects) and the compactor (merges,
//!   retention).
//! - [`store`]: [`store::BlockStore`], a read-only `TraceStore` over the blocks and aggregate
//!   objects, and [`store::TieredStore`], a head merged with it (what query nodes and an
//!   all-in-one with object storage read).
//!
//! **Invariant:** a block's objects are never modified after upload; a block exists for readers
//! once its index exists, and is deleted index first. An aggregate object has one writer and is
//! replaced whole (see [`aggregates`]).

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::ClientOptions;

pub mod aggregates;
pub mod block;
pub mod seal;
pub mod store;
pub mod testing;

#[cfg(test)]
mod tests;

pub use store::{BlockStore, BlockStoreConfig, Bucket, TieredStore, TENANTS_DIR};

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
        format!("invalid object-store url {url:?}: expected s3://bucket[/prefix]")
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !valid_bucket {
        return Err(format!(
            "invalid bucket name {bucket:?} in object-store url {url:?}: 3-63 lowercase letters, digits, '-' or '.'"
        ));
    }
    let prefix = prefix.trim_matches('/').to_owned();
    if prefix.split('/').any(|s| s == "." || s == "..") {
        return Err(format!(
            "invalid prefix {prefix:?} in object-store url {url:?}"
        ));
    }
    Ok((bucket.to_owned(), prefix))
}

/// Connects to the bucket (no request is made until the first use).
pub fn connect(s: &S3Settings) -> Result<Bucket, String> {
    // reqwest's rustls comes without a bundled provider here: use ring's, as every other TLS
    // client and server of Spoor (a provider installed before is kept)
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let (bucket, prefix) = parse_url(&s.url)?;
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .with_region(&s.region)
        .with_client_options(
            ClientOptions::new()
                .with_timeout(s.timeout)
                .with_connect_timeout(Duration::from_secs(5))
                .with_allow_http(true),
        );
    if let Some(e) = &s.endpoint {
        b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
    }
    if let Some(k) = &s.access_key_id {
        b = b.with_access_key_id(k);
    }
    if let Some(k) = &s.secret_access_key {
        b = b.with_secret_access_key(k);
    }
    let store = b
        .build()
        .map_err(|e| format!("cannot configure object storage {}: {e}", s.url))?;
    Ok(Bucket {
        store: Arc::new(store),
        prefix,
    })
}
