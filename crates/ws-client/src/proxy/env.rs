//! `Proxy::FromEnv`: the proxy variables in their order of precedence and `NO_PROXY`
//! matching, as pure functions of a variable lookup (tests never touch the process's
//! environment).

use std::net::IpAddr;

use super::address::{self, Endpoint};
use crate::error::Error;

/// Variables read for `ws://` URLs, first set and not empty wins.
const PLAIN: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];
/// Variables read for `wss://` URLs, first set and not empty wins.
const SECURE: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
/// The exception list, lower case first.
const EXCEPTIONS: [&str; 2] = ["no_proxy", "NO_PROXY"];
/// Set (not empty) by a CGI server for each request it runs a program for. There a request
/// header `Proxy:` becomes the variable `HTTP_PROXY` (httpoxy, CVE-2016-5385), so a client
/// of that server could choose the proxy: `HTTP_PROXY` is then not read, as Go's
/// `net/http` does (curl never reads it). `http_proxy` and the others no header can set.
const CGI: &str = "REQUEST_METHOD";
/// The variable a CGI request can set.
const CGI_SETTABLE: &str = "HTTP_PROXY";

/// The proxy the environment (read through `lookup`) names for `target`, or `None` for a
/// direct connection (`HTTP_PROXY` left out under CGI, see [`CGI`]). A value that is not a usable proxy URL fails with
/// [`Error::InvalidConfig`] naming the variable.
pub(crate) fn choose(
    target: &url::Url,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Endpoint>, Error> {
    let cgi = lookup(CGI).is_some_and(|value| !value.is_empty());
    let first_set = |names: &[&'static str]| {
        names.iter().find_map(|&name| {
            if cgi && name == CGI_SETTABLE {
                return None;
            }
            let value = lookup(name)?;
            (!value.trim().is_empty()).then_some((name, value))
        })
    };
    let names: &[&str] = if target.scheme() == "wss" {
        &SECURE
    } else {
        &PLAIN
    };
    let Some((name, value)) = first_set(names) else {
        return Ok(None);
    };
    let host = target.host_str().unwrap_or_default();
    let port = target.port_or_known_default().unwrap_or(80);
    if let Some((_, exceptions)) = first_set(&EXCEPTIONS) {
        if bypasses(&exceptions, host, port) {
            return Ok(None);
        }
    }
    address::parse(&value).map(Some).map_err(|reason| {
        Error::InvalidConfig(format!(
            "proxy URL in ${name} ({:?}): {reason}",
            address::redacted(&value)
        ))
    })
}

/// Whether the `NO_PROXY` list `exceptions` covers `host` (as written in the URL) on `port`.
pub(crate) fn bypasses(exceptions: &str, host: &str, port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let host_ip = host.parse::<IpAddr>().ok();
    exceptions
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|entry| !entry.is_empty())
        .any(|entry| covers(&entry.to_ascii_lowercase(), &host, host_ip, port))
}

/// Whether one `NO_PROXY` entry covers the host (lower case; `host_ip` when it is an
/// address) on `port`.
fn covers(entry: &str, host: &str, host_ip: Option<IpAddr>, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    if let Some((network, bits)) = entry.split_once('/') {
        return match (host_ip, network.parse::<IpAddr>(), bits.parse::<u8>()) {
            (Some(ip), Ok(network), Ok(bits)) => in_network(ip, network, bits),
            _ => false,
        };
    }
    let Some((name, entry_port)) = split_port(entry) else {
        return false;
    };
    if entry_port.is_some_and(|entry_port| entry_port != port) {
        return false;
    }
    match (host_ip, name.parse::<IpAddr>()) {
        (Some(ip), Ok(listed)) => ip == listed,
        (None, Err(_)) => {
            let name = name
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_end_matches('.');
            !name.is_empty()
                && (host == name
                    || host
                        .strip_suffix(name)
                        .is_some_and(|head| head.ends_with('.')))
        }
        _ => false,
    }
}

/// An entry's name or address and its port, if it has one: `name:port`, `[v6]:port`,
/// `[v6]`, or a bare IPv6 address (more than one `:`, so no port). `None` when what follows
/// the `:` is not a port: such an entry covers nothing (not every port).
fn split_port(entry: &str) -> Option<(&str, Option<u16>)> {
    let port = |text: &str| text.parse::<u16>().ok().map(Some);
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((address, "")) => Some((address, None)),
            Some((address, tail)) => Some((address, port(tail.strip_prefix(':')?)?)),
            None => Some((rest, None)),
        };
    }
    match entry.split_once(':') {
        Some((name, tail)) if !tail.contains(':') => Some((name, port(tail)?)),
        _ => Some((entry, None)),
    }
}

/// Whether `ip` lies in `network/bits` (same family only).
fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `choose` for `url` with the variables in `vars`.
    fn chosen(url: &str, vars: &[(&str, &str)]) -> Option<String> {
        let target = url::Url::parse(url).unwrap();
        let lookup = |name: &str| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        };
        choose(&target, &lookup)
            .unwrap()
            .map(|endpoint| endpoint.shown)
    }

    #[test]
    fn the_scheme_picks_the_variables_in_order() {
        let all = [
            ("http_proxy", "http://lower-http.example:1"),
            ("HTTP_PROXY", "http://upper-http.example:2"),
            ("https_proxy", "http://lower-https.example:3"),
            ("HTTPS_PROXY", "http://upper-https.example:4"),
            ("all_proxy", "socks5://lower-all.example:5"),
            ("ALL_PROXY", "socks5h://upper-all.example:6"),
        ];
        let plain = chosen("ws://server.example/", &all);
        assert_eq!(plain.as_deref(), Some("http://lower-http.example:1"));
        let secure = chosen("wss://server.example/", &all);
        assert_eq!(secure.as_deref(), Some("http://lower-https.example:3"));
        let upper = chosen("ws://server.example/", &all[1..]);
        assert_eq!(upper.as_deref(), Some("http://upper-http.example:2"));
        // Empty values count as unset; ALL_PROXY is the last resort for either scheme.
        let empty = [("http_proxy", " "), ("HTTP_PROXY", ""), all[5]];
        let fallback = chosen("ws://server.example/", &empty);
        assert_eq!(fallback.as_deref(), Some("socks5h://upper-all.example:6"));
        assert_eq!(chosen("wss://server.example/", &all[..2]), None);
        assert_eq!(chosen("ws://server.example/", &[]), None);
    }

    #[test]
    fn no_proxy_lists_servers_reached_directly() {
        let proxy = ("HTTP_PROXY", "http://proxy.example:3128");
        let direct =
            |url: &str, no_proxy: &str| chosen(url, &[proxy, ("NO_PROXY", no_proxy)]).is_none();
        assert!(direct(
            "ws://server.example/",
            "other.example, server.example"
        ));
        assert!(direct("ws://a.b.server.example/", ".server.example"));
        assert!(direct("ws://a.server.example/", "*.server.example"));
        assert!(direct("ws://SERVER.example./", "server.example"));
        assert!(!direct("ws://myserver.example/", "server.example"));
        assert!(direct("ws://anything.example/", "*"));
        assert!(direct("ws://server.example:8080/", "server.example:8080"));
        assert!(!direct("ws://server.example:8081/", "server.example:8080"));
        assert!(direct("ws://server.example/", "server.example:80"));
        assert!(direct("ws://10.1.2.3:9000/", "10.1.2.3"));
        assert!(!direct("ws://110.1.2.3/", "10.1.2.3"));
        assert!(!direct("ws://10.1.2.3/", "1.2.3"));
        assert!(direct("ws://10.1.2.3/", "10.0.0.0/8"));
        assert!(!direct("ws://11.1.2.3/", "10.0.0.0/8"));
        assert!(direct("ws://10.1.2.3/", "0.0.0.0/0"));
        assert!(direct("ws://[fd00::5]:9000/", "fd00::/8"));
        assert!(direct("ws://[fd00::7]:9000/", "fd00::7"));
        assert!(direct("ws://[fd00::7]:9000/", "[fd00::7]:9000"));
        assert!(!direct("ws://[fd00::7]:9000/", "[fd00::7]:9001"));
        assert!(!direct("ws://[::1]/", "10.0.0.0/8 localhost"));
        assert!(!direct("ws://server.example/", "10.0.0.0/8, /, ., *., :80"));
        // The lower-case list wins over the upper-case one.
        let both = [
            proxy,
            ("no_proxy", "a.example"),
            ("NO_PROXY", "server.example"),
        ];
        assert!(chosen("ws://server.example/", &both).is_some());
    }

    /// httpoxy (CVE-2016-5385): under CGI (`REQUEST_METHOD` set) a request's `Proxy:`
    /// header arrives as `HTTP_PROXY`, so a client could pick the proxy. It is not read
    /// there (curl never reads it; Go ignores it under CGI); `http_proxy` and `ALL_PROXY`,
    /// which no request header can set, still are.
    #[test]
    fn under_cgi_http_proxy_is_not_read() {
        let attacker = ("HTTP_PROXY", "http://attacker.example:8080");
        let cgi = ("REQUEST_METHOD", "GET");
        assert_eq!(chosen("ws://server.example/", &[cgi, attacker]), None);
        let all = ("ALL_PROXY", "socks5://proxy.example");
        let fallback = chosen("ws://server.example/", &[cgi, attacker, all]);
        assert_eq!(fallback.as_deref(), Some("socks5://proxy.example:1080"));
        let lower = ("http_proxy", "http://proxy.example:3128");
        let chosen_lower = chosen("ws://server.example/", &[cgi, attacker, lower]);
        assert_eq!(chosen_lower.as_deref(), Some("http://proxy.example:3128"));
        // Outside CGI (or with REQUEST_METHOD empty) it is read, as documented.
        for vars in [&[attacker][..], &[("REQUEST_METHOD", ""), attacker]] {
            let read = chosen("ws://server.example/", vars);
            assert_eq!(read.as_deref(), Some("http://attacker.example:8080"));
        }
    }

    /// An entry whose port is not a port covers nothing (as in Go), not every port.
    #[test]
    fn an_entry_with_a_port_that_is_no_port_covers_nothing() {
        for entry in [
            "server.example:99999",
            "server.example:http",
            "server.example:",
            "[fd00::7]:x",
            "10.1.2.3:-1",
        ] {
            for host in ["server.example", "[fd00::7]", "10.1.2.3"] {
                assert!(!bypasses(entry, host, 80), "{entry} covers {host}");
            }
        }
        assert!(bypasses("[fd00::7]", "[fd00::7]", 80));
    }

    #[test]
    fn a_bad_value_names_its_variable_without_the_password() {
        let target = url::Url::parse("wss://server.example/").unwrap();
        let lookup = |name: &str| {
            (name == "HTTPS_PROXY").then(|| "ftp://user:secret@proxy.example".to_owned())
        };
        let error = choose(&target, &lookup).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::InvalidConfig(_)), "{message}");
        assert!(message.contains("$HTTPS_PROXY"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }
}
