//! Per-VM counters for `/metrics`, in the Prometheus text format (0.0.4).
//!
//! Written by hand rather than with `prometheus-client`, on purpose: that crate counts
//! with its own types (`Counter`, `Family`, `Histogram`) where the multiplexer and the
//! sessions count with the plain atomics of [`VmMetrics`], and it writes OpenMetrics: a
//! counter's `# TYPE` line names the family without `_total` (which a 0.0.4 reader does
//! not tie to the `_total` samples) and the text ends in `# EOF`, after which
//! [`render_fleet`] could not append. Fitting it would take a custom collector and a
//! new content type for about sixty lines of writer saved, at 7 more crates in the binary.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the command latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// One VM's counters; shared by its multiplexer and its sessions.
#[derive(Debug, Default)]
pub struct VmMetrics {
    pub sessions: AtomicI64,
    pub commands_ok: AtomicU64,
    pub commands_error: AtomicU64,
    pub commands_refused: AtomicU64,
    pub events: AtomicU64,
    pub reconnects: AtomicU64,
    /// Replies from QEMU that matched no command in flight (or had no id at all).
    pub unmatched_replies: AtomicU64,
    /// `screendump`s the bridge sent for the VM's screen (all viewers together).
    pub screendumps: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl VmMetrics {
    /// Records one command's round trip through QEMU.
    pub fn observe_latency(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes one metric family: its help and type lines, then one sample per
/// `(name suffix and labels, value)`, e.g. `("{vm=\"a\"}", "3")` or
/// `("_bucket{vm=\"a\",le=\"0.1\"}", "2")`.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: Vec<(String, String)>) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (series, value) in samples {
        let _ = writeln!(out, "{name}{series} {value}");
    }
}

/// Renders every VM's counters.
pub fn render<'a>(vms: impl Iterator<Item = (&'a str, &'a VmMetrics)>) -> String {
    let vms: Vec<(String, &VmMetrics)> = vms.map(|(vm, m)| (escape(vm), m)).collect();
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
    let per_vm = |value: &dyn Fn(&VmMetrics) -> String| -> Vec<(String, String)> {
        vms.iter()
            .map(|(vm, m)| (format!("{{vm=\"{vm}\"}}"), value(m)))
            .collect()
    };
    let mut out = String::new();
    family(
        &mut out,
        "qmp_bridge_sessions",
        "gauge",
        "Client sessions open now.",
        per_vm(&|m| m.sessions.load(Ordering::Relaxed).to_string()),
    );
    let mut commands = Vec::new();
    for (vm, m) in &vms {
        for (outcome, n) in [
            ("ok", &m.commands_ok),
            ("error", &m.commands_error),
            ("refused", &m.commands_refused),
        ] {
            commands.push((format!("{{vm=\"{vm}\",outcome=\"{outcome}\"}}"), load(n)));
        }
    }
    family(
        &mut out,
        "qmp_bridge_commands_total",
        "counter",
        "Commands from clients, by outcome.",
        commands,
    );
    family(
        &mut out,
        "qmp_bridge_events_total",
        "counter",
        "QEMU events relayed to clients.",
        per_vm(&|m| load(&m.events)),
    );
    family(
        &mut out,
        "qmp_bridge_upstream_reconnects_total",
        "counter",
        "Times the QMP connection was lost and reopened.",
        per_vm(&|m| load(&m.reconnects)),
    );
    family(
        &mut out,
        "qmp_bridge_unmatched_replies_total",
        "counter",
        "Replies from QEMU that matched no command in flight (none should: each is logged).",
        per_vm(&|m| load(&m.unmatched_replies)),
    );
    family(
        &mut out,
        "qmp_bridge_screendumps_total",
        "counter",
        "screendumps sent for the VM's screen, shared by all its viewers.",
        per_vm(&|m| load(&m.screendumps)),
    );
    let mut histogram = Vec::new();
    for (vm, m) in &vms {
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&m.latency_buckets) {
            histogram.push((
                format!("_bucket{{vm=\"{vm}\",le=\"{bound}\"}}"),
                load(bucket),
            ));
        }
        let count = load(&m.latency_count);
        let sum = m.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        histogram.push((format!("_bucket{{vm=\"{vm}\",le=\"+Inf\"}}"), count.clone()));
        histogram.push((format!("_sum{{vm=\"{vm}\"}}"), sum.to_string()));
        histogram.push((format!("_count{{vm=\"{vm}\"}}"), count));
    }
    family(
        &mut out,
        "qmp_bridge_command_seconds",
        "histogram",
        "Command round trip through QEMU.",
        histogram,
    );
    out
}

/// Appends the fleet's own counters: `removed` VMs dropped from `--qmp-dir`'s list after
/// their grace period.
pub fn render_fleet(out: &mut String, removed: u64) {
    family(
        out,
        "qmp_bridge_vms_removed_total",
        "counter",
        "VMs dropped from the list after their --qmp-dir socket was gone for the grace period.",
        vec![(String::new(), removed.to_string())],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = VmMetrics::default();
        m.commands_ok.fetch_add(3, Ordering::Relaxed);
        m.sessions.fetch_add(2, Ordering::Relaxed);
        m.observe_latency(Duration::from_micros(700));
        m.observe_latency(Duration::from_millis(30));
        let text = render([("vm\"1", &m)].into_iter());
        assert!(
            text.contains("qmp_bridge_commands_total{vm=\"vm\\\"1\",outcome=\"ok\"} 3"),
            "{text}"
        );
        assert!(text.contains("qmp_bridge_sessions{vm=\"vm\\\"1\"} 2"));
        assert!(text.contains("le=\"0.0005\"} 0"));
        assert!(text.contains("le=\"0.001\"} 1"));
        assert!(text.contains("le=\"0.05\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("qmp_bridge_command_seconds_count{vm=\"vm\\\"1\"} 2"));
    }
}
