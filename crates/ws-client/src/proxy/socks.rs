//! SOCKS5 tunnels (RFC 1928, user/password auth of RFC 1929) on the `tokio-socks` crate,
//! with its errors mapped to [`ProxyFailure`] kinds in words.

use tokio::net::TcpStream;
use tokio_socks::TargetAddr;
use tokio_socks::tcp::Socks5Stream;

use super::ProxyFailure;
use super::address::Endpoint;
use crate::error::Error;

/// Runs the SOCKS5 handshake on `tcp` for a tunnel to `target` (an address, or a name the
/// proxy resolves). Returns the stream, whose next byte is the server's (the reply is read
/// exactly, nothing after it).
pub(crate) async fn tunnel(
    tcp: TcpStream,
    endpoint: &Endpoint,
    target: TargetAddr<'_>,
    remote_dns: bool,
) -> Result<TcpStream, Error> {
    let shown_target = match &target {
        TargetAddr::Ip(address) => address.to_string(),
        TargetAddr::Domain(name, port) => format!("{name}:{port}"),
    };
    let outcome = match &endpoint.credentials {
        Some(credentials) => {
            Socks5Stream::connect_with_password_and_socket(
                tcp,
                target,
                &credentials.user,
                &credentials.password,
            )
            .await
        }
        None => Socks5Stream::connect_with_socket(tcp, target).await,
    };
    match outcome {
        Ok(stream) => Ok(stream.into_inner()),
        Err(error) => {
            let (kind, reason) = describe(&error, endpoint, &shown_target, remote_dns);
            Err(endpoint.error(kind, reason))
        }
    }
}

/// The kind of a `tokio-socks` failure and what to say about it.
fn describe(
    error: &tokio_socks::Error,
    endpoint: &Endpoint,
    target: &str,
    remote_dns: bool,
) -> (ProxyFailure, String) {
    use tokio_socks::Error as E;
    let could_not = |what: &str| {
        (
            ProxyFailure::TargetUnreachable,
            format!("SOCKS5 reply \"{what}\": the proxy could not reach {target}"),
        )
    };
    match error {
        E::NoAcceptableAuthMethods | E::AuthorizationRequired if endpoint.credentials.is_none() => {
            (
                ProxyFailure::AuthRequired,
                "the SOCKS5 proxy accepts no method without a password; give user:password@ \
                 in the proxy URL"
                    .into(),
            )
        }
        E::NoAcceptableAuthMethods => (
            ProxyFailure::AuthRequired,
            "the SOCKS5 proxy accepts neither no authentication nor user/password".into(),
        ),
        E::PasswordAuthFailure(status) => (
            ProxyFailure::AuthFailed,
            format!(
                "the SOCKS5 proxy refused the user name and password in the proxy URL \
                 (status {status})"
            ),
        ),
        E::GeneralSocksServerFailure => could_not("general SOCKS server failure"),
        E::NetworkUnreachable => could_not("network unreachable"),
        E::HostUnreachable => could_not("host unreachable"),
        E::ConnectionRefused => could_not("connection refused"),
        E::TtlExpired => could_not("TTL expired"),
        E::ConnectionNotAllowedByRuleset => (
            ProxyFailure::Refused,
            format!("SOCKS5 reply \"connection not allowed by ruleset\" for {target}"),
        ),
        E::CommandNotSupported => (
            ProxyFailure::Refused,
            "SOCKS5 reply \"command not supported\": the proxy does not make TCP connections"
                .into(),
        ),
        E::AddressTypeNotSupported if remote_dns => (
            ProxyFailure::Refused,
            format!(
                "SOCKS5 reply \"address type not supported\" for {target}: the proxy does not \
                 resolve names; use socks5:// (names resolved here) instead of socks5h://"
            ),
        ),
        E::AddressTypeNotSupported => (
            ProxyFailure::Refused,
            format!("SOCKS5 reply \"address type not supported\" for {target}"),
        ),
        E::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => (
            ProxyFailure::Protocol,
            "the proxy closed the connection during the SOCKS5 handshake; is this a SOCKS5 \
             proxy?"
                .into(),
        ),
        E::Io(io) => (
            ProxyFailure::Protocol,
            format!("the connection to the proxy failed during the SOCKS5 handshake: {io}"),
        ),
        other => (
            ProxyFailure::Protocol,
            format!("the proxy's SOCKS5 answer is broken ({other}); is this a SOCKS5 proxy?"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::address::parse;

    /// Each failure `tokio-socks` reports maps to a kind and names what to do.
    #[test]
    fn every_socks_failure_has_a_kind_and_words() {
        use tokio_socks::Error as E;
        let open = parse("socks5://proxy.invalid:1080").unwrap();
        let guarded = parse("socks5://u:p@proxy.invalid:1080").unwrap();
        let eof = || E::Io(std::io::ErrorKind::UnexpectedEof.into());
        let reset = || E::Io(std::io::ErrorKind::ConnectionReset.into());
        let cases: Vec<(E, &Endpoint, bool, ProxyFailure, &str)> = vec![
            (
                E::NoAcceptableAuthMethods,
                &open,
                false,
                ProxyFailure::AuthRequired,
                "user:password@",
            ),
            (
                E::AuthorizationRequired,
                &open,
                false,
                ProxyFailure::AuthRequired,
                "user:password@",
            ),
            (
                E::NoAcceptableAuthMethods,
                &guarded,
                false,
                ProxyFailure::AuthRequired,
                "neither",
            ),
            (
                E::PasswordAuthFailure(1),
                &guarded,
                false,
                ProxyFailure::AuthFailed,
                "status 1",
            ),
            (
                E::GeneralSocksServerFailure,
                &open,
                false,
                ProxyFailure::TargetUnreachable,
                "general",
            ),
            (
                E::NetworkUnreachable,
                &open,
                false,
                ProxyFailure::TargetUnreachable,
                "network",
            ),
            (
                E::HostUnreachable,
                &open,
                false,
                ProxyFailure::TargetUnreachable,
                "host unreachable",
            ),
            (
                E::ConnectionRefused,
                &open,
                false,
                ProxyFailure::TargetUnreachable,
                "refused",
            ),
            (
                E::TtlExpired,
                &open,
                false,
                ProxyFailure::TargetUnreachable,
                "TTL",
            ),
            (
                E::ConnectionNotAllowedByRuleset,
                &open,
                false,
                ProxyFailure::Refused,
                "ruleset",
            ),
            (
                E::CommandNotSupported,
                &open,
                false,
                ProxyFailure::Refused,
                "TCP",
            ),
            (
                E::AddressTypeNotSupported,
                &open,
                true,
                ProxyFailure::Refused,
                "socks5://",
            ),
            (
                E::AddressTypeNotSupported,
                &open,
                false,
                ProxyFailure::Refused,
                "address type",
            ),
            (
                eof(),
                &open,
                false,
                ProxyFailure::Protocol,
                "closed the connection",
            ),
            (
                reset(),
                &open,
                false,
                ProxyFailure::Protocol,
                "failed during",
            ),
            (
                E::InvalidResponseVersion,
                &open,
                false,
                ProxyFailure::Protocol,
                "broken",
            ),
        ];
        for (error, endpoint, remote_dns, kind, words) in cases {
            let (got, reason) = describe(&error, endpoint, "example.org:80", remote_dns);
            assert_eq!(got, kind, "{error:?}");
            assert!(reason.contains(words), "{error:?}: {reason}");
        }
    }
}
