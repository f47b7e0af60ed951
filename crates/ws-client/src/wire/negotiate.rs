//! permessage-deflate negotiation (RFC 7692 section 7.1): the client's offer and its check
//! of the server's answer, the server's choice among a client's offers, and the agreed
//! parameters both sides then compress and inflate by.

use crate::config::DeflateConfig;
use crate::wire::Role;
use crate::wire::extension::{self, Extension};

/// The extension's registered name.
const NAME: &str = "permessage-deflate";

/// The largest LZ77 window, in bits: what a missing `*_max_window_bits` means.
const MAX_WINDOW_BITS: u8 = 15;

/// What a handshake agreed on for permessage-deflate: the parameters of the server's
/// answer, as both sides must honour them. Two are equal when their four parameters are.
#[derive(Clone, Copy)]
pub struct DeflateParams {
    /// The server compresses each message on its own.
    pub server_no_context_takeover: bool,
    /// The client compresses each message on its own.
    pub client_no_context_takeover: bool,
    /// Largest window the server compresses with (8-15; 15 when the answer named none).
    pub server_max_window_bits: u8,
    /// Largest window the client compresses with (8-15; 15 when the answer named none).
    pub client_max_window_bits: u8,
    /// Whether the answer names `server_max_window_bits` even at 15: a server must when
    /// the offer named it (RFC 7692 section 7.1.2.1).
    name_server_window: bool,
}

impl DeflateParams {
    fn key(&self) -> (bool, bool, u8, u8) {
        (
            self.server_no_context_takeover,
            self.client_no_context_takeover,
            self.server_max_window_bits,
            self.client_max_window_bits,
        )
    }
}

impl PartialEq for DeflateParams {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for DeflateParams {}

impl std::fmt::Debug for DeflateParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeflateParams")
            .field(
                "server_no_context_takeover",
                &self.server_no_context_takeover,
            )
            .field(
                "client_no_context_takeover",
                &self.client_no_context_takeover,
            )
            .field("server_max_window_bits", &self.server_max_window_bits)
            .field("client_max_window_bits", &self.client_max_window_bits)
            .finish()
    }
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` value a server answers with to agree on these.
    pub fn header_value(&self) -> String {
        let mut value = String::from(NAME);
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < MAX_WINDOW_BITS || self.name_server_window {
            value.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if self.client_max_window_bits < MAX_WINDOW_BITS {
            value.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        }
        value
    }

    /// Whether the side in `role` compresses each message on its own.
    pub(crate) fn sender_resets(&self, role: Role) -> bool {
        match role {
            Role::Client => self.client_no_context_takeover,
            Role::Server => self.server_no_context_takeover,
        }
    }

    /// The window the side in `role` compresses with.
    pub(crate) fn sender_window_bits(&self, role: Role) -> u8 {
        match role {
            Role::Client => self.client_max_window_bits,
            Role::Server => self.server_max_window_bits,
        }
    }
}

/// A permessage-deflate element's parameters, each checked (known, at most once, a
/// valid value) but not yet held against the other side's.
#[derive(Debug, Default, PartialEq, Eq)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: named without a value (allowed in an offer only).
    client_max_window_bits: Option<Option<u8>>,
}

impl Params {
    /// Reads `element`'s parameters; in an answer (`offer` false), every window size
    /// needs a value.
    fn read(element: &Extension, offer: bool) -> Result<Self, String> {
        let mut params = Self::default();
        for (name, value) in &element.params {
            let name = name.to_ascii_lowercase();
            let flag = |set: bool| {
                if set {
                    Err(format!("{name} appears twice"))
                } else if value.is_some() {
                    Err(format!("{name} takes no value"))
                } else {
                    Ok(true)
                }
            };
            match name.as_str() {
                "server_no_context_takeover" => {
                    params.server_no_context_takeover = flag(params.server_no_context_takeover)?;
                }
                "client_no_context_takeover" => {
                    params.client_no_context_takeover = flag(params.client_no_context_takeover)?;
                }
                "server_max_window_bits" | "client_max_window_bits" => {
                    let bits = match value.as_deref() {
                        Some(text) => Some(window_bits(&name, text)?),
                        None if offer && name == "client_max_window_bits" => None,
                        None => return Err(format!("{name} needs a value (8-15)")),
                    };
                    let slot = if name == "server_max_window_bits" {
                        if params.server_max_window_bits.is_some() {
                            return Err(format!("{name} appears twice"));
                        }
                        params.server_max_window_bits = bits;
                        continue;
                    } else {
                        &mut params.client_max_window_bits
                    };
                    if slot.is_some() {
                        return Err(format!("{name} appears twice"));
                    }
                    *slot = Some(bits);
                }
                _ => return Err(format!("unknown parameter {name:?}")),
            }
        }
        Ok(params)
    }
}

/// A window size as RFC 7692 writes it: 8 to 15 in decimal, no sign or leading zero.
fn window_bits(name: &str, text: &str) -> Result<u8, String> {
    match text {
        "8" | "9" | "10" | "11" | "12" | "13" | "14" | "15" => Ok(text.parse().unwrap_or(15)),
        _ => Err(format!("{name}={text:?} is not a window size (8-15)")),
    }
}

/// The `Sec-WebSocket-Extensions` value a client offers for `config`.
pub(crate) fn offer(config: &DeflateConfig) -> String {
    let mut value = String::from(NAME);
    if config.server_no_context_takeover {
        value.push_str("; server_no_context_takeover");
    }
    if config.client_no_context_takeover {
        value.push_str("; client_no_context_takeover");
    }
    if config.server_max_window_bits < MAX_WINDOW_BITS {
        value.push_str(&format!(
            "; server_max_window_bits={}",
            config.server_max_window_bits
        ));
    }
    // Always named: the server may then narrow the client's window to save its memory.
    value.push_str("; client_max_window_bits");
    if config.client_max_window_bits < MAX_WINDOW_BITS {
        value.push_str(&format!("={}", config.client_max_window_bits));
    }
    value
}

/// The client's check of the server's answer (`values`: every `Sec-WebSocket-Extensions`
/// header of the response) to an offer made with `offered` (`None`: nothing offered).
/// `Ok(None)` when the server declined; an error names what the offer did not allow.
pub(crate) fn check_answer(
    offered: Option<&DeflateConfig>,
    values: &[&str],
) -> Result<Option<DeflateParams>, String> {
    let answer = extension::parse(values.iter().copied())?;
    let element = match (answer.as_slice(), offered) {
        ([], _) => return Ok(None),
        ([element], Some(_)) if element.name.eq_ignore_ascii_case(NAME) => element,
        ([element], _) => {
            return Err(format!(
                "the server enabled extension {:?}, which this client did not offer",
                element.name
            ));
        }
        _ => {
            return Err(format!(
                "the server enabled {} extensions ({}); this client offered at most one",
                answer.len(),
                values.join(", ")
            ));
        }
    };
    let Some(config) = offered else {
        return Err("an extension was enabled but none was offered".into());
    };
    let params = Params::read(element, false).map_err(|e| format!("{NAME} answer: {e}"))?;
    if config.server_no_context_takeover && !params.server_no_context_takeover {
        return Err(format!(
            "{NAME} answer lacks server_no_context_takeover, which the offer required"
        ));
    }
    let server_bits = match (params.server_max_window_bits, config.server_max_window_bits) {
        (Some(bits), limit) if bits > limit => {
            return Err(format!(
                "{NAME} answer has server_max_window_bits={bits}, above the {limit} offered"
            ));
        }
        (Some(bits), _) => bits,
        (None, limit) if limit < MAX_WINDOW_BITS => {
            return Err(format!(
                "{NAME} answer lacks server_max_window_bits, which the offer set to {limit}"
            ));
        }
        (None, _) => MAX_WINDOW_BITS,
    };
    let client_bits = match params.client_max_window_bits.flatten() {
        Some(bits) if bits > config.client_max_window_bits => {
            return Err(format!(
                "{NAME} answer has client_max_window_bits={bits}, above the {} offered",
                config.client_max_window_bits
            ));
        }
        Some(bits) => bits,
        None => config.client_max_window_bits,
    };
    Ok(Some(DeflateParams {
        server_no_context_takeover: params.server_no_context_takeover,
        client_no_context_takeover: params.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
        name_server_window: params.server_max_window_bits.is_some(),
    }))
}

/// A server's answer to a client's offers (`values`: every `Sec-WebSocket-Extensions`
/// header of the upgrade request), under the server's `config`: the first
/// permessage-deflate offer it can accept, narrowed to `config`, or `None` (declined: no
/// offer, none acceptable, or a header that breaks the grammar). Answer the client with
/// [`DeflateParams::header_value`] and read and write with the result
/// ([`Inbound::with_deflate`](crate::wire::Inbound::with_deflate),
/// [`Outbound::with_deflate`](crate::wire::Outbound::with_deflate)).
///
/// An offer is skipped when a parameter is unknown, repeated or has a bad value (RFC 7692
/// section 7.1). Whatever the client asks is granted, narrowed where `config` is stricter:
/// no context takeover either way when either side wants it, the smaller window.
pub fn accept_deflate<'a>(
    config: &DeflateConfig,
    values: impl IntoIterator<Item = &'a str>,
) -> Option<DeflateParams> {
    let offers = extension::parse(values).ok()?;
    offers
        .iter()
        .filter(|offer| offer.name.eq_ignore_ascii_case(NAME))
        .find_map(|offer| {
            let params = Params::read(offer, true).ok()?;
            let server_bits = params
                .server_max_window_bits
                .unwrap_or(MAX_WINDOW_BITS)
                .min(config.server_max_window_bits);
            let client_bits = match params.client_max_window_bits {
                // The client said it can follow a limit: hold it to ours (and its own), but
                // not below 9, which zlib-based clients cannot compress with.
                Some(limit) => limit
                    .unwrap_or(MAX_WINDOW_BITS)
                    .min(config.client_max_window_bits.max(9)),
                // It cannot be asked: it may use up to 15 bits, which the inflater reads.
                None => MAX_WINDOW_BITS,
            };
            Some(DeflateParams {
                server_no_context_takeover: params.server_no_context_takeover
                    || config.server_no_context_takeover,
                client_no_context_takeover: params.client_no_context_takeover
                    || config.client_no_context_takeover,
                server_max_window_bits: server_bits,
                client_max_window_bits: client_bits,
                name_server_window: params.server_max_window_bits.is_some(),
            })
        })
}

#[cfg(test)]
mod tests;
