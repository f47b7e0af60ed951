//! The two halves of a connection's socket (plain TCP or TLS), so that reading and
//! writing can live in different tasks without a lock around the whole socket.

use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

use crate::tls::Socket;

/// What frames are read from.
pub(crate) type ReadHalf = Either<OwnedReadHalf, tokio::io::ReadHalf<Box<TlsStream<TcpStream>>>>;
/// What frames are written to.
pub(crate) type WriteHalf = Either<OwnedWriteHalf, tokio::io::WriteHalf<Box<TlsStream<TcpStream>>>>;

/// Splits a socket: TCP without any lock (the kernel socket is shared), TLS through tokio's
/// split, since one TLS session serves both directions.
pub(crate) fn split(socket: Socket) -> (ReadHalf, WriteHalf) {
    match socket {
        Either::Left(tcp) => {
            let (read, write) = tcp.into_split();
            (Either::Left(read), Either::Left(write))
        }
        Either::Right(tls) => {
            let (read, write) = tokio::io::split(tls);
            (Either::Right(read), Either::Right(write))
        }
    }
}
