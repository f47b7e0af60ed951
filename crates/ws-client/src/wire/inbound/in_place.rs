//! `Inbound::next_in_place`: a whole single-frame data message taken where it lies in the
//! read buffer (unmasked there, its text checked there; a binary payload unmasked only if
//! it is looked at), for servers that only count or echo what they read. Anything else is
//! left to `next_buffered` / `next`, untouched.

use tokio::io::AsyncRead;

use super::Inbound;
use crate::error::Error;
use crate::message::MessageType;
use crate::wire::Role;
use crate::wire::frame::{self, OpCode};

/// A whole single-frame data message where it lies in the read buffer, from
/// [`Inbound::next_in_place`]. Text has been unmasked and checked (UTF-8); a binary payload
/// from a client is unmasked by [`payload`](Self::payload) only, so that a reader which
/// only counts never touches it.
#[derive(Debug)]
pub struct InPlace<'a> {
    message_type: MessageType,
    payload: &'a mut [u8],
    mask: Option<[u8; 4]>,
}

impl<'a> InPlace<'a> {
    /// Text or binary.
    pub fn message_type(&self) -> MessageType {
        self.message_type
    }

    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// The payload, unmasked.
    pub fn payload(self) -> &'a [u8] {
        if let Some(key) = self.mask {
            frame::apply_mask(self.payload, key);
        }
        self.payload
    }
}

impl<R: AsyncRead + Unpin> Inbound<R> {
    /// The next message if it came in one frame (FIN set, not compressed) and that frame
    /// has been read in whole: its type and its payload where it lies in the read buffer
    /// (text unmasked and checked there: it must be UTF-8), with no copy and no
    /// allocation. The message is valid until the next call on this `Inbound`.
    ///
    /// `Ok(None)` when the next frame is anything else (a control frame, a fragment, a
    /// compressed message, a header that breaks a rule) or is not all here yet: nothing
    /// is consumed then, and [`next_buffered`](Self::next_buffered) or
    /// [`next`](Self::next) takes it, with every check and error they have. `Err` only for
    /// a text message that is not UTF-8 (the error `next` gives for it; the connection is
    /// to be failed with 1007).
    ///
    /// The limits hold as for `next`: the frame's length is checked against them from its
    /// header.
    #[inline]
    pub fn next_in_place(&mut self) -> Result<Option<InPlace<'_>>, Error> {
        if self.closed || self.in_payload || self.assembly.is_some() {
            return Ok(None);
        }
        let start = self.consumed;
        let deflate = self.inflater.is_some();
        let Ok(Some(header)) =
            frame::parse_header(&self.buffer[start..], self.limits.frame, deflate)
        else {
            return Ok(None);
        };
        let message_type = match header.opcode {
            OpCode::Text => MessageType::Text,
            OpCode::Binary => MessageType::Binary,
            _ => return Ok(None),
        };
        let masked_as_it_must = match self.role {
            Role::Server => header.mask.is_some(),
            Role::Client => header.mask.is_none(),
        };
        let end = start + header.frame_len();
        if !header.fin || header.compressed || !masked_as_it_must || self.buffer.len() < end {
            return Ok(None);
        }
        self.consumed = end;
        let mut message = InPlace {
            message_type,
            payload: &mut self.buffer[start + header.header_len..end],
            mask: header.mask,
        };
        if message_type == MessageType::Text {
            if let Some(key) = message.mask.take() {
                frame::apply_mask(message.payload, key);
            }
            if std::str::from_utf8(message.payload).is_err() {
                return Err(Error::InvalidUtf8);
            }
        }
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests;
