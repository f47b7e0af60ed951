//! `Stats`: counters every server mode keeps, reported in the final `stopped` line.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Lock-free counters shared by all sessions of one server.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections that completed the WebSocket handshake.
    pub connections_accepted: AtomicU64,
    /// Connections turned away (over `--max-connections`, failed or timed-out handshakes).
    pub connections_rejected: AtomicU64,
    /// Connections open right now.
    pub connections_active: AtomicU64,
    /// Data messages received.
    pub messages_in: AtomicU64,
    /// Data messages sent, counted as they are queued for the socket: one queued to a
    /// client that is then dropped (it stopped reading, the server shut down) is counted
    /// though it may never have been written.
    pub messages_out: AtomicU64,
    /// Payload bytes received.
    pub bytes_in: AtomicU64,
    /// Payload bytes sent, counted as `messages_out` is.
    pub bytes_out: AtomicU64,
    /// Connections failed for breaking the protocol or the limits (1002, 1007, 1009).
    pub protocol_errors: AtomicU64,
    /// Payload bytes of the data messages received compressed (permessage-deflate).
    pub deflated_in: AtomicU64,
    /// The same messages' compressed payload bytes, as they arrived.
    pub deflated_in_wire: AtomicU64,
    /// Payload bytes of the data messages sent compressed.
    pub deflated_out: AtomicU64,
    /// The same messages' compressed payload bytes, as they left.
    pub deflated_out_wire: AtomicU64,
}

impl Stats {
    /// Counts one received data message of `bytes` bytes.
    pub fn received(&self, bytes: usize) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts `messages` received data messages of `bytes` bytes in all.
    pub fn received_many(&self, messages: u64, bytes: u64) {
        self.messages_in.fetch_add(messages, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `messages` sent data messages of `bytes` bytes in all.
    pub fn sent_many(&self, messages: u64, bytes: u64) {
        self.messages_out.fetch_add(messages, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts one sent data message of `bytes` bytes.
    pub fn sent(&self, bytes: usize) {
        self.messages_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts compressed messages: received ones of `plain_in` bytes that arrived as
    /// `wire_in`, sent ones of `plain_out` bytes that left as `wire_out`.
    pub fn compressed(&self, (plain_in, wire_in): (u64, u64), (plain_out, wire_out): (u64, u64)) {
        for (counter, value) in [
            (&self.deflated_in, plain_in),
            (&self.deflated_in_wire, wire_in),
            (&self.deflated_out, plain_out),
            (&self.deflated_out_wire, wire_out),
        ] {
            if value > 0 {
                counter.fetch_add(value, Ordering::Relaxed);
            }
        }
    }

    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A consistent-enough copy of the counters for reporting.
    pub fn snapshot(&self) -> Counters {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Counters {
            connections_accepted: get(&self.connections_accepted),
            connections_rejected: get(&self.connections_rejected),
            connections_active: get(&self.connections_active),
            messages_in: get(&self.messages_in),
            messages_out: get(&self.messages_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            wire_bytes_in: (get(&self.bytes_in) + get(&self.deflated_in_wire))
                .saturating_sub(get(&self.deflated_in)),
            wire_bytes_out: (get(&self.bytes_out) + get(&self.deflated_out_wire))
                .saturating_sub(get(&self.deflated_out)),
            protocol_errors: get(&self.protocol_errors),
        }
    }
}

/// The counters at one moment, as reported in events (field meanings as in [`Stats`];
/// `bytes_*` count payloads before compression, `wire_bytes_*` after it: equal when
/// nothing was compressed).
#[derive(Debug, Clone, Copy, Serialize)]
#[allow(missing_docs)]
pub struct Counters {
    pub connections_accepted: u64,
    pub connections_rejected: u64,
    pub connections_active: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub wire_bytes_in: u64,
    pub wire_bytes_out: u64,
    pub protocol_errors: u64,
}
