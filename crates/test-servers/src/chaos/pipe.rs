//! One direction of a proxied connection: a reader that timestamps what it reads into a
//! bounded delay line, and a writer that sends each chunk when it is due (latency ± jitter),
//! paced by the bandwidth limit and the slicer, held by a black hole, cut by the byte limits.
//!
//! The delay line holds at most `DELAY_LINE_BYTES` (and `DELAY_LINE_CHUNKS` chunks);
//! when it is full the reader stops reading, so a slow or delayed way pushes back on its
//! sender through TCP instead of growing memory. Chunks leave in the order they came, each
//! at its own due time, so latency does not limit throughput to one chunk per delay.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::conn::{Conn, End};
use super::faults::{Faults, Way};
use super::pace::{self, Jitter, TokenBucket};

/// Most bytes held in one direction's delay line.
pub const DELAY_LINE_BYTES: usize = 4 << 20;
/// Most chunks held in one direction's delay line (bounds the bookkeeping of tiny chunks).
const DELAY_LINE_CHUNKS: usize = 4096;
/// Bytes read at once.
const READ_SIZE: usize = 16 << 10;

/// Bytes read at one moment, waiting in the delay line.
#[derive(Debug)]
struct Chunk {
    data: Vec<u8>,
    read_at: Instant,
    /// This chunk's jitter, in -1..=1 (scaled by the jitter in force when it is sent).
    jitter: f64,
    /// Its share of the delay line's byte budget, returned once it is written.
    _held: OwnedSemaphorePermit,
}

/// Forwards `from` to `to` (`way` says which way that is) until the reading side ends and
/// everything read was written (end of file passed on as a half-close), or the connection
/// stops. Returns the halves so the connection can close them as it must.
pub async fn forward(
    way: Way,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    conn: &Conn,
) -> (OwnedReadHalf, OwnedWriteHalf) {
    let (chunks, line) = mpsc::channel(DELAY_LINE_CHUNKS);
    let budget = Arc::new(Semaphore::new(DELAY_LINE_BYTES));
    tokio::join!(
        read_side(&mut from, chunks, budget, conn),
        write_side(way, &mut to, line, conn),
    );
    (from, to)
}

/// Reads into the delay line; `None` marks end of file. A black hole reads nothing: what
/// the peer sends waits in the kernel's buffers until it is lifted.
async fn read_side(
    from: &mut OwnedReadHalf,
    line: mpsc::Sender<Option<Chunk>>,
    budget: Arc<Semaphore>,
    conn: &Conn,
) {
    let mut faults = conn.faults.clone();
    let mut jitter = Jitter::new();
    let mut buffer = vec![0u8; READ_SIZE];
    loop {
        if !passable(&mut faults, conn).await {
            return;
        }
        let read = tokio::select! {
            () = conn.stop.cancelled() => return,
            // Re-check for a black hole that started while waiting for bytes.
            changed = faults.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            read = from.read(&mut buffer) => read,
        };
        let n = match read {
            Ok(0) => {
                tokio::select! {
                    () = conn.stop.cancelled() => {}
                    _ = line.send(None) => {}
                }
                return;
            }
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "read failed");
                conn.finish(End::Failed);
                return;
            }
        };
        let read_at = Instant::now();
        let permits = u32::try_from(n).expect("a read is smaller than the budget");
        let held = tokio::select! {
            () = conn.stop.cancelled() => return,
            held = Arc::clone(&budget).acquire_many_owned(permits) => {
                held.expect("the budget is never closed")
            }
        };
        let chunk = Chunk {
            data: buffer[..n].to_vec(),
            read_at,
            jitter: jitter.sample(),
            _held: held,
        };
        tokio::select! {
            () = conn.stop.cancelled() => return,
            sent = line.send(Some(chunk)) => {
                if sent.is_err() {
                    return;
                }
            }
        }
    }
}

/// Waits until no black hole is in force; returns false if the connection stopped first.
async fn passable(faults: &mut watch::Receiver<Faults>, conn: &Conn) -> bool {
    tokio::select! {
        () = conn.stop.cancelled() => false,
        open = faults.wait_for(|faults| !faults.black_hole) => open.is_ok(),
    }
}

/// Writes what comes out of the delay line as the faults say.
async fn write_side(
    way: Way,
    to: &mut OwnedWriteHalf,
    mut line: mpsc::Receiver<Option<Chunk>>,
    conn: &Conn,
) {
    let mut faults = conn.faults.clone();
    let mut bucket: Option<TokenBucket> = None;
    loop {
        let next = tokio::select! {
            () = conn.stop.cancelled() => return,
            next = line.recv() => next,
        };
        let Some(chunk) = next.flatten() else {
            // End of file (or the reader gave up): pass the half-close on, unless the
            // connection is stopping (the reader gives up then too): a cut that resets
            // must not let a FIN go first.
            tokio::select! {
                biased;
                () = conn.stop.cancelled() => {}
                _ = to.shutdown() => {}
            }
            return;
        };
        if !wait_until_due(way, &chunk, &mut faults, conn).await {
            return;
        }
        let mut rest = &chunk.data[..];
        while !rest.is_empty() {
            if !passable(&mut faults, conn).await {
                return;
            }
            let now = *faults.borrow_and_update();
            let shaped = now.direction.includes(way);
            let mut piece = rest.len();
            let mut pause = Duration::ZERO;
            if let (true, Some(slice)) = (shaped, now.slice_bytes) {
                piece = piece.min(usize::try_from(slice).unwrap_or(usize::MAX));
                pause = Duration::from_millis(now.slice_delay_ms);
            }
            match (shaped, now.bandwidth_kbps) {
                (true, Some(kbps)) => {
                    let rate = kbps.saturating_mul(125); // bytes per second
                    let bucket = match &mut bucket {
                        Some(bucket) if bucket.bytes_per_sec() == rate => bucket,
                        _ => bucket.insert(TokenBucket::new(rate, Instant::now())),
                    };
                    piece = piece.min(bucket.piece());
                }
                _ => bucket = None,
            }
            let allowed = conn.reserve(piece, &now);
            if allowed > 0 {
                if let Some(bucket) = &mut bucket {
                    let wait = bucket.take(allowed, Instant::now());
                    if !sleep(wait, conn).await {
                        return;
                    }
                }
                let written = tokio::select! {
                    () = conn.stop.cancelled() => return,
                    written = to.write_all(&rest[..allowed]) => written,
                };
                if let Err(e) = written {
                    tracing::debug!(error = %e, "write failed");
                    conn.finish(End::Failed);
                    return;
                }
                conn.count(way, allowed);
                rest = &rest[allowed..];
            }
            if conn.check_limits(&now) || !sleep(pause, conn).await {
                return;
            }
        }
    }
}

/// Waits until `chunk` is due under the latency in force, which may change meanwhile;
/// returns false if the connection stopped first.
async fn wait_until_due(
    way: Way,
    chunk: &Chunk,
    faults: &mut watch::Receiver<Faults>,
    conn: &Conn,
) -> bool {
    loop {
        let now = *faults.borrow_and_update();
        if !now.direction.includes(way) || now.latency_ms + now.jitter_ms == 0 {
            return true;
        }
        let due = pace::due(chunk.read_at, now.latency_ms, now.jitter_ms, chunk.jitter);
        if due <= Instant::now() {
            return true;
        }
        tokio::select! {
            () = conn.stop.cancelled() => return false,
            () = tokio::time::sleep_until(due) => return true,
            changed = faults.changed() => {
                if changed.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Sleeps for `wait` (nothing when zero); returns false if the connection stopped first.
async fn sleep(wait: Duration, conn: &Conn) -> bool {
    if wait.is_zero() {
        return !conn.stop.is_cancelled();
    }
    tokio::select! {
        () = conn.stop.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}
