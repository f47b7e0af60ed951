//! `WireRequest`: a request or notification as the client writes it, borrowing its parts,
//! and its encoding (JSON written by hand, MessagePack through the codec).

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::message::{Message, MessageType};
use crate::rpc::codec::{Codec, RpcCodec, encode_exact};

/// A request as written on the wire, borrowing its parts.
#[derive(Serialize)]
pub(crate) struct WireRequest<'a> {
    jsonrpc: &'static str,
    method: &'a str,
    #[serde(skip_serializing_if = "Value::is_null")]
    params: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
}

impl<'a> WireRequest<'a> {
    pub(crate) fn new(method: &'a str, params: &'a Value, id: Option<i64>) -> Self {
        Self {
            jsonrpc: "2.0",
            method,
            params,
            id,
        }
    }

    /// Encodes this request as one message. JSON is written by hand, byte for byte what
    /// the derived `Serialize` writes: the derive escapes every member name and the
    /// version at run time, which was a visible share of each call.
    pub(crate) fn encode(&self, codec: RpcCodec) -> Result<Message, Error> {
        if codec != RpcCodec::Json {
            return codec.encode(self);
        }
        let data = encode_exact(|out| {
            out.extend_from_slice(br#"{"jsonrpc":"2.0","method":"#);
            serde_json::to_writer(&mut *out, self.method).map_err(|e| e.to_string())?;
            if !self.params.is_null() {
                out.extend_from_slice(br#","params":"#);
                serde_json::to_writer(&mut *out, self.params).map_err(|e| e.to_string())?;
            }
            if let Some(id) = self.id {
                out.extend_from_slice(br#","id":"#);
                serde_json::to_writer(&mut *out, &id).map_err(|e| e.to_string())?;
            }
            out.push(b'}');
            Ok(())
        })?;
        Ok(Message {
            data,
            message_type: MessageType::Text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hand_written_json_requests_match_the_derived_ones() {
        let params = [
            Value::Null,
            json!([1, 2]),
            json!({"a": "x\"y", "b": [true, null, 1.5]}),
        ];
        for method in ["add", "we\"ird\\ \u{1}é"] {
            for params in &params {
                for id in [None, Some(0), Some(-7), Some(i64::MAX)] {
                    let request = WireRequest::new(method, params, id);
                    let written = request.encode(RpcCodec::Json).unwrap();
                    assert_eq!(written.message_type, MessageType::Text);
                    assert_eq!(
                        String::from_utf8(written.data).unwrap(),
                        serde_json::to_string(&request).unwrap()
                    );
                }
            }
        }
        let packed = WireRequest::new("add", &params[1], Some(1))
            .encode(RpcCodec::MessagePack)
            .unwrap();
        assert_eq!(packed.message_type, MessageType::Binary);
    }
}
