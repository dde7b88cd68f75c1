//! History in object storage as configured (`object-store.*`).

use std::time::Duration;

use spoor_objstore::S3Settings;

/// Validated `object-store.*` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectStoreSettings {
    /// The bucket and how to reach it.
    pub s3: S3Settings,
    /// Seal a partition this long after it ended.
    pub seal_after: Duration,
    /// Keep a sealed partition locally this long after the upload was confirmed.
    pub keep_after_upload: Duration,
    /// How often readers list blocks and the sealer looks for partitions.
    pub poll: Duration,
    /// This node's name in block ids.
    pub node: String,
    /// Whether this node runs the compactor.
    pub compaction: bool,
}
