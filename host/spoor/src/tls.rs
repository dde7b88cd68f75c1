//! TLS for the daemon's TCP listeners (rustls with ring) and for the agent's connection to its
//! collector: certificates and keys are PEM files, loaded once at start-up with errors that
//! name the file; mutual TLS when a client CA is given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

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

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn certs(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = read(path, what)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{what} {} is not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{what} {} holds no certificate", path.display());
    }
    Ok(certs)
}

fn key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = read(path, "tls.key-file")?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| anyhow::anyhow!("tls.key-file {} holds no private key: {e}", path.display()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration of the HTTP listeners (ALPN h2 and http/1.1).
pub fn http_server_config(files: &ServerTlsFiles) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("tls: no protocol versions")?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca, "tls.client-ca-file")? {
                roots.add(c).with_context(|| {
                    format!("tls.client-ca-file {}: unusable certificate", ca.display())
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .with_context(|| format!("tls.client-ca-file {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder
        .with_single_cert(certs(&files.cert, "tls.cert-file")?, key(&files.key)?)
        .with_context(|| {
            format!(
                "tls.cert-file {} and tls.key-file {} do not make a usable pair",
                files.cert.display(),
                files.key.display()
            )
        })?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// tonic's server TLS settings for the gRPC listeners.
pub fn grpc_server_config(
    files: &ServerTlsFiles,
) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
    // Parse once the rustls way so bad files fail with the same messages as HTTP.
    http_server_config(files)?;
    let identity = tonic::transport::Identity::from_pem(
        read(&files.cert, "tls.cert-file")?,
        read(&files.key, "tls.key-file")?,
    );
    let mut cfg = tonic::transport::ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &files.client_ca {
        cfg = cfg.client_ca_root(tonic::transport::Certificate::from_pem(read(
            ca,
            "tls.client-ca-file",
        )?));
    }
    Ok(cfg)
}

/// tonic's client TLS settings for an `https://` collector endpoint.
pub fn grpc_client_config(
    files: &ClientTlsFiles,
) -> anyhow::Result<tonic::transport::ClientTlsConfig> {
    let mut cfg = tonic::transport::ClientTlsConfig::new();
    if let Some(ca) = &files.ca {
        certs(ca, "agent.tls.ca-file")?;
        cfg = cfg.ca_certificate(tonic::transport::Certificate::from_pem(read(
            ca,
            "agent.tls.ca-file",
        )?));
    }
    match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            certs(cert, "agent.tls.cert-file")?;
            cfg = cfg.identity(tonic::transport::Identity::from_pem(
                read(cert, "agent.tls.cert-file")?,
                read(key, "agent.tls.key-file")?,
            ));
        }
        (None, None) => {}
        _ => anyhow::bail!("agent.tls.cert-file and agent.tls.key-file go together"),
    }
    Ok(cfg)
}

static CLIENT: std::sync::OnceLock<ClientTlsFiles> = std::sync::OnceLock::new();

/// Sets the agent's TLS files for its connections to the collector (once, at start-up).
pub fn set_client_files(files: ClientTlsFiles) -> anyhow::Result<()> {
    grpc_client_config(&files)?;
    let _ = CLIENT.set(files);
    Ok(())
}

/// `endpoint` with TLS when `url` is `https://` (trusting the configured CA, presenting the
/// configured client certificate); unchanged for `http://`.
pub fn client_endpoint(
    endpoint: tonic::transport::Endpoint,
    url: &str,
) -> anyhow::Result<tonic::transport::Endpoint> {
    if !url.starts_with("https://") {
        return Ok(endpoint);
    }
    let files = CLIENT.get().cloned().unwrap_or_default();
    endpoint
        .tls_config(grpc_client_config(&files)?)
        .map_err(|e| anyhow::anyhow!("tls for {url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not pem").unwrap();
        let files = ServerTlsFiles {
            cert: dir.path().join("missing.pem"),
            key: junk.clone(),
            client_ca: None,
        };
        let err = format!("{:#}", http_server_config(&files).unwrap_err());
        assert!(err.starts_with("cannot read tls.cert-file "), "{err}");
        assert!(err.contains("missing.pem"), "{err}");
        let files = ServerTlsFiles {
            cert: junk.clone(),
            ..files
        };
        let err = format!("{:#}", http_server_config(&files).unwrap_err());
        assert!(err.contains("holds no certificate"), "{err}");
        let err = grpc_client_config(&ClientTlsFiles {
            cert: Some(junk),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "agent.tls.cert-file and agent.tls.key-file go together"
        );
    }
}
