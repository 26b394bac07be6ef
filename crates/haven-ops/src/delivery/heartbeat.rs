//! The watcher watched: a dead man's switch. Every alert Haven raises
//! depends on Haven running; when the server itself dies (host down, a
//! crash, a full disk), nothing it could send would tell anybody. So the
//! server calls an outside monitor (healthchecks.io, Uptime Kuma, Cronitor,
//! a monitoring system's push endpoint) every `every`; the monitor alerts
//! when the calls stop. Each call also carries a short summary of the
//! instance's state, for monitors that show it.
//!
//! A failed call is logged and exported once (`heartbeat-failed`), and its
//! recovery once (`heartbeat-restored`): the outside monitor owns the
//! alarm, Haven only keeps the evidence.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use serde::Serialize;

use crate::clock::Clock;
use crate::delivery::export::{Event, Exporter, Outcome};
use crate::delivery::notify;
use crate::instance::settings::HeartbeatSettings;

/// What each call reports (the JSON body of the `POST`; documented in
/// `docs/server.md`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pulse {
    /// Version of this body.
    pub version: u32,
    /// When it was sent (RFC 3339, UTC).
    pub sent_at: String,
    /// The host name.
    pub host: String,
    /// Haven's version.
    pub haven_version: &'static str,
    /// `ok`; `alerting` while any alert is open (not acknowledged);
    /// `degraded` while the server cannot write its database (first).
    pub status: &'static str,
    /// Why the server is degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// Job results held in memory until the database takes them.
    pub pending_records: usize,
    /// Events the export dropped since the start.
    pub events_dropped: u64,
    /// Open and acknowledged alerts.
    pub active_alerts: usize,
    /// The most severe of them.
    pub highest_severity: Option<String>,
    /// The worst RPO state of any service (`ok` without services).
    pub worst_compliance: String,
    /// Jobs running now.
    pub running_jobs: usize,
}

/// The heartbeat's state in the server loop.
pub struct Heartbeat {
    settings: HeartbeatSettings,
    last: Option<Timestamp>,
    /// A call is under way (a slow monitor never stacks calls up).
    busy: Arc<AtomicBool>,
    /// The last call failed (so only changes are reported).
    failing: Arc<AtomicBool>,
}

impl Heartbeat {
    /// A heartbeat that is due at once.
    pub fn new(settings: HeartbeatSettings) -> Heartbeat {
        Heartbeat {
            settings,
            last: None,
            busy: Arc::new(AtomicBool::new(false)),
            failing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether a call is due at `now`: at start, then every `every`.
    pub fn due(&self, now: Timestamp) -> bool {
        self.last
            .is_none_or(|last| now.duration_since(last) >= self.settings.every)
    }

    /// Call the monitor in the background (on the current tokio runtime),
    /// unless the previous call is still under way.
    pub fn beat(&mut self, pulse: Pulse, clock: &Arc<dyn Clock>, exporter: &Arc<Exporter>) {
        self.last = Some(clock.now());
        if self.busy.swap(true, Ordering::AcqRel) {
            tracing::debug!("the previous heartbeat is still under way: skipped");
            return;
        }
        let settings = self.settings.clone();
        let busy = Arc::clone(&self.busy);
        let failing = Arc::clone(&self.failing);
        let clock = Arc::clone(clock);
        let exporter = Arc::clone(exporter);
        tokio::spawn(async move {
            let body = serde_json::to_vec(&pulse).unwrap_or_default();
            let result = notify::post(&settings.url, settings.timeout, body, &[]).await;
            let event = |action: &str| Event::new(action, "event", "network", clock.now());
            match result {
                Ok(()) if failing.swap(false, Ordering::AcqRel) => {
                    tracing::info!("heartbeat delivered again");
                    exporter.emit(
                        event("heartbeat-restored")
                            .outcome(Outcome::Success)
                            .message("the heartbeat monitor is reached again"),
                    );
                }
                Ok(()) => {}
                Err(e) => {
                    if !failing.swap(true, Ordering::AcqRel) {
                        tracing::warn!("heartbeat failed: {e}");
                        exporter.emit(
                            event("heartbeat-failed")
                                .outcome(Outcome::Failure)
                                .level("error")
                                .message(format!("the heartbeat monitor was not reached: {e}")),
                        );
                    }
                }
            }
            busy.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_model::catalog::watch::MaybeSecret;
    use jiff::SignedDuration;
    use std::time::Duration;

    #[test]
    fn due_at_start_then_every_interval() {
        let mut hb = Heartbeat::new(HeartbeatSettings {
            url: MaybeSecret::Plain("http://127.0.0.1:9/".into()),
            every: SignedDuration::from_mins(5),
            timeout: Duration::from_secs(1),
        });
        let t0: Timestamp = "2026-11-23T00:00:00Z".parse().expect("time");
        assert!(hb.due(t0));
        hb.last = Some(t0);
        assert!(!hb.due(t0 + SignedDuration::from_secs(299)));
        assert!(hb.due(t0 + SignedDuration::from_mins(5)));
    }
}
