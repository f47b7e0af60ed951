//! Metrics of a resilient connection: atomic counters read as a `MetricsSnapshot`, and the
//! same figures published through the `metrics` facade (names in the module docs' table).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Label, Unit};

/// A point-in-time copy of a resilient connection's metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Messages written to a socket for the user (heartbeat pings not counted).
    pub messages_sent: u64,
    /// Payload bytes of those messages.
    pub bytes_sent: u64,
    /// Data messages received and handed to the receive side.
    pub messages_received: u64,
    /// Payload bytes of those messages.
    pub bytes_received: u64,
    /// Connection attempts, the first connect included.
    pub connect_attempts: u64,
    /// Successful reconnects (connections after the first).
    pub reconnects: u64,
    /// Connections lost (each followed by a reconnect or by giving up).
    pub disconnects: u64,
    /// Messages handed back to their sender as failed.
    pub messages_failed: u64,
    /// Messages waiting in the outage queue now.
    pub queued_messages: u64,
    /// Payload bytes waiting in the outage queue now.
    pub queued_bytes: u64,
    /// The last heartbeat round-trip time, once a pong came back.
    pub heartbeat_rtt: Option<Duration>,
    /// The smoothed heartbeat round-trip time (`srtt += (rtt - srtt) / 8`, as TCP's SRTT).
    pub heartbeat_srtt: Option<Duration>,
    /// Whether a connection is up now.
    pub connected: bool,
}

/// The facade handles, registered once per connection with the recorder installed then.
#[derive(Debug)]
struct Facade {
    messages_sent: Counter,
    bytes_sent: Counter,
    messages_received: Counter,
    bytes_received: Counter,
    connect_attempts: Counter,
    reconnects: Counter,
    disconnects: Counter,
    messages_failed: Counter,
    queued_messages: Gauge,
    queued_bytes: Gauge,
    connected: Gauge,
    rtt: Histogram,
    srtt: Gauge,
    reconnect_time: Histogram,
}

/// The live counters of one resilient connection.
#[derive(Debug)]
pub(crate) struct Metrics {
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_received: AtomicU64,
    connect_attempts: AtomicU64,
    reconnects: AtomicU64,
    disconnects: AtomicU64,
    messages_failed: AtomicU64,
    queued_messages: AtomicU64,
    queued_bytes: AtomicU64,
    /// Nanoseconds; 0 until the first pong.
    rtt: AtomicU64,
    srtt: AtomicU64,
    connected: AtomicBool,
    facade: Facade,
}

impl Metrics {
    /// Counters at zero; facade handles registered with `labels` on every metric.
    pub(crate) fn new(labels: &[(String, String)]) -> Self {
        describe();
        let labels: Vec<Label> = labels
            .iter()
            .map(|(key, value)| Label::new(key.clone(), value.clone()))
            .collect();
        let counter = |name: &'static str| metrics::counter!(name, labels.iter());
        let gauge = |name: &'static str| metrics::gauge!(name, labels.iter());
        let histogram = |name: &'static str| metrics::histogram!(name, labels.iter());
        let facade = Facade {
            messages_sent: counter("ws_client_messages_sent_total"),
            bytes_sent: counter("ws_client_bytes_sent_total"),
            messages_received: counter("ws_client_messages_received_total"),
            bytes_received: counter("ws_client_bytes_received_total"),
            connect_attempts: counter("ws_client_connect_attempts_total"),
            reconnects: counter("ws_client_reconnects_total"),
            disconnects: counter("ws_client_disconnects_total"),
            messages_failed: counter("ws_client_messages_failed_total"),
            queued_messages: gauge("ws_client_queued_messages"),
            queued_bytes: gauge("ws_client_queued_bytes"),
            connected: gauge("ws_client_connected"),
            rtt: histogram("ws_client_heartbeat_rtt_seconds"),
            srtt: gauge("ws_client_heartbeat_srtt_seconds"),
            reconnect_time: histogram("ws_client_reconnect_seconds"),
        };
        Self {
            messages_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            connect_attempts: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            messages_failed: AtomicU64::new(0),
            queued_messages: AtomicU64::new(0),
            queued_bytes: AtomicU64::new(0),
            rtt: AtomicU64::new(0),
            srtt: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            facade,
        }
    }

    pub(crate) fn sent(&self, bytes: usize) {
        self.sent_many(1, bytes);
    }

    pub(crate) fn sent_many(&self, messages: usize, bytes: usize) {
        add(
            &self.messages_sent,
            &self.facade.messages_sent,
            messages as u64,
        );
        add(&self.bytes_sent, &self.facade.bytes_sent, bytes as u64);
    }

    pub(crate) fn received(&self, bytes: usize) {
        add(&self.messages_received, &self.facade.messages_received, 1);
        add(
            &self.bytes_received,
            &self.facade.bytes_received,
            bytes as u64,
        );
    }

    pub(crate) fn attempt(&self) {
        add(&self.connect_attempts, &self.facade.connect_attempts, 1);
    }

    pub(crate) fn failed(&self) {
        add(&self.messages_failed, &self.facade.messages_failed, 1);
    }

    /// A connection is up; `outage` is how long it was down (`None` for the first).
    pub(crate) fn connected(&self, outage: Option<Duration>) {
        self.connected.store(true, Ordering::Relaxed);
        self.facade.connected.set(1.0);
        if let Some(outage) = outage {
            add(&self.reconnects, &self.facade.reconnects, 1);
            self.facade.reconnect_time.record(outage.as_secs_f64());
        }
    }

    pub(crate) fn disconnected(&self) {
        self.connected.store(false, Ordering::Relaxed);
        self.facade.connected.set(0.0);
        add(&self.disconnects, &self.facade.disconnects, 1);
    }

    /// Nothing is connected any more (closed or given up).
    pub(crate) fn ended(&self) {
        self.connected.store(false, Ordering::Relaxed);
        self.facade.connected.set(0.0);
    }

    pub(crate) fn queued(&self, messages: usize, bytes: usize) {
        self.queued_messages
            .store(messages as u64, Ordering::Relaxed);
        self.queued_bytes.store(bytes as u64, Ordering::Relaxed);
        self.facade.queued_messages.set(messages as f64);
        self.facade.queued_bytes.set(bytes as f64);
    }

    pub(crate) fn round_trip(&self, rtt: Duration, srtt: Duration) {
        self.rtt.store(nanos(rtt), Ordering::Relaxed);
        self.srtt.store(nanos(srtt), Ordering::Relaxed);
        self.facade.rtt.record(rtt.as_secs_f64());
        self.facade.srtt.set(srtt.as_secs_f64());
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let duration = |counter: &AtomicU64| match read(counter) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        };
        MetricsSnapshot {
            messages_sent: read(&self.messages_sent),
            bytes_sent: read(&self.bytes_sent),
            messages_received: read(&self.messages_received),
            bytes_received: read(&self.bytes_received),
            connect_attempts: read(&self.connect_attempts),
            reconnects: read(&self.reconnects),
            disconnects: read(&self.disconnects),
            messages_failed: read(&self.messages_failed),
            queued_messages: read(&self.queued_messages),
            queued_bytes: read(&self.queued_bytes),
            heartbeat_rtt: duration(&self.rtt),
            heartbeat_srtt: duration(&self.srtt),
            connected: self.connected.load(Ordering::Relaxed),
        }
    }
}

fn add(atomic: &AtomicU64, counter: &Counter, value: u64) {
    atomic.fetch_add(value, Ordering::Relaxed);
    counter.increment(value);
}

/// Nanoseconds, at least 1 so that a measured zero is not read as "none yet".
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Units and help texts for exporters (Prometheus `# HELP` lines and the like).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    let count = Unit::Count;
    let bytes = Unit::Bytes;
    describe_counter!(
        "ws_client_messages_sent_total",
        count,
        "Messages written to a socket"
    );
    describe_counter!("ws_client_bytes_sent_total", bytes, "Payload bytes written");
    describe_counter!(
        "ws_client_messages_received_total",
        count,
        "Data messages received"
    );
    describe_counter!(
        "ws_client_bytes_received_total",
        bytes,
        "Payload bytes received"
    );
    describe_counter!(
        "ws_client_connect_attempts_total",
        count,
        "Connection attempts"
    );
    describe_counter!("ws_client_reconnects_total", count, "Successful reconnects");
    describe_counter!("ws_client_disconnects_total", count, "Connections lost");
    describe_counter!(
        "ws_client_messages_failed_total",
        count,
        "Messages handed back unsent"
    );
    describe_gauge!(
        "ws_client_queued_messages",
        count,
        "Messages in the outage queue"
    );
    describe_gauge!(
        "ws_client_queued_bytes",
        bytes,
        "Payload bytes in the outage queue"
    );
    describe_gauge!("ws_client_connected", count, "1 while a connection is up");
    let seconds = Unit::Seconds;
    describe_histogram!("ws_client_heartbeat_rtt_seconds", seconds, "Heartbeat RTT");
    describe_gauge!(
        "ws_client_heartbeat_srtt_seconds",
        seconds,
        "Smoothed heartbeat RTT"
    );
    describe_histogram!(
        "ws_client_reconnect_seconds",
        seconds,
        "Drop to reconnected"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use metrics::{HistogramFn, Key, KeyName, Metadata, Recorder, SharedString};

    /// A recorder that keeps every counter and gauge value and histogram sample by key.
    #[derive(Default)]
    struct Keep {
        counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
        gauges: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
        histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
    }

    #[derive(Default)]
    struct Samples(Mutex<Vec<f64>>);

    impl HistogramFn for Samples {
        fn record(&self, value: f64) {
            self.0.lock().unwrap().push(value);
        }
    }

    fn shown(key: &Key) -> String {
        let labels: Vec<String> = key
            .labels()
            .map(|label| format!("{}={}", label.key(), label.value()))
            .collect();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }

    impl Recorder for Keep {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let mut map = self.counters.lock().unwrap();
            Counter::from_arc(Arc::clone(map.entry(shown(key)).or_default()))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            let mut map = self.gauges.lock().unwrap();
            Gauge::from_arc(Arc::clone(map.entry(shown(key)).or_default()))
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            let mut map = self.histograms.lock().unwrap();
            Histogram::from_arc(Arc::clone(map.entry(shown(key)).or_default()))
        }
    }

    #[test]
    fn snapshot_and_facade_agree() {
        let recorder = Keep::default();
        let labels = [("peer".to_owned(), "prices".to_owned())];
        let metrics = metrics::with_local_recorder(&recorder, || Metrics::new(&labels));
        metrics.attempt();
        metrics.connected(None);
        metrics.sent(10);
        metrics.sent(5);
        metrics.received(7);
        metrics.disconnected();
        metrics.queued(3, 30);
        metrics.failed();
        metrics.attempt();
        metrics.connected(Some(Duration::from_millis(250)));
        metrics.round_trip(Duration::from_millis(4), Duration::from_millis(6));

        let snapshot = metrics.snapshot();
        assert_eq!(
            (
                snapshot.messages_sent,
                snapshot.bytes_sent,
                snapshot.messages_received
            ),
            (2, 15, 1)
        );
        assert_eq!(
            (
                snapshot.connect_attempts,
                snapshot.reconnects,
                snapshot.disconnects
            ),
            (2, 1, 1)
        );
        assert_eq!((snapshot.queued_messages, snapshot.queued_bytes), (3, 30));
        assert_eq!(snapshot.messages_failed, 1);
        assert_eq!(snapshot.heartbeat_srtt, Some(Duration::from_millis(6)));
        assert!(snapshot.connected);

        let counter = |name: &str| {
            recorder.counters.lock().unwrap()[&format!("{name}{{peer=prices}}")]
                .load(Ordering::Relaxed)
        };
        let gauge = |name: &str| {
            let bits = recorder.gauges.lock().unwrap()[&format!("{name}{{peer=prices}}")]
                .load(Ordering::Relaxed);
            f64::from_bits(bits)
        };
        assert_eq!(counter("ws_client_bytes_sent_total"), 15);
        assert_eq!(counter("ws_client_messages_sent_total"), 2);
        assert_eq!(counter("ws_client_reconnects_total"), 1);
        assert_eq!(counter("ws_client_connect_attempts_total"), 2);
        assert_eq!(counter("ws_client_messages_failed_total"), 1);
        assert_eq!(gauge("ws_client_queued_messages"), 3.0);
        assert_eq!(gauge("ws_client_connected"), 1.0);
        let histograms = recorder.histograms.lock().unwrap();
        let reconnect = histograms["ws_client_reconnect_seconds{peer=prices}"]
            .0
            .lock()
            .unwrap();
        assert_eq!(*reconnect, [0.25]);
    }
}
