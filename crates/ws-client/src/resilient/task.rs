//! The background task of one resilient connection: connects, runs a session per
//! connection (`session`), and between connections waits per the policy while keeping or
//! handing back what is sent meanwhile; at the end, hands back everything still held.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::classify::{RetryClass, copy_error, default_class};
use super::config::ResilientConfig;
use super::events::{Event, LinkStatus};
use super::policy::Backoff;
use super::queue::{OutageQueue, Outgoing, QueuePolicy};
use super::session::{self, SessionEnd};
use super::shared::{Command, Shared};
use crate::connection::WebSocketConnection;
use crate::error::Error;
use crate::message::Message;

/// A received message and the generation of the connection it came on.
pub(crate) type Inbound = (u64, Message);

/// Why the task stops without an error of its own.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The owner called `close`; answer it when done.
    Close(oneshot::Sender<Result<(), Error>>),
    /// The owner dropped the connection.
    Shutdown,
}

/// How one round of connecting ended.
enum Round {
    Connected {
        connection: Box<WebSocketConnection>,
        attempt: u32,
        took: std::time::Duration,
    },
    Failed(Error),
    Stopped(Stop),
}

/// The task's state; the session borrows its fields while a connection is up.
#[derive(Debug)]
pub(crate) struct Task {
    pub(crate) config: ResilientConfig,
    pub(crate) shared: Arc<Shared>,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) incoming: mpsc::Sender<Inbound>,
    pub(crate) token: CancellationToken,
    pub(crate) queue: OutageQueue,
    /// A command taken from `commands` out of turn (by the writer gathering a batch),
    /// served before the channel.
    pub(crate) held: Option<Command>,
    /// The messages of a batch (`Command::SendBatch`) the writer has not taken yet, served
    /// after the outage queue and before the channel.
    pub(crate) batch: std::collections::VecDeque<Outgoing>,
    backoff: Backoff,
    generation: u64,
}

impl Task {
    pub(crate) fn new(
        config: ResilientConfig,
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Command>,
        incoming: mpsc::Sender<Inbound>,
        token: CancellationToken,
    ) -> Self {
        Self {
            queue: OutageQueue::new(config.queue),
            held: None,
            batch: std::collections::VecDeque::new(),
            backoff: Backoff::new(config.reconnect.clone()),
            config,
            shared,
            commands,
            incoming,
            token,
            generation: 0,
        }
    }

    /// Runs until closed, dropped or given up. `first` learns how the first connect went.
    pub(crate) async fn run(mut self, first: oneshot::Sender<Result<(), Error>>) {
        let mut first = Some(first);
        let mut outage: Option<(Instant, RetryClass, Arc<Error>)> = None;
        loop {
            let round = self.connect_round(outage.take(), first.is_some()).await;
            let (connection, attempt, took) = match round {
                Round::Connected {
                    connection,
                    attempt,
                    took,
                } => (connection, attempt, took),
                Round::Failed(error) => {
                    if let Some(first) = first.take() {
                        let _ = first.send(Err(copy_error(&error)));
                    }
                    return self.give_up(Arc::new(error));
                }
                Round::Stopped(stop) => return self.stop(stop, Ok(())),
            };
            self.generation += 1;
            let generation = self.generation;
            let reconnect = self.generation > 1;
            self.shared.metrics.connected(reconnect.then_some(took));
            self.shared.set_status(LinkStatus::Up { generation });
            self.shared.emit(Event::Connected {
                generation,
                attempt,
                took,
            });
            if let Some(first) = first.take() {
                let _ = first.send(Ok(()));
            }
            let up_since = Instant::now();
            match session::run(&mut self, *connection, generation).await {
                SessionEnd::Lost(error) => {
                    let class = self.classify(&error);
                    let error = Arc::new(error);
                    self.shared.metrics.disconnected();
                    self.shared.set_status(LinkStatus::Down { generation });
                    self.shared.emit(Event::Disconnected {
                        generation,
                        error: Arc::clone(&error),
                        class,
                    });
                    if !class.is_retryable() {
                        return self.give_up(error);
                    }
                    if up_since.elapsed() >= self.config.reconnect.stable_after {
                        self.backoff.reset();
                    }
                    outage = Some((Instant::now(), class, error));
                }
                SessionEnd::Stopped(stop, result) => return self.stop(stop, result),
            }
        }
    }

    /// Connects, retrying per the policy. `outage` is when and why the last connection
    /// dropped (`None` for the first connect, which waits for nothing and retries only if
    /// configured to).
    async fn connect_round(
        &mut self,
        outage: Option<(Instant, RetryClass, Arc<Error>)>,
        first: bool,
    ) -> Round {
        let (max_attempts, max_elapsed) = (
            self.config.reconnect.max_attempts,
            self.config.reconnect.max_elapsed,
        );
        let started = outage.as_ref().map_or_else(Instant::now, |(at, ..)| *at);
        let mut wait = outage.map(|(_, class, error)| (self.backoff.next_delay(class), error));
        let mut attempt = 0;
        loop {
            if let Some((delay, error)) = wait.take() {
                self.shared.emit(Event::Reconnecting {
                    attempt: attempt + 1,
                    delay,
                    error,
                });
                if let Err(stop) = self.wait(delay).await {
                    return Round::Stopped(stop);
                }
            }
            attempt += 1;
            self.shared.metrics.attempt();
            self.shared.emit(Event::Connecting { attempt });
            let error = match self.attempt().await {
                Ok(Ok(connection)) => {
                    return Round::Connected {
                        connection: Box::new(connection),
                        attempt,
                        took: started.elapsed(),
                    };
                }
                Ok(Err(error)) => error,
                Err(stop) => return Round::Stopped(stop),
            };
            let class = self.classify(&error);
            tracing::debug!(%error, ?class, attempt, "connect attempt failed");
            if !class.is_retryable() || (first && !self.config.retry_first_connect) {
                return Round::Failed(error);
            }
            let elapsed = started.elapsed();
            let delay = self.backoff.next_delay(class);
            let out_of_attempts = max_attempts.is_some_and(|max| attempt >= max);
            let out_of_time = max_elapsed.is_some_and(|max| elapsed + delay > max);
            if out_of_attempts || out_of_time {
                return Round::Failed(Error::ReconnectGaveUp {
                    attempts: attempt,
                    elapsed,
                    last_error: error.to_string(),
                });
            }
            wait = Some((delay, Arc::new(error)));
        }
    }

    /// Waits `delay`, serving handles meanwhile.
    async fn wait(&mut self, delay: std::time::Duration) -> Result<(), Stop> {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        tokio::select! {
            () = &mut sleep => Ok(()),
            stop = self.serve_outage() => Err(stop),
        }
    }

    /// One connection attempt (bounded by the transport's connect timeout), serving handles
    /// meanwhile.
    async fn attempt(&mut self) -> Result<Result<WebSocketConnection, Error>, Stop> {
        let connect = Box::pin(WebSocketConnection::open(self.config.transport.clone()));
        tokio::select! {
            result = connect => Ok(result),
            stop = self.serve_outage() => Err(stop),
        }
    }

    /// While down: keeps or hands back each message sent, until the owner closes or drops
    /// the connection. Cancel-safe.
    async fn serve_outage(&mut self) -> Stop {
        loop {
            let command = match self.held.take() {
                Some(command) => Some(command),
                None => tokio::select! {
                    command = self.commands.recv() => command,
                    () = self.token.cancelled() => return Stop::Shutdown,
                },
            };
            match command {
                Some(Command::Send(outgoing)) => self.park(outgoing),
                Some(Command::SendBatch(batch)) => batch.into_iter().for_each(|o| self.park(o)),
                // Pinned to a connection that is gone: dropped, which answers `done`.
                Some(Command::Pinned(_)) => {}
                Some(Command::Close(reply)) => return Stop::Close(reply),
                None => return Stop::Shutdown,
            }
        }
    }

    /// A message sent while down: into the outage queue, or back to its sender.
    pub(crate) fn park(&mut self, outgoing: Outgoing) {
        if self.config.queue == QueuePolicy::FailFast {
            return self.fail(outgoing, Error::ConnectionDown);
        }
        match self.queue.push_back(outgoing) {
            Ok(()) => self
                .shared
                .metrics
                .queued(self.queue.len(), self.queue.bytes()),
            Err(outgoing) => {
                let error = self.queue.full_error();
                self.fail(outgoing, error);
            }
        }
    }

    pub(crate) fn fail(&self, outgoing: Outgoing, error: Error) {
        self.shared.metrics.failed();
        outgoing.fail(error);
    }

    fn classify(&self, error: &Error) -> RetryClass {
        let class = default_class(error);
        match &self.config.classify {
            Some(hook) => hook(error, class),
            None => class,
        }
    }

    /// Ends with `error` (not retryable, or out of attempts or time).
    fn give_up(mut self, error: Arc<Error>) {
        tracing::debug!(%error, "resilient connection gave up");
        self.shared.end(&error);
        self.hand_back(&error);
        self.shared.emit_last(Event::GaveUp { error });
    }

    /// Ends because the owner closed or dropped the connection.
    fn stop(mut self, stop: Stop, result: Result<(), Error>) {
        self.shared.end(&Error::ConnectionClosed);
        self.hand_back(&Error::ConnectionClosed);
        self.shared.emit_last(Event::Closed);
        if let Stop::Close(reply) = stop {
            let _ = reply.send(result);
        }
    }

    /// Hands every message still held back to its sender with `error`, and refuses new ones.
    fn hand_back(&mut self, error: &Error) {
        self.commands.close();
        while let Some(outgoing) = self.queue.pop_front() {
            self.fail(outgoing, copy_error(error));
        }
        while let Some(outgoing) = self.batch.pop_front() {
            self.fail(outgoing, copy_error(error));
        }
        self.shared.metrics.queued(0, 0);
        while let Some(command) = self.held.take().or_else(|| self.commands.try_recv().ok()) {
            match command {
                Command::Send(outgoing) => self.fail(outgoing, copy_error(error)),
                Command::SendBatch(batch) => {
                    for outgoing in batch {
                        self.fail(outgoing, copy_error(error));
                    }
                }
                Command::Pinned(_) => {}
                Command::Close(reply) => {
                    let _ = reply.send(Ok(()));
                }
            }
        }
    }
}
