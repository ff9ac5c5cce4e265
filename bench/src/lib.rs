//! qmp-bench: qmp-bridge measured side by side with the direct QMP socket, websocat and
//! websockify, by one Rust client, against the same upstreams, in one run.
//!
//! - [`stats`]: percentiles, medians, number formats.
//! - [`peer`]: the minimal QMP peer (instant replies, event floods, any number of clients).
//! - [`tools`]: the contenders as processes in front of an upstream socket; RSS.
//! - [`client`]: the measuring QMP client, direct or through any of the relays.
//! - [`latency`], [`throughput`], [`memory`], [`browser`]: the measurements.
//! - [`report`]: the one table, and the targets met or missed.
//!
//! `./scripts/bench` installs websocat and websockify, builds, and runs the binary.

pub mod browser;
pub mod client;
pub mod latency;
pub mod memory;
pub mod peer;
pub mod report;
pub mod stats;
pub mod throughput;
pub mod tools;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use latency::Connections;
use peer::{MinimalPeer, Pace, PeerOptions};
use report::Report;
use tools::{BridgeMode, Programs, Relay, Tool};

/// Flags of `qmp-bench`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "qmp-bench",
    about = "Benchmarks qmp-bridge against a direct QMP socket, websocat and websockify"
)]
pub struct Args {
    /// The qmp-bridge to measure (a release build).
    #[arg(long, default_value = "target/release/qmp-bridge")]
    pub bridge: PathBuf,
    /// websocat to compare with (its column is skipped without it).
    #[arg(long)]
    pub websocat: Option<PathBuf>,
    /// websockify to compare with (its column is skipped without it).
    #[arg(long)]
    pub websockify: Option<PathBuf>,
    /// Timed round trips per tool and upstream.
    #[arg(long, default_value_t = 5000)]
    pub round_trips: usize,
    /// Untimed round trips at the start of each turn.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Turns each tool takes: many short turns (20 round trips by default) spread a
    /// shared machine's noise evenly over the tools.
    #[arg(long, default_value_t = 250)]
    pub rounds: usize,
    /// Events per flood in the throughput rows.
    #[arg(long, default_value_t = 100_000)]
    pub flood_events: u64,
    /// Floods per tool (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub flood_runs: usize,
    /// Idle sessions held open for the memory rows.
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// Clients of the fan-out row (needs the bridge's shared mode).
    #[arg(long, default_value_t = 100)]
    pub fan_out_clients: usize,
    /// Page loads for the time to greeting (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub page_loads: usize,
    /// Events per second in the frame-time row.
    #[arg(long, default_value_t = 5000)]
    pub flood_rate: u32,
    /// Skip the headless Chromium rows.
    #[arg(long)]
    pub no_browser: bool,
}

fn progress(what: &str) {
    eprintln!("qmp-bench: {what}");
}

/// Starts every installed contender in front of `upstream`; those that fail are reported.
fn start_relays(
    programs: &Programs,
    upstream: &std::path::Path,
    errors: &mut Vec<String>,
) -> Vec<Relay> {
    let mut relays = Vec::new();
    for tool in Tool::ALL.into_iter().filter(|t| programs.has(*t)) {
        match Relay::start(tool, programs, upstream, BridgeMode::Relay) {
            Ok(r) => relays.push(r),
            Err(e) => errors.push(format!("{}: {e}", tool.name())),
        }
    }
    relays
}

/// Runs every measurement and returns the report.
pub async fn run(args: &Args) -> testkit::Result<Report> {
    let mut programs = Programs::new(
        args.bridge.clone(),
        args.websocat.clone(),
        args.websockify.clone(),
    );
    programs.max_clients = args.sessions + args.fan_out_clients + 16;
    if !programs.bridge.is_file() {
        return Err(format!(
            "{}: no such qmp-bridge (run ./scripts/build)",
            programs.bridge.display()
        )
        .into());
    }
    let mut report = Report::new(programs.clone());
    let plan = latency::Plan {
        count: args.round_trips,
        warmup: args.warmup,
        rounds: args.rounds,
    };

    progress("latency: query-status on a real QEMU");
    let qemu = testkit::Qemu::start()?;
    {
        let relays = start_relays(&programs, qemu.socket(), &mut report.errors);
        report.qemu_latency =
            latency::interleaved(&relays, "query-status", plan, Connections::PerTurn).await;
    }

    progress("latency: instant replies from the minimal peer");
    let peer = MinimalPeer::start(PeerOptions::default())?;
    let relays = start_relays(&programs, peer.path(), &mut report.errors);
    report.peer_latency =
        latency::interleaved(&relays, "query-status", plan, Connections::Kept).await;

    progress("throughput: events to one client");
    for relay in &relays {
        let rate =
            throughput::one_client(&relay.endpoint, args.flood_events, args.flood_runs).await;
        report
            .throughput
            .insert(relay.tool, rate.map_err(|e| e.to_string()));
    }
    for relay in relays
        .iter()
        .filter(|r| matches!(r.tool, Tool::Bridge | Tool::Websocat))
    {
        progress(&format!(
            "memory: {} with {} idle sessions",
            relay.tool.name(),
            args.sessions
        ));
        let m = memory::idle_sessions(relay, args.sessions).await;
        report
            .memory
            .insert(relay.tool, m.map_err(|e| e.to_string()));
    }
    drop(relays);
    if programs.bridge_has_shared_mode() {
        progress("shared mode: fan-out and idle sessions");
        match Relay::start(Tool::Bridge, &programs, peer.path(), BridgeMode::Shared) {
            Ok(shared) => {
                let m = memory::idle_sessions(&shared, args.sessions).await;
                report.shared_memory = Some(m.map_err(|e| e.to_string()));
                let count = args.flood_events / 10;
                let rate = throughput::fan_out(&shared.endpoint, args.fan_out_clients, count).await;
                // What the flood leaves behind, once its clients are gone.
                tokio::time::sleep(Duration::from_millis(500)).await;
                let rss = shared.pid().map(tools::rss_bytes).transpose();
                report.fan_out = Some(
                    rate.and_then(|r| Ok((r, rss?.unwrap_or(0))))
                        .map_err(|e| e.to_string()),
                );
            }
            Err(e) => report.errors.push(format!("qmp-bridge --mode shared: {e}")),
        }
    }
    report.sessions = args.sessions;
    report.fan_out_clients = args.fan_out_clients;

    if !args.no_browser {
        progress("browser: page load, greeting, schema, frames");
        report.page = Some(
            page(args, &programs, &qemu)
                .await
                .map_err(|e| e.to_string()),
        );
    }
    Ok(report)
}

async fn page(
    args: &Args,
    programs: &Programs,
    qemu: &testkit::Qemu,
) -> testkit::Result<report::PageReport> {
    let bridge = Relay::start(Tool::Bridge, programs, qemu.socket(), BridgeMode::Default)?;
    let url = bridge
        .page_url
        .clone()
        .ok_or("the bridge printed no page URL")?;
    let chromium = testkit::Browser::launch().await?;
    let tab = browser::bench_tab(&chromium).await?;
    let (download, greeting_ms) = browser::page_load(&tab, &url, args.page_loads).await?;
    let schema_ms = browser::schema_render(&tab).await?;
    drop(tab);

    // The flood: a peer sending `flood_rate` events/s to every session once negotiated.
    let pace = Pace {
        per_second: args.flood_rate,
        duration: Duration::from_secs(8),
    };
    let flooding = MinimalPeer::start(PeerOptions {
        paced_flood: Some(pace),
    })?;
    let bridge = Relay::start(Tool::Bridge, programs, flooding.path(), BridgeMode::Default)?;
    let url = bridge
        .page_url
        .clone()
        .ok_or("the bridge printed no page URL")?;
    let tab = browser::bench_tab(&chromium).await?;
    browser::load_until_greeting(&tab, &url).await?;
    let frames = browser::frames(&tab).await?;
    Ok(report::PageReport {
        download,
        greeting_ms,
        loads: args.page_loads,
        schema_ms,
        frames,
        flood_rate: args.flood_rate,
    })
}
