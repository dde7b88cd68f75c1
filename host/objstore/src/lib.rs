//! Spoor's history in S3-compatible object storage (AWS S3, Cloudflare R2, GCS through its S3
//! API, MinIO, Garage, Ceph), through the `object_store` crate.
//!
//! - [`S3Settings`] and [`parse_url`]: how to reach a bucket (always built).
//! - `block`: the immutable block format (data object of zstd frames in the core block codec,
//!   index object with a resident head and an on-demand body).
//! - `aggregates`: dependency links and RED span metrics, one object per time partition and
//!   node, overwritten until it converges, summed over nodes by readers.
//! - `seal`: the sealer (sled time partitions → blocks, dropped locally only after the
//!   upload was confirmed; changed aggregates → aggregate objects) and the compactor (merges,
//!   retention).
//! - `store`: `BlockStore`, a read-only `TraceStore` over the blocks and aggregate objects, and
//!   `TieredStore`, a head merged with it (what query nodes and an all-in-one with object
//!   storage read), and `connect`.
//!
//! Those four (and `testing`) need the `io` feature, on by default; without it the crate is
//! only its settings, for the daemon's config crate (`spoor-config`) and its fuzz target.
//!
//! **Invariant:** a block's objects are never modified after upload; a block exists for readers
//! once its index exists, and is deleted index first. An aggregate object has one writer and is
//! replaced whole (see `aggregates`).

mod settings;

pub use settings::{parse_url, S3Settings};

#[cfg(feature = "io")]
pub mod aggregates;
#[cfg(feature = "io")]
pub mod block;
#[cfg(feature = "io")]
pub mod seal;
#[cfg(feature = "io")]
pub mod store;
#[cfg(feature = "io")]
pub mod testing;

#[cfg(all(test, feature = "io"))]
mod tests;

#[cfg(feature = "io")]
pub use store::{connect, BlockStore, BlockStoreConfig, Bucket, TieredStore, TENANTS_DIR};
