//! Limits the daemon applies: to its HTTP clients ([`HttpLimits`], `[http]`) and to its own
//! resident memory ([`MemoryLimitConfig`], `memory.limit-mib`).

use std::time::Duration;

/// Limits every HTTP listener applies to its clients (`[http]` settings), so slow or stalled
/// clients cannot hold connections or memory: at most `max_connections` open connections
/// (further clients wait in the kernel's accept backlog), request headers within
/// `header_read_timeout` of a connection becoming active, and each request body within
/// `body_read_timeout` of its headers (else `408 Request Timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Open connections per listener.
    pub max_connections: usize,
    /// Time a client has to send a complete request head.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request body.
    pub body_read_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Settings of the memory limiter; `limit_bytes == 0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimitConfig {
    /// Hard limit of the resident set size in bytes (0 = no limiter).
    pub limit_bytes: u64,
    /// Headroom below the limit where refusing starts (OTel's `spike_limit_mib`).
    pub spike_bytes: u64,
    /// How often the resident set size is sampled.
    pub check_interval: Duration,
}

impl MemoryLimitConfig {
    /// The resident set size from which ingest is refused.
    pub fn soft_limit(&self) -> u64 {
        self.limit_bytes.saturating_sub(self.spike_bytes)
    }
}
