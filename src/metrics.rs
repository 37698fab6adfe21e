//! The proxy's metrics, kept with prometheus-client and rendered in the
//! Prometheus text format (0.0.4): exchanges by operation, verdict and
//! status; rejections and report-only verdicts by operation, field and rule;
//! upstream errors by kind; durations by operation; connections; bytes;
//! dropped header lines; readiness; the build, the mode, and the process
//! itself (CPU, memory, open files, start time).
//!
//! Labels are the typed labels of [`crate::exchange`], as their `as_str`.

use std::cell::RefCell;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::LocalKey;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::exchange::{Exchange, Operation, Verdict};

/// Upper bounds of the latency histograms' buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// The content type of what [`Metrics::render`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    verdict: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    operation: &'static str,
    /// The schema field at fault, empty when the body as a whole is.
    field: &'static str,
    rule: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    mode: &'static str,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The series of a counter family this thread counted in last: the id of
/// its [`Metrics`], its labels and its counter (a handle on the series,
/// which a family never drops).
type LastSeries<L> = RefCell<Option<(u64, L, Counter)>>;

thread_local! {
    static LAST_REQUESTS: LastSeries<RequestLabels> = const { RefCell::new(None) };
    static LAST_REJECTIONS: LastSeries<RuleLabels> = const { RefCell::new(None) };
    static LAST_REPORTS: LastSeries<RuleLabels> = const { RefCell::new(None) };
}

/// The proxy's metrics; shared by the transports, the layers and the admin
/// listener.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    rejections: Family<RuleLabels, Counter>,
    reports: Family<RuleLabels, Counter>,
    upstream_errors: Family<KindLabels, Counter>,
    duration: Family<OperationLabels, Histogram, fn() -> Histogram>,
    upstream_duration: Family<OperationLabels, Histogram, fn() -> Histogram>,
    /// The two families' series, one per operation in [`Operation::ALL`]'s
    /// order: handles on them, so that observing takes no map lookup.
    duration_by_op: Vec<(Histogram, Histogram)>,
    /// Tells this instance's series apart in a thread's [`LastSeries`].
    id: u64,
    open_connections: Gauge,
    refused_connections: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    dropped_headers: Counter,
    ready: Gauge,
    draining: Gauge,
    upstream_up: Gauge,
}

/// What the metrics say about the running build.
#[derive(Debug, Clone, Copy)]
pub struct Build {
    pub version: &'static str,
    pub commit: &'static str,
    /// `enforce` or `report`.
    pub mode: &'static str,
    /// Log lines dropped so far because the log writer could not keep up.
    pub log_lines_dropped: fn() -> u64,
}

impl Metrics {
    pub fn new(build: Build) -> Arc<Metrics> {
        let mut registry = Registry::default();
        let m = Metrics {
            requests: Family::default(),
            rejections: Family::default(),
            reports: Family::default(),
            upstream_errors: Family::default(),
            duration: Family::new_with_constructor(histogram),
            upstream_duration: Family::new_with_constructor(histogram),
            duration_by_op: Vec::new(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            open_connections: Gauge::default(),
            refused_connections: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            dropped_headers: Counter::default(),
            ready: Gauge::default(),
            draining: Gauge::default(),
            upstream_up: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "nova_guard_requests",
            "Exchanges by operation, verdict and status sent",
            m.requests.clone(),
        );
        registry.register(
            "nova_guard_rejections",
            "Requests answered by nova-guard, by operation, field and rule",
            m.rejections.clone(),
        );
        registry.register(
            "nova_guard_reported",
            "Requests report-only mode forwarded that enforce mode would have answered, by operation, field and rule",
            m.reports.clone(),
        );
        registry.register(
            "nova_guard_upstream_errors",
            "Failed exchanges with Nova by kind",
            m.upstream_errors.clone(),
        );
        registry.register_with_unit(
            "nova_guard_request_duration",
            "Time from request head to the end of the answer, by operation",
            Unit::Seconds,
            m.duration.clone(),
        );
        registry.register_with_unit(
            "nova_guard_upstream_duration",
            "Time from sending to Nova to its response head, by operation",
            Unit::Seconds,
            m.upstream_duration.clone(),
        );
        registry.register(
            "nova_guard_open_connections",
            "Client connections being served",
            m.open_connections.clone(),
        );
        registry.register(
            "nova_guard_refused_connections",
            "Client connections refused at the connection limit",
            m.refused_connections.clone(),
        );
        registry.register(
            "nova_guard_body_bytes_received",
            "Request body bytes received from clients",
            m.bytes_in.clone(),
        );
        registry.register(
            "nova_guard_body_bytes_sent",
            "Response body bytes sent to clients",
            m.bytes_out.clone(),
        );
        registry.register(
            "nova_guard_dropped_headers",
            "Request header lines dropped because their name has an underscore",
            m.dropped_headers.clone(),
        );
        registry.register(
            "nova_guard_ready",
            "1 while /readyz says ready: Nova answers and nova-guard is not draining",
            m.ready.clone(),
        );
        registry.register(
            "nova_guard_draining",
            "1 once nova-guard is draining (POST /drain or shutdown)",
            m.draining.clone(),
        );
        registry.register(
            "nova_guard_upstream_up",
            "1 when the last readiness check of Nova got an answer",
            m.upstream_up.clone(),
        );
        let build_info =
            Family::<BuildLabels, ConstGauge>::new_with_constructor(|| ConstGauge::new(1));
        let _ = build_info.get_or_create(&BuildLabels {
            version: build.version,
            commit: build.commit,
        });
        registry.register(
            "nova_guard_build_info",
            "The running build: 1, labelled with its version and commit",
            build_info,
        );
        let mode = Family::<ModeLabels, Gauge>::default();
        for name in ["enforce", "report"] {
            mode.get_or_create(&ModeLabels { mode: name })
                .set(i64::from(name == build.mode));
        }
        registry.register(
            "nova_guard_mode",
            "1 for the mode in force (NOVA_GUARD_MODE), 0 for the other",
            mode,
        );
        registry.register_collector(Box::new(Process::new()));
        registry.register_collector(Box::new(LogDropped(build.log_lines_dropped)));
        // Every operation's series exists from the start, at zero: a rate
        // over it is defined before the first request.
        let duration_by_op = Operation::ALL
            .iter()
            .map(|op| {
                let labels = OperationLabels {
                    operation: op.as_str(),
                };
                (
                    m.duration.get_or_create(&labels).clone(),
                    m.upstream_duration.get_or_create(&labels).clone(),
                )
            })
            .collect();
        Arc::new(Metrics {
            registry,
            duration_by_op,
            ..m
        })
    }

    /// Count one finished exchange, `x`, which took `duration` from its
    /// head to its end.
    pub fn observe(&self, x: &Exchange, duration: Duration) {
        let v = &x.validation;
        let operation = v.operation.as_str();
        self.bytes_in.inc_by(x.bytes_in);
        self.bytes_out.inc_by(x.bytes_out);
        if x.dropped_headers > 0 {
            self.dropped_headers.inc_by(u64::from(x.dropped_headers));
        }
        let labels = RequestLabels {
            operation,
            verdict: v.verdict.as_str(),
            status: x.status,
        };
        self.count(&self.requests, &LAST_REQUESTS, labels);
        let rule = RuleLabels {
            operation,
            field: v.field.unwrap_or(""),
            rule: v.rule.map_or("other", |r| r.as_str()),
        };
        match v.verdict {
            Verdict::Rejected => self.count(&self.rejections, &LAST_REJECTIONS, rule),
            Verdict::Reported => self.count(&self.reports, &LAST_REPORTS, rule),
            _ => {}
        }
        if let Some(kind) = x.upstream.error.filter(|k| k.is_upstream()) {
            self.upstream_errors
                .get_or_create(&KindLabels {
                    kind: kind.as_str(),
                })
                .inc();
        }
        let at = Operation::ALL.iter().position(|op| *op == v.operation);
        if let Some((duration_s, upstream)) = at.and_then(|i| self.duration_by_op.get(i)) {
            duration_s.observe(duration.as_secs_f64());
            if let Some(d) = x.upstream.duration {
                upstream.observe(d.as_secs_f64());
            }
        }
    }

    /// One more in `family`'s series with `labels`. The series this thread
    /// counted in last is kept at hand in `last`: exchanges in a row mostly
    /// share their labels, and the family's lookup hashes them under a lock.
    fn count<L>(
        &self,
        family: &Family<L, Counter>,
        last: &'static LocalKey<LastSeries<L>>,
        labels: L,
    ) where
        L: Clone + Hash + Eq + EncodeLabelSet + 'static,
    {
        last.with(|last| {
            let Ok(mut last) = last.try_borrow_mut() else {
                family.get_or_create(&labels).inc();
                return;
            };
            match &*last {
                Some((id, kept, counter)) if *id == self.id && *kept == labels => {
                    counter.inc();
                }
                _ => {
                    let counter = family.get_or_create_owned(&labels);
                    counter.inc();
                    *last = Some((self.id, labels, counter));
                }
            }
        });
    }

    /// A client connection is being served until the guard is dropped.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGauge {
        self.open_connections.inc();
        ConnectionGauge(self.clone())
    }

    pub fn connection_refused(&self) {
        self.refused_connections.inc();
    }

    /// What `/readyz` says, for the gauges.
    pub fn set_readiness(&self, ready: bool, draining: bool, upstream_up: bool) {
        self.ready.set(i64::from(ready));
        self.draining.set(i64::from(draining));
        self.upstream_up.set(i64::from(upstream_up));
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error would be a bug
        // in a metric's encoding, answered with what was written.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// Decrements the open-connections gauge when dropped.
pub struct ConnectionGauge(Arc<Metrics>);

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.open_connections.dec();
    }
}

/// Log lines the writer dropped rather than stall proxying.
#[derive(Debug)]
struct LogDropped(fn() -> u64);

impl Collector for LogDropped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let counter = prometheus_client::metrics::counter::ConstCounter::new((self.0)());
        let m = encoder.encode_descriptor(
            "nova_guard_log_lines_dropped",
            "Log lines dropped because the log writer could not keep up",
            None,
            counter.metric_type(),
        )?;
        counter.encode(m)
    }
}

/// The process's own resources, read from `/proc/self` at each scrape
/// (Linux), under the names every Prometheus client library uses.
#[derive(Debug)]
struct Process {
    start: f64,
}

/// Linux reports CPU time in clock ticks of USER_HZ, 100 a second on every
/// architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

impl Process {
    fn new() -> Self {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        Process { start }
    }
}

/// `Vm...:` of `/proc/self/status`, in bytes.
fn status_bytes(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// utime + stime of `/proc/self/stat`, in seconds.
fn cpu_seconds(stat: &str) -> Option<f64> {
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // State is field 3 of the whole line; utime and stime are 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

fn max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn encode_gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: f64,
) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    let m = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m)
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if let Some(cpu) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .as_deref()
            .and_then(cpu_seconds)
        {
            let counter: prometheus_client::metrics::counter::ConstCounter<f64> =
                prometheus_client::metrics::counter::ConstCounter::new(cpu);
            let m = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                counter.metric_type(),
            )?;
            counter.encode(m)?;
        }
        if let Some(rss) = status_bytes(&status, "VmRSS:") {
            encode_gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                rss as f64,
            )?;
        }
        if let Some(vsz) = status_bytes(&status, "VmSize:") {
            encode_gauge(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                vsz as f64,
            )?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            // The directory's own handle is one of them while it is read.
            let open = fds.count().saturating_sub(1);
            encode_gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors",
                open as f64,
            )?;
        }
        if let Some(max) = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .as_deref()
            .and_then(max_fds)
        {
            encode_gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors",
                max as f64,
            )?;
        }
        encode_gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            self.start,
        )
    }
}

/// A value of a series in a rendering, for tests: `name{labels} value`.
pub fn series_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::exchange::{Peer, Protocol, Rule, ValidationInfo};

    fn metrics() -> Arc<Metrics> {
        Metrics::new(Build {
            version: "1.2.3",
            commit: "abc",
            mode: "enforce",
            log_lines_dropped: || 7,
        })
    }

    fn peer() -> Peer {
        Peer::new(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            false,
        )
    }

    #[test]
    fn exchanges_in_a_row_and_interleaved_are_each_counted_once() {
        let peer = peer();
        let exchange = |status| {
            let mut x = Exchange::new(peer, Protocol::Http11);
            x.status = status;
            x
        };
        let (a, b) = (metrics(), metrics());
        for status in [200, 200, 404, 200] {
            a.observe(&exchange(status), Duration::ZERO);
            b.observe(&exchange(200), Duration::ZERO);
        }
        let series = |status| {
            format!(
                r#"nova_guard_requests_total{{operation="other",verdict="passthrough",status="{status}"}}"#
            )
        };
        assert_eq!(series_value(&a.render(), &series(200)), Some(3.0));
        assert_eq!(series_value(&a.render(), &series(404)), Some(1.0));
        assert_eq!(series_value(&b.render(), &series(200)), Some(4.0));
        assert_eq!(series_value(&b.render(), &series(404)), None);
    }

    #[test]
    fn rejections_and_reports_in_a_row_are_each_counted_once() {
        use crate::nova::Rule as Check;
        let peer = peer();
        let exchange = |verdict, field, rule| {
            let mut x = Exchange::new(peer, Protocol::Http11);
            x.validation = ValidationInfo {
                verdict,
                operation: Operation::Update,
                field: Some(field),
                ..ValidationInfo::rejected(Rule::Check(rule))
            };
            x.status = 400;
            x
        };
        let (a, b) = (metrics(), metrics());
        for (verdict, field, rule) in [
            (Verdict::Rejected, "name", Check::MinLength),
            (Verdict::Rejected, "name", Check::MinLength),
            (Verdict::Reported, "name", Check::MinLength),
            (Verdict::Rejected, "accessIPv4", Check::Format),
            (Verdict::Rejected, "name", Check::MinLength),
        ] {
            a.observe(&exchange(verdict, field, rule), Duration::ZERO);
            b.observe(
                &exchange(Verdict::Reported, "name", Check::MinLength),
                Duration::ZERO,
            );
        }
        let series = |family, field, rule| {
            format!(
                r#"nova_guard_{family}_total{{operation="update",field="{field}",rule="{rule}"}}"#
            )
        };
        let name = ("name", "minLength");
        let ipv4 = ("accessIPv4", "format");
        for (m, family, (field, rule), count) in [
            (&a, "rejections", name, Some(3.0)),
            (&a, "rejections", ipv4, Some(1.0)),
            (&a, "reported", name, Some(1.0)),
            (&a, "reported", ipv4, None),
            (&b, "reported", name, Some(5.0)),
            (&b, "rejections", name, None),
        ] {
            let series = series(family, field, rule);
            assert_eq!(series_value(&m.render(), &series), count, "{series}");
        }
    }

    #[test]
    fn text_format() {
        let peer = peer();
        let m = metrics();
        let mut rejected = Exchange::new(peer, Protocol::Http11);
        rejected.validation = ValidationInfo {
            operation: Operation::Update,
            field: Some("name"),
            ..ValidationInfo::rejected(Rule::Check(crate::nova::Rule::MinLength))
        };
        rejected.status = 400;
        rejected.bytes_in = 10;
        rejected.bytes_out = 20;
        rejected.dropped_headers = 2;
        m.observe(&rejected, Duration::ZERO);
        let mut failed = Exchange::new(peer, Protocol::Http11);
        failed.status = 502;
        failed.upstream.error = Some(ErrorKind::UpstreamConnect);
        failed.upstream.duration = Some(Duration::from_millis(20));
        failed.bytes_out = 5;
        m.observe(&failed, Duration::ZERO);
        let _gauge = m.connection_opened();
        m.set_readiness(true, false, true);
        let text = m.render();
        for (series, value) in [
            (
                r#"nova_guard_requests_total{operation="update",verdict="rejected",status="400"}"#,
                1.0,
            ),
            (
                r#"nova_guard_requests_total{operation="other",verdict="passthrough",status="502"}"#,
                1.0,
            ),
            (
                r#"nova_guard_rejections_total{operation="update",field="name",rule="minLength"}"#,
                1.0,
            ),
            (
                r#"nova_guard_upstream_errors_total{kind="upstream_connect"}"#,
                1.0,
            ),
            (
                r#"nova_guard_request_duration_seconds_bucket{operation="update",le="+Inf"}"#,
                1.0,
            ),
            (
                r#"nova_guard_request_duration_seconds_count{operation="other"}"#,
                1.0,
            ),
            (
                r#"nova_guard_upstream_duration_seconds_bucket{operation="other",le="0.025"}"#,
                1.0,
            ),
            ("nova_guard_open_connections", 1.0),
            ("nova_guard_body_bytes_received_total", 10.0),
            ("nova_guard_body_bytes_sent_total", 25.0),
            ("nova_guard_dropped_headers_total", 2.0),
            ("nova_guard_log_lines_dropped_total", 7.0),
            ("nova_guard_ready", 1.0),
            (
                r#"nova_guard_build_info{version="1.2.3",commit="abc"}"#,
                1.0,
            ),
            (r#"nova_guard_mode{mode="enforce"}"#, 1.0),
            (r#"nova_guard_mode{mode="report"}"#, 0.0),
        ] {
            assert_eq!(
                series_value(&text, series),
                Some(value),
                "{series} in\n{text}"
            );
        }
        for process in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                series_value(&text, process).is_some_and(|v| v >= 0.0),
                "{process} in\n{text}"
            );
        }
    }

    #[test]
    fn proc_files_as_linux_writes_them() {
        let stat = "1234 (nova guard) (x) S 1 1234 1234 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 3 0 100 1000 500";
        assert_eq!(cpu_seconds(stat), Some(2.0));
        assert_eq!(
            status_bytes("VmRSS:\t    5120 kB\n", "VmRSS:"),
            Some(5 * 1024 * 1024)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_fds(limits), Some(1024));
    }
}
