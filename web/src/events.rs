//! The event log: every event QEMU sent this session, per-name counts, and the few the
//! page shows.
//!
//! Under a flood (thousands a second) the page must stay responsive, so the DOM only ever
//! shows the newest [`SHOWN`] matching events, while the counts and the JSON-lines export
//! cover everything. Each event keeps its text as received; its data is parsed only when
//! it is shown.

use std::collections::BTreeMap;
use std::rc::Rc;

use qmp::Event;
use serde_json::Value;

/// Events the page shows at most.
pub const SHOWN: usize = 500;
/// Events kept for the export at most (about 200 bytes each): past this, the oldest tenth
/// is let go at once and counted, so an endless flood cannot exhaust the tab. The per-name
/// counts stay complete.
pub const KEPT: usize = 200_000;

/// One received event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Position in the session (1, 2, ...), a stable key for the page.
    pub seq: u64,
    pub name: Rc<str>,
    /// QEMU's timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: f64,
    /// The message as QEMU sent it (one JSON object).
    pub text: Box<str>,
}

impl EventRecord {
    /// The event's `data` member (`{}` when absent or unreadable).
    pub fn data(&self) -> Value {
        serde_json::from_str::<Value>(&self.text)
            .ok()
            .and_then(|mut v| v.get_mut("data").map(Value::take))
            .unwrap_or_else(|| Value::Object(Default::default()))
    }
}

/// Every event of the session, with counts by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventLog {
    all: Vec<Rc<EventRecord>>,
    counts: BTreeMap<Rc<str>, u64>,
    next_seq: u64,
    /// Events let go past [`KEPT`] since the last clear.
    dropped: u64,
}

impl EventLog {
    /// Records `event` whose message text was `text`.
    pub fn push(&mut self, event: Event, text: &str) {
        let name: Rc<str> = match self.counts.get_key_value(event.name.as_str()) {
            Some((k, _)) => k.clone(),
            None => Rc::from(event.name.as_str()),
        };
        *self.counts.entry(name.clone()).or_insert(0) += 1;
        self.next_seq += 1;
        self.all.push(Rc::new(EventRecord {
            seq: self.next_seq,
            name,
            timestamp_ms: event.timestamp_ms(),
            text: text.trim().into(),
        }));
        if self.all.len() > KEPT {
            let excess = self.all.len() - KEPT + KEPT / 10;
            self.all.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// Events let go (past [`KEPT`]) since the last clear: not in the export.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Events since the last clear.
    pub fn total(&self) -> usize {
        self.all.len()
    }

    pub fn count(&self, name: &str) -> u64 {
        self.counts.get(name).copied().unwrap_or(0)
    }

    /// `(name, count)`, by name.
    pub fn counts(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counts.iter().map(|(k, v)| (&**k, *v))
    }

    pub fn clear(&mut self) {
        self.all.clear();
        self.counts.clear();
        self.dropped = 0;
    }

    /// The newest [`SHOWN`] events whose name contains `filter` (case-insensitive; empty
    /// matches all), oldest first.
    pub fn shown(&self, filter: &str) -> Vec<Rc<EventRecord>> {
        let filter = filter.trim().to_ascii_uppercase();
        // match the filter against the few distinct names, not every event
        let names: Vec<&str> = self
            .counts
            .keys()
            .filter(|n| n.to_ascii_uppercase().contains(&filter))
            .map(|n| &**n)
            .collect();
        let mut out: Vec<Rc<EventRecord>> = self
            .all
            .iter()
            .rev()
            .filter(|e| filter.is_empty() || names.contains(&&*e.name))
            .take(SHOWN)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// Every kept event as JSON lines (one message per line, as QEMU sent it).
    pub fn export_jsonl(&self) -> String {
        let mut out = String::with_capacity(self.all.iter().map(|e| e.text.len() + 1).sum());
        for e in &self.all {
            out.push_str(&e.text);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmp::Message;

    fn push(log: &mut EventLog, text: &str) {
        let Ok(Message::Event(e)) = Message::parse(text) else {
            panic!("not an event: {text}")
        };
        log.push(e, text);
    }

    fn event(name: &str, n: u64) -> String {
        format!(
            r#"{{"event": "{name}", "data": {{"n": {n}}}, "timestamp": {{"seconds": {n}, "microseconds": 250000}}}}"#
        )
    }

    #[test]
    fn a_flood_is_capped_on_the_page_but_counted_and_exported_whole() {
        let mut log = EventLog::default();
        for n in 0..3000 {
            push(
                &mut log,
                &event(if n % 3 == 0 { "STOP" } else { "RESUME" }, n),
            );
        }
        assert_eq!(log.total(), 3000);
        assert_eq!(log.count("STOP"), 1000);
        assert_eq!(log.count("RESUME"), 2000);
        let shown = log.shown("");
        assert_eq!(shown.len(), SHOWN);
        assert_eq!(shown.last().unwrap().data()["n"], 2999, "newest last");
        assert_eq!(shown[0].data()["n"], 2500);
        assert_eq!(shown[0].timestamp_ms, 2_500_250.0);
        let export = log.export_jsonl();
        assert_eq!(export.lines().count(), 3000);
        for line in export.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert!(v["event"].is_string());
        }
    }

    #[test]
    fn filter_matches_names_anywhere_case_insensitively() {
        let mut log = EventLog::default();
        push(&mut log, &event("STOP", 1));
        push(&mut log, &event("JOB_STATUS_CHANGE", 2));
        push(&mut log, &event("RESUME", 3));
        let names: Vec<String> = log
            .shown("status")
            .iter()
            .map(|e| e.name.to_string())
            .collect();
        assert_eq!(names, ["JOB_STATUS_CHANGE"]);
        assert_eq!(log.shown("s").len(), 3);
        assert_eq!(
            log.counts().collect::<Vec<_>>(),
            [("JOB_STATUS_CHANGE", 1), ("RESUME", 1), ("STOP", 1)]
        );
        log.clear();
        assert_eq!(log.total(), 0);
        assert_eq!(log.counts().count(), 0);
        push(&mut log, &event("STOP", 4));
        assert!(log.shown("")[0].seq > 3, "keys stay unique after a clear");
    }

    #[test]
    fn missing_data_is_an_empty_object() {
        let mut log = EventLog::default();
        push(
            &mut log,
            r#"{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}}"#,
        );
        assert_eq!(log.shown("")[0].data(), serde_json::json!({}));
    }

    #[test]
    fn an_endless_flood_is_bounded_and_counted() {
        let mut log = EventLog::default();
        let text = r#"{"event": "TICK", "timestamp": {"seconds": 1, "microseconds": 0}}"#;
        for _ in 0..KEPT + 5 {
            let Ok(qmp::Message::Event(e)) = qmp::Message::parse(text) else {
                panic!()
            };
            log.push(e, text);
        }
        assert!(
            log.total() <= KEPT && log.total() >= KEPT - KEPT / 10,
            "{}",
            log.total()
        );
        assert_eq!(log.total() as u64 + log.dropped(), (KEPT + 5) as u64);
        assert_eq!(log.count("TICK"), (KEPT + 5) as u64, "counts stay complete");
        assert_eq!(log.export_jsonl().lines().count(), log.total());
        log.clear();
        assert_eq!((log.total(), log.dropped()), (0, 0));
    }
}
