//! TLS for the daemon's TCP listeners (rustls with ring), for the agent's connection to its
//! collector and for a query node's calls to its ingesters: certificates and keys are PEM
//! files, loaded once at start-up with errors that name the file; mutual TLS when a client CA
//! is given.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use spoor_config::tls::{ClientTlsFiles, ServerTlsFiles};

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// A PEM file read once: its bytes (for tonic) and its certificates (for rustls).
struct PemCerts {
    pem: Vec<u8>,
    certs: Vec<CertificateDer<'static>>,
}

fn certs(path: &Path, what: &str) -> anyhow::Result<PemCerts> {
    let pem = read(path, what)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{what} {} is not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{what} {} holds no certificate", path.display());
    }
    Ok(PemCerts { pem, certs })
}

fn key(path: &Path, what: &str) -> anyhow::Result<(Vec<u8>, PrivateKeyDer<'static>)> {
    let pem = read(path, what)?;
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| anyhow::anyhow!("{what} {} holds no private key: {e}", path.display()))?;
    Ok((pem, key))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The listeners' TLS, every file read and checked once: the rustls configuration of the HTTP
/// listeners (ALPN h2 and http/1.1) and tonic's settings for the gRPC ones.
pub struct ServerTls {
    /// For the HTTP listeners.
    pub http: Arc<rustls::ServerConfig>,
    /// For the gRPC listeners.
    pub grpc: tonic::transport::ServerTlsConfig,
}

/// Loads [`ServerTls`] from `files`; errors name the file.
pub fn server_tls(files: &ServerTlsFiles) -> anyhow::Result<ServerTls> {
    let chain = certs(&files.cert, "tls.cert-file")?;
    let (key_pem, key) = key(&files.key, "tls.key-file")?;
    let client_ca = match &files.client_ca {
        None => None,
        Some(ca) => Some((ca, certs(ca, "tls.client-ca-file")?)),
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("tls: no protocol versions")?;
    let builder = match &client_ca {
        None => builder.with_no_client_auth(),
        Some((path, ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in &ca.certs {
                roots.add(c.clone()).with_context(|| {
                    format!(
                        "tls.client-ca-file {}: unusable certificate",
                        path.display()
                    )
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .with_context(|| format!("tls.client-ca-file {}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut http = builder
        .with_single_cert(chain.certs.clone(), key)
        .with_context(|| {
            format!(
                "tls.cert-file {} and tls.key-file {} do not make a usable pair",
                files.cert.display(),
                files.key.display()
            )
        })?;
    http.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut grpc = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(chain.pem, key_pem));
    if let Some((_, ca)) = client_ca {
        grpc = grpc.client_ca_root(tonic::transport::Certificate::from_pem(ca.pem));
    }
    Ok(ServerTls {
        http: Arc::new(http),
        grpc,
    })
}

/// tonic's client TLS settings for an `https://` collector endpoint.
pub fn grpc_client_config(
    files: &ClientTlsFiles,
) -> anyhow::Result<tonic::transport::ClientTlsConfig> {
    let mut cfg = tonic::transport::ClientTlsConfig::new();
    if let Some(ca) = &files.ca {
        let ca = certs(ca, "agent.tls.ca-file")?;
        cfg = cfg.ca_certificate(tonic::transport::Certificate::from_pem(ca.pem));
    }
    match (&files.cert, &files.key) {
        (Some(cert), Some(key_path)) => {
            let chain = certs(cert, "agent.tls.cert-file")?;
            let (key_pem, _) = key(key_path, "agent.tls.key-file")?;
            cfg = cfg.identity(tonic::transport::Identity::from_pem(chain.pem, key_pem));
        }
        (None, None) => {}
        _ => anyhow::bail!("agent.tls.cert-file and agent.tls.key-file go together"),
    }
    Ok(cfg)
}

/// The rustls client configuration of a connection between Spoor's roles and their internal
/// peers (a query node's calls to `https://` ingesters, collectors' and ingesters' connections
/// to NATS): the peer's certificate must chain to `files.ca` (required: these peers are
/// internal and carry a private CA's certificates), and `files.cert` / `files.key` are
/// presented for mutual TLS. `flag` prefixes the option names in errors
/// (`query.ingesters-tls`, `span-log.tls`); `peer` says what the CA is for (`call https://
/// ingesters`).
pub fn client_config(
    files: &ClientTlsFiles,
    flag: &str,
    peer: &str,
) -> anyhow::Result<rustls::ClientConfig> {
    let Some(ca_path) = &files.ca else {
        anyhow::bail!("{flag}.ca-file is needed to {peer} (the CA that signed their certificates)");
    };
    let what = format!("{flag}.ca-file");
    let ca = certs(ca_path, &what)?;
    let mut roots = rustls::RootCertStore::empty();
    for c in ca.certs {
        roots
            .add(c)
            .with_context(|| format!("{what} {}: unusable certificate", ca_path.display()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("tls: no protocol versions")?
        .with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (Some(cert), Some(key_path)) => {
            let (cert_flag, key_flag) = (format!("{flag}.cert-file"), format!("{flag}.key-file"));
            let chain = certs(cert, &cert_flag)?;
            let (_, key) = key(key_path, &key_flag)?;
            builder
                .with_client_auth_cert(chain.certs, key)
                .with_context(|| {
                    format!(
                        "{cert_flag} {} and {key_flag} {} do not make a usable pair",
                        cert.display(),
                        key_path.display()
                    )
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => anyhow::bail!("{flag}.cert-file and {flag}.key-file go together"),
    };
    Ok(config)
}

static CLIENT: std::sync::OnceLock<tonic::transport::ClientTlsConfig> = std::sync::OnceLock::new();

/// Loads the agent's TLS files for its connections to the collector (once, at start-up).
pub fn set_client_files(files: ClientTlsFiles) -> anyhow::Result<()> {
    let _ = CLIENT.set(grpc_client_config(&files)?);
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
    let cfg = CLIENT.get().cloned().unwrap_or_default();
    endpoint
        .tls_config(cfg)
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
        let err = format!("{:#}", server_tls(&files).map(|_| ()).unwrap_err());
        assert!(err.starts_with("cannot read tls.cert-file "), "{err}");
        assert!(err.contains("missing.pem"), "{err}");
        let files = ServerTlsFiles {
            cert: junk.clone(),
            ..files
        };
        let err = format!("{:#}", server_tls(&files).map(|_| ()).unwrap_err());
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
