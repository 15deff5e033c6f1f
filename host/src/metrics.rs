//! Prometheus metrics (`GET /metrics` on the management port): counters and histograms per
//! instance, kept in atomics on the instance and rendered in the text exposition format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Latency bucket bounds, seconds.
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A fixed-bucket histogram.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Record one observation.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.counts[BUCKETS.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// Where a request's time went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// base64 + image decode on the host.
    Decode,
    /// The component call, inference included.
    Component,
    /// Inside ONNX Runtime.
    Inference,
    /// Whole request.
    Total,
}

const STAGES: [(Stage, &str); 4] = [
    (Stage::Decode, "decode"),
    (Stage::Component, "component"),
    (Stage::Inference, "inference"),
    (Stage::Total, "total"),
];

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    ClientError,
    ServerError,
    Busy,
}

const OUTCOMES: [(Outcome, &str); 4] = [
    (Outcome::Ok, "ok"),
    (Outcome::ClientError, "client_error"),
    (Outcome::ServerError, "server_error"),
    (Outcome::Busy, "busy"),
];

/// One instance's metrics.
#[derive(Default)]
pub struct InstanceMetrics {
    outcomes: [AtomicU64; 4],
    stages: [Histogram; 4],
    pub loads: AtomicU64,
    pub unloads: AtomicU64,
    /// Requests failed because inference would have passed the instance's memory budget.
    pub budget_refusals: AtomicU64,
    pub load_time: Histogram,
}

impl InstanceMetrics {
    /// Count a finished request.
    pub fn outcome(&self, o: Outcome) {
        let i = OUTCOMES.iter().position(|(x, _)| *x == o).unwrap_or(0);
        self.outcomes[i].fetch_add(1, Relaxed);
    }

    /// Record time spent in a stage.
    pub fn stage(&self, s: Stage, d: Duration) {
        let i = STAGES.iter().position(|(x, _)| *x == s).unwrap_or(0);
        self.stages[i].observe(d);
    }

    /// Outcome of an HTTP status.
    pub fn outcome_of(status: u16) -> Outcome {
        match status {
            503 => Outcome::Busy,
            400..=499 => Outcome::ClientError,
            500..=599 => Outcome::ServerError,
            _ => Outcome::Ok,
        }
    }
}

/// What the renderer needs of one instance.
pub struct Sample<'a> {
    pub name: &'a str,
    pub state: &'a str,
    pub metrics: &'a InstanceMetrics,
    pub wasm_memory_bytes: u64,
    /// What the instance's inference sessions hold now, and their budget.
    pub inference_memory_bytes: u64,
    pub inference_memory_limit_bytes: u64,
    /// Requests admitted and not yet answered (waiting for a replica or running).
    pub in_flight: usize,
    /// The loaded graphs and what runs them.
    pub graphs: &'a [crate::nn::GraphState],
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

/// One value per instance: `name{instance="..."} value`.
fn per_instance(
    out: &mut String,
    (name, kind, text): (&str, &str, &str),
    samples: &[Sample],
    value: impl Fn(&Sample) -> u64,
) {
    help(out, name, kind, text);
    for s in samples {
        let _ = writeln!(
            out,
            "{name}{{instance=\"{}\"}} {}",
            escape(s.name),
            value(s)
        );
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The whole exposition.
pub fn render(samples: &[Sample], rss_bytes: Option<u64>) -> String {
    let mut out = String::new();
    help(
        &mut out,
        "host_requests_total",
        "counter",
        "Requests answered, by instance and outcome.",
    );
    for s in samples {
        for (i, (_, name)) in OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "host_requests_total{{instance=\"{}\",outcome=\"{name}\"}} {}",
                escape(s.name),
                s.metrics.outcomes[i].load(Relaxed)
            );
        }
    }
    help(
        &mut out,
        "host_request_duration_seconds",
        "histogram",
        "Request time by stage: decode, component (inference included), inference, total.",
    );
    for s in samples {
        for (i, (_, stage)) in STAGES.iter().enumerate() {
            s.metrics.stages[i].render(
                &mut out,
                "host_request_duration_seconds",
                &format!("instance=\"{}\",stage=\"{stage}\"", escape(s.name)),
            );
        }
    }
    per_instance(
        &mut out,
        (
            "host_loads_total",
            "counter",
            "Instance loads (compile or cache, instantiate, init).",
        ),
        samples,
        |x| x.metrics.loads.load(Relaxed),
    );
    per_instance(
        &mut out,
        ("host_unloads_total", "counter", "Idle unloads."),
        samples,
        |x| x.metrics.unloads.load(Relaxed),
    );
    help(
        &mut out,
        "host_load_duration_seconds",
        "histogram",
        "Time to load an instance.",
    );
    for s in samples {
        s.metrics.load_time.render(
            &mut out,
            "host_load_duration_seconds",
            &format!("instance=\"{}\"", escape(s.name)),
        );
    }
    per_instance(
        &mut out,
        (
            "host_instance_wasm_memory_bytes",
            "gauge",
            "Linear memory of the loaded component (0 when unloaded).",
        ),
        samples,
        |x| x.wasm_memory_bytes,
    );
    per_instance(
        &mut out,
        (
            "host_instance_inference_memory_bytes",
            "gauge",
            "What the instance's ONNX Runtime sessions hold on the CPU: weights, and activations during a run.",
        ),
        samples,
        |x| x.inference_memory_bytes,
    );
    per_instance(
        &mut out,
        (
            "host_instance_inference_memory_limit_bytes",
            "gauge",
            "The instance's inference memory budget (inference_memory_mb).",
        ),
        samples,
        |x| x.inference_memory_limit_bytes,
    );
    per_instance(
        &mut out,
        (
            "host_budget_refusals_total",
            "counter",
            "Requests failed because inference would have passed the instance's memory budget.",
        ),
        samples,
        |x| x.metrics.budget_refusals.load(Relaxed),
    );
    per_instance(
        &mut out,
        (
            "host_instance_in_flight",
            "gauge",
            "Requests admitted and not yet answered: waiting for a replica or running (what to scale on).",
        ),
        samples,
        |x| x.in_flight as u64,
    );
    help(
        &mut out,
        "host_instance_state",
        "gauge",
        "1 for the instance's current state.",
    );
    for s in samples {
        for state in crate::instance::State::ALL.map(crate::instance::State::as_str) {
            let _ = writeln!(
                out,
                "host_instance_state{{instance=\"{}\",state=\"{state}\"}} {}",
                escape(s.name),
                u8::from(s.state == state)
            );
        }
    }
    help(
        &mut out,
        "host_graph_backend",
        "gauge",
        "1 for the backend running each loaded graph (with `auto`: the one it chose) and the precision it computes in.",
    );
    for s in samples {
        for g in s.graphs {
            let _ = writeln!(
                out,
                "host_graph_backend{{instance=\"{}\",graph=\"{}\",backend=\"{}\",precision=\"{}\",auto=\"{}\"}} 1",
                escape(s.name),
                escape(&g.name),
                g.backend,
                escape(&g.precision),
                g.choice.is_some()
            );
        }
    }
    help(
        &mut out,
        "host_graph_backend_p50_seconds",
        "gauge",
        "What `backend: auto` measured for each candidate backend of a loaded graph: median run time.",
    );
    for s in samples {
        for g in s.graphs {
            for t in g.choice.iter().flat_map(|c| &c.measured.trials) {
                let _ = writeln!(
                    out,
                    "host_graph_backend_p50_seconds{{instance=\"{}\",graph=\"{}\",backend=\"{}\"}} {}",
                    escape(s.name),
                    escape(&g.name),
                    t.backend,
                    t.p50_ms / 1e3
                );
            }
        }
    }
    if let Some(rss) = rss_bytes {
        help(
            &mut out,
            "host_process_resident_memory_bytes",
            "gauge",
            "Resident set size of the host process.",
        );
        let _ = writeln!(out, "host_process_resident_memory_bytes {rss}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = InstanceMetrics::default();
        m.stage(Stage::Total, Duration::from_millis(3));
        m.stage(Stage::Total, Duration::from_secs(100));
        m.outcome(Outcome::Busy);
        let text = render(
            &[Sample {
                name: "a",
                state: "ready",
                metrics: &m,
                wasm_memory_bytes: 7,
                inference_memory_bytes: 5,
                inference_memory_limit_bytes: 9,
                in_flight: 3,
                graphs: &[],
            }],
            Some(1),
        );
        assert!(text.contains(
            "host_request_duration_seconds_bucket{instance=\"a\",stage=\"total\",le=\"0.0025\"} 0"
        ));
        assert!(text.contains(
            "host_request_duration_seconds_bucket{instance=\"a\",stage=\"total\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "host_request_duration_seconds_bucket{instance=\"a\",stage=\"total\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("host_requests_total{instance=\"a\",outcome=\"busy\"} 1"));
        assert!(text.contains("host_instance_state{instance=\"a\",state=\"ready\"} 1"));
        assert!(text.contains("host_instance_in_flight{instance=\"a\"} 3"));
        assert!(text.contains("host_instance_inference_memory_bytes{instance=\"a\"} 5"));
        assert!(text.contains("host_instance_inference_memory_limit_bytes{instance=\"a\"} 9"));
    }
}
