//! Outbound TLS: the certificate authorities kaunter trusts for https (the public web PKI from
//! `webpki-roots`, plus any `[server] extra_ca_files`), and a DNS resolver that refuses internal
//! addresses, used at connect time so a name cannot be re-pointed inside the network between the
//! checkpoint's check and the connection.

use super::is_internal;
use hyper_util::client::legacy::connect::dns::Name;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The TLS client configuration: web PKI roots plus the PEM certificates in `extra_ca_files`
/// (relative paths against `base_dir`).
pub fn client_config(extra_ca_files: &[PathBuf], base_dir: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for file in extra_ca_files {
        let path = if file.is_absolute() {
            file.clone()
        } else {
            base_dir.join(file)
        };
        let pem = std::fs::read(&path)
            .map_err(|e| anyhow::anyhow!("server.extra_ca_files: cannot read {}: {e}", path.display()))?;
        let mut found = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert =
                cert.map_err(|e| anyhow::anyhow!("server.extra_ca_files: {} is not PEM: {e}", path.display()))?;
            roots.add(cert).map_err(|e| {
                anyhow::anyhow!(
                    "server.extra_ca_files: {} holds a certificate rustls cannot use: {e}",
                    path.display()
                )
            })?;
            found += 1;
        }
        if found == 0 {
            anyhow::bail!(
                "server.extra_ca_files: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            );
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Resolves host names for plugin egress and fails when any address is internal (loopback,
/// link-local, private, ...). IP literals never reach a resolver: they are allowed only when a
/// grant names them exactly, which the checkpoint has already checked.
#[derive(Clone, Default)]
pub struct CheckedResolver;

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if let Some(bad) = addresses.iter().find(|a| is_internal(a.ip())) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{name} now resolves to the internal address {}", bad.ip()),
                ));
            }
            Ok(addresses.into_iter())
        })
    }
}
