//! Prometheus metrics (`--prometheus-bind-ip`/`--prometheus-bind-port`), with upstream's
//! names and labels (atc/metric/emitter/prometheus.go): builds, HTTP responses, scheduling,
//! checks, workers. Counters and histograms are kept here as events happen; worker gauges
//! are read from the store at each scrape, so no series outlives its worker. Labels are
//! bounded: team, pipeline, job, route template, status, never ids or versions.

use crate::db::{BuildRow, BuildStatus, Store, WorkerState};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upstream's build duration buckets (seconds).
const BUILD_BUCKETS: &[f64] = &[
    1.0, 60.0, 180.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 7200.0, 18000.0, 36000.0,
];
/// Prometheus' default buckets, which upstream's HTTP histogram uses.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// One metric family: its series by label values.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    buckets: &'static [f64],
    /// An unlabelled counter: shown at 0 before it first counts.
    zero: bool,
    values: BTreeMap<Labels, f64>,
    histograms: BTreeMap<Labels, Histogram>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            buckets: &[],
            zero: false,
            values: BTreeMap::new(),
            histograms: BTreeMap::new(),
        }
    }
    fn total(name: &'static str, help: &'static str) -> Family {
        Family {
            zero: true,
            ..Family::new(name, "counter", help)
        }
    }
    fn histogram(name: &'static str, buckets: &'static [f64], help: &'static str) -> Family {
        Family {
            buckets,
            ..Family::new(name, "histogram", help)
        }
    }
}

/// The process's metrics: one registry, as Prometheus clients keep a default one.
pub struct Metrics {
    families: Mutex<Vec<Family>>,
}

/// The metrics of this process.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        families: Mutex::new(vec![
            Family::total(
                "concourse_builds_started_total",
                "Total number of Concourse builds started.",
            ),
            Family::total(
                "concourse_builds_finished_total",
                "Total number of Concourse builds finished.",
            ),
            Family::total(
                "concourse_builds_succeeded_total",
                "Total number of Concourse builds succeeded.",
            ),
            Family::total(
                "concourse_builds_failed_total",
                "Total number of Concourse builds failed.",
            ),
            Family::total(
                "concourse_builds_errored_total",
                "Total number of Concourse builds errored.",
            ),
            Family::total(
                "concourse_builds_aborted_total",
                "Total number of Concourse builds aborted.",
            ),
            Family::new(
                "concourse_builds_finished",
                "counter",
                "Count of builds finished across various dimensions.",
            ),
            Family::histogram(
                "concourse_builds_duration_seconds",
                BUILD_BUCKETS,
                "Build time in seconds",
            ),
            Family::total(
                "concourse_builds_resumed_total",
                "Builds adopted from a web node that died or handed them over, and resumed.",
            ),
            Family::histogram(
                "concourse_http_responses_duration_seconds",
                HTTP_BUCKETS,
                "Response time in seconds",
            ),
            Family::new(
                "concourse_scheduling_full_duration_seconds_total",
                "counter",
                "Total time taken to schedule an entire pipeline",
            ),
            Family::new(
                "concourse_scheduling_total",
                "counter",
                "Total number of times a pipeline has been scheduled",
            ),
            Family::new(
                "concourse_resource_checks_total",
                "counter",
                "Counts the number of resource checks performed",
            ),
            Family::new("concourse_locks_held", "gauge", "Database locks held"),
            Family::total(
                "concourse_resource_checks_shared_total",
                "Periodic checks not run: another resource of the same config (in any \
                 pipeline) was just checked.",
            ),
        ]),
    })
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

impl Metrics {
    fn with<R>(&self, name: &str, f: impl FnOnce(&mut Family) -> R) -> Option<R> {
        let mut families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        families.iter_mut().find(|f| f.name == name).map(f)
    }

    fn add(&self, name: &str, labels: Labels, by: f64) {
        self.with(name, |f| *f.values.entry(labels).or_default() += by);
    }

    fn observe(&self, name: &str, labels: Labels, value: f64) {
        self.with(name, |f| {
            let buckets = f.buckets;
            let h = f.histograms.entry(labels).or_insert_with(|| Histogram {
                counts: vec![0; buckets.len()],
                ..Default::default()
            });
            for (i, le) in buckets.iter().enumerate() {
                if value <= *le {
                    h.counts[i] += 1;
                }
            }
            h.sum += value;
            h.count += 1;
        });
    }

    pub fn build_started(&self) {
        self.add("concourse_builds_started_total", Vec::new(), 1.0);
    }

    pub fn build_resumed(&self) {
        self.add("concourse_builds_resumed_total", Vec::new(), 1.0);
    }

    /// A build ended with `status` after `seconds`.
    pub fn build_finished(&self, b: &BuildRow, status: BuildStatus, seconds: f64) {
        self.add("concourse_builds_finished_total", Vec::new(), 1.0);
        let total = match status {
            BuildStatus::Succeeded => "concourse_builds_succeeded_total",
            BuildStatus::Failed => "concourse_builds_failed_total",
            BuildStatus::Errored => "concourse_builds_errored_total",
            BuildStatus::Aborted => "concourse_builds_aborted_total",
            _ => return,
        };
        self.add(total, Vec::new(), 1.0);
        let (team, pipeline) = (b.team_name.as_str(), b.pipeline_name.as_str());
        let job = b.job_name.as_str();
        self.add(
            "concourse_builds_finished",
            labels(&[
                ("team", team),
                ("pipeline", pipeline),
                ("job", job),
                ("status", status.as_str()),
            ]),
            1.0,
        );
        self.observe(
            "concourse_builds_duration_seconds",
            labels(&[("team", team), ("pipeline", pipeline)]),
            seconds,
        );
    }

    /// An HTTP response: `route` is the matched route's template (bounded).
    pub fn http_response(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.observe(
            "concourse_http_responses_duration_seconds",
            labels(&[
                ("method", method),
                ("route", route),
                ("status", &status.to_string()),
            ]),
            took.as_secs_f64(),
        );
    }

    /// One scheduling pass over a pipeline.
    pub fn pipeline_scheduled(&self, pipeline: &str, took: Duration) {
        let l = labels(&[("pipeline", pipeline)]);
        self.add("concourse_scheduling_total", l.clone(), 1.0);
        self.add(
            "concourse_scheduling_full_duration_seconds_total",
            l,
            took.as_secs_f64(),
        );
    }

    pub fn resource_checked(&self, team: &str, pipeline: &str) {
        self.add(
            "concourse_resource_checks_total",
            labels(&[("team", team), ("pipeline", pipeline)]),
            1.0,
        );
    }

    /// Whether this node holds the lease `kind` (upstream's lock types; ours are leases).
    pub fn lock_held(&self, kind: &str, held: bool) {
        self.with("concourse_locks_held", |f| {
            f.values
                .insert(labels(&[("type", kind)]), if held { 1.0 } else { 0.0 });
        });
    }

    pub fn resource_check_shared(&self) {
        self.add("concourse_resource_checks_shared_total", Vec::new(), 1.0);
    }

    /// The text exposition format (0.0.4): what this process counted, then the workers'
    /// gauges as the store has them now.
    pub async fn render(&self, store: &dyn Store) -> String {
        let mut out = String::new();
        {
            let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
            for f in families.iter() {
                let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
                let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
                if f.zero && f.values.is_empty() {
                    let _ = writeln!(out, "{} 0", f.name);
                }
                for (l, v) in &f.values {
                    let _ = writeln!(out, "{}{} {}", f.name, series(l, None), number(*v));
                }
                for (l, h) in &f.histograms {
                    for (le, c) in f.buckets.iter().zip(&h.counts) {
                        let le = number(*le);
                        let _ = writeln!(out, "{}_bucket{} {c}", f.name, series(l, Some(&le)));
                    }
                    let _ = writeln!(
                        out,
                        "{}_bucket{} {}",
                        f.name,
                        series(l, Some("+Inf")),
                        h.count
                    );
                    let _ = writeln!(out, "{}_sum{} {}", f.name, series(l, None), number(h.sum));
                    let _ = writeln!(out, "{}_count{} {}", f.name, series(l, None), h.count);
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP concourse_db_connections Current number of concourse database connections"
        );
        let _ = writeln!(out, "# TYPE concourse_db_connections gauge");
        let _ = writeln!(
            out,
            "concourse_db_connections{{dbname=\"main\"}} {}",
            store.connections()
        );
        let _ = writeln!(
            out,
            "# HELP concourse_db_queries_total Total number of database Concourse database queries"
        );
        let _ = writeln!(out, "# TYPE concourse_db_queries_total counter");
        let _ = writeln!(out, "concourse_db_queries_total {}", store.queries());
        workers(&mut out, store).await;
        out
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: std::sync::Arc<dyn Store>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let store = store.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    metrics().render(store.as_ref()).await,
                )
            }
        }),
    );
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "serving metrics");
    }
}

/// `concourse_workers_registered{state}`, `concourse_workers_containers` and `_volumes`
/// per worker, from the store.
async fn workers(out: &mut String, store: &dyn Store) {
    let Ok(all) = store.workers().await else {
        return;
    };
    let mut per_state: BTreeMap<&str, u64> = BTreeMap::new();
    for s in ["running", "stalled", "landing", "landed", "retiring"] {
        per_state.insert(s, 0);
    }
    let _ = writeln!(
        out,
        "# HELP concourse_workers_containers Number of containers per worker"
    );
    let _ = writeln!(out, "# TYPE concourse_workers_containers gauge");
    let mut volumes = String::new();
    for w in &all {
        let state = match w.state {
            WorkerState::Running => "running",
            WorkerState::Stalled => "stalled",
            WorkerState::Landing => "landing",
            WorkerState::Landed => "landed",
            WorkerState::Retiring => "retiring",
        };
        *per_state.entry(state).or_default() += 1;
        let p = &w.worker;
        let tags = p.tags.clone().unwrap_or_default().join(",");
        let l = labels(&[
            ("worker", &p.name),
            ("platform", &p.platform),
            ("team", &p.team),
            ("tags", &tags),
        ]);
        let _ = writeln!(
            out,
            "concourse_workers_containers{} {}",
            series(&l, None),
            p.active_containers
        );
        let _ = writeln!(
            volumes,
            "concourse_workers_volumes{} {}",
            series(&l, None),
            p.active_volumes
        );
    }
    let _ = writeln!(
        out,
        "# HELP concourse_workers_volumes Number of volumes per worker"
    );
    let _ = writeln!(out, "# TYPE concourse_workers_volumes gauge");
    out.push_str(&volumes);
    let _ = writeln!(
        out,
        "# HELP concourse_workers_registered Number of workers per state as seen by the database"
    );
    let _ = writeln!(out, "# TYPE concourse_workers_registered gauge");
    for (state, n) in per_state {
        let _ = writeln!(out, "concourse_workers_registered{{state=\"{state}\"}} {n}");
    }
}

/// `{k="v",...}` (with `le` last for buckets), values escaped as the format requires.
fn series(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_buckets_are_cumulative() {
        let l = labels(&[("pipeline", "a\"b\\c\nd")]);
        assert_eq!(series(&l, None), "{pipeline=\"a\\\"b\\\\c\\nd\"}");
        assert_eq!(series(&l, Some("+Inf")).matches("le=").count(), 1);
        let m = Metrics {
            families: Mutex::new(vec![Family::histogram("h", &[1.0, 5.0], "h")]),
        };
        for v in [0.5, 3.0, 9.0] {
            m.observe("h", Vec::new(), v);
        }
        m.with("h", |f| {
            let h = &f.histograms[&Vec::new()];
            assert_eq!((h.counts.clone(), h.count, h.sum), (vec![1, 2], 3, 12.5));
        });
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
    }
}
