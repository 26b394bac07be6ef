//! Legal holds through an instance: on the snapshots of the catalog's
//! repositories, opened with the passwords the catalog names, so people
//! act through the instance — with its roles, four eyes for lifting a
//! hold, and the audit log — rather than with the repository's password.

use haven_engine::Hold;
use haven_model::catalog::Catalog;
use haven_model::tasks::RepoTarget;
use serde::{Deserialize, Serialize};

use crate::jobs::runner::open_repository;

/// A hold, as shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HoldView {
    /// The repository (catalog id).
    pub repository: String,
    /// The hold's id.
    pub id: String,
    /// The snapshot it protects.
    pub snapshot: String,
    /// Why (case, matter, ticket).
    pub reason: String,
    /// When it was placed.
    pub created: String,
    /// Where from.
    pub hostname: String,
    /// By whom.
    pub username: String,
}

/// Place or lift a hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HoldRequest {
    /// The repository (catalog id).
    pub repository: String,
    /// A snapshot id prefix, or `latest`.
    pub snapshot: String,
    /// Why (required).
    pub reason: String,
    /// Which hold, when the snapshot has several (lifting).
    #[serde(default)]
    pub hold: Option<String>,
    /// Who asks.
    pub by: String,
}

/// Which holds to list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HoldsQuery {
    /// The repository (catalog id).
    pub repository: String,
}

/// Why a hold cannot be read, placed or lifted.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// No such repository in the catalog, or it cannot be opened.
    #[error("{0}")]
    Repository(String),
    /// The repository refused.
    #[error(transparent)]
    Engine(#[from] haven_engine::Error),
    /// The work stopped.
    #[error("{0}")]
    Stopped(String),
}

/// The holds of a repository.
pub async fn list(catalog: &Catalog, query: &HoldsQuery) -> Result<Vec<HoldView>, HoldError> {
    let target = target(catalog, &query.repository)?;
    off_thread(move || {
        let repo = open(&target)?;
        Ok(repo
            .holds()?
            .into_iter()
            .map(|(id, hold)| view(&target.id, &id, hold))
            .collect())
    })
    .await
}

/// Place a hold on a snapshot.
pub async fn add(catalog: &Catalog, request: &HoldRequest) -> Result<HoldView, HoldError> {
    let target = target(catalog, &request.repository)?;
    let request = request.clone();
    off_thread(move || {
        let repo = open(&target)?;
        let (snapshot, _) = repo.find_snapshot(&request.snapshot)?;
        let id = repo.add_hold(&snapshot, &request.reason)?;
        let (_, hold) = repo.find_hold(&snapshot, Some(&id.to_hex()))?;
        Ok(view(&target.id, &id, hold))
    })
    .await
}

/// Lift a snapshot's hold (its only one, or the one `hold` names).
pub async fn lift(catalog: &Catalog, request: &HoldRequest) -> Result<HoldView, HoldError> {
    if request.reason.trim().is_empty() {
        return Err(HoldError::Engine(haven_engine::Error::InvalidArgument(
            "say why the hold is lifted (--reason)".into(),
        )));
    }
    let target = target(catalog, &request.repository)?;
    let request = request.clone();
    off_thread(move || {
        let repo = open(&target)?;
        let (snapshot, _) = repo.find_snapshot(&request.snapshot)?;
        let (id, hold) = repo.find_hold(&snapshot, request.hold.as_deref())?;
        repo.remove_hold(&id)?;
        tracing::warn!(snapshot = %snapshot.short(), hold = %id.short(), reason = %request.reason, "legal hold lifted");
        Ok(view(&target.id, &id, hold))
    })
    .await
}

fn target(catalog: &Catalog, id: &str) -> Result<RepoTarget, HoldError> {
    catalog
        .repository(id)
        .map(RepoTarget::of)
        .ok_or_else(|| HoldError::Repository(format!("no repository {id:?} in the catalog")))
}

fn open(target: &RepoTarget) -> Result<haven_engine::repo::Repository, HoldError> {
    open_repository(target).map_err(|e| HoldError::Repository(format!("{e:#}")))
}

fn view(repository: &str, id: &haven_engine::id::Id, hold: Hold) -> HoldView {
    HoldView {
        repository: repository.into(),
        id: id.to_hex(),
        snapshot: hold.snapshot.to_hex(),
        reason: hold.reason,
        created: hold.created.to_string(),
        hostname: hold.hostname,
        username: hold.username,
    }
}

async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, HoldError> + Send + 'static,
) -> Result<T, HoldError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| HoldError::Stopped(format!("the work on the repository stopped: {e}")))?
}
