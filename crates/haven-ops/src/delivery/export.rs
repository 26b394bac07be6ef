//! Event export for a SIEM: every event (jobs, alerts, notifications,
//! people's actions) as one JSON object per line, with ECS-style field
//! names and RFC 3339 UTC timestamps, appended to a file and/or sent to a
//! syslog receiver (RFC 5424 over UDP, over TCP with octet counting,
//! RFC 6587, or over TLS, RFC 5425). The schema is documented in `docs/events.md` and stable.
//!
//! Writing happens on a thread of its own so a slow or unreachable
//! receiver never holds up the scheduler; [`Exporter::close`] drains it.

use std::io::Write as _;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::instance::settings::{ExportSettings, SyslogTarget, SyslogTransport};

/// The ECS version the field names follow.
pub const ECS_VERSION: &str = "8.11.0";

/// RFC 5424 facility of Haven's messages: local0.
const FACILITY: u8 = 16;

/// This machine's host name.
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// How an event turned out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It worked.
    Success,
    /// It failed.
    Failure,
    /// Neither applies.
    Unknown,
}

/// One event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The whole document.
    pub doc: Value,
    /// RFC 5424 severity (0 emergency … 7 debug).
    pub syslog_severity: u8,
}

impl Event {
    /// A new event: `action` (`job-finished`, `alert-opened`, …) of
    /// `kind` (`event` or `alert`) in `category` at `at`.
    pub fn new(action: &str, kind: &str, category: &str, at: Timestamp) -> Event {
        let doc = json!({
            "@timestamp": at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "ecs": { "version": ECS_VERSION },
            "event": {
                "kind": kind,
                "category": [category],
                "action": action,
                "outcome": "unknown",
                "dataset": "haven.events",
                "module": "haven",
            },
            "observer": { "product": "haven", "vendor": "Haven", "version": env!("CARGO_PKG_VERSION") },
            "log": { "level": "info" },
        });
        Event {
            doc,
            syslog_severity: 6,
        }
    }

    fn set(&mut self, path: &[&str], value: Value) {
        let mut node = &mut self.doc;
        for (i, key) in path.iter().enumerate() {
            if i + 1 == path.len() {
                if let Value::Object(map) = node {
                    map.insert((*key).to_string(), value);
                }
                return;
            }
            let Value::Object(map) = node else { return };
            node = map
                .entry((*key).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }

    /// The human-readable message.
    pub fn message(mut self, text: impl Into<String>) -> Event {
        self.set(&["message"], Value::String(text.into()));
        self
    }

    /// `event.outcome`.
    pub fn outcome(mut self, outcome: Outcome) -> Event {
        let text = match outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        };
        self.set(&["event", "outcome"], json!(text));
        self
    }

    /// `log.level` and the syslog severity: `info`, `notice`,
    /// `warning`, `error` or `critical`.
    pub fn level(mut self, level: &str) -> Event {
        self.syslog_severity = match level {
            "critical" => 2,
            "error" => 3,
            "warning" => 4,
            "notice" => 5,
            _ => 6,
        };
        self.set(&["log", "level"], json!(level));
        self
    }

    /// `event.severity` (0–100, ECS: higher is worse).
    pub fn severity(mut self, score: u8) -> Event {
        self.set(&["event", "severity"], json!(score));
        self
    }

    /// `user.name`: who did it (people's actions).
    pub fn user(mut self, name: &str) -> Event {
        self.set(&["user", "name"], json!(name));
        self
    }

    /// Who acted: `user.name` is the authenticated identity; a name the
    /// person declared goes to `haven.declared_user`, never to `user`.
    pub fn actor(self, actor: &haven_model::actor::Actor) -> Event {
        let event = self.user(&actor.who);
        match &actor.declared {
            Some(name) => event.haven("declared_user", json!(name)),
            None => event,
        }
    }

    /// `rule.id` and `rule.name` (alerts).
    pub fn rule(mut self, id: &str, name: &str) -> Event {
        self.set(&["rule", "id"], json!(id));
        self.set(&["rule", "name"], json!(name));
        self
    }

    /// A Haven-specific field under `haven.` (`haven.job`, `haven.alert`,
    /// `haven.system`, …).
    pub fn haven(mut self, key: &str, value: Value) -> Event {
        if !value.is_null() {
            self.set(&["haven", key], value);
        }
        self
    }

    /// The action (`event.action`).
    pub fn action(&self) -> &str {
        self.doc["event"]["action"].as_str().unwrap_or("event")
    }

    /// The document as one line of JSON.
    pub fn line(&self) -> String {
        self.doc.to_string()
    }

    /// The event as an RFC 5424 syslog message (no framing).
    pub fn syslog(&self, hostname: &str, app_name: &str) -> String {
        let pri = FACILITY * 8 + self.syslog_severity;
        let timestamp = self.doc["@timestamp"].as_str().unwrap_or("-");
        let msgid: String = self
            .action()
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(32)
            .collect();
        format!(
            "<{pri}>1 {timestamp} {} {} {} {} - {}",
            printable(hostname, 255),
            printable(app_name, 48),
            std::process::id(),
            if msgid.is_empty() { "-" } else { &msgid },
            self.line()
        )
    }
}

/// The event saying events were lost (a gap in the SIEM's record).
fn dropped_event(count: u64, total: u64) -> Event {
    Event::new("events-dropped", "event", "process", Timestamp::now())
        .outcome(Outcome::Failure)
        .level("warning")
        .message(format!(
            "{count} events were dropped: the export queue ({QUEUE}) was full ({total} since the start)"
        ))
        .haven("dropped", json!({ "count": count, "total": total }))
}

/// Every string of a document with secrets masked (string by string, so
/// a secret JSON would escape is still found).
fn redact_strings(value: &mut Value) {
    match value {
        Value::String(text) => crate::instance::redact::redact_in_place(text),
        Value::Array(items) => items.iter_mut().for_each(redact_strings),
        Value::Object(map) => map.values_mut().for_each(redact_strings),
        _ => {}
    }
}

/// An RFC 5424 header field: printable ASCII, bounded, `-` when empty.
fn printable(text: &str, max: usize) -> String {
    let s: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if s.is_empty() { "-".into() } else { s }
}

enum Command {
    Event(Box<Event>),
    Close,
}

/// Events waiting for a slow sink (a SIEM that stopped reading, a full
/// disk) are bounded: beyond this many, new events are dropped, counted,
/// and the count is exported as soon as there is room again.
pub const QUEUE: usize = 10_000;

/// Sends events to the configured sinks from a background thread.
pub struct Exporter {
    sender: Option<crossbeam_channel::Sender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Events dropped because the queue was full, since the start.
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl Exporter {
    /// An exporter for `settings`; one that drops everything when
    /// nothing is configured.
    pub fn start(settings: &ExportSettings) -> Exporter {
        if settings.file.is_none() && settings.syslog.is_none() {
            return Exporter::none();
        }
        Exporter::with_queue(settings, QUEUE)
    }

    /// An exporter whose queue holds `queue` events.
    pub fn with_queue(settings: &ExportSettings, queue: usize) -> Exporter {
        let (sender, receiver) = crossbeam_channel::bounded::<Command>(queue);
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut sinks = Sinks {
            file: settings.file.clone(),
            syslog: settings.syslog.clone(),
            app_name: settings.app_name.clone(),
            hostname: hostname(),
            tls: match settings.syslog.as_ref().map(|t| t.transport) {
                Some(SyslogTransport::Tls) => {
                    let config = tls_config(settings.ca_file.as_deref());
                    if let Err(e) = &config {
                        // Said once here; each event's warning repeats it.
                        tracing::error!("syslog over TLS cannot start: {e}");
                    }
                    Some(config)
                }
                _ => None,
            },
            connection: None,
        };
        let counted = Arc::clone(&dropped);
        let thread = std::thread::Builder::new()
            .name("haven-export".into())
            .spawn(move || {
                let mut reported = 0;
                while let Ok(Command::Event(event)) = receiver.recv() {
                    sinks.write(&event);
                    let dropped = counted.load(std::sync::atomic::Ordering::Relaxed);
                    if dropped > reported {
                        sinks.write(&dropped_event(dropped - reported, dropped));
                        reported = dropped;
                    }
                }
                if let Some(connection) = &mut sinks.connection {
                    connection.close();
                }
            })
            .ok();
        Exporter {
            sender: Some(sender),
            thread,
            dropped,
        }
    }

    /// An exporter that drops everything (tests, commands without one).
    pub fn none() -> Exporter {
        Exporter {
            sender: None,
            thread: None,
            dropped: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// Queue an event, its texts redacted; when the queue is full it is
    /// dropped and counted (the server never waits for a sink).
    pub fn emit(&self, mut event: Event) {
        let Some(sender) = &self.sender else { return };
        redact_strings(&mut event.doc);
        if let Err(crossbeam_channel::TrySendError::Full(_)) =
            sender.try_send(Command::Event(Box::new(event)))
        {
            let before = self
                .dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if before == 0 || (before + 1).is_multiple_of(1000) {
                tracing::warn!(
                    "the event export cannot keep up: {} events dropped so far",
                    before + 1
                );
            }
        }
    }

    /// Events dropped since the start (reported in `/healthz`, the
    /// heartbeat and an `events-dropped` event).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Write everything queued, then stop.
    pub fn close(&mut self) {
        if let Some(sender) = self.sender.take() {
            // Waits for room: the close must not be the event dropped.
            let _ = sender.send(Command::Close);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.close();
    }
}

/// The TLS client configuration for `tls://` syslog: the system's roots
/// plus the configured CA file (a SIEM often has a private CA).
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A stream connection to a syslog receiver.
enum Connection {
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Connection {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Connection::Tcp(s) => s.write_all(bytes),
            // Flushing completes the handshake and surfaces its errors
            // (an untrusted certificate) here, not on some later write.
            Connection::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
        }
    }

    /// End politely: TLS says close_notify so the receiver knows nothing
    /// was cut off.
    fn close(&mut self) {
        if let Connection::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }
}

struct Sinks {
    file: Option<PathBuf>,
    syslog: Option<SyslogTarget>,
    app_name: String,
    hostname: String,
    tls: Option<Result<Arc<rustls::ClientConfig>, String>>,
    connection: Option<Connection>,
}

impl Sinks {
    fn write(&mut self, event: &Event) {
        if let Some(path) = &self.file {
            let written = crate::instance::files::append_private(path)
                .and_then(|mut f| writeln!(f, "{}", event.line()));
            if let Err(e) = written {
                tracing::warn!("cannot append the event to {}: {e}", path.display());
            }
        }
        if let Some(target) = self.syslog.clone() {
            let message = event.syslog(&self.hostname, &self.app_name);
            let sent = match target.transport {
                SyslogTransport::Udp => UdpSocket::bind(if target.address.starts_with('[') {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                })
                .and_then(|s| s.send_to(message.as_bytes(), &target.address))
                .map(|_| ()),
                SyslogTransport::Tcp | SyslogTransport::Tls => self.send_framed(&target, &message),
            };
            if let Err(e) = sent {
                tracing::warn!("cannot send the event to syslog {}: {e}", target.address);
            }
        }
    }

    fn connect(&self, target: &SyslogTarget) -> std::io::Result<Connection> {
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&target.address)?
            .next()
            .ok_or_else(|| std::io::Error::other("the address resolves to nothing"))?;
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        // The TLS handshake reads too.
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let Some(tls) = &self.tls else {
            return Ok(Connection::Tcp(stream));
        };
        let config = tls.clone().map_err(std::io::Error::other)?;
        let name = rustls::pki_types::ServerName::try_from(target.host().to_string())
            .map_err(|e| std::io::Error::other(format!("{}: {e}", target.host())))?;
        let client = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        Ok(Connection::Tls(Box::new(rustls::StreamOwned::new(
            client, stream,
        ))))
    }

    /// One octet-counted frame (RFC 6587 over TCP, RFC 5425 over TLS);
    /// a broken connection is reopened once.
    fn send_framed(&mut self, target: &SyslogTarget, message: &str) -> std::io::Result<()> {
        let frame = format!("{} {message}", message.len());
        let mut last = None;
        for _ in 0..2 {
            if self.connection.is_none() {
                self.connection = Some(self.connect(target)?);
            }
            let Some(connection) = self.connection.as_mut() else {
                continue;
            };
            match connection.send(frame.as_bytes()) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.connection = None;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("the connection broke twice")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the queue was unbounded, so a sink that stopped taking
    /// events (a SIEM that hangs, a file on a stuck mount) grew it without
    /// limit. A FIFO nobody reads blocks the writer like such a sink.
    #[test]
    fn a_stuck_sink_drops_events_beyond_the_queue_counts_and_reports_them() {
        use std::io::BufRead as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("events.fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let settings = ExportSettings {
            file: Some(fifo.clone()),
            syslog: None,
            app_name: "haven".into(),
            ca_file: None,
        };
        let exporter = Exporter::with_queue(&settings, 4);
        let at: Timestamp = "2026-11-29T00:00:00Z".parse().expect("time");
        for n in 0..20 {
            exporter
                .emit(Event::new("test-event", "event", "process", at).message(format!("#{n}")));
        }
        let dropped = exporter.dropped();
        assert!((15..=16).contains(&dropped), "{dropped} dropped");
        // The sink reads again: what was queued arrives, then the count.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .expect("open the fifo");
        let mut lines = std::io::BufReader::new(reader).lines();
        let (mut delivered, mut reported) = (0, None);
        while reported.is_none() || delivered + dropped < 20 {
            let line = lines.next().expect("a line").expect("read");
            let doc: Value = serde_json::from_str(&line).expect("JSON");
            match doc["event"]["action"].as_str() {
                Some("test-event") => delivered += 1,
                Some("events-dropped") => reported = Some(doc["haven"]["dropped"]["count"].clone()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(reported, Some(json!(dropped)));
        assert_eq!(delivered + dropped, 20);
        drop(exporter);
    }

    #[test]
    fn events_are_ecs_documents_and_rfc5424_messages() {
        let at: Timestamp = "2026-11-22T06:30:00.5Z".parse().expect("time");
        let event = Event::new("alert-opened", "alert", "process", at)
            .message("backup of erp-db/db failed")
            .outcome(Outcome::Failure)
            .level("critical")
            .rule("job-failed", "job failed")
            .haven("alert", json!({ "id": 7 }))
            .haven("nothing", Value::Null);
        let doc: Value = serde_json::from_str(&event.line()).expect("one JSON line");
        assert_eq!(doc["@timestamp"], "2026-11-22T06:30:00.500Z");
        assert_eq!(doc["event"]["action"], "alert-opened");
        assert_eq!(doc["event"]["kind"], "alert");
        assert_eq!(doc["event"]["outcome"], "failure");
        assert_eq!(doc["rule"]["id"], "job-failed");
        assert_eq!(doc["haven"]["alert"]["id"], 7);
        assert!(doc["haven"].get("nothing").is_none());
        assert!(!event.line().contains('\n'));
        let line = event.syslog("backup host", "haven");
        // local0 (16) × 8 + critical (2) = 130; spaces leave the hostname.
        assert!(
            line.starts_with("<130>1 2026-11-22T06:30:00.500Z backuphost haven "),
            "{line}"
        );
        assert!(line.contains(" alert-opened - {"), "{line}");
    }
}
