//! The multiplexer on its own, against an in-memory QEMU (a [`Monitor`] over channels),
//! under tokio's paused clock: fairness, stalls, slow clients and the reconnect backoff
//! are checked in virtual time, with no wall-clock bound.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

use super::*;
use crate::policy::Policy;
use crate::session::Limits;

/// How the in-memory QEMU answers: after `delay`, except `hang` (never) and `flood`
/// (`n` events of `pad` bytes each, then the reply).
#[derive(Clone)]
struct Script {
    delay: Duration,
}

/// An in-memory QEMU: each `open` fails while `failures` holds any, else starts a
/// script task behind a pair of channels.
#[derive(Clone)]
struct FakeMonitor {
    script: Script,
    failures: Arc<Mutex<VecDeque<()>>>,
    opened_at: Arc<Mutex<Vec<Instant>>>,
}

struct FakeConn {
    to_qemu: mpsc::UnboundedSender<String>,
    from_qemu: mpsc::UnboundedReceiver<String>,
}

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}"#;

impl Monitor for FakeMonitor {
    type Conn = FakeConn;

    async fn open(&self) -> Result<(FakeConn, String), UpstreamError> {
        self.opened_at.lock().unwrap().push(Instant::now());
        if self.failures.lock().unwrap().pop_front().is_some() {
            return Err(UpstreamError::Unreachable {
                target: self.describe(),
                source: std::io::ErrorKind::ConnectionRefused.into(),
            });
        }
        let (to_qemu, mut commands) = mpsc::unbounded_channel::<String>();
        let (replies, from_qemu) = mpsc::unbounded_channel();
        let script = self.script.clone();
        tokio::spawn(async move {
            while let Some(text) = commands.recv().await {
                let cmd: Value = serde_json::from_str(&text).unwrap();
                let reply = json!({"return": {"status": "running"}, "id": cmd["id"]}).to_string();
                match cmd["execute"].as_str().unwrap_or_default() {
                    "qmp_capabilities" | "query-status" => {}
                    "hang" => continue,
                    "flood" => {
                        let pad = "p".repeat(cmd["arguments"]["pad"].as_u64().unwrap() as usize);
                        for n in 0..cmd["arguments"]["n"].as_u64().unwrap() {
                            let event = json!({"event": "TICK", "data": {"n": n, "pad": pad},
                                "timestamp": {"seconds": 1, "microseconds": 0}});
                            let _ = replies.send(event.to_string());
                        }
                    }
                    _ => tokio::time::sleep(script.delay).await,
                }
                if replies.send(reply).is_err() {
                    break;
                }
            }
        });
        Ok((FakeConn { to_qemu, from_qemu }, GREETING.to_owned()))
    }

    fn describe(&self) -> String {
        "fake:qemu".into()
    }
}

impl MonitorConn for FakeConn {
    async fn send(&mut self, text: &str) -> Result<(), UpstreamError> {
        self.to_qemu
            .send(text.to_owned())
            .map_err(|_| UpstreamError::Closed)
    }

    async fn recv(&mut self) -> Result<String, UpstreamError> {
        self.from_qemu.recv().await.ok_or(UpstreamError::Closed)
    }

    fn recv_ready(&mut self) -> Option<String> {
        self.from_qemu.try_recv().ok()
    }
}

fn settings(command_timeout: Duration) -> Arc<Settings> {
    let limits = Limits {
        greeting_timeout: Duration::from_secs(2),
        max_message_bytes: 1 << 24,
        max_command_bytes: 1 << 16,
        command_timeout,
        allow_oob: false,
        send_timeout: Duration::from_secs(5),
        ping_interval: Duration::from_secs(15),
        idle_timeout: None,
        policy: Policy::default(),
        audit: None,
        libvirt_guarded: true,
    };
    Arc::new(limits.for_vm("vm", "unix:/fake".parse().unwrap()))
}

struct Harness {
    mux: Mux,
    monitor: FakeMonitor,
    _stop: watch::Sender<bool>,
}

fn start(delay: Duration, failures: usize, command_timeout: Duration) -> Harness {
    let monitor = FakeMonitor {
        script: Script { delay },
        failures: Arc::new(Mutex::new(vec![(); failures].into())),
        opened_at: Arc::default(),
    };
    let (stop, shutdown) = watch::channel(false);
    let metrics = Arc::new(VmMetrics::default());
    let mux = Mux::start_on(
        monitor.clone(),
        settings(command_timeout),
        metrics,
        shutdown,
    );
    Harness {
        mux,
        monitor,
        _stop: stop,
    }
}

/// A client of the multiplexer, negotiated.
async fn client(mux: &Mux) -> Attachment {
    let a = mux.attach(Duration::from_secs(10)).await.unwrap();
    a.commands.send(ToUpstream::Negotiated).await.unwrap();
    a
}

async fn send(a: &Attachment, command: &str, id: Value, args: Option<Value>) {
    let text = qmp::message::command(command, args, Some(id));
    let frame = qmp::parse_client_frame(&text).unwrap();
    let permit = Arc::new(Semaphore::new(1 << 16))
        .acquire_many_owned(text.len() as u32)
        .await
        .unwrap();
    a.commands
        .send(ToUpstream::Command(frame, permit))
        .await
        .unwrap();
}

async fn next(a: &mut Attachment) -> Value {
    let text = a.messages.recv().await.expect("a message");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_flooding_client_waits_on_itself() {
    let h = start(Duration::from_millis(10), 0, Duration::from_secs(30));
    let mut flooder = client(&h.mux).await;
    let mut polite = client(&h.mux).await;
    let flood = {
        let commands = flooder.commands.clone();
        tokio::spawn(async move {
            for n in 0..100 {
                let text = qmp::message::command("query-name", None, Some(json!(n)));
                let frame = qmp::parse_client_frame(&text).unwrap();
                let permit = Arc::new(Semaphore::new(1 << 16))
                    .acquire_many_owned(1)
                    .await
                    .unwrap();
                if commands
                    .send(ToUpstream::Command(frame, permit))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(25)).await;
    let asked = Instant::now();
    send(&polite, "query-name", json!("mine"), None).await;
    assert_eq!(next(&mut polite).await["id"], json!("mine"));
    // one round of the other's in-flight commands at most (8 x 10 ms), not its 100
    let waited = asked.elapsed();
    assert!(waited <= Duration::from_millis(100), "waited {waited:?}");
    for n in 0..100 {
        assert_eq!(next(&mut flooder).await["id"], json!(n));
    }
    flood.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_command_qemu_does_not_answer_is_reported_then_cleared() {
    let h = start(Duration::from_millis(1), 0, Duration::from_secs(5));
    let mut a = client(&h.mux).await;
    send(&a, "hang", json!("h"), None).await;
    let sent = Instant::now();
    let notice = next(&mut a).await;
    assert_eq!(notice["event"], json!(STALL_EVENT), "{notice}");
    assert_eq!(notice["data"]["command"], json!("hang"));
    assert_eq!(notice["data"]["id"], json!("h"));
    let after = sent.elapsed();
    assert!(
        after >= Duration::from_secs(5) && after <= Duration::from_secs(7),
        "{after:?}"
    );
    let stalled = h.mux.state().stalled.expect("the state shows the stall");
    assert!(stalled.contains("'hang'"), "{stalled}");
    // QEMU answers something else: the stall stays while 'hang' is unanswered
    send(&a, "query-name", json!("q"), None).await;
    assert_eq!(next(&mut a).await["id"], json!("q"));
    assert!(h.mux.state().stalled.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_dropped_and_the_other_reads_on() {
    let h = start(Duration::ZERO, 0, Duration::from_secs(30));
    let mut reader = client(&h.mux).await;
    let stalled = client(&h.mux).await;
    for round in 0..4 {
        send(
            &reader,
            "flood",
            json!(round),
            Some(json!({"n": 200, "pad": 4096})),
        )
        .await;
        for _ in 0..200 {
            assert_eq!(next(&mut reader).await["event"], json!("TICK"));
        }
        assert_eq!(next(&mut reader).await["id"], json!(round));
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let why = stalled
        .dropped
        .get()
        .expect("the stalled client was dropped");
    assert!(
        matches!(why, Ending::Client(ClientFault::Backlog(b)) if *b > CLIENT_QUEUE_BYTES),
        "{why}"
    );
}

#[tokio::test(start_paused = true)]
async fn reconnects_back_off_from_100_ms_doubling_to_5_s() {
    let h = start(Duration::ZERO, 9, Duration::from_secs(30));
    let mut state = h.mux.state.clone();
    state.wait_for(MonitorState::is_up).await.unwrap();
    let opened = h.monitor.opened_at.lock().unwrap().clone();
    let gaps: Vec<u64> = opened
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis() as u64)
        .collect();
    assert_eq!(gaps, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
}

#[tokio::test(start_paused = true)]
async fn clients_are_told_while_qemu_is_unreachable() {
    let h = start(Duration::ZERO, 1000, Duration::from_secs(30));
    let mut state = h.mux.state.clone();
    state.wait_for(|s| s.fault.is_some()).await.unwrap();
    let ending = h.mux.attach(Duration::ZERO).await.unwrap_err();
    assert!(matches!(ending, Ending::Unavailable { .. }), "{ending}");
    assert!(ending.to_string().contains("keeps retrying"), "{ending}");
    assert_eq!(h.mux.state().fault, Some(Fault::Unreachable));
}

#[tokio::test(start_paused = true)]
async fn a_wake_cuts_the_backoff_short() {
    let h = start(Duration::ZERO, 5, Duration::from_secs(30));
    let mut state = h.mux.state.clone();
    // down after four failed attempts (100 + 200 + 400 ms), the next one 800 ms away
    while h.monitor.opened_at.lock().unwrap().len() < 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let woken = Instant::now();
    h.mux.wake();
    while h.monitor.opened_at.lock().unwrap().len() < 5 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let opened = *h.monitor.opened_at.lock().unwrap().last().unwrap();
    assert!(
        opened - woken < Duration::from_millis(5),
        "{:?}",
        opened - woken
    );
    state.wait_for(MonitorState::is_up).await.unwrap();
}
