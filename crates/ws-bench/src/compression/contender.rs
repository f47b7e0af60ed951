//! One contender of `compression`: a deflate setting on its own connection (and its own
//! `test-servers perf` when the run starts them), one slice of sending at a time, and at
//! the end its messages checked against the server's count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::sync::Semaphore;
use ws_client::{
    DeflateConfig, Message, MessageType, TransportConfig, WebSocketConnection, WsReceiver, WsSender,
};

use super::args::DeflateChoice;
use super::cpu::{self, ServerClock};
use super::server::{PerfServer, Stopped};
use crate::cli::ThroughputMode;

/// What every slice of one case sends.
#[derive(Debug)]
pub(crate) struct Load {
    pub(crate) mode: ThroughputMode,
    /// Distinct payloads of one size, cycled through.
    pub(crate) pool: Vec<Vec<u8>>,
    /// Echo: most messages in flight.
    pub(crate) window: usize,
    /// Messages per look at the clock (and per flush in echo mode).
    pub(crate) chunk: usize,
    /// Messages done so far, for the progress watchdog.
    pub(crate) done: Arc<AtomicU64>,
}

/// One measured slice: messages done, wall time, CPU time on each side (`None`: unknown).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slice {
    pub(crate) messages: u64,
    pub(crate) took: Duration,
    pub(crate) client_cpu: Option<Duration>,
    pub(crate) server_cpu: Option<Duration>,
}

/// A contender's connection and what it has done.
#[derive(Debug)]
pub(crate) struct Contender {
    pub(crate) choice: DeflateChoice,
    tx: WsSender,
    rx: WsReceiver,
    /// The server started for this contender, and how its CPU time is read.
    server: Option<(PerfServer, Option<ServerClock>)>,
    /// Next payload of the pool.
    cursor: usize,
    /// Messages sent so far, the warm-up included.
    sent: u64,
    pub(crate) slices: Vec<Slice>,
}

/// What a contender did in one case, for the report.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) choice: DeflateChoice,
    pub(crate) slices: Vec<Slice>,
    /// Every message sent, the warm-up included.
    pub(crate) sent: u64,
    /// The server's counters (`None`: a server that is not ours).
    pub(crate) server: Option<Stopped>,
    pub(crate) clock: Option<ServerClock>,
}

impl Contender {
    /// Connects with `choice`'s deflate setting: to its own server started from `program`,
    /// or to `url`. Fails if the server does not agree to what was offered.
    pub(crate) async fn open(
        choice: DeflateChoice,
        mode: ThroughputMode,
        target: Target<'_>,
    ) -> Result<Self> {
        let path = match mode {
            ThroughputMode::OneWay => "sink",
            ThroughputMode::Echo => "echo",
        };
        let (url, server) = match target {
            Target::Start(program) => {
                let server = PerfServer::start(program)?;
                let clock = cpu::server_clock(server.pid());
                (format!("{}{path}", server.url), Some((server, clock)))
            }
            Target::Url(url) => (url.to_owned(), None),
        };
        let compression = match choice {
            DeflateChoice::Off => None,
            DeflateChoice::On => Some(DeflateConfig::default()),
            DeflateChoice::NoContextTakeover => Some(DeflateConfig::no_context_takeover()),
        };
        let config = TransportConfig {
            compression,
            ..TransportConfig::new(&url)
        };
        let connection = WebSocketConnection::open(config)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        match (choice, connection.compression()) {
            (DeflateChoice::Off, None) => {}
            (_, None) => bail!("{url} declined permessage-deflate: nothing to compare"),
            (DeflateChoice::Off, Some(_)) => bail!("{url} agreed to deflate nobody offered"),
            (DeflateChoice::On, Some(params)) if params.client_no_context_takeover => {
                bail!("{url} asked for no context takeover: give it --contenders without `on`")
            }
            (_, Some(_)) => {}
        }
        let (tx, rx) = connection.split()?;
        Ok(Self {
            choice,
            tx,
            rx,
            server,
            cursor: 0,
            sent: 0,
            slices: Vec::new(),
        })
    }

    /// Runs one slice until `until` and measures it; keeps it unless it is a warm-up.
    pub(crate) async fn take_slice(
        &mut self,
        load: &Load,
        until: Instant,
        measured: bool,
    ) -> Result<()> {
        let server_before = self.server_cpu();
        let client_before = cpu::client();
        let started = Instant::now();
        let messages = match load.mode {
            ThroughputMode::OneWay => self.one_way(load, until).await?,
            ThroughputMode::Echo => self.echo(load, until).await?,
        };
        let took = started.elapsed();
        let client_cpu = delta(client_before, cpu::client());
        let server_cpu = delta(server_before, self.server_cpu());
        self.sent += messages;
        if measured {
            self.slices.push(Slice {
                messages,
                took,
                client_cpu,
                server_cpu,
            });
        }
        Ok(())
    }

    fn server_cpu(&self) -> Option<Duration> {
        let (server, clock) = self.server.as_ref()?;
        cpu::server(server.pid(), (*clock)?)
    }

    /// The next payload of the pool.
    fn next<'a>(cursor: &mut usize, load: &'a Load) -> &'a [u8] {
        let payload = &load.pool[*cursor];
        *cursor = (*cursor + 1) % load.pool.len();
        payload
    }

    /// One-way: messages queued (written as the buffer fills) until `until`, then a ping
    /// whose pong proves that the server has read every one of them.
    async fn one_way(&mut self, load: &Load, until: Instant) -> Result<u64> {
        let mut sent = 0;
        while Instant::now() < until {
            for _ in 0..load.chunk {
                let payload = Self::next(&mut self.cursor, load);
                self.tx.queue_slice(MessageType::Text, payload).await?;
            }
            sent += load.bump(load.chunk);
        }
        self.tx.flush().await?;
        let token = (self.sent + sent).to_be_bytes();
        self.tx.send(Message::ping(token.to_vec())).await?;
        loop {
            let message = self.rx.receive_message().await?;
            match message.message_type {
                MessageType::Pong if message.data == token => return Ok(sent),
                MessageType::Close => bail!("the server closed the connection"),
                MessageType::Text | MessageType::Binary => {
                    bail!("the sink sent a data message: is this a sink?")
                }
                _ => {}
            }
        }
    }

    /// Echo with at most `window` messages in flight; the slice ends when every echo is in.
    async fn echo(&mut self, load: &Load, until: Instant) -> Result<u64> {
        let size = load.pool[0].len();
        let room = Semaphore::new(load.window);
        let (tx, rx, cursor) = (&self.tx, &mut self.rx, &mut self.cursor);
        let sending = async {
            let mut sent = 0;
            while Instant::now() < until {
                room.acquire_many(load.chunk as u32).await?.forget();
                for _ in 0..load.chunk {
                    tx.queue_slice(MessageType::Text, Self::next(cursor, load))
                        .await?;
                }
                tx.flush().await?;
                sent += load.bump(load.chunk);
            }
            // Every permit back: every echo is in.
            let _all_in = room.acquire_many(load.window as u32).await?;
            anyhow::Ok(sent)
        };
        let receiving = async {
            loop {
                let message = rx.receive_message().await?;
                if message.message_type == MessageType::Close {
                    bail!("the server closed the connection");
                }
                if !message.is_data() {
                    continue;
                }
                if message.data.len() != size {
                    let len = message.data.len();
                    bail!("sent {size} bytes, the echo has {len}: is this an echo server?");
                }
                room.add_permits(1);
            }
        };
        // The receive left waiting when the last echo is in is cancel-safe.
        tokio::select! {
            sent = sending => sent,
            failed = receiving => failed,
        }
    }

    /// Closes the connection, stops the server (if ours) and checks that it counted every
    /// message sent, each of the payload's size (and, echoing, sent each back).
    pub(crate) async fn finish(mut self, load: &Load) -> Result<Outcome> {
        let size = load.pool[0].len() as u64;
        self.tx.close(1000, "").await.context("closing")?;
        loop {
            match self.rx.receive_message().await {
                Ok(message) if message.message_type == MessageType::Close => break,
                Ok(_) => {}
                Err(ws_client::Error::ConnectionClosed) => break,
                Err(e) => return Err(e).context("closing"),
            }
        }
        let (server, clock) = match self.server.take() {
            Some((server, clock)) => (Some(server.stop()?), clock),
            None => (None, None),
        };
        if let Some(counts) = &server {
            let echoed = load.mode == ThroughputMode::Echo;
            let expected_out = if echoed { self.sent } else { 0 };
            if counts.messages_in != self.sent
                || counts.bytes_in != self.sent * size
                || counts.messages_out != expected_out
                || counts.bytes_out != expected_out * size
            {
                bail!(
                    "{}: sent {} messages of {size} bytes, the server counted {counts:?}",
                    self.choice.name(),
                    self.sent
                );
            }
        }
        Ok(Outcome {
            choice: self.choice,
            slices: self.slices,
            sent: self.sent,
            server,
            clock,
        })
    }
}

/// Where a contender connects.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// Start this test-servers executable's perf mode for the contender.
    Start(&'a std::path::Path),
    /// Connect to a running server's endpoint.
    Url(&'a str),
}

impl Load {
    /// Counts `n` messages done; returns `n`.
    fn bump(&self, n: usize) -> u64 {
        self.done.fetch_add(n as u64, Ordering::Relaxed);
        n as u64
    }
}

/// `after - before` when both are known.
fn delta(before: Option<Duration>, after: Option<Duration>) -> Option<Duration> {
    after?.checked_sub(before?)
}
