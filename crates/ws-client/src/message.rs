//! `Message` and `MessageType`: what is sent and received, and the checks a message must
//! pass before it is sent.

use crate::error::Error;

/// The kind of a WebSocket message (RFC 6455 opcodes that reach the application).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// UTF-8 text. Sending text that is not valid UTF-8 fails with [`Error::InvalidUtf8`].
    Text,
    /// Arbitrary bytes.
    Binary,
    /// A ping (at most 125 bytes). The peer answers with a pong carrying the same bytes.
    Ping,
    /// A pong (at most 125 bytes), normally the answer to a ping. Pings from the peer
    /// are answered automatically; their pongs need not be sent by hand.
    Pong,
    /// A close frame: `data` is empty or a 2-byte big-endian close code followed by a
    /// UTF-8 reason (see [`Message::close_code`] and [`Message::close_reason`]).
    Close,
}

/// One WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The payload, exactly as sent on the wire (after unmasking).
    pub data: Vec<u8>,
    /// What kind of message this is.
    pub message_type: MessageType,
}

/// Largest payload of a control frame (ping, pong, close), per RFC 6455 section 5.5.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

impl Message {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            data: text.into().into_bytes(),
            message_type: MessageType::Text,
        }
    }

    /// A binary message.
    pub fn binary(data: impl Into<Vec<u8>>) -> Self {
        Self {
            data: data.into(),
            message_type: MessageType::Binary,
        }
    }

    /// A ping carrying `data` (at most 125 bytes).
    pub fn ping(data: impl Into<Vec<u8>>) -> Self {
        Self {
            data: data.into(),
            message_type: MessageType::Ping,
        }
    }

    /// A pong carrying `data` (at most 125 bytes).
    pub fn pong(data: impl Into<Vec<u8>>) -> Self {
        Self {
            data: data.into(),
            message_type: MessageType::Pong,
        }
    }

    /// A close frame with a status code and a reason (the reason is cut to fit 123 bytes
    /// on a character boundary).
    pub fn close(code: u16, reason: &str) -> Self {
        let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut data = Vec::with_capacity(2 + end);
        data.extend_from_slice(&code.to_be_bytes());
        data.extend_from_slice(&reason.as_bytes()[..end]);
        Self {
            data,
            message_type: MessageType::Close,
        }
    }

    /// The payload as text, if it is valid UTF-8.
    pub fn as_text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.data).map_err(|_| Error::InvalidUtf8)
    }

    /// True for text and binary messages, false for control frames.
    pub fn is_data(&self) -> bool {
        matches!(self.message_type, MessageType::Text | MessageType::Binary)
    }

    /// For a close message: the status code, if the peer sent one.
    pub fn close_code(&self) -> Option<u16> {
        match (self.message_type, self.data.as_slice()) {
            (MessageType::Close, [hi, lo, ..]) => Some(u16::from_be_bytes([*hi, *lo])),
            _ => None,
        }
    }

    /// For a close message: the reason text (empty when none was sent).
    pub fn close_reason(&self) -> Option<String> {
        match self.message_type {
            MessageType::Close => {
                Some(String::from_utf8_lossy(self.data.get(2..).unwrap_or_default()).into_owned())
            }
            _ => None,
        }
    }
}

/// Checks what RFC 6455 requires of a message before it is sent: UTF-8 text, control
/// payloads of at most 125 bytes, a well-formed close payload.
#[inline]
pub(crate) fn check_sendable(message_type: MessageType, data: &[u8]) -> Result<(), Error> {
    let is_control = !matches!(message_type, MessageType::Text | MessageType::Binary);
    if is_control && data.len() > MAX_CONTROL_PAYLOAD {
        return Err(Error::ControlFrameTooLarge { size: data.len() });
    }
    match message_type {
        MessageType::Text => std::str::from_utf8(data)
            .map(drop)
            .map_err(|_| Error::InvalidUtf8),
        MessageType::Close => check_close_payload(data),
        _ => Ok(()),
    }
}

/// A close payload is empty, or a code that may be sent followed by a UTF-8 reason
/// (RFC 6455 section 5.5.1).
fn check_close_payload(payload: &[u8]) -> Result<(), Error> {
    match payload {
        [] => Ok(()),
        [_] => Err(Error::InvalidCloseFrame(
            "a close payload cannot be a single byte".into(),
        )),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !crate::wire::assembly::close_code_allowed(code) {
                return Err(Error::InvalidCloseFrame(format!(
                    "close code {code} may not be sent"
                )));
            }
            std::str::from_utf8(reason).map_err(|_| Error::InvalidUtf8)?;
            Ok(())
        }
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Self::binary(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_message_round_trips_code_and_reason() {
        let message = Message::close(1001, "going away");
        assert_eq!(message.close_code(), Some(1001));
        assert_eq!(message.close_reason().as_deref(), Some("going away"));
        assert!(check_sendable(message.message_type, &message.data).is_ok());
    }

    #[test]
    fn long_close_reason_is_cut_on_a_char_boundary() {
        let reason = "é".repeat(100);
        let message = Message::close(1000, &reason);
        assert!(message.data.len() <= MAX_CONTROL_PAYLOAD);
        assert!(message.as_text().is_err() || message.close_reason().is_some());
        assert!(std::str::from_utf8(&message.data[2..]).is_ok());
    }

    #[test]
    fn invalid_utf8_text_is_refused() {
        let message = Message {
            data: vec![0xff, 0xfe],
            message_type: MessageType::Text,
        };
        assert!(matches!(
            check_sendable(message.message_type, &message.data),
            Err(Error::InvalidUtf8)
        ));
    }

    #[test]
    fn oversized_ping_is_refused() {
        let message = Message::ping(vec![0; 126]);
        assert!(matches!(
            check_sendable(message.message_type, &message.data),
            Err(Error::ControlFrameTooLarge { size: 126 })
        ));
    }

    #[test]
    fn forbidden_close_codes_are_refused() {
        for code in [0u16, 999, 1005, 1006, 5000] {
            let message = Message::close(code, "");
            let result = check_sendable(message.message_type, &message.data);
            assert!(
                matches!(result, Err(Error::InvalidCloseFrame(_))),
                "code {code}"
            );
        }
    }

    #[test]
    fn only_a_close_message_has_a_close_code_and_reason() {
        for message in [
            Message::text("\u{3}\u{e8}"),
            Message::binary(vec![3, 232, b'x']),
            Message::ping(vec![3, 232]),
            Message::pong(vec![3, 232]),
        ] {
            assert_eq!(message.close_code(), None, "{message:?}");
            assert_eq!(message.close_reason(), None, "{message:?}");
        }
        let empty = Message {
            data: Vec::new(),
            message_type: MessageType::Close,
        };
        assert_eq!(empty.close_code(), None);
        assert_eq!(empty.close_reason().as_deref(), Some(""));
    }

    #[test]
    fn a_close_payload_is_empty_or_at_least_a_code() {
        assert!(check_sendable(MessageType::Close, &[]).is_ok());
        assert!(matches!(
            check_sendable(MessageType::Close, &[0x03]),
            Err(Error::InvalidCloseFrame(_))
        ));
        assert!(matches!(
            check_sendable(MessageType::Close, &[0x03, 0xe8, 0xff]),
            Err(Error::InvalidUtf8)
        ));
    }
}
