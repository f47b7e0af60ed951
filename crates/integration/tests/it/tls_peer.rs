//! A raw `wss://` peer for client-side tests over TLS: a tokio listener on 127.0.0.1:0 (with a
//! small receive buffer, so a client's writes back up as soon as the peer stops reading), a
//! throw-away CA and server certificate made with rcgen, rustls on the server side, the
//! upgrade answered by hand, then frames read and written with `ws_client::wire` in the
//! server role.

use std::sync::Arc;

use bytes::BytesMut;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use ws_client::wire::{Inbound, Outbound, ReadLimits, Role};
use ws_client::{Message, MessageType, TransportConfig};

use crate::raw_peer::read_upgrade_request;
use crate::support::within;

type Tls = TlsStream<TcpStream>;

/// A listening TLS server whose certificate (for 127.0.0.1) is signed by a CA of its own.
pub(crate) struct TlsServer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ca_der: Vec<u8>,
}

impl TlsServer {
    /// Listens on 127.0.0.1:0 with a 4 KiB receive buffer.
    pub(crate) fn bind_small_receive_buffer() -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let ca_params = {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
        };
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key_der)
            .unwrap();
        Self {
            listener: socket.listen(16).unwrap(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_der: ca.der().to_vec(),
        }
    }

    /// A transport configuration for this server that trusts its CA.
    pub(crate) fn transport(&self) -> TransportConfig {
        let url = format!("wss://{}/", self.listener.local_addr().unwrap());
        TransportConfig {
            extra_root_certificates: vec![self.ca_der.clone()],
            ..TransportConfig::new(url)
        }
    }

    /// Accepts one connection, completes TLS and the upgrade, and returns the peer.
    pub(crate) async fn accept_peer(&self) -> TlsPeer {
        let (tcp, _) = within(self.listener.accept()).await.unwrap();
        let mut tls = within(self.acceptor.accept(tcp)).await.expect("TLS accept");
        let request = read_upgrade_request(&mut tls).await;
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            request.accept_key
        );
        within(tls.write_all(response.as_bytes())).await.unwrap();
        within(tls.flush()).await.unwrap();
        let (read, write) = tokio::io::split(tls);
        let limits = ReadLimits {
            message: 64 << 20,
            frame: 64 << 20,
            read_size: 64 << 10,
        };
        TlsPeer {
            inbound: Inbound::new(read, BytesMut::new(), limits, Role::Server),
            outbound: Outbound::new(write, Role::Server),
        }
    }
}

/// One accepted `wss://` connection, after the upgrade.
pub(crate) struct TlsPeer {
    inbound: Inbound<ReadHalf<Tls>>,
    outbound: Outbound<WriteHalf<Tls>>,
}

impl TlsPeer {
    /// The next frame the client sent; `None` once the connection ended (EOF, a reset, or
    /// a TLS record cut short).
    pub(crate) async fn next_message(&mut self) -> Option<Message> {
        within(self.inbound.next()).await.ok().flatten()
    }

    /// Sends one message.
    pub(crate) async fn send(&mut self, message_type: MessageType, data: &[u8]) {
        self.outbound.encode(message_type, data);
        within(self.outbound.flush()).await.expect("write a frame");
    }
}
