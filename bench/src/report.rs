//! The one table (Markdown, so README can carry it as printed) and the targets under it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::browser::{Download, Frames};
use crate::latency;
use crate::memory::Memory;
use crate::stats::{fmt_bytes, fmt_duration, fmt_rate, fmt_ratio, group_thousands};
use crate::tools::{Programs, Tool};

/// A measurement, or why there is none.
pub type Outcome<T> = Result<T, String>;

#[derive(Debug, Clone)]
pub struct PageReport {
    pub download: Download,
    pub greeting_ms: f64,
    pub loads: usize,
    pub schema_ms: Option<f64>,
    pub frames: Option<Frames>,
    pub flood_rate: u32,
}

#[derive(Debug)]
pub struct Report {
    pub programs: Programs,
    pub qemu_latency: latency::Outcome,
    pub peer_latency: latency::Outcome,
    pub throughput: HashMap<Tool, Outcome<f64>>,
    /// Deliveries per second summed over all clients, and the bridge's RSS after the
    /// flood; `None`: the bridge has no shared mode.
    pub fan_out: Option<Outcome<(f64, u64)>>,
    pub memory: HashMap<Tool, Outcome<Memory>>,
    /// The bridge's idle sessions in shared mode; `None` without one.
    pub shared_memory: Option<Outcome<Memory>>,
    pub sessions: usize,
    pub fan_out_clients: usize,
    pub page: Option<Outcome<PageReport>>,
    /// Failures outside any one cell (a relay that would not start).
    pub errors: Vec<String>,
}

const TARGET_RATIO: f64 = 1.2;
/// Latencies closer than this (relative) are a tie: run-to-run noise on a shared machine.
const TIE: f64 = 0.02;
const TARGET_PER_SESSION: f64 = 20.0 * 1024.0;
const TARGET_GZIP: f64 = 300.0 * 1024.0;
const TARGET_SCHEMA_MS: f64 = 100.0;
const UI_NOT_BUILT: &str = "n/a (UI not built yet)";

const NOTES: &str = "
Latency: send to reply, one command in flight, the same Rust client for every column; the
tools take turns in short blocks (on the real QEMU each on a fresh connection, as it serves
one client at a time). Ratios are to the direct socket; a tie is within 2%.
websockify relays raw byte chunks in binary frames (many events per frame, re-framed by the
client), not one message per frame as qmp-bridge and websocat do, so its events/s is not
comparable one to one. websockify forks a process per session, hence no RSS figures.
";

fn short(e: &str) -> String {
    let first = e.lines().next().unwrap_or("");
    let mut s: String = first.chars().take(60).collect();
    if first.chars().count() > 60 {
        s.push('…');
    }
    format!("error: {s}")
}

fn ms(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.1} ms")
    } else {
        format!("{x:.0} ms")
    }
}

impl Report {
    pub fn new(programs: Programs) -> Report {
        Report {
            programs,
            qemu_latency: HashMap::new(),
            peer_latency: HashMap::new(),
            throughput: HashMap::new(),
            fan_out: None,
            memory: HashMap::new(),
            shared_memory: None,
            sessions: 0,
            fan_out_clients: 0,
            page: None,
            errors: Vec::new(),
        }
    }

    fn missing(&self, tool: Tool) -> Option<String> {
        (!self.programs.has(tool)).then(|| "not installed".to_owned())
    }

    fn pct(outcome: &latency::Outcome, tool: Tool, p: f64) -> Option<Duration> {
        outcome.get(&tool)?.as_ref().ok()?.percentile(p)
    }

    /// A latency cell: the figure, and its ratio to the direct socket.
    fn latency_cell(&self, outcome: &latency::Outcome, tool: Tool, p: f64) -> String {
        if let Some(m) = self.missing(tool) {
            return m;
        }
        match outcome.get(&tool) {
            None => "not started".into(),
            Some(Err(e)) => short(e),
            Some(Ok(s)) => match (s.percentile(p), Self::pct(outcome, Tool::Direct, p)) {
                (Some(x), _) if tool == Tool::Direct => fmt_duration(x),
                (Some(x), Some(floor)) => format!("{} ({})", fmt_duration(x), fmt_ratio(x, floor)),
                (Some(x), None) => fmt_duration(x),
                (None, _) => "no samples".into(),
            },
        }
    }

    fn per_tool(&self, f: impl Fn(Tool) -> String) -> Vec<String> {
        Tool::ALL.iter().map(|t| f(*t)).collect()
    }

    fn bridge_only(&self, cell: String) -> Vec<String> {
        self.per_tool(|t| {
            if t == Tool::Bridge {
                cell.clone()
            } else {
                "–".into()
            }
        })
    }

    fn rows(&self) -> Vec<(String, Vec<String>)> {
        let mut rows = Vec::new();
        let samples = |o: &latency::Outcome| {
            o.get(&Tool::Direct)
                .and_then(|s| s.as_ref().ok())
                .map(|s| s.len())
                .unwrap_or(0)
        };
        for (label, outcome) in [
            ("query-status, real QEMU", &self.qemu_latency),
            ("instant reply, minimal peer", &self.peer_latency),
        ] {
            for p in [50.0, 99.0] {
                rows.push((
                    format!("{label}: p{p:.0} ({} round trips)", samples(outcome)),
                    self.per_tool(|t| self.latency_cell(outcome, t, p)),
                ));
            }
        }
        rows.push((
            "events relayed to one client".into(),
            self.per_tool(|t| {
                self.missing(t)
                    .unwrap_or_else(|| match self.throughput.get(&t) {
                        Some(Ok(r)) => fmt_rate(*r),
                        Some(Err(e)) => short(e),
                        None => "not started".into(),
                    })
            }),
        ));
        rows.push((
            format!(
                "events fanned out to {} clients (sum over clients)",
                self.fan_out_clients
            ),
            self.per_tool(|t| match (t, &self.fan_out) {
                (Tool::Bridge, None) => "n/a (needs shared mode)".into(),
                (Tool::Bridge, Some(Ok((r, rss)))) => {
                    format!("{} (RSS after: {})", fmt_rate(*r), fmt_bytes(*rss as f64))
                }
                (Tool::Bridge, Some(Err(e))) => short(e),
                _ => "n/a (one upstream per client)".into(),
            }),
        ));
        let mem = |f: &dyn Fn(&Memory) -> String| {
            self.per_tool(|t| match (t, self.memory.get(&t)) {
                (Tool::Direct, _) => "–".into(),
                (Tool::Websockify, _) => "n/a (a process per session)".into(),
                (_, Some(Ok(m))) => f(m),
                (_, Some(Err(e))) => short(e),
                (_, None) => self.missing(t).unwrap_or_else(|| "not started".into()),
            })
        };
        rows.push((
            "RSS, no session open".into(),
            mem(&|m| fmt_bytes(m.before as f64)),
        ));
        rows.push((
            format!(
                "RSS with {} idle sessions",
                group_thousands(self.sessions as u64)
            ),
            mem(&|m| fmt_bytes(m.with as f64)),
        ));
        rows.push((
            "RSS per idle session".into(),
            mem(&|m| fmt_bytes(m.per_session())),
        ));
        let shared = match &self.shared_memory {
            None => "n/a (needs shared mode)".to_owned(),
            Some(Ok(m)) => format!(
                "{} ({} to {})",
                fmt_bytes(m.per_session()),
                fmt_bytes(m.before as f64),
                fmt_bytes(m.with as f64)
            ),
            Some(Err(e)) => short(e),
        };
        rows.push((
            "RSS per idle session, shared mode".into(),
            self.bridge_only(shared),
        ));

        let page_rows = |p: &PageReport| {
            let d = &p.download;
            vec![
                (
                    "page download: decoded / on the wire (gzip)".to_owned(),
                    format!(
                        "{} / {} ({} requests)",
                        fmt_bytes(d.decoded_bytes),
                        fmt_bytes(d.wire_bytes),
                        d.requests
                    ),
                ),
                (
                    format!("navigation to greeting shown (median of {})", p.loads),
                    ms(p.greeting_ms),
                ),
                (
                    "query-qmp-schema reply (~200 KB) rendered".to_owned(),
                    p.schema_ms.map(ms).unwrap_or_else(|| UI_NOT_BUILT.into()),
                ),
                (
                    format!(
                        "frame times under {} events/s: p50 / p99 / max",
                        group_thousands(p.flood_rate.into())
                    ),
                    p.frames
                        .map(|f| {
                            format!(
                                "{} / {} / {} ({} frames)",
                                ms(f.p50_ms),
                                ms(f.p99_ms),
                                ms(f.max_ms),
                                f.frames
                            )
                        })
                        .unwrap_or_else(|| UI_NOT_BUILT.into()),
                ),
            ]
        };
        match &self.page {
            None => rows.push((
                "browser rows".into(),
                self.bridge_only("skipped (--no-browser)".into()),
            )),
            Some(Err(e)) => rows.push(("browser rows".into(), self.bridge_only(short(e)))),
            Some(Ok(p)) => {
                for (label, cell) in page_rows(p) {
                    rows.push((label, self.bridge_only(cell)));
                }
            }
        }
        rows
    }

    /// The table, Markdown.
    pub fn table(&self) -> String {
        let mut header = vec!["measure".to_owned()];
        header.extend(Tool::ALL.iter().map(|t| t.name().to_owned()));
        let rows = self.rows();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for (label, cells) in &rows {
            widths[0] = widths[0].max(label.chars().count());
            for (i, c) in cells.iter().enumerate() {
                widths[i + 1] = widths[i + 1].max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = line(&header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&line(&rule));
        for (label, cells) in rows {
            let mut all = vec![label];
            all.extend(cells);
            out.push_str(&line(&all));
        }
        out
    }

    /// One line per target: met, missed (with the figure) or not measured.
    pub fn targets(&self) -> Vec<String> {
        let mut out = Vec::new();
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        for (label, o) in [
            ("real QEMU", &self.qemu_latency),
            ("minimal peer", &self.peer_latency),
        ] {
            let (Some(b), Some(d)) = (
                Self::pct(o, Tool::Bridge, 50.0),
                Self::pct(o, Tool::Direct, 50.0),
            ) else {
                out.push(format!(
                    "bridge p50 within {TARGET_RATIO}x of direct ({label}): not measured"
                ));
                continue;
            };
            let ratio = b.as_secs_f64() / d.as_secs_f64();
            out.push(format!(
                "bridge p50 within {TARGET_RATIO}x of direct ({label}): {} ({ratio:.2}x)",
                verdict(ratio <= TARGET_RATIO)
            ));
            for other in [Tool::Websocat, Tool::Websockify] {
                for p in [50.0, 99.0] {
                    let (Some(b), Some(x)) =
                        (Self::pct(o, Tool::Bridge, p), Self::pct(o, other, p))
                    else {
                        out.push(format!(
                            "bridge faster than {} at p{p:.0} ({label}): not measured",
                            other.name()
                        ));
                        continue;
                    };
                    let diff = b.as_secs_f64() / x.as_secs_f64() - 1.0;
                    let v = if diff.abs() < TIE {
                        "tie"
                    } else {
                        verdict(diff < 0.0)
                    };
                    out.push(format!(
                        "bridge faster than {} at p{p:.0} ({label}): {v} ({} vs {}, {:+.0}%)",
                        other.name(),
                        fmt_duration(b),
                        fmt_duration(x),
                        diff * 100.0
                    ));
                }
            }
        }
        let shared = self.shared_memory.as_ref().and_then(|m| m.as_ref().ok());
        for (mode, m) in [
            (
                "relay",
                self.memory.get(&Tool::Bridge).and_then(|m| m.as_ref().ok()),
            ),
            ("shared", shared),
        ] {
            match m {
                Some(m) => out.push(format!(
                    "idle memory under 20 KB per session ({mode} mode): {} ({} per session)",
                    verdict(m.per_session() < TARGET_PER_SESSION),
                    fmt_bytes(m.per_session())
                )),
                None if mode == "shared" && self.shared_memory.is_none() => {}
                None => out.push(format!(
                    "idle memory under 20 KB per session ({mode} mode): not measured"
                )),
            }
        }
        match &self.page {
            Some(Ok(p)) => {
                out.push(format!(
                    "page download under 300 KB gzip: {} ({} on the wire)",
                    verdict(p.download.wire_bytes < TARGET_GZIP),
                    fmt_bytes(p.download.wire_bytes)
                ));
                out.push(match p.schema_ms {
                    Some(x) => format!(
                        "schema reply rendered under 100 ms: {} ({})",
                        verdict(x < TARGET_SCHEMA_MS),
                        ms(x)
                    ),
                    None => {
                        "schema reply rendered under 100 ms: not measured (UI not built yet)".into()
                    }
                });
            }
            _ => out.push("page download and schema render: not measured".into()),
        }
        out
    }

    /// Full error messages behind the `error:` cells.
    pub fn error_details(&self) -> Vec<String> {
        let mut out = self.errors.clone();
        for (label, o) in [
            ("real QEMU", &self.qemu_latency),
            ("minimal peer", &self.peer_latency),
        ] {
            for (tool, r) in o {
                if let Err(e) = r {
                    out.push(format!("latency, {label}, {}: {e}", tool.name()));
                }
            }
        }
        for (tool, r) in &self.throughput {
            if let Err(e) = r {
                out.push(format!("throughput, {}: {e}", tool.name()));
            }
        }
        if let Some(Err(e)) = &self.fan_out {
            out.push(format!("fan-out: {e}"));
        }
        if let Some(Err(e)) = &self.shared_memory {
            out.push(format!("memory, shared mode: {e}"));
        }
        for (tool, r) in &self.memory {
            if let Err(e) = r {
                out.push(format!("memory, {}: {e}", tool.name()));
            }
        }
        if let Some(Err(e)) = &self.page {
            out.push(format!("browser: {e}"));
        }
        out
    }

    /// Table, how to read it, targets and errors, as printed.
    pub fn render(&self) -> String {
        let mut out = self.table();
        out.push_str(NOTES);
        out.push_str("\nTargets:\n");
        for t in self.targets() {
            let _ = writeln!(out, "- {t}");
        }
        let errors = self.error_details();
        if !errors.is_empty() {
            out.push_str("\nErrors:\n");
            for e in errors {
                let _ = writeln!(out, "- {e}");
            }
        }
        out
    }
}
