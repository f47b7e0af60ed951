//! From frames to messages: a data message assembled from its fragments, its text checked
//! as the bytes arrive (a message fails at the first bytes that can no longer become
//! UTF-8, not at its end), and the rules a whole message or a close payload must keep.
//! No I/O: [`Inbound`](crate::wire::Inbound) reads the frames and hands the payloads here.

use crate::error::Error;
use crate::message::{Message, MessageType};
use crate::wire::frame::{self, OpCode};

/// A data message whose frames are still arriving.
#[derive(Debug)]
pub(crate) struct Assembly {
    message_type: MessageType,
    data: Vec<u8>,
    /// For text: how many bytes of `data` are known to be UTF-8. The rest (at most 3
    /// bytes) is the start of a character whose other bytes have not arrived yet.
    validated: usize,
    /// Whether the payloads are compressed (permessage-deflate): they go through the
    /// inflater into `data`.
    pub(crate) compressed: bool,
    /// Compressed bytes received so far (for a compressed message).
    pub(crate) wire_len: usize,
}

impl Assembly {
    /// An empty message of `message_type`, with room for `capacity` bytes.
    pub(crate) fn new(message_type: MessageType, capacity: usize, compressed: bool) -> Self {
        Self {
            message_type,
            data: Vec::with_capacity(capacity),
            validated: 0,
            compressed,
            wire_len: 0,
        }
    }

    /// Bytes received so far.
    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    /// Appends payload bytes, unmasking them with `mask` as they start `offset` bytes into
    /// their frame's payload.
    pub(crate) fn extend(&mut self, bytes: &[u8], mask: Option<[u8; 4]>, offset: usize) {
        match mask {
            Some(key) => frame::extend_masked_at(&mut self.data, bytes, key, offset),
            None => self.data.extend_from_slice(bytes),
        }
    }

    /// The message's memory, for reading a large payload straight into it (or inflating
    /// into it). Whatever is appended must be unmasked already;
    /// [`check_text`](Self::check_text) checks it.
    pub(crate) fn data_mut(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Memory held for the message, for tests of the limits.
    #[cfg(test)]
    pub(crate) fn data_mut_capacity(&self) -> usize {
        self.data.capacity()
    }

    /// Checks the text that arrived since the last call: fails as soon as the bytes can
    /// no longer become UTF-8, whatever follows; an incomplete character at the end is
    /// kept for later. Binary messages pass.
    pub(crate) fn check_text(&mut self) -> Result<(), Error> {
        if self.message_type != MessageType::Text || self.validated == self.data.len() {
            return Ok(());
        }
        match std::str::from_utf8(&self.data[self.validated..]) {
            Ok(_) => self.validated = self.data.len(),
            Err(e) if e.error_len().is_some() => return Err(Error::InvalidUtf8),
            Err(e) => self.validated += e.valid_up_to(),
        }
        Ok(())
    }

    /// The message, once its last frame is in: text may not end in the middle of a
    /// character.
    pub(crate) fn finish(mut self) -> Result<Message, Error> {
        self.check_text()?;
        if self.message_type == MessageType::Text && self.validated != self.data.len() {
            return Err(Error::InvalidUtf8);
        }
        Ok(Message {
            data: self.data,
            message_type: self.message_type,
        })
    }
}

/// A message that arrived in one frame: text must be UTF-8 (RFC 6455 section 8.1; the
/// connection fails with 1007).
#[inline]
pub(crate) fn whole_message(message_type: MessageType, data: Vec<u8>) -> Result<Message, Error> {
    if message_type == MessageType::Text && std::str::from_utf8(&data).is_err() {
        return Err(Error::InvalidUtf8);
    }
    Ok(Message { data, message_type })
}

/// A control frame as a message, after the checks RFC 6455 asks of a close payload.
pub(crate) fn control_message(opcode: OpCode, payload: Vec<u8>) -> Result<Message, Error> {
    let message_type = match opcode {
        OpCode::Ping => MessageType::Ping,
        OpCode::Pong => MessageType::Pong,
        _ => {
            check_close_payload(&payload)?;
            MessageType::Close
        }
    };
    Ok(Message {
        data: payload,
        message_type,
    })
}

/// Whether a peer may put `code` in a close frame (RFC 6455 section 7.4: 1004-1006 and
/// 1015 are reserved for reporting, below 1000 and from 5000 up unassigned).
pub(crate) fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A close payload is empty, or a permitted code followed by a UTF-8 reason.
fn check_close_payload(payload: &[u8]) -> Result<(), Error> {
    match payload {
        [] => Ok(()),
        [_] => Err(Error::Protocol(
            "the peer's close frame had a 1-byte payload (a code takes 2)".into(),
        )),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code_allowed(code) {
                return Err(Error::Protocol(format!(
                    "the peer's close frame carried code {code}, a close code RFC 6455 forbids"
                )));
            }
            std::str::from_utf8(reason).map_err(|_| Error::InvalidUtf8)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pieces` assembled as text, checked after each piece as `Inbound` does.
    fn assemble(pieces: &[&[u8]]) -> Result<Message, Error> {
        let mut assembly = Assembly::new(MessageType::Text, 0, false);
        for piece in pieces {
            assembly.extend(piece, None, 0);
            assembly.check_text()?;
        }
        assembly.finish()
    }

    #[test]
    fn characters_split_anywhere_are_joined() {
        let text = "a\u{20ac}\u{1F600}z".as_bytes();
        for cut in 0..=text.len() {
            for second in cut..=text.len() {
                let pieces = [&text[..cut], &text[cut..second], &text[second..]];
                let message = assemble(&pieces).unwrap_or_else(|e| panic!("{cut} {second}: {e}"));
                assert_eq!(message.data, text);
            }
        }
    }

    #[test]
    fn text_fails_at_the_first_piece_that_cannot_become_utf8() {
        let doomed: [&[u8]; 6] = [
            b"\xF4\x90",    // above U+10FFFF
            b"ok \xED\xA0", // a surrogate
            b"\xC0",        // an overlong encoding's lead byte
            b"\xE0\x80",    // an overlong three-byte form
            b"\xE2\x82 ",   // a character cut short
            b"\xFF",
        ];
        for bytes in doomed {
            let mut assembly = Assembly::new(MessageType::Text, 0, false);
            assembly.extend(b"fine ", None, 0);
            assembly.check_text().unwrap();
            assembly.extend(bytes, None, 0);
            assert!(
                matches!(assembly.check_text(), Err(Error::InvalidUtf8)),
                "{bytes:?}"
            );
        }
        // A start that could still complete is kept, and fails only if the message ends.
        assert!(matches!(
            assemble(&[b"ok \xE2\x82", b""]),
            Err(Error::InvalidUtf8)
        ));
        let mut binary = Assembly::new(MessageType::Binary, 0, false);
        binary.extend(b"\xFF", None, 0);
        assert!(binary.check_text().is_ok() && binary.finish().is_ok());
    }

    #[test]
    fn masked_pieces_are_unmasked_at_their_offset() {
        let key = [1, 2, 3, 4];
        let plain = b"hello, world";
        let mut masked = plain.to_vec();
        frame::apply_mask(&mut masked, key);
        let mut assembly = Assembly::new(MessageType::Text, 0, false);
        assembly.extend(&masked[..5], Some(key), 0);
        assembly.extend(&masked[5..], Some(key), 5);
        assert_eq!(assembly.finish().unwrap().data, plain);
    }

    #[test]
    fn close_payloads_follow_rfc_6455() {
        let close = |payload: &[u8]| control_message(OpCode::Close, payload.to_vec());
        assert!(close(b"").is_ok());
        assert!(close(b"\x03\xe8bye").is_ok());
        assert!(close(b"\x0b\xb8").is_ok(), "3000");
        assert!(matches!(close(b"\x03"), Err(Error::Protocol(_))));
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            let payload = code.to_be_bytes();
            assert!(matches!(close(&payload), Err(Error::Protocol(_))), "{code}");
        }
        assert!(matches!(close(b"\x03\xe8\xff"), Err(Error::InvalidUtf8)));
        assert!(matches!(
            whole_message(MessageType::Text, vec![0xff]),
            Err(Error::InvalidUtf8)
        ));
    }
}
