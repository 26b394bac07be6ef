//! The server's own health. A server whose database cannot be written
//! (locked by another program, a full disk, an I/O error) must not stop:
//! it is the thing that would tell somebody. It keeps what it could not
//! record in memory, retries with a doubling backoff, raises a
//! `store-unavailable` alert, reports itself `degraded` (`/healthz`, the
//! heartbeat) and recovers by itself when the store does.

use std::time::Duration;

use haven_store::StoreError;

pub use crate::api::{HealthReport, SharedHealth, StoreTrouble, shared};
use jiff::Timestamp;

/// The first retry after a store failure; each further one waits twice as
/// long, up to [`MAX_RETRY`].
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between retries.
pub const MAX_RETRY: Duration = Duration::from_secs(30);

/// The loop's view of the store: failing or not, and when to try again.
#[derive(Debug, Default)]
pub struct StoreHealth {
    trouble: Option<StoreTrouble>,
    delay: Duration,
    next_try: Option<tokio::time::Instant>,
}

impl StoreHealth {
    /// May the store be tried at `now` (no backoff running)?
    pub fn may_try(&self, now: tokio::time::Instant) -> bool {
        self.next_try.is_none_or(|at| now >= at)
    }

    /// When the next try is allowed, while backing off.
    pub fn next_try(&self) -> Option<tokio::time::Instant> {
        self.next_try
    }

    /// A store operation failed at `now`: back off. True when the store
    /// was well until now (an outage begins).
    pub fn failed(
        &mut self,
        error: &StoreError,
        now: Timestamp,
        instant: tokio::time::Instant,
    ) -> bool {
        let text = crate::instance::redact::redact(&error.to_string()).into_owned();
        self.delay = if self.trouble.is_some() {
            (self.delay * 2).min(MAX_RETRY)
        } else {
            FIRST_RETRY
        };
        self.next_try = Some(instant + self.delay);
        match &mut self.trouble {
            Some(trouble) => {
                trouble.error = text;
                trouble.failures += 1;
                false
            }
            None => {
                tracing::error!(
                    "the database cannot be written ({text}): results are kept in memory and retried; the server is degraded"
                );
                self.trouble = Some(StoreTrouble {
                    error: text,
                    since: now,
                    failures: 1,
                    pending_records: 0,
                });
                true
            }
        }
    }

    /// Every store operation of a round succeeded: the outage that ended,
    /// if one did.
    pub fn succeeded(&mut self) -> Option<StoreTrouble> {
        self.next_try = None;
        self.delay = Duration::ZERO;
        let ended = self.trouble.take();
        if let Some(t) = &ended {
            tracing::info!(
                "the database can be written again (it failed {} times since {}): the server is no longer degraded",
                t.failures,
                t.since
            );
        }
        ended
    }

    /// The current trouble, if any.
    pub fn trouble(&self) -> Option<&StoreTrouble> {
        self.trouble.as_ref()
    }

    /// Publish the state (with the records held in memory and the
    /// exporter's drops) for the API and the heartbeat.
    pub fn publish(&mut self, shared: &SharedHealth, pending_records: usize, events_dropped: u64) {
        if let Some(t) = &mut self.trouble {
            t.pending_records = pending_records;
        }
        let report = HealthReport {
            status: if self.trouble.is_some() {
                "degraded"
            } else {
                "ok"
            }
            .into(),
            store: self.trouble.clone(),
            events_dropped,
        };
        let mut current = shared.write().unwrap_or_else(|p| p.into_inner());
        if *current != report {
            *current = report;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_doubling_and_success_ends_the_outage() {
        let mut health = StoreHealth::default();
        let start = tokio::time::Instant::now();
        let now = Timestamp::UNIX_EPOCH;
        let locked = StoreError::Corrupt("database is locked".into());
        assert!(health.may_try(start));
        assert!(health.failed(&locked, now, start), "an outage begins");
        assert!(!health.may_try(start));
        assert!(health.may_try(start + FIRST_RETRY));
        let mut waits = vec![FIRST_RETRY];
        for _ in 0..7 {
            assert!(!health.failed(&locked, now, start));
            waits.push(health.next_try().expect("backing off") - start);
        }
        assert_eq!(
            waits.iter().map(Duration::as_secs).collect::<Vec<_>>(),
            [1, 2, 4, 8, 16, 30, 30, 30]
        );
        let shared = shared();
        health.publish(&shared, 3, 0);
        let report = shared.read().expect("read").clone();
        assert_eq!(report.status, "degraded");
        let trouble = report.store.expect("trouble");
        assert_eq!((trouble.failures, trouble.pending_records), (8, 3));
        let ended = health.succeeded().expect("an outage ended");
        assert_eq!(ended.since, now);
        assert!(health.may_try(start));
        health.publish(&shared, 0, 2);
        let report = shared.read().expect("read").clone();
        assert_eq!((report.status.as_str(), report.events_dropped), ("ok", 2));
        assert!(report.is_ok());
    }
}
