//! Per-VM counters for `/metrics`, in the Prometheus text format.

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

/// Renders every VM's counters.
pub fn render<'a>(vms: impl Iterator<Item = (&'a str, &'a VmMetrics)> + Clone) -> String {
    let mut out = String::new();
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let _ = writeln!(out, "# HELP qmp_bridge_sessions Client sessions open now.");
    let _ = writeln!(out, "# TYPE qmp_bridge_sessions gauge");
    for (vm, m) in vms.clone() {
        let _ = writeln!(
            out,
            "qmp_bridge_sessions{{vm=\"{}\"}} {}",
            escape(vm),
            m.sessions.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP qmp_bridge_commands_total Commands from clients, by outcome."
    );
    let _ = writeln!(out, "# TYPE qmp_bridge_commands_total counter");
    for (vm, m) in vms.clone() {
        let vm = escape(vm);
        for (outcome, n) in [
            ("ok", &m.commands_ok),
            ("error", &m.commands_error),
            ("refused", &m.commands_refused),
        ] {
            let _ = writeln!(
                out,
                "qmp_bridge_commands_total{{vm=\"{vm}\",outcome=\"{outcome}\"}} {}",
                load(n)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP qmp_bridge_events_total QEMU events relayed to clients."
    );
    let _ = writeln!(out, "# TYPE qmp_bridge_events_total counter");
    for (vm, m) in vms.clone() {
        let _ = writeln!(
            out,
            "qmp_bridge_events_total{{vm=\"{}\"}} {}",
            escape(vm),
            load(&m.events)
        );
    }
    let _ = writeln!(out, "# HELP qmp_bridge_upstream_reconnects_total Times the QMP connection was lost and reopened.");
    let _ = writeln!(out, "# TYPE qmp_bridge_upstream_reconnects_total counter");
    for (vm, m) in vms.clone() {
        let _ = writeln!(
            out,
            "qmp_bridge_upstream_reconnects_total{{vm=\"{}\"}} {}",
            escape(vm),
            load(&m.reconnects)
        );
    }
    let _ = writeln!(
        out,
        "# HELP qmp_bridge_command_seconds Command round trip through QEMU."
    );
    let _ = writeln!(out, "# TYPE qmp_bridge_command_seconds histogram");
    for (vm, m) in vms {
        let vm = escape(vm);
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&m.latency_buckets) {
            let _ = writeln!(
                out,
                "qmp_bridge_command_seconds_bucket{{vm=\"{vm}\",le=\"{bound}\"}} {}",
                load(bucket)
            );
        }
        let count = load(&m.latency_count);
        let _ = writeln!(
            out,
            "qmp_bridge_command_seconds_bucket{{vm=\"{vm}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "qmp_bridge_command_seconds_sum{{vm=\"{vm}\"}} {}",
            load(&m.latency_sum_us) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "qmp_bridge_command_seconds_count{{vm=\"{vm}\"}} {count}"
        );
    }
    out
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
