//! The TLS files the config names (`[tls]`, `agent.tls-*`); the daemon's `tls` module loads
//! them.

use std::path::PathBuf;

/// The server side: this daemon's certificate chain and key, and optionally the CA whose
/// client certificates it requires (mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate it signed.
    pub client_ca: Option<PathBuf>,
}

/// The client side (agent -> collector): the CA to trust instead of none, and optionally a
/// client certificate and key for mutual TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// PEM CA certificates the collector's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM client key.
    pub key: Option<PathBuf>,
}
