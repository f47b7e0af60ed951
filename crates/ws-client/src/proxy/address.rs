//! Proxy URLs: parsing `http://`, `socks5://` and `socks5h://` URLs into an [`Endpoint`]
//! (credentials percent-decoded), and the forms shown in errors and `Debug` (no password).

use std::fmt;

use percent_encoding::percent_decode_str;

use super::ProxyFailure;
use crate::error::Error;

/// How to talk to a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// HTTP `CONNECT` (the proxy resolves the server's name).
    HttpConnect,
    /// SOCKS5; `remote_dns`: the server's name is sent to the proxy (`socks5h://`) instead
    /// of the addresses it resolves to here (`socks5://`).
    Socks5 { remote_dns: bool },
}

/// A user name and password, as they are sent (percent-decoded). `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// A parsed proxy URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) protocol: Protocol,
    /// Host name or address (an IPv6 address without brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) credentials: Option<Credentials>,
    /// `scheme://host:port`, without credentials: how errors name the proxy.
    pub(crate) shown: String,
}

impl Endpoint {
    /// An [`Error::Proxy`] naming this proxy.
    pub(crate) fn error(&self, kind: ProxyFailure, reason: impl Into<String>) -> Error {
        Error::Proxy {
            proxy: self.shown.clone(),
            kind,
            reason: reason.into(),
        }
    }
}

/// Parses a proxy URL (see [`Proxy`](super::Proxy) for the forms); the error says why it
/// cannot be used.
pub(crate) fn parse(text: &str) -> Result<Endpoint, String> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        format!("http://{text}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| format!("not a URL ({e})"))?;
    let (protocol, default_port) = match url.scheme() {
        "http" => (Protocol::HttpConnect, 80),
        "socks5" => (Protocol::Socks5 { remote_dns: false }, 1080),
        "socks5h" => (Protocol::Socks5 { remote_dns: true }, 1080),
        "https" => {
            return Err(
                "https:// proxies (TLS to the proxy) are not supported; use http://, socks5:// \
                 or socks5h://"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "scheme {other:?} is not supported; use http://, socks5:// or socks5h://"
            ));
        }
    };
    let shown_host = match url.host_str() {
        Some(host) if !host.is_empty() => host.to_owned(),
        _ => return Err("no host".into()),
    };
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err("a proxy URL has no path, query or fragment".into());
    }
    let port = url.port().unwrap_or(default_port);
    let credentials = credentials(&url, protocol)?;
    Ok(Endpoint {
        protocol,
        host: shown_host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
        credentials,
        shown: format!("{}://{shown_host}:{port}", url.scheme()),
    })
}

/// The URL's user name and password, percent-decoded and checked for `protocol`.
fn credentials(url: &url::Url, protocol: Protocol) -> Result<Option<Credentials>, String> {
    if url.username().is_empty() && url.password().is_none() {
        return Ok(None);
    }
    let decode = |part: &str, what: &str| {
        percent_decode_str(part)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| format!("the {what} is not UTF-8 once percent-decoded"))
    };
    let user = decode(url.username(), "user name")?;
    let password = decode(url.password().unwrap_or_default(), "password")?;
    match protocol {
        Protocol::HttpConnect if user.contains(':') => {
            return Err("a user name for Basic auth cannot contain ':'".into());
        }
        Protocol::Socks5 { .. } if !(1..=255).contains(&user.len()) => {
            return Err("a SOCKS5 user name is 1 to 255 bytes".into());
        }
        Protocol::Socks5 { .. } if !(1..=255).contains(&password.len()) => {
            return Err("a SOCKS5 password is 1 to 255 bytes".into());
        }
        _ => {}
    }
    Ok(Some(Credentials { user, password }))
}

/// `text` with the password of a URL replaced by `***`, for `Debug` and errors: what
/// comes between `://` and the last `@` is cut after its first `:`. The last `@` of the
/// whole text, not of the authority: a password may hold an unencoded `/`, `?` or `#`
/// (which then makes the URL unparsable, and the text is shown in the error), and hiding
/// too much of a malformed URL is better than showing a password.
pub(crate) fn redacted(text: &str) -> String {
    // No scheme (taken as http://): the user part starts the text. A `://` after anything
    // but a scheme is inside a password.
    let scheme_end = text
        .find("://")
        .filter(|&at| is_scheme(text[..at].trim_start()))
        .map_or(0, |at| at + 3);
    redact_authority(text, scheme_end)
}

/// RFC 3986's scheme: a letter, then letters, digits, `+`, `-` and `.`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

fn redact_authority(text: &str, start: usize) -> String {
    let rest = &text[start..];
    let Some(at) = rest.rfind('@') else {
        return text.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &text[..start], &rest[..colon], &rest[at..]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_schemes_parse_with_their_default_ports() {
        let http = parse("http://proxy.example:3128").unwrap();
        assert_eq!(http.protocol, Protocol::HttpConnect);
        assert_eq!((http.host.as_str(), http.port), ("proxy.example", 3128));
        assert_eq!(http.shown, "http://proxy.example:3128");
        assert_eq!(http.credentials, None);
        assert_eq!(parse("http://proxy.example/").unwrap().port, 80);
        assert_eq!(
            parse("proxy.example:8080").unwrap().shown,
            "http://proxy.example:8080"
        );
        let socks = parse("socks5://10.0.0.1").unwrap();
        assert_eq!(socks.protocol, Protocol::Socks5 { remote_dns: false });
        assert_eq!(socks.port, 1080);
        let socks = parse("socks5h://[fd00::1]:9050").unwrap();
        assert_eq!(socks.protocol, Protocol::Socks5 { remote_dns: true });
        assert_eq!((socks.host.as_str(), socks.port), ("fd00::1", 9050));
        assert_eq!(socks.shown, "socks5h://[fd00::1]:9050");
    }

    #[test]
    fn credentials_are_percent_decoded_and_checked() {
        let endpoint = parse("http://us%65r:p%40ss%3Aw%2Frd@proxy.example:3128").unwrap();
        let credentials = endpoint.credentials.unwrap();
        assert_eq!(credentials.user, "user");
        assert_eq!(credentials.password, "p@ss:w/rd");
        assert!(!format!("{credentials:?}").contains("p@ss"));
        assert!(!endpoint.shown.contains("user"), "{}", endpoint.shown);
        let user_only = parse("http://user@proxy.example").unwrap();
        assert_eq!(user_only.credentials.unwrap().password, "");
        for bad in [
            "socks5://user@proxy.example",
            "socks5://:secret@proxy.example",
            "http://a%3Ab:secret@proxy.example",
            "http://user:%ff@proxy.example",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unusable_urls_say_why() {
        for (bad, why) in [
            ("https://proxy.example", "not supported"),
            ("socks4://proxy.example", "not supported"),
            ("http://", "host"),
            ("socks5://", "host"),
            ("http://proxy.example/path", "no path"),
            ("http://proxy.example/?q", "no path"),
            ("http://proxy.example:99999", "not a URL"),
        ] {
            let reason = parse(bad).unwrap_err();
            assert!(reason.contains(why), "{bad}: {reason}");
        }
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redacted("http://user:secret@proxy.example:3128"),
            "http://user:***@proxy.example:3128"
        );
        assert_eq!(
            redacted("user:se@cret@proxy.example"),
            "user:***@proxy.example"
        );
        assert_eq!(
            redacted("socks5://proxy.example/a@b"),
            "socks5://proxy.example/a@b"
        );
        assert_eq!(
            redacted("http://user@proxy.example"),
            "http://user@proxy.example"
        );
        let debug = format!(
            "{:?}",
            super::super::Proxy::url("socks5://u:hidden@h.example")
        );
        assert_eq!(debug, r#"Url("socks5://u:***@h.example")"#);
    }

    /// A password with an unencoded `/`, `?` or `#` (common in generated passwords) makes
    /// the URL unparsable; the error and `Debug` then show it in the clear.
    #[test]
    fn a_password_with_a_slash_question_mark_or_hash_never_shows() {
        for url in [
            "http://alice:s3cr/etpw@proxy.example:3128",
            "socks5://alice:s3cr?etpw@proxy.example:1080",
            "http://alice:s3cr#etpw@proxy.example:3128",
        ] {
            let debug = format!("{:?}", super::super::Proxy::url(url));
            let target = url::Url::parse("ws://server.example/").unwrap();
            let error = super::super::choose(&super::super::Proxy::url(url), &target)
                .map(|_| ())
                .map_err(|e| e.to_string());
            for shown in [debug, format!("{error:?}")] {
                assert!(!shown.contains("etpw"), "{url}: {shown}");
            }
        }
    }

    /// A URL without a scheme (taken as `http://`) whose password holds `://`: what comes
    /// before that is no scheme, so the user part still starts the text.
    #[test]
    fn a_password_holding_a_scheme_separator_never_shows() {
        let target = url::Url::parse("ws://server.example/").unwrap();
        for url in ["alice:s3cr://etpw@proxy.example:3128", "alice:s3cr://etpw@"] {
            let debug = format!("{:?}", super::super::Proxy::url(url));
            let error = super::super::choose(&super::super::Proxy::url(url), &target)
                .map(|_| ())
                .map_err(|e| e.to_string());
            for shown in [debug, format!("{error:?}")] {
                assert!(!shown.contains("etpw"), "{url}: {shown}");
            }
        }
        assert_eq!(
            redacted("alice:s3cr://etpw@proxy.example"),
            "alice:***@proxy.example"
        );
    }
}
