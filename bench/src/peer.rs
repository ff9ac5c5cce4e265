//! The minimal QMP peer: answers at once, so a round trip through it measures the relay
//! and not QEMU. It runs on its own thread and runtime, accepts any number of
//! connections (1,000 idle sessions need 1,000 upstreams in relay mode), and on demand
//! floods events:
//!
//! - `{"execute": "x-bench-flood", "arguments": {"count": N}}`: replies, then writes N
//!   events as fast as the socket takes them (the throughput rows);
//! - [`PeerOptions::paced_flood`]: after `qmp_capabilities`, events at a fixed rate for a
//!   while (the browser's frame-time row).
//!
//! Every other command gets `{"return": {...}}` with its `id`; `query-status` gets what a
//! running QEMU says.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;

use testkit::fake_peer::GREETING;
use testkit::{Result, TempDir};

/// The command that starts a flood of `arguments.count` events.
pub const FLOOD_COMMAND: &str = "x-bench-flood";
/// The name of the events the peer floods.
pub const FLOOD_EVENT: &str = "BENCH_TICK";

/// Events at a fixed rate, for a fixed time.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub per_second: u32,
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PeerOptions {
    /// Start a paced flood on every connection once it has negotiated.
    pub paced_flood: Option<Pace>,
}

#[derive(Debug)]
pub struct MinimalPeer {
    path: PathBuf,
    accepted: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: TempDir,
}

impl MinimalPeer {
    pub fn start(options: PeerOptions) -> Result<MinimalPeer> {
        let dir = TempDir::new("bench-peer")?;
        let path = dir.path().join("qmp.sock");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            UnixListener::bind(&path)?
        };
        let accepted = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = oneshot::channel::<()>();
        let count = accepted.clone();
        let thread = std::thread::Builder::new()
            .name("minimal-qmp-peer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let accept = async {
                        while let Ok((stream, _)) = listener.accept().await {
                            count.fetch_add(1, Ordering::Relaxed);
                            tokio::spawn(async move {
                                let _ = serve(stream, options).await;
                            });
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(MinimalPeer {
            path,
            accepted,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for MinimalPeer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The reply to one command.
fn reply_to(command: &Value) -> String {
    let ret = match command["execute"].as_str() {
        Some("query-status") => {
            json!({ "status": "running", "singlestep": false, "running": true })
        }
        _ => json!({}),
    };
    let mut reply = json!({ "return": ret });
    if let Some(id) = command.get("id") {
        reply["id"] = id.clone();
    }
    format!("{reply}\r\n")
}

/// `count` events numbered from `first`, as QEMU writes them (one per line, CRLF).
pub fn events(first: u64, count: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, micros) = (now.as_secs(), now.subsec_micros());
    let mut out = String::with_capacity(count as usize * 112);
    for seq in first..first + count {
        out.push_str(&format!(
            "{{\"event\": \"{FLOOD_EVENT}\", \"data\": {{\"seq\": {seq}}}, \"timestamp\": {{\"seconds\": {secs}, \"microseconds\": {micros}}}}}\r\n"
        ));
    }
    out
}

async fn flood(writer: &mut OwnedWriteHalf, count: u64) -> Result<()> {
    const CHUNK: u64 = 512;
    let mut sent = 0;
    while sent < count {
        let n = CHUNK.min(count - sent);
        writer.write_all(events(sent, n).as_bytes()).await?;
        sent += n;
    }
    Ok(())
}

async fn serve(stream: UnixStream, options: PeerOptions) -> Result<()> {
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(GREETING.as_bytes()).await?;
    let mut framer = qmp::Framer::new(qmp::framing::DEFAULT_MAX_MESSAGE_BYTES);
    let mut buf = vec![0u8; 8 * 1024];
    // The paced flood: a tick every 10 ms carrying rate/100 events, until a deadline.
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let mut pace: Option<(tokio::time::Instant, u64)> = None;
    let mut seq = 0;
    loop {
        tokio::select! {
            n = reader.read(&mut buf) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                framer.push(&buf[..n]);
                while let Some(text) = framer.next_message()? {
                    let command: Value = serde_json::from_str(&text)?;
                    writer.write_all(reply_to(&command).as_bytes()).await?;
                    match command["execute"].as_str() {
                        Some(FLOOD_COMMAND) => {
                            let count = command["arguments"]["count"].as_u64().unwrap_or(0);
                            flood(&mut writer, count).await?;
                        }
                        Some("qmp_capabilities") => {
                            if let Some(p) = options.paced_flood {
                                let until = tokio::time::Instant::now() + p.duration;
                                pace = Some((until, u64::from(p.per_second / 100).max(1)));
                                ticker.reset();
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ = ticker.tick(), if pace.is_some() => {
                let Some((until, per_tick)) = pace else { continue };
                if tokio::time::Instant::now() >= until {
                    pace = None;
                    continue;
                }
                writer.write_all(events(seq, per_tick).as_bytes()).await?;
                seq += per_tick;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_qmp_events_one_per_line() {
        let text = events(7, 3);
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 3);
        for (i, line) in lines.iter().enumerate() {
            match qmp::Message::parse(line).expect("valid QMP") {
                qmp::Message::Event(e) => {
                    assert_eq!(e.name, FLOOD_EVENT);
                    assert_eq!(e.data["seq"], 7 + i as u64);
                }
                other => panic!("not an event: {other:?}"),
            }
        }
    }

    #[test]
    fn replies_carry_the_id() {
        let r = reply_to(&json!({ "execute": "query-status", "id": 42 }));
        let v: Value = serde_json::from_str(r.trim_end()).expect("json");
        assert_eq!(v["id"], 42);
        assert_eq!(v["return"]["status"], "running");
        let r = reply_to(&json!({ "execute": "qmp_capabilities" }));
        assert_eq!(r, "{\"return\":{}}\r\n");
    }
}
