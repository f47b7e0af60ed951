//! Tests of permessage-deflate negotiation: every parameter in offers and answers,
//! narrowing, answers the offer did not allow, malformed headers, and each client offer
//! against each server policy.

use super::*;

fn config(
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: u8,
    client_max_window_bits: u8,
) -> DeflateConfig {
    DeflateConfig {
        server_no_context_takeover,
        client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
        ..DeflateConfig::default()
    }
}

fn params(snct: bool, cnct: bool, server_bits: u8, client_bits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: snct,
        client_no_context_takeover: cnct,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
        name_server_window: false,
    }
}

fn answer(offered: &DeflateConfig, value: &str) -> Result<Option<DeflateParams>, String> {
    check_answer(Some(offered), &[value])
}

#[test]
fn offers_name_what_the_config_asks() {
    assert_eq!(
        offer(&DeflateConfig::default()),
        "permessage-deflate; client_max_window_bits"
    );
    assert_eq!(
        offer(&config(true, true, 10, 12)),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=10; client_max_window_bits=12"
    );
}

#[test]
fn the_client_takes_every_answer_its_offer_allows() {
    let default = DeflateConfig::default();
    assert_eq!(check_answer(Some(&default), &[]), Ok(None), "declined");
    assert_eq!(
        answer(&default, "permessage-deflate"),
        Ok(Some(params(false, false, 15, 15)))
    );
    // Parameters the server may add on its own.
    assert_eq!(
        answer(
            &default,
            "Permessage-Deflate; server_no_context_takeover; CLIENT_NO_CONTEXT_TAKEOVER"
        ),
        Ok(Some(params(true, true, 15, 15)))
    );
    let narrowed = answer(
        &default,
        "permessage-deflate; server_max_window_bits=9; client_max_window_bits=\"10\"",
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (
            narrowed.server_max_window_bits,
            narrowed.client_max_window_bits
        ),
        (9, 10)
    );
    // The offer's own limits hold when the answer does not narrow them.
    let strict = config(true, true, 12, 11);
    let agreed = answer(
        &strict,
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=12",
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (
            agreed.server_no_context_takeover,
            agreed.client_no_context_takeover,
            agreed.server_max_window_bits,
            agreed.client_max_window_bits
        ),
        (true, true, 12, 11),
        "the client keeps to the no-context-takeover it declared"
    );
    // Split over two header lines, with an empty element.
    assert!(check_answer(Some(&default), &["", "permessage-deflate"]).is_ok_and(|p| p.is_some()));
}

#[test]
fn the_client_refuses_answers_its_offer_did_not_allow() {
    let strict = config(true, false, 12, 11);
    for bad in [
        // server_no_context_takeover was required.
        "permessage-deflate; server_max_window_bits=12",
        // server_max_window_bits above the offer, or missing.
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=13",
        "permessage-deflate; server_no_context_takeover",
        // client_max_window_bits above the offer.
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12",
        // Another extension, or two.
        "x-webkit-deflate-frame",
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=12, permessage-deflate",
    ] {
        assert!(answer(&strict, bad).is_err(), "{bad:?} was accepted");
    }
    assert!(
        check_answer(None, &["permessage-deflate"]).is_err(),
        "nothing offered"
    );
}

#[test]
fn malformed_answers_are_refused() {
    let default = DeflateConfig::default();
    for bad in [
        "permessage-deflate; unknown_param",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; client_max_window_bits=ten",
        "permessage-deflate; client_max_window_bits=10; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate;",
        "permessage-deflate; x=\"open",
    ] {
        assert!(answer(&default, bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn the_server_picks_the_first_acceptable_offer() {
    let default = DeflateConfig::default();
    let accept = |config: &DeflateConfig, values: &[&str]| {
        accept_deflate(config, values.iter().copied()).map(|p| p.header_value())
    };
    assert_eq!(accept(&default, &[]), None);
    assert_eq!(accept(&default, &["x-webkit-deflate-frame"]), None);
    assert_eq!(
        accept(&default, &["permessage-deflate; x=\"open"]),
        None,
        "malformed"
    );
    // A browser's offer.
    assert_eq!(
        accept(&default, &["permessage-deflate; client_max_window_bits"]).as_deref(),
        Some("permessage-deflate")
    );
    // Unknown, repeated, valueless or out-of-range parameters skip an offer, not the rest.
    for bad in [
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=7",
    ] {
        let values = [bad, "permessage-deflate; server_max_window_bits=11"];
        assert_eq!(
            accept(&default, &values).as_deref(),
            Some("permessage-deflate; server_max_window_bits=11"),
            "after {bad:?}"
        );
    }
    assert_eq!(
        accept(
            &default,
            &["x-other, permessage-deflate; server_no_context_takeover"]
        )
        .as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
}

#[test]
fn the_server_narrows_to_its_policy() {
    let accept = |config: &DeflateConfig, offer: &str| {
        accept_deflate(config, [offer]).map(|p| p.header_value())
    };
    let thrifty = config(true, true, 10, 9);
    assert_eq!(
        accept(&thrifty, "permessage-deflate; client_max_window_bits").as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=9"
        )
    );
    // The smaller of the client's limit and the server's.
    assert_eq!(
        accept(&thrifty, "permessage-deflate; server_max_window_bits=12").as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10"
        ),
        "a client that did not name client_max_window_bits is not sent it"
    );
    let default = DeflateConfig::default();
    assert_eq!(
        accept(
            &default,
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=12"
        )
        .as_deref(),
        Some("permessage-deflate; server_max_window_bits=9; client_max_window_bits=12")
    );
    // Named in the offer, named in the answer, even at 15.
    assert_eq!(
        accept(&default, "permessage-deflate; server_max_window_bits=15").as_deref(),
        Some("permessage-deflate; server_max_window_bits=15")
    );
    // A client is never asked for 8 bits (zlib cannot compress with them), unless it
    // offered them itself.
    let eight = DeflateConfig {
        client_max_window_bits: 8,
        ..DeflateConfig::default()
    };
    assert_eq!(
        accept(&eight, "permessage-deflate; client_max_window_bits").as_deref(),
        Some("permessage-deflate; client_max_window_bits=9")
    );
    assert_eq!(
        accept(&default, "permessage-deflate; client_max_window_bits=8").as_deref(),
        Some("permessage-deflate; client_max_window_bits=8")
    );
    // The client's own declaration holds without the server's policy.
    assert_eq!(
        accept(&default, "permessage-deflate; client_no_context_takeover").as_deref(),
        Some("permessage-deflate; client_no_context_takeover")
    );
}

/// Every client offer against every server policy: the server's answer is one the client
/// takes, and both then agree on the same parameters.
#[test]
fn each_offer_meets_each_policy() {
    let mut configs = Vec::new();
    for snct in [false, true] {
        for cnct in [false, true] {
            for server_bits in [8, 9, 12, 15] {
                for client_bits in [9, 12, 15] {
                    configs.push(config(snct, cnct, server_bits, client_bits));
                }
            }
        }
    }
    for client in &configs {
        let offered = offer(client);
        for server in &configs {
            let agreed = accept_deflate(server, [offered.as_str()]).expect("accepted");
            let header = agreed.header_value();
            let taken = check_answer(Some(client), &[&header])
                .unwrap_or_else(|e| panic!("{offered:?} / {header:?}: {e}"))
                .expect("agreed");
            let same = |p: &DeflateParams| {
                (
                    p.server_no_context_takeover,
                    p.client_no_context_takeover,
                    p.server_max_window_bits,
                    p.client_max_window_bits,
                )
            };
            assert_eq!(same(&taken), same(&agreed), "{offered:?} / {header:?}");
            assert!(taken.server_max_window_bits <= client.server_max_window_bits);
            assert!(taken.server_max_window_bits <= server.server_max_window_bits);
            assert!(taken.client_max_window_bits <= client.client_max_window_bits);
            assert!(taken.client_max_window_bits <= server.client_max_window_bits);
            assert!(taken.server_no_context_takeover >= client.server_no_context_takeover);
        }
    }
}
