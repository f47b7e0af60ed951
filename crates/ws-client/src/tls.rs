//! TLS for `wss://` on rustls (ring provider): the trusted roots (webpki roots plus the
//! configured CAs), the handshake with SNI, the stream that carries plain or TLS bytes, and
//! the mapping of handshake failures to [`Error::Tls`].

use std::io;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

use crate::config::TransportConfig;
use crate::error::{Error, TlsFailure};

/// The byte stream under a connection: plain TCP for `ws://` (left), TLS over TCP for
/// `wss://` (right). tokio-util's `Either` forwards reads and writes to whichever it holds;
/// the TLS state is boxed so that plain connections stay as small as a bare `TcpStream`.
pub(crate) type Socket = tokio_util::either::Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// The name `host` (from `url`) is checked against and sent as SNI. Checked before any
/// I/O: a host that is a valid URL host but no TLS name (a wildcard, say) is a bad URL.
pub(crate) fn server_name(url: &str, host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_owned()).map_err(|e| Error::InvalidUrl {
        url: url.to_owned(),
        reason: format!("host {host:?} cannot be used as a TLS server name: {e}"),
    })
}

/// Runs the TLS handshake over `tcp` with `name` (see [`server_name`]) as SNI and as the
/// name the certificate must cover.
pub(crate) async fn handshake(
    tcp: TcpStream,
    name: ServerName<'static>,
    host: &str,
    config: &TransportConfig,
) -> Result<Socket, Error> {
    let connector = TlsConnector::from(Arc::new(client_config(config)?));
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| from_handshake_error(host, e))?;
    Ok(Socket::Right(Box::new(stream)))
}

/// The rustls configuration: webpki roots plus `extra_root_certificates`, TLS 1.2 and 1.3,
/// ALPN `http/1.1`. The ring provider is given explicitly, so no process-wide default is
/// needed.
fn client_config(config: &TransportConfig) -> Result<ClientConfig, Error> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for (index, bytes) in config.extra_root_certificates.iter().enumerate() {
        let invalid = |reason: String| {
            Error::InvalidConfig(format!("extra_root_certificates[{index}]: {reason}"))
        };
        for certificate in parse_certificates(bytes).map_err(invalid)? {
            roots
                .add(certificate)
                .map_err(|e| invalid(format!("not a usable CA certificate ({e})")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidConfig(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(client)
}

/// Parses one configured root: PEM (one or more `CERTIFICATE` blocks) or a DER certificate.
pub(crate) fn parse_certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let is_pem = bytes.windows(11).any(|window| window == b"-----BEGIN ");
    if !is_pem {
        if bytes.first() != Some(&0x30) {
            return Err("neither PEM nor a DER certificate".into());
        }
        return Ok(vec![CertificateDer::from(bytes.to_vec())]);
    }
    let certificates = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {e}"))?;
    if certificates.is_empty() {
        return Err("PEM without a CERTIFICATE block".into());
    }
    Ok(certificates)
}

/// Tells apart an untrusted certificate, a certificate for another host, and the rest.
fn from_handshake_error(host: &str, error: io::Error) -> Error {
    let tls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let (kind, reason) = match tls_error {
        Some(rustls::Error::InvalidCertificate(
            certificate @ (CertificateError::NotValidForName
            | CertificateError::NotValidForNameContext { .. }),
        )) => (
            TlsFailure::WrongHost,
            format!(
                "certificate is not valid for host {host} ({certificate}); connect by a \
                 name or address the certificate covers"
            ),
        ),
        Some(rustls::Error::InvalidCertificate(certificate)) => (
            TlsFailure::UntrustedCertificate,
            format!(
                "certificate of {host} not trusted ({certificate}); if it is issued by your \
                 own CA, add that CA with TransportConfig::extra_root_certificates or \
                 TransportConfig::with_ca_file"
            ),
        ),
        Some(rustls::Error::InvalidMessage(message)) => (
            TlsFailure::Other,
            format!("{host} did not answer with TLS ({message:?}); is it a ws:// server?"),
        ),
        Some(other) => (
            TlsFailure::Other,
            format!("TLS handshake with {host} failed: {other}"),
        ),
        None if error.kind() == io::ErrorKind::UnexpectedEof => (
            TlsFailure::Other,
            format!("{host} closed the connection during the TLS handshake"),
        ),
        None => (
            TlsFailure::Other,
            format!("TLS handshake with {host} failed: {error}"),
        ),
    };
    Error::Tls {
        host: host.to_owned(),
        kind,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> rcgen::Certificate {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap()
    }

    #[test]
    fn pem_and_der_roots_parse() {
        let (first, second) = (ca(), ca());
        let pem = format!("# comment\n{}\n{}", first.pem(), second.pem());
        let parsed = parse_certificates(pem.as_bytes()).unwrap();
        assert_eq!(parsed, vec![first.der().clone(), second.der().clone()]);
        let parsed = parse_certificates(first.der()).unwrap();
        assert_eq!(parsed, vec![first.der().clone()]);
    }

    #[test]
    fn bad_roots_are_refused_with_the_index() {
        assert!(parse_certificates(b"hello").is_err());
        assert!(parse_certificates(b"").is_err());
        let key_only = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert!(parse_certificates(key_only.as_bytes()).is_err());
        let config = TransportConfig {
            extra_root_certificates: vec![ca().pem().into_bytes(), b"\x30\x03junk".to_vec()],
            ..Default::default()
        };
        let error = client_config(&config).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidConfig(m) if m.contains("extra_root_certificates[1]")),
            "{error}"
        );
    }

    #[test]
    fn good_roots_make_a_config() {
        let config = TransportConfig {
            extra_root_certificates: vec![ca().pem().into_bytes(), ca().der().to_vec()],
            ..Default::default()
        };
        let client = client_config(&config).unwrap();
        assert_eq!(client.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
