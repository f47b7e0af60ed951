//! `--tls`: a throw-away CA and a server certificate made at start-up with rcgen, the CA
//! written as PEM to a fresh temporary directory (removed at exit), the rustls acceptor
//! (ring provider), and [`ServerSocket`], the stream that carries plain or TLS bytes.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, server::TlsStream};

/// The byte stream under a session: plain TCP, or TLS over TCP with `--tls`. The TLS state
/// is boxed so that plain connections (and load mode's idle ones) stay as small as before.
#[derive(Debug)]
pub enum ServerSocket {
    /// A `ws://` connection.
    Plain(TcpStream),
    /// A `wss://` connection.
    Tls(Box<TlsStream<TcpStream>>),
}

impl ServerSocket {
    /// Polls until bytes may be read without waiting, like `TcpStream::poll_read_ready`;
    /// for TLS also ready while decrypted bytes are still buffered.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            ServerSocket::Plain(tcp) => tcp.poll_read_ready(cx),
            ServerSocket::Tls(tls) => {
                let (tcp, connection) = tls.get_ref();
                if connection.wants_read() {
                    tcp.poll_read_ready(cx)
                } else {
                    Poll::Ready(Ok(()))
                }
            }
        }
    }
}

/// The server's TLS identity: the acceptor and where the CA certificate was written.
/// Dropping it removes the temporary directory.
pub struct ServerTls {
    acceptor: TlsAcceptor,
    dir: PathBuf,
    ca_path: PathBuf,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Makes a CA and a certificate signed by it for `names` (DNS names or IP addresses),
    /// and writes the CA certificate to a new directory under the system's temp dir.
    pub fn generate(names: &[String]) -> anyhow::Result<Self> {
        let ca_key = KeyPair::generate().context("cannot generate the CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "test-servers throw-away CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key)
            .context("cannot make the CA certificate")?;

        let key = KeyPair::generate().context("cannot generate the server key")?;
        let mut params = CertificateParams::new(names.to_vec())
            .with_context(|| format!("cannot make a certificate for {names:?}"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "test-servers");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let certificate = params
            .signed_by(&key, &ca)
            .context("cannot sign the server certificate")?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS set-up")?
            .with_no_client_auth()
            .with_single_cert(vec![certificate.der().clone()], key_der)
            .context("TLS set-up: the generated certificate was refused")?;

        let dir = unique_temp_dir()?;
        let ca_path = dir.join("ca.pem");
        let tls = Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            dir,
            ca_path,
        };
        std::fs::write(&tls.ca_path, ca.pem())
            .with_context(|| format!("cannot write {}", tls.ca_path.display()))?;
        Ok(tls)
    }

    /// The PEM file holding the CA certificate clients must trust.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// Runs the server side of the TLS handshake (the caller bounds it with its deadline).
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<ServerSocket> {
        let tls = self.acceptor.accept(tcp).await?;
        Ok(ServerSocket::Tls(Box::new(tls)))
    }
}

impl Drop for ServerTls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The names a `--tls` certificate covers unless `--tls-names` says otherwise: `localhost`,
/// `127.0.0.1`, `::1` and the listening address (when it is a specific one).
pub fn default_names(host: IpAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
    let host = host.to_string();
    if !names.contains(&host) && !host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
        names.push(host);
    }
    names
}

/// A directory that did not exist before, under the system's temp dir.
fn unique_temp_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..100u32 {
        let dir = base.join(format!(
            "test-servers-tls-{}-{nanos}-{attempt}",
            std::process::id()
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", dir.display()));
            }
        }
    }
    anyhow::bail!("cannot find a free directory name under {}", base.display())
}

impl AsyncRead for ServerSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerSocket::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            ServerSocket::Tls(tls) => Pin::new(tls).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerSocket::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            ServerSocket::Tls(tls) => Pin::new(tls).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerSocket::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            ServerSocket::Tls(tls) => Pin::new(tls).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ServerSocket::Plain(tcp) => tcp.is_write_vectored(),
            ServerSocket::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerSocket::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            ServerSocket::Tls(tls) => Pin::new(tls).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerSocket::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            ServerSocket::Tls(tls) => Pin::new(tls).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_loopback_and_the_listening_address() {
        let names = default_names("127.0.0.1".parse().unwrap());
        assert_eq!(names, ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(default_names("0.0.0.0".parse().unwrap()).len(), 3);
        assert!(default_names("10.1.2.3".parse().unwrap()).contains(&"10.1.2.3".to_owned()));
    }

    #[test]
    fn the_ca_file_is_written_and_removed() {
        let tls = ServerTls::generate(&default_names("127.0.0.1".parse().unwrap())).unwrap();
        let pem = std::fs::read_to_string(tls.ca_path()).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        let dir = tls.dir.clone();
        drop(tls);
        assert!(!dir.exists());
    }
}
