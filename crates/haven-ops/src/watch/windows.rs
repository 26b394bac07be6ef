//! Maintenance windows as people see and change them (`haven
//! maintenance list|add|end`): the catalog's windows and those added at
//! run time, with their current or next occurrence.

use haven_model::actor::Actor;
use haven_model::catalog::Catalog;
use haven_model::catalog::watch::MaintenanceTime;
use haven_model::maintenance::Recorded;
use haven_store::Store;
use jiff::Timestamp;
use serde_json::json;

use crate::api::{NewWindow, WindowView};
use crate::delivery::export::{Event, Exporter};

impl From<WindowError> for crate::api::InstanceError {
    fn from(e: WindowError) -> Self {
        match e {
            WindowError::Invalid(text) => {
                crate::api::InstanceError::new(haven_model::errors::ErrorCode::InvalidWindow, text)
            }
            WindowError::Store(e) => e.into(),
        }
    }
}

/// Every window with its current or next occurrence, active first.
pub fn list(catalog: &Catalog, recorded: &[Recorded], now: Timestamp) -> Vec<WindowView> {
    let mut out = Vec::new();
    for w in &catalog.maintenance {
        let current = w.when.occurrence_at(now).filter(|o| {
            !recorded.iter().any(|r| {
                r.window.as_deref() == Some(w.id.value.as_str())
                    && r.start == o.start
                    && r.end <= now
            })
        });
        let shown = current.or_else(|| w.when.next_after(now));
        out.push(WindowView {
            id: w.id.value.clone(),
            source: "catalog".into(),
            reason: w.reason.clone(),
            scope: w.scope.clone(),
            active: current.is_some(),
            start: shown.map(|o| o.start),
            end: shown.map(|o| o.end),
            recurrence: match &w.when {
                MaintenanceTime::Recurring {
                    schedule,
                    duration,
                    timezone,
                } => Some(format!(
                    "\"{schedule}\" for {} ({timezone})",
                    haven_model::catalog::duration::format_duration(*duration)
                )),
                MaintenanceTime::Once { .. } => None,
            },
        });
    }
    for r in recorded
        .iter()
        .filter(|r| r.window.is_none() && r.end > now)
    {
        out.push(WindowView {
            id: format!("m{}", r.id),
            source: "added".into(),
            reason: r.reason.clone(),
            scope: r.scope.clone(),
            active: r.start <= now,
            start: Some(r.start),
            end: Some(r.end),
            recurrence: None,
        });
    }
    out.sort_by_key(|w| (!w.active, w.start));
    out
}

/// Why a window cannot be added or ended.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// Bad input (what and how to fix it).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] haven_store::StoreError),
}

/// Add a window at run time. Scope ids must exist in the catalog.
pub async fn add(
    store: &dyn Store,
    exporter: &Exporter,
    catalog: &Catalog,
    window: &NewWindow,
    by: &Actor,
    now: Timestamp,
) -> Result<Recorded, WindowError> {
    let NewWindow {
        scope,
        start,
        end,
        reason,
    } = window.clone();
    if end <= start {
        return Err(WindowError::Invalid(format!(
            "the window ends ({end}) before it starts ({start})"
        )));
    }
    if end <= now {
        return Err(WindowError::Invalid(format!(
            "the window ends in the past ({end})"
        )));
    }
    let unknown: Vec<String> = scope
        .services
        .iter()
        .filter(|s| catalog.service(s).is_none())
        .map(|s| format!("service {s}"))
        .chain(
            scope
                .systems
                .iter()
                .filter(|s| catalog.system(s).is_none())
                .map(|s| format!("system {s}")),
        )
        .chain(
            scope
                .repositories
                .iter()
                .filter(|r| catalog.repository(r).is_none())
                .map(|r| format!("repository {r}")),
        )
        .collect();
    if !unknown.is_empty() {
        return Err(WindowError::Invalid(format!(
            "not in the catalog: {} (see `haven catalog check`)",
            unknown.join(", ")
        )));
    }
    let recorded = store
        .add_maintenance(&Recorded {
            id: 0,
            window: None,
            scope,
            start,
            end,
            reason,
            created_by: by.who.clone(),
            declared_by: by.declared.clone(),
            created_at: now,
        })
        .await?;
    exporter.emit(
        Event::new("maintenance-added", "event", "configuration", now)
            .actor(by)
            .message(format!(
                "maintenance window m{} added: {start} to {end}",
                recorded.id
            ))
            .haven("maintenance", window_json(&recorded)),
    );
    Ok(recorded)
}

fn window_json(r: &Recorded) -> serde_json::Value {
    json!({
        "id": r.window.clone().unwrap_or_else(|| format!("m{}", r.id)),
        "start": r.start.to_string(),
        "end": r.end.to_string(),
        "reason": r.reason,
        "services": r.scope.services,
        "systems": r.scope.systems,
        "repositories": r.scope.repositories,
    })
}

/// End a window now: a window added at run time (`m<N>`), or the current
/// occurrence of a catalog window.
pub async fn end(
    store: &dyn Store,
    exporter: &Exporter,
    catalog: &Catalog,
    id: &str,
    by: &Actor,
    now: Timestamp,
) -> Result<Recorded, WindowError> {
    let recorded = store.maintenance(now).await?;
    let ended = if let Some(number) = id.strip_prefix('m').and_then(|n| n.parse::<i64>().ok()) {
        let Some(window) = recorded
            .iter()
            .find(|r| r.id == number && r.window.is_none())
        else {
            return Err(WindowError::Invalid(format!(
                "no open maintenance window {id} (see `haven maintenance list`)"
            )));
        };
        store.end_maintenance(number, now).await?;
        Recorded {
            end: now.min(window.end),
            ..window.clone()
        }
    } else {
        let Some(window) = catalog.maintenance.iter().find(|w| w.id.value == id) else {
            return Err(WindowError::Invalid(format!(
                "no maintenance window {id} (see `haven maintenance list`)"
            )));
        };
        let Some(occurrence) = window.when.occurrence_at(now) else {
            return Err(WindowError::Invalid(format!(
                "maintenance window {id} is not on now"
            )));
        };
        store
            .add_maintenance(&Recorded {
                id: 0,
                window: Some(id.to_string()),
                scope: window.scope.clone(),
                start: occurrence.start,
                end: now,
                reason: Some("ended early".into()),
                created_by: by.who.clone(),
                declared_by: by.declared.clone(),
                created_at: now,
            })
            .await?
    };
    exporter.emit(
        Event::new("maintenance-ended", "event", "configuration", now)
            .actor(by)
            .message(format!("maintenance window {id} ended"))
            .haven("maintenance", window_json(&ended)),
    );
    Ok(ended)
}
