//! permessage-deflate (RFC 7692) over real sockets: ws-client against a raw peer that
//! negotiates with `ws_client::wire::accept_deflate` and reads and writes with
//! `ws_client::wire` in the server role. Payloads from 16 B to 128 KiB, text and binary,
//! across parameter combinations, echoed exactly and compressed both ways; a server that
//! declines; answers the offer did not allow; a deflate bomb (close 1009) and RSV1 where
//! it may not be (close 1002).

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use ws_client::wire::{DeflateParams, Inbound, Outbound, ReadLimits, Role, accept_deflate};
use ws_client::{DeflateConfig, Error, Message, MessageType, TransportConfig};

use crate::raw_peer::{RawServer, server_frame};
use crate::support::{connect_with, within};

/// A server that negotiated (or declined) permessage-deflate.
struct DeflatePeer {
    inbound: Inbound<OwnedReadHalf>,
    outbound: Outbound<OwnedWriteHalf>,
    params: Option<DeflateParams>,
}

impl DeflatePeer {
    /// Accepts one connection and answers its offer under `policy` (`None`: declines).
    async fn accept(server: &RawServer, policy: Option<&DeflateConfig>) -> Self {
        let (mut tcp, request) = server.accept_request().await;
        let offers = request.head.lines().filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-extensions")
                .then_some(value.trim())
        });
        let params = policy.and_then(|policy| accept_deflate(policy, offers));
        let extension = params.map_or(String::new(), |p| {
            format!("Sec-WebSocket-Extensions: {}\r\n", p.header_value())
        });
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extension}\r\n",
            request.accept_key
        );
        within(tcp.write_all(response.as_bytes())).await.unwrap();
        let (read, write) = tcp.into_split();
        let limits = ReadLimits {
            message: 1 << 20,
            frame: 1 << 20,
            read_size: 64 << 10,
        };
        let mut inbound = Inbound::new(read, BytesMut::new(), limits, Role::Server);
        let mut outbound = Outbound::new(write, Role::Server);
        if let (Some(params), Some(policy)) = (&params, policy) {
            inbound = inbound.with_deflate(params);
            outbound = outbound.with_deflate(params, policy);
        }
        Self {
            inbound,
            outbound,
            params,
        }
    }

    /// Echoes data messages until the client's close (answered); returns the compressed
    /// totals of what it read and of what it wrote.
    async fn echo(mut self) -> ((u64, u64), (u64, u64)) {
        loop {
            let message = within(self.inbound.next())
                .await
                .expect("a frame")
                .expect("the client's close first");
            let close = message.message_type == MessageType::Close;
            self.outbound.encode_owned(message);
            within(self.outbound.flush()).await.unwrap();
            if close {
                return (
                    self.inbound.compressed_totals(),
                    self.outbound.compressed_totals(),
                );
            }
        }
    }
}

/// JSON-like text of `size` bytes.
fn json(size: usize, seed: usize) -> String {
    let mut text = String::from("[");
    let mut i = seed;
    while text.len() < size {
        text.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user{i}@example.com\",\"active\":{}}},",
            i % 3 == 0
        ));
        i += 1;
    }
    text.truncate(size);
    text
}

fn offering(url: String, compression: DeflateConfig) -> TransportConfig {
    TransportConfig {
        compression: Some(compression),
        ..TransportConfig::new(url)
    }
}

/// Sends each size as text and as binary, checks each echo, closes; returns the bytes sent.
async fn round_trips(config: TransportConfig) -> (u64, Option<DeflateParams>) {
    let mut connection = connect_with(config).await;
    let agreed = connection.compression().copied();
    let mut total = 0;
    for (seed, size) in [16, 64, 100, 1000, 4096, 16_384, 65_536, 131_072]
        .into_iter()
        .enumerate()
    {
        for message in [
            Message::text(json(size, seed)),
            Message::binary(json(size, seed + 100).into_bytes()),
        ] {
            total += message.data.len() as u64;
            within(connection.send_message(&message)).await.unwrap();
            let echo = within(connection.receive_message()).await.unwrap();
            assert_eq!(echo, message, "{size} bytes");
        }
    }
    within(connection.disconnect()).await.unwrap();
    (total, agreed)
}

#[tokio::test]
async fn payloads_round_trip_compressed_both_ways_across_parameters() {
    let thrifty = DeflateConfig {
        server_max_window_bits: 10,
        client_max_window_bits: 11,
        ..DeflateConfig::no_context_takeover()
    };
    let combinations = [
        (DeflateConfig::default(), DeflateConfig::default()),
        (
            DeflateConfig::default(),
            DeflateConfig::no_context_takeover(),
        ),
        (
            DeflateConfig::no_context_takeover(),
            DeflateConfig::default(),
        ),
        (thrifty, DeflateConfig::default()),
        (DeflateConfig::default(), thrifty),
        (
            DeflateConfig {
                level: 9,
                threshold: 0,
                ..DeflateConfig::default()
            },
            DeflateConfig {
                server_max_window_bits: 9,
                ..DeflateConfig::default()
            },
        ),
    ];
    for (client, policy) in combinations {
        let server = RawServer::bind();
        let config = offering(server.url(), client);
        let serving = tokio::spawn(async move {
            let peer = DeflatePeer::accept(&server, Some(&policy)).await;
            let params = peer.params;
            (params, peer.echo().await)
        });
        let (total, agreed) = round_trips(config).await;
        let (params, (read, written)) = serving.await.unwrap();
        let label = format!("{client:?} / {policy:?}: read {read:?}, wrote {written:?}");
        assert_eq!(agreed, params, "{label}");
        assert!(agreed.is_some(), "{label}");
        // Everything at or over the threshold went compressed, to well under a third.
        for (plain, compressed) in [read, written] {
            assert!(plain > total * 9 / 10 && compressed * 3 < plain, "{label}");
        }
    }
}

#[tokio::test]
async fn a_server_that_declines_gets_plain_messages() {
    let server = RawServer::bind();
    let config = offering(server.url(), DeflateConfig::default());
    let serving =
        tokio::spawn(async move { DeflatePeer::accept(&server, None).await.echo().await });
    let (_, agreed) = round_trips(config).await;
    assert_eq!(agreed, None);
    assert_eq!(serving.await.unwrap(), ((0, 0), (0, 0)));
}

#[tokio::test]
async fn answers_the_offer_did_not_allow_fail_the_connect() {
    let offer = DeflateConfig {
        server_no_context_takeover: true,
        server_max_window_bits: 10,
        client_max_window_bits: 12,
        ..DeflateConfig::default()
    };
    for answer in [
        "permessage-deflate; server_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=13",
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; mystery",
        "x-webkit-deflate-frame",
    ] {
        let server = RawServer::bind();
        let config = offering(server.url(), offer);
        let serving = tokio::spawn(async move {
            let (mut tcp, request) = server.accept_request().await;
            assert!(
                request.head.contains(
                    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
                     server_max_window_bits=10; client_max_window_bits=12\r\n"
                ),
                "{}",
                request.head
            );
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: {answer}\r\n\r\n",
                request.accept_key
            );
            within(tcp.write_all(response.as_bytes())).await.unwrap();
            tcp
        });
        let result = within(ws_client::WebSocketConnection::open(config)).await;
        assert!(
            matches!(
                &result,
                Err(Error::HandshakeRejected {
                    status: Some(101),
                    ..
                })
            ),
            "{answer:?}: {result:?}"
        );
        drop(serving.await.unwrap());
    }
}

#[tokio::test]
async fn a_deflate_bomb_is_closed_with_1009_in_bounded_time() {
    let server = RawServer::bind();
    let config = offering(server.url(), DeflateConfig::default());
    let policy = DeflateConfig {
        level: 9,
        ..DeflateConfig::default()
    };
    let serving = tokio::spawn(async move {
        let mut peer = DeflatePeer::accept(&server, Some(&policy)).await;
        // 256 MiB of zeros, about 250 KiB compressed: 16 times the client's limit.
        let zeros = vec![0u8; 256 << 20];
        peer.outbound.encode(MessageType::Binary, &zeros);
        let (plain, compressed) = peer.outbound.compressed_totals();
        assert!(plain == 256 << 20 && compressed < 300 << 10, "{compressed}");
        let _ = within(peer.outbound.flush()).await;
        within(peer.inbound.next()).await
    });
    let mut connection = connect_with(config).await;
    let started = std::time::Instant::now();
    let result = within(connection.receive_message()).await;
    assert!(
        matches!(result, Err(Error::MessageTooLarge { limit, .. }) if limit == 16 << 20),
        "{result:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let close = serving.await.unwrap().expect("a frame").expect("a close");
    assert_eq!(close.close_code(), Some(1009), "{close:?}");
}

#[tokio::test]
async fn rsv1_on_a_continuation_frame_is_closed_with_1002() {
    let server = RawServer::bind();
    let config = offering(server.url(), DeflateConfig::default());
    let serving = tokio::spawn(async move {
        let mut peer = DeflatePeer::accept(&server, Some(&DeflateConfig::default())).await;
        let mut bytes = server_frame(0x42, false, b"");
        bytes.extend(server_frame(0x40, true, b"\x03\x00"));
        let tcp = peer.outbound.get_mut();
        within(tcp.write_all(&bytes)).await.unwrap();
        within(peer.inbound.next()).await
    });
    let mut connection = connect_with(config).await;
    let result = within(connection.receive_message()).await;
    assert!(matches!(result, Err(Error::Protocol(_))), "{result:?}");
    let close = serving.await.unwrap().expect("a frame").expect("a close");
    assert_eq!(close.close_code(), Some(1002), "{close:?}");
}
