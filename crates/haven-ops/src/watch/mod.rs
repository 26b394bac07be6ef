//! The watch: applies the alert rules to the evidence as it arrives,
//! keeps one alert per condition through its lifecycle, holds back what
//! happens inside maintenance windows, and walks escalation policies
//! until someone acknowledges. It decides *what* to notify; the server
//! hands the resulting [`Notification`]s to the notifier.
//!
//! Like the core, it never reads the system clock: every step takes
//! `now`, so tests drive weeks of alerts in milliseconds.

pub(crate) mod windows;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use haven_model::actor::Actor;
use haven_model::alerts::{
    self, Alert, AlertState, Change, Notification, Observation, Severity, Subject,
};
use haven_model::catalog::Catalog;
use haven_model::compliance::{Compliance, Thresholds};
use haven_model::escalation;
use haven_model::jobs::{Job, JobKind, Outcome, SetState};
use haven_model::maintenance::Recorded;
use haven_store::{AlertFilter, JobFilter, Store, StoreError};
use jiff::Timestamp;
use serde_json::json;

use crate::delivery::export::{self, Event, Exporter};
use crate::instance::settings::AlertSettings;
use haven_model::alert_rules::{self as rules, SetupProblem, Subjects};

/// How often an alert whose condition is seen again without new evidence
/// has its `last_seen`, summary and facts refreshed in the store.
pub(crate) const REFRESH_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// Why an alert action was refused.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// No such alert.
    #[error("no alert {0}")]
    NoSuchAlert(i64),
    /// It is already resolved.
    #[error("alert {0} is already resolved")]
    AlreadyResolved(i64),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<WatchError> for crate::api::InstanceError {
    fn from(e: WatchError) -> Self {
        use crate::api::InstanceError;
        match e {
            WatchError::NoSuchAlert(_) => {
                InstanceError::new(haven_model::errors::ErrorCode::NoSuchAlert, e.to_string())
            }
            WatchError::AlreadyResolved(_) => InstanceError::new(
                haven_model::errors::ErrorCode::AlreadyResolved,
                e.to_string(),
            ),
            WatchError::Store(e) => e.into(),
        }
    }
}

/// ECS `event.severity` of an alert severity (0–100, higher is worse).
fn ecs_severity(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 21,
        Severity::Warning => 47,
        Severity::Major => 73,
        Severity::Critical => 99,
    }
}

fn log_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Major => "error",
        Severity::Critical => "critical",
    }
}

/// The export event of something that happened to an alert.
pub(crate) fn alert_event(action: &str, alert: &Alert, at: Timestamp, by: Option<&Actor>) -> Event {
    let mut event = Event::new(action, "alert", "process", at)
        .message(format!(
            "alert {} {}: {}",
            alert.id,
            action.trim_start_matches("alert-"),
            alert.summary
        ))
        .level(log_level(alert.severity))
        .severity(ecs_severity(alert.severity))
        .rule(alert.rule.id(), &alert.summary)
        .haven(
            "alert",
            json!({
                "id": alert.id,
                "key": alert.key,
                "rule": alert.rule.id(),
                "severity": alert.severity.as_str(),
                "state": alert.state.as_str(),
                "occurrences": alert.occurrences,
                "condition_since": alert.condition_since.to_string(),
                "first_seen": alert.first_seen.to_string(),
                "suppressed_by": alert.suppressed_by,
                "resolution": alert.resolution,
            }),
        )
        .haven("service", json!(alert.subject.service))
        .haven("system", json!(alert.subject.system))
        .haven("backup_set", json!(alert.subject.backup_set))
        .haven("repository", json!(alert.subject.repository));
    if let Some(by) = by {
        event = event.actor(by);
    }
    event
}

/// The watch.
pub struct Watch {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    settings: AlertSettings,
    thresholds: Thresholds,
    subjects: Subjects,
    /// Open and acknowledged alerts, by id.
    active: BTreeMap<i64, Alert>,
    /// Start of the last successful copy, per copy task.
    copies: HashMap<String, Timestamp>,
    /// Maintenance windows recorded at run time (not yet over).
    recorded: Vec<Recorded>,
    /// Recent drills (the readiness rules' evidence), newest first.
    drills: Vec<haven_model::drills::Drill>,
    /// Bytes of each backup task's newest good backup, with its system.
    backup_bytes: HashMap<String, (String, u64)>,
    exporter: Arc<Exporter>,
    /// Where alerts opened and resolved by rules are recorded.
    audit: Option<Arc<crate::audit::AuditLog>>,
}

/// Drills kept in memory for the readiness rules (the last pass and the
/// last throughput of each system are all they need).
const RECENT_DRILLS: u32 = 1000;

impl Watch {
    /// Load the active alerts and the evidence the rules need.
    pub async fn start(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        settings: AlertSettings,
        thresholds: Thresholds,
        exporter: Arc<Exporter>,
        now: Timestamp,
    ) -> Result<Watch, StoreError> {
        let active = store
            .alerts(&AlertFilter {
                active: true,
                service: None,
                limit: u32::MAX,
            })
            .await?
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
        let copies = store
            .latest_jobs(JobKind::Copy, &[Outcome::Success])
            .await?
            .into_iter()
            .filter_map(|j| Some((j.planned.task.clone(), j.started_at?)))
            .collect();
        let recorded = store.maintenance(now).await?;
        let drills = store.drills(None, RECENT_DRILLS).await?;
        let backup_bytes = store
            .latest_jobs(JobKind::Backup, &[Outcome::Success, Outcome::Partial])
            .await?
            .into_iter()
            .filter_map(|j| {
                let system = j.planned.system.clone()?;
                Some((j.planned.task, (system, j.stats.bytes_total)))
            })
            .collect();
        Ok(Watch {
            drills,
            backup_bytes,
            subjects: Subjects::of(&catalog),
            store,
            catalog,
            settings,
            thresholds,
            active,
            copies,
            recorded,
            exporter,
            audit: None,
        })
    }

    /// Use a new catalog.
    pub fn reload(&mut self, catalog: Arc<Catalog>) {
        self.subjects = Subjects::of(&catalog);
        self.catalog = catalog;
    }

    /// Re-read the maintenance windows recorded at run time.
    pub async fn refresh_maintenance(&mut self, now: Timestamp) -> Result<(), StoreError> {
        self.recorded = self.store.maintenance(now).await?;
        Ok(())
    }

    /// Evidence from a finished job.
    pub async fn job_finished(
        &mut self,
        job: &Job,
        state: Option<&SetState>,
        now: Timestamp,
    ) -> Result<Vec<Notification>, StoreError> {
        if job.planned.kind == JobKind::Copy
            && job.outcome == Outcome::Success
            && let Some(started) = job.started_at
        {
            self.copies.insert(job.planned.task.clone(), started);
        }
        if job.planned.kind == JobKind::Backup
            && job.outcome.is_good()
            && let Some(system) = &job.planned.system
        {
            let size = (system.clone(), job.stats.bytes_total);
            self.backup_bytes.insert(job.planned.task.clone(), size);
        }
        let history = if job.planned.kind == JobKind::Backup && job.outcome.is_good() {
            self.store
                .jobs(&JobFilter {
                    system: job.planned.system.clone(),
                    kind: Some(JobKind::Backup),
                    outcomes: vec![Outcome::Success],
                    since: None,
                    limit: u32::try_from(self.settings.baseline_runs * 8 + 8).unwrap_or(u32::MAX),
                })
                .await?
                .into_iter()
                .filter(|j| j.planned.task == job.planned.task && j.id != job.id)
                .take(self.settings.baseline_runs)
                .collect()
        } else {
            Vec::new()
        };
        let observation = rules::after_job(
            &self.subjects,
            &self.catalog,
            &self.settings,
            job,
            state,
            &history,
        );
        let mut out = self.apply(&observation, now).await?;
        if job.stats.repository_bytes.is_some()
            && let Some(repo) = &job.planned.repository
        {
            out.extend(self.check_capacity(repo, now).await?);
        }
        Ok(out)
    }

    async fn check_capacity(
        &mut self,
        repository: &str,
        now: Timestamp,
    ) -> Result<Vec<Notification>, StoreError> {
        let samples = self
            .store
            .capacity_samples(repository, now - self.settings.capacity_history)
            .await?;
        let observation = rules::capacity(
            &self.subjects,
            &self.catalog,
            &self.settings,
            repository,
            &samples,
        );
        self.apply(&observation, now).await
    }

    /// The level rules (RPO states, copy lag), evaluated in full.
    pub async fn evaluate(
        &mut self,
        compliance: &Compliance,
        states: &[SetState],
        now: Timestamp,
    ) -> Result<Vec<Notification>, StoreError> {
        let rpo = rules::rpo(
            &self.subjects,
            compliance,
            now,
            self.thresholds.at_risk,
            self.thresholds.quarantine,
        );
        let mut out = self.apply(&rpo, now).await?;
        let lag = rules::copy_lag(&self.subjects, &self.catalog, states, &self.copies, now);
        out.extend(self.apply(&lag, now).await?);
        out.extend(self.evaluate_readiness(now).await?);
        Ok(out)
    }

    /// `drill-overdue` and `predicted-rto-exceeded`, from the recent
    /// drills and each system's size now (kept in memory: this runs after
    /// every job).
    async fn evaluate_readiness(
        &mut self,
        now: Timestamp,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut sizes: HashMap<String, u64> = HashMap::new();
        for (system, bytes) in self.backup_bytes.values() {
            *sizes.entry(system.clone()).or_default() += bytes;
        }
        let observation =
            rules::drill_readiness(&self.subjects, &self.catalog, &self.drills, &sizes, now);
        self.apply(&observation, now).await
    }

    /// The setup problems a source (`plan`, `catalog`) reports now: one
    /// `setup` alert each, resolved when the source stops reporting it.
    pub async fn setup(
        &mut self,
        source: &str,
        problems: &[SetupProblem],
        now: Timestamp,
    ) -> Result<Vec<Notification>, StoreError> {
        let active: Vec<Alert> = self.active.values().cloned().collect();
        let observation = rules::setup(&self.subjects, source, problems, &active, now);
        self.apply(&observation, now).await
    }

    /// A drill was recorded: `drill-failed` opens, or a pass resolves it.
    pub async fn drill_recorded(
        &mut self,
        drill: &haven_model::drills::Drill,
        now: Timestamp,
    ) -> Result<Vec<Notification>, StoreError> {
        self.drills.insert(0, drill.clone());
        self.drills.truncate(RECENT_DRILLS as usize);
        let mut out = self
            .apply(&rules::drill(&self.subjects, drill), now)
            .await?;
        out.extend(self.evaluate_readiness(now).await?);
        Ok(out)
    }

    /// `recovery-halted` and `checkpoint-waiting`, from the live
    /// recovery runs (wherever they execute: their steps are in the
    /// store).
    pub async fn evaluate_recoveries(
        &mut self,
        live: &[haven_model::recovery::run::RunView],
        now: Timestamp,
    ) -> Result<Vec<Notification>, StoreError> {
        let observation = rules::recovery(&self.catalog, live, self.settings.checkpoint_wait, now);
        self.apply(&observation, now).await
    }

    /// `break-glass`, from the four-eyes requests.
    pub async fn evaluate_break_glass(
        &mut self,
        requests: &[haven_model::approval::ApprovalRequest],
        now: Timestamp,
    ) -> Result<Vec<Notification>, StoreError> {
        self.apply(&rules::break_glass(requests, now), now).await
    }

    /// `security`, from the failed logins within `window` before `now`.
    pub async fn evaluate_logins(
        &mut self,
        burst: u32,
        window: jiff::SignedDuration,
        now: Timestamp,
    ) -> Result<Vec<Notification>, StoreError> {
        let failures = self.store.login_failures_since(now - window).await?;
        self.apply(&rules::login_failures(failures, burst, window, now), now)
            .await
    }

    /// Capacity of every repository with a capacity (at start).
    pub async fn evaluate_capacity(
        &mut self,
        now: Timestamp,
    ) -> Result<Vec<Notification>, StoreError> {
        let repos: Vec<String> = self
            .catalog
            .repositories
            .iter()
            .filter(|r| r.capacity_bytes.is_some())
            .map(|r| r.id.value.to_string())
            .collect();
        let mut out = Vec::new();
        for repo in repos {
            out.extend(self.check_capacity(&repo, now).await?);
        }
        Ok(out)
    }

    /// The maintenance window covering a subject at `now`, if any.
    pub fn window_covering(&self, subject: &Subject, now: Timestamp) -> Option<String> {
        for window in &self.catalog.maintenance {
            let Some(occurrence) = window.when.occurrence_at(now) else {
                continue;
            };
            let ended_early = self.recorded.iter().any(|r| {
                r.window.as_deref() == Some(window.id.value.as_str())
                    && r.start == occurrence.start
                    && r.end <= now
            });
            if !ended_early && window.scope.covers(subject, &self.catalog) {
                return Some(window.id.value.clone());
            }
        }
        self.recorded
            .iter()
            .filter(|r| r.window.is_none() && r.start <= now && now < r.end)
            .find(|r| r.scope.covers(subject, &self.catalog))
            .map(|r| format!("m{}", r.id))
    }

    /// Open and acknowledged alerts.
    pub fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values()
    }

    /// Start escalating an alert: the policy that applies now, its first
    /// page, and the progress recorded on the alert.
    pub fn escalate(&self, alert: &mut Alert, now: Timestamp) -> Option<Notification> {
        let policy = escalation::select(
            &self.catalog.escalations,
            &self.catalog.calendars,
            alert.severity,
            alert.subject.tier,
            now,
        );
        alert.notified_at = Some(now);
        let Some(policy) = policy else {
            tracing::warn!(
                alert = alert.id,
                severity = alert.severity.as_str(),
                "no escalation policy applies: recorded, nobody notified"
            );
            return None;
        };
        let (page, progress) = escalation::start(policy, now)?;
        alert.escalation = Some(progress);
        Some(Notification {
            alert: Some(alert.clone()),
            step: Some(page.step),
            channels: page.channels,
        })
    }

    async fn save(&mut self, alert: &Alert) -> Result<(), StoreError> {
        self.store.update_alert(alert).await?;
        if alert.is_active() {
            self.active.insert(alert.id, alert.clone());
        } else {
            self.active.remove(&alert.id);
        }
        Ok(())
    }

    /// Record the alerts rules open and resolve in `log`.
    pub fn set_audit(&mut self, log: Arc<crate::audit::AuditLog>) {
        self.audit = Some(log);
    }

    /// Apply what was observed: open, update and resolve alerts.
    pub async fn apply(
        &mut self,
        observation: &Observation,
        now: Timestamp,
    ) -> Result<Vec<Notification>, StoreError> {
        let active: Vec<Alert> = self.active.values().cloned().collect();
        let mut out = Vec::new();
        for change in alerts::reconcile(&active, observation) {
            match change {
                Change::Open(condition) => {
                    let mut alert = alerts::raise(0, condition, now);
                    alert.suppressed_by = self.window_covering(&alert.subject, now);
                    let mut alert = match self.store.insert_alert(&alert).await {
                        Ok(a) => a,
                        Err(StoreError::AlertExists(key)) => {
                            tracing::warn!(%key, "an active alert already stands for this condition");
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    tracing::warn!(
                        alert = alert.id,
                        rule = alert.rule.id(),
                        severity = alert.severity.as_str(),
                        suppressed = alert.suppressed_by.is_some(),
                        "alert: {}",
                        alert.summary
                    );
                    self.exporter
                        .emit(alert_event("alert-opened", &alert, now, None));
                    crate::audit::automation(
                        self.audit.as_deref(),
                        "alert.open",
                        format!("alert:{} {}", alert.id, alert.key),
                        "watch",
                        "success",
                    )
                    .await;
                    if alert.suppressed_by.is_none()
                        && let Some(n) = self.escalate(&mut alert, now)
                    {
                        out.push(n);
                    }
                    self.save(&alert).await?;
                }
                Change::Seen {
                    id,
                    condition,
                    new_evidence,
                } => {
                    let Some(current) = self.active.get(&id) else {
                        continue;
                    };
                    // Level conditions (RPO age, copy lag) are seen at every
                    // evaluation; their record is refreshed only now and
                    // then, not written each minute for every open alert.
                    let stale = now.duration_since(current.last_seen) >= REFRESH_EVERY;
                    if !(new_evidence || condition.severity > current.severity || stale) {
                        continue;
                    }
                    let next = current.seen(&condition, new_evidence, now);
                    if new_evidence {
                        self.exporter
                            .emit(alert_event("alert-recurred", &next, now, None));
                    }
                    self.save(&next).await?;
                }
                Change::Clear { id, reason } => {
                    let Some(current) = self.active.get(&id) else {
                        continue;
                    };
                    let next = current.resolved(now, &Actor::haven(), &reason);
                    crate::audit::automation(
                        self.audit.as_deref(),
                        "alert.resolve",
                        format!("alert:{} {}", next.id, next.key),
                        "watch",
                        "success",
                    )
                    .await;
                    tracing::info!(alert = id, "alert resolved: {reason}");
                    self.exporter.emit(
                        alert_event("alert-resolved", &next, now, None)
                            .outcome(export::Outcome::Success),
                    );
                    self.save(&next).await?;
                }
            }
        }
        Ok(out)
    }

    /// Time passes: alerts held back by a window that ended are
    /// notified; escalations that are due take their next step.
    pub async fn tick(&mut self, now: Timestamp) -> Result<Vec<Notification>, StoreError> {
        let mut out = Vec::new();
        let ids: Vec<i64> = self.active.keys().copied().collect();
        for id in ids {
            let Some(alert) = self.active.get(&id).cloned() else {
                continue;
            };
            if alert.state != AlertState::Open {
                continue;
            }
            let held = alert.suppressed_by.is_some() && alert.notified_at.is_none();
            if held {
                if self.window_covering(&alert.subject, now).is_some() {
                    continue;
                }
                let mut next = alert.clone();
                tracing::info!(
                    alert = id,
                    "maintenance window over, the alert is still open: notifying"
                );
                self.exporter
                    .emit(alert_event("alert-unsuppressed", &next, now, None));
                if let Some(n) = self.escalate(&mut next, now) {
                    out.push(n);
                }
                self.save(&next).await?;
                continue;
            }
            let Some(progress) = &alert.escalation else {
                continue;
            };
            let Some(policy) = self
                .catalog
                .escalations
                .iter()
                .find(|p| p.id.value == progress.policy)
            else {
                continue; // the policy left the catalog: stop
            };
            if let Some((page, progress)) = escalation::advance(policy, progress, now) {
                let mut next = alert.clone();
                next.escalation = Some(progress);
                if let Some(page) = page {
                    out.push(Notification {
                        alert: Some(next.clone()),
                        step: Some(page.step),
                        channels: page.channels,
                    });
                }
                self.save(&next).await?;
            }
        }
        Ok(out)
    }

    /// Someone takes an alert: escalation stops.
    pub async fn acknowledge(
        &mut self,
        id: i64,
        by: &Actor,
        now: Timestamp,
    ) -> Result<Alert, WatchError> {
        let alert = acknowledge(self.store.as_ref(), &self.exporter, id, by, now).await?;
        self.active.insert(id, alert.clone());
        Ok(alert)
    }

    /// Someone resolves an alert.
    pub async fn resolve(
        &mut self,
        id: i64,
        by: &Actor,
        reason: &str,
        now: Timestamp,
    ) -> Result<Alert, WatchError> {
        let alert = resolve(self.store.as_ref(), &self.exporter, id, by, reason, now).await?;
        self.active.remove(&id);
        Ok(alert)
    }
}

/// Acknowledge an alert in the store (also used without a server).
pub(crate) async fn acknowledge(
    store: &dyn Store,
    exporter: &Exporter,
    id: i64,
    by: &Actor,
    now: Timestamp,
) -> Result<Alert, WatchError> {
    let alert = store.alert(id).await?.ok_or(WatchError::NoSuchAlert(id))?;
    match alert.state {
        AlertState::Resolved => Err(WatchError::AlreadyResolved(id)),
        AlertState::Acknowledged => Ok(alert),
        AlertState::Open => {
            let next = alert.acknowledged(now, by);
            store.update_alert(&next).await?;
            exporter.emit(alert_event("alert-acknowledged", &next, now, Some(by)));
            Ok(next)
        }
    }
}

/// Resolve an alert in the store (also used without a server).
pub(crate) async fn resolve(
    store: &dyn Store,
    exporter: &Exporter,
    id: i64,
    by: &Actor,
    reason: &str,
    now: Timestamp,
) -> Result<Alert, WatchError> {
    let alert = store.alert(id).await?.ok_or(WatchError::NoSuchAlert(id))?;
    if alert.state == AlertState::Resolved {
        return Err(WatchError::AlreadyResolved(id));
    }
    let next = alert.resolved(now, by, reason);
    store.update_alert(&next).await?;
    exporter.emit(
        alert_event("alert-resolved", &next, now, Some(by)).outcome(export::Outcome::Success),
    );
    Ok(next)
}
