//! `Upstream`: where `chaos` mode forwards connections, from `--upstream` (a `ws://` or
//! `wss://` URL, whose path the ready line keeps, or a bare `host:port`).

use std::time::Duration;

use tokio::net::TcpStream;

/// The server behind the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Host name or IP address (without IPv6 brackets); resolved at every connect.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `ws` or `wss`: the scheme of the proxy's own URL (TLS passes through untouched).
    pub scheme: &'static str,
    /// Path and query of the URL (`/` for a bare `host:port`).
    pub path: String,
}

impl Upstream {
    /// Parses `ws://host[:port]/path`, `wss://...` or `host:port`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest, default_port) = if let Some(rest) = text.strip_prefix("ws://") {
            ("ws", rest, Some(80))
        } else if let Some(rest) = text.strip_prefix("wss://") {
            ("wss", rest, Some(443))
        } else if text.contains("://") {
            return Err("the upstream must be a ws:// or wss:// URL or host:port".into());
        } else {
            ("ws", text, None)
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) if default_port.is_some() => rest.split_at(at),
            Some(_) => return Err("a host:port upstream has no path; use a ws:// URL".into()),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err("the upstream may not carry credentials".into());
        }
        let (host, port) = split_host_port(authority)?;
        let port = match (port, default_port) {
            (Some(port), _) => port,
            (None, Some(port)) => port,
            (None, None) => {
                return Err("write the upstream as host:port, e.g. 10.0.0.5:9001".into());
            }
        };
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            scheme,
            path,
        })
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Opens a TCP connection to the upstream within `timeout`.
    pub async fn connect(&self, timeout: Duration) -> std::io::Result<TcpStream> {
        let connecting = TcpStream::connect((self.host.as_str(), self.port));
        match tokio::time::timeout(timeout, connecting).await {
            Ok(connected) => connected,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {timeout:?}"),
            )),
        }
    }
}

/// Splits `host:port` or `[v6]:port` (the port may be missing).
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ]")?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or("expected :port after ]")?),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            Some(_) => return Err("put an IPv6 address in brackets: [fd00::5]:9001".into()),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the upstream has no host".into());
    }
    let port = port
        .map(|port| {
            port.parse::<u16>()
                .ok()
                .filter(|&port| port != 0)
                .ok_or_else(|| format!("`{port}` is not a port number (1-65535)"))
        })
        .transpose()?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_host_ports_parse() {
        let up = Upstream::parse("ws://10.1.2.3:9001/echo?x=1").unwrap();
        assert_eq!(
            (up.host.as_str(), up.port, up.scheme),
            ("10.1.2.3", 9001, "ws")
        );
        assert_eq!(up.path, "/echo?x=1");
        assert_eq!(up.authority(), "10.1.2.3:9001");

        let up = Upstream::parse("10.1.2.3:9001").unwrap();
        assert_eq!((up.port, up.path.as_str()), (9001, "/"));

        let up = Upstream::parse("wss://example.com").unwrap();
        assert_eq!((up.port, up.scheme, up.path.as_str()), (443, "wss", "/"));
        assert_eq!(Upstream::parse("ws://h?q").unwrap().path, "/?q");

        let up = Upstream::parse("ws://[fd00::1]:9001/").unwrap();
        assert_eq!(
            (up.host.as_str(), up.authority()),
            ("fd00::1", "[fd00::1]:9001".into())
        );
    }

    #[test]
    fn bad_upstreams_are_refused() {
        for bad in [
            "http://10.1.2.3:1/",
            "10.1.2.3",
            "10.1.2.3:0",
            "10.1.2.3:99999",
            "10.1.2.3:1/path",
            ":9001",
            "ws://:9001/",
            "ws://user@h:1/",
            "fd00::1:9001",
            "ws://[::1/",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }
}
