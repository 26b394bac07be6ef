//! The `store-unavailable` alert: raised when the server's database
//! cannot be written, resolved when it can again.
//!
//! An alert is normally recorded first and notified after; this one is
//! about the record itself. When the store will not take it, it is sent
//! straight through the escalation's channels (nothing written) and
//! recorded, with those delivery attempts, once the store is back.

use std::sync::Arc;

use haven_model::actor::Actor;
use haven_model::alerts::{self, Alert};
use haven_store::{AlertFilter, Store, StoreError};
use jiff::Timestamp;
use tokio::task::JoinHandle;

use crate::delivery::export::{self, Exporter};
use crate::delivery::notify::{Notifier, Report, dispatch};
use crate::server::core::Core;
use crate::server::health::StoreTrouble;
use haven_model::alert_rules as rules;

use crate::watch::alert_event;

/// How the outage's alert stands.
pub(super) enum Outage {
    /// Recorded in the store like any other alert.
    Recorded,
    /// The store would not take it: it was sent without being recorded.
    Unrecorded {
        /// The alert as raised.
        alert: Box<Alert>,
        /// Its delivery, under way or done.
        delivery: Option<JoinHandle<Report>>,
    },
}

impl Outage {
    /// Raise the alert: through the watch when the store takes it,
    /// otherwise straight to the channels.
    pub(super) async fn raise(
        core: &mut Core,
        notifier: &Arc<Notifier>,
        exporter: &Arc<Exporter>,
        trouble: &StoreTrouble,
        now: Timestamp,
    ) -> Outage {
        let observation = rules::store(Some(rules::StoreDown {
            error: &trouble.error,
            since: trouble.since,
            pending_records: trouble.pending_records,
        }));
        let error = match core.watch().apply(&observation, now).await {
            Ok(notices) => {
                dispatch(notifier, notices);
                return Outage::Recorded;
            }
            Err(e) => e,
        };
        let Some(condition) = observation.holding.into_iter().next() else {
            return Outage::Recorded;
        };
        let mut alert = alerts::raise(0, condition, now);
        tracing::error!(
            rule = alert.rule.id(),
            severity = alert.severity.as_str(),
            "alert (sent unrecorded, the database fails: {error}): {}",
            alert.summary
        );
        exporter.emit(alert_event("alert-opened", &alert, now, None));
        let delivery = core.watch().escalate(&mut alert, now).map(|notification| {
            let notifier = Arc::clone(notifier);
            tokio::spawn(async move { notifier.send_unrecorded(&notification).await })
        });
        Outage::Unrecorded {
            alert: Box::new(alert),
            delivery,
        }
    }

    /// The store works again: resolve the alert (recording it first, with
    /// its deliveries, if it could not be). On failure the outage stands.
    pub(super) async fn resolve(
        self,
        core: &mut Core,
        store: &Arc<dyn Store>,
        exporter: &Arc<Exporter>,
        ended: &StoreTrouble,
        now: Timestamp,
    ) -> Result<(), (Outage, StoreError)> {
        match self {
            Outage::Recorded => match core.watch().apply(&rules::store(None), now).await {
                Ok(_) => Ok(()),
                Err(e) => Err((Outage::Recorded, e)),
            },
            Outage::Unrecorded {
                alert,
                mut delivery,
            } => {
                let reason = format!(
                    "the database can be written again (it failed {} times since {})",
                    ended.failures, ended.since
                );
                let recorded =
                    record_afterwards(store.as_ref(), &alert, &mut delivery, &reason, now).await;
                match recorded {
                    Ok(resolved) => {
                        exporter.emit(
                            alert_event("alert-resolved", &resolved, now, None)
                                .outcome(export::Outcome::Success),
                        );
                        Ok(())
                    }
                    Err(e) => Err((Outage::Unrecorded { alert, delivery }, e)),
                }
            }
        }
    }
}

/// Record an alert that was sent unrecorded, resolved, with its delivery
/// attempts. One that a failed earlier try did record is resolved.
async fn record_afterwards(
    store: &dyn Store,
    alert: &Alert,
    delivery: &mut Option<JoinHandle<Report>>,
    reason: &str,
    now: Timestamp,
) -> Result<Alert, StoreError> {
    let recorded = match store.insert_alert(alert).await {
        Ok(recorded) => recorded,
        Err(StoreError::AlertExists(key)) => {
            let active = store
                .alerts(&AlertFilter {
                    active: true,
                    service: None,
                    limit: u32::MAX,
                })
                .await?;
            active
                .into_iter()
                .find(|a| a.key == key)
                .ok_or(StoreError::AlertExists(key))?
        }
        Err(e) => return Err(e),
    };
    let resolved = recorded.resolved(now, &Actor::haven(), reason);
    store.update_alert(&resolved).await?;
    match delivery.take() {
        Some(handle) if handle.is_finished() => {
            if let Ok(report) = handle.await {
                for mut attempt in report.attempts {
                    attempt.alert_id = Some(recorded.id);
                    store.record_delivery(&attempt).await?;
                }
            }
        }
        Some(_) => tracing::warn!(
            alert = recorded.id,
            "the outage alert is still being delivered: its attempts are not recorded"
        ),
        None => {}
    }
    tracing::info!(alert = recorded.id, "alert recorded and resolved: {reason}");
    Ok(resolved)
}
