//! The `Sec-WebSocket-Extensions` header's grammar (RFC 6455 section 9.1): a list of
//! extensions, each a token with `;`-separated parameters whose values are tokens or
//! quoted strings. Parsing only; what the parameters mean is `negotiate`'s business.

/// One element of an extension list: `name; param; param=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extension {
    /// The extension's token, as sent.
    pub(crate) name: String,
    /// Its parameters in order, each with its value (unquoted) if it has one.
    pub(crate) params: Vec<(String, Option<String>)>,
}

/// Parses the values of every `Sec-WebSocket-Extensions` header of a message (several
/// header lines form one list). Empty list elements are skipped, as HTTP lists allow;
/// anything else that breaks the grammar is an error naming what.
pub(crate) fn parse<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Extension>, String> {
    let mut extensions = Vec::new();
    for value in values {
        let mut cursor = Cursor {
            bytes: value.as_bytes(),
            at: 0,
        };
        loop {
            cursor.skip_space();
            if cursor.eat(b',') {
                continue;
            }
            if cursor.done() {
                break;
            }
            extensions.push(cursor.extension()?);
            cursor.skip_space();
            if !cursor.done() && !cursor.eat(b',') {
                return Err(cursor.unexpected("',' or ';'"));
            }
        }
    }
    Ok(extensions)
}

/// Where a parse is in one header value.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        match self.peek() {
            Some(byte) => format!(
                "expected {wanted} at byte {} of the extension header, found {:?}",
                self.at,
                char::from(byte)
            ),
            None => format!("expected {wanted} at the end of the extension header"),
        }
    }

    /// A token (RFC 7230 `tchar`s), at least one character.
    fn token(&mut self) -> Result<String, String> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        if self.at == start {
            return Err(self.unexpected("a token"));
        }
        // Token characters are ASCII.
        Ok(String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned())
    }

    /// A quoted string, its escapes undone.
    fn quoted(&mut self) -> Result<String, String> {
        let mut text = Vec::new();
        loop {
            match self.peek() {
                None => return Err("a quoted string in the extension header is not closed".into()),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(String::from_utf8_lossy(&text).into_owned());
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escaped = self
                        .peek()
                        .ok_or_else(|| self.unexpected("an escaped character"))?;
                    text.push(escaped);
                    self.at += 1;
                }
                Some(byte) if byte == b'\t' || byte >= b' ' && byte != 0x7F => {
                    text.push(byte);
                    self.at += 1;
                }
                Some(_) => return Err(self.unexpected("a character of a quoted string")),
            }
        }
    }

    /// `name *( ";" param [ "=" value ] )`.
    fn extension(&mut self) -> Result<Extension, String> {
        let name = self.token()?;
        let mut params = Vec::new();
        loop {
            self.skip_space();
            if !self.eat(b';') {
                return Ok(Extension { name, params });
            }
            self.skip_space();
            let param = self.token()?;
            self.skip_space();
            let value = if self.eat(b'=') {
                self.skip_space();
                Some(if self.eat(b'"') {
                    self.quoted()?
                } else {
                    self.token()?
                })
            } else {
                None
            };
            params.push((param, value));
        }
    }
}

/// RFC 7230's token characters.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> Extension {
        Extension {
            name: name.into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                .collect(),
        }
    }

    #[test]
    fn lists_parameters_and_quoted_values_are_read() {
        let parsed = parse([
            "permessage-deflate; client_max_window_bits, permessage-deflate ;server_max_window_bits = \"1\\0\"",
            " , x-other",
        ])
        .unwrap();
        assert_eq!(
            parsed,
            [
                ext("permessage-deflate", &[("client_max_window_bits", None)]),
                ext(
                    "permessage-deflate",
                    &[("server_max_window_bits", Some("10"))]
                ),
                ext("x-other", &[]),
            ]
        );
        assert_eq!(parse([""]).unwrap(), []);
        assert_eq!(parse(["\t,  ,"]).unwrap(), []);
    }

    #[test]
    fn grammar_errors_are_named() {
        for bad in [
            "permessage-deflate;",
            "permessage-deflate; =15",
            "permessage-deflate; a=",
            "permessage-deflate; a=\"15",
            "permessage-deflate; a=\"1\\",
            "permessage-deflate x",
            "permessage-deflate; a b",
            "per message",
            ";a",
            "permessage-deflate; a=\"\u{1}\"",
            "permessage-deflate; a=1=2",
        ] {
            assert!(parse([bad]).is_err(), "{bad:?} was accepted");
        }
    }
}
