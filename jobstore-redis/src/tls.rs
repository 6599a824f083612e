//! `rediss://` servers (feature `tls`): rustls with ring, the server's certificate checked
//! against the webpki roots or against the roots the builder was given.

use redis::ConnectionAddr;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use scheduler_core::{Error, Result};

/// The client for `info`, a TLS address parsed from a `rediss://` URL, trusting only the
/// certificates of `roots` (PEM) when given. `redacted` is the URL as errors show it.
///
/// Every connection of the store (the data connection, which also carries the cluster
/// heartbeats, and the wake-up subscription) is opened by this one client, so all of them
/// check the server the same way.
pub(crate) fn client(
    info: redis::ConnectionInfo,
    roots: Option<&[u8]>,
    redacted: &str,
) -> Result<redis::Client> {
    if let ConnectionAddr::TcpTls { insecure: true, .. } = info.addr() {
        return Err(Error::config(format!(
            "the Redis URL {redacted} asks for `#insecure` (no check of the server's \
             certificate), which the Redis job store does not offer; to trust a private CA, \
             give its certificate to RedisStoreBuilder::tls_root_certificates"
        )));
    }
    install_ring();
    let Some(pem) = roots else {
        return redis::Client::open(info)
            .map_err(|_| Error::config(format!("invalid Redis URL {redacted}")));
    };
    check_roots(pem)?;
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem.to_vec()),
    };
    redis::Client::build_with_tls(info, certificates).map_err(|e| {
        Error::config(format!(
            "the TLS root certificates for the Redis server at {redacted} cannot be used: {e}"
        ))
    })
}

/// Refuses roots that would trust nothing: the driver reads text without a certificate block
/// as an empty set of roots, and every connection would then fail its certificate check with
/// nothing pointing at the PEM.
fn check_roots(pem: &[u8]) -> Result<()> {
    let mut certificates = 0;
    for certificate in CertificateDer::pem_slice_iter(pem) {
        certificate.map_err(|e| {
            Error::config(format!(
                "the Redis job store's TLS root certificates are not valid PEM: {e}"
            ))
        })?;
        certificates += 1;
    }
    if certificates == 0 {
        return Err(Error::config(
            "the Redis job store's TLS root certificates hold no certificate: expected PEM \
             (`-----BEGIN CERTIFICATE-----` blocks)",
        ));
    }
    Ok(())
}

/// rustls needs one crypto provider per process. It chooses by itself only when exactly one
/// is compiled in, and panics at the first connection when the application also enables
/// aws-lc-rs (rustls's default feature): choosing ring here first avoids that. An application
/// that installed a provider already keeps its own (the call then does nothing).
fn install_ring() {
    let _already_chosen = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(url: &str) -> redis::ConnectionInfo {
        redis::Client::open(url)
            .unwrap()
            .get_connection_info()
            .clone()
    }

    #[test]
    fn insecure_urls_and_roots_without_certificates_are_config_errors() {
        let kind = |r: Result<redis::Client>| r.unwrap_err().kind();
        let config = scheduler_core::ErrorKind::Config;
        let url = "rediss://:hunter2@127.0.0.1:6380/#insecure";
        let e = client(info(url), None, &crate::redact(url)).unwrap_err();
        assert_eq!(e.kind(), config);
        assert!(e.to_string().contains("#insecure"), "{e}");
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
        let tls = || info("rediss://127.0.0.1:6380/");
        assert_eq!(kind(client(tls(), Some(b"not a certificate"), "x")), config);
        let garbled = b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        assert_eq!(kind(client(tls(), Some(garbled), "x")), config);
        assert!(client(tls(), None, "x").is_ok());
    }
}
