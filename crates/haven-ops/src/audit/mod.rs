//! The audit log: every state change, by a person, a token or Haven's
//! own automation, goes through [`AuditLog::record`], which appends an
//! entry to the append-only log (a leaf of its Merkle tree) and signs a
//! checkpoint of the tree with the log's Ed25519 key (after every entry:
//! a signature costs tens of microseconds, and a checkpoint per entry is
//! what lets verification name the first bad entry exactly). The key lives in the data dir (`audit/log.key`,
//! 0600), outside the database; its public half (`audit/log.pub`) is what
//! an auditor verifies with. Each checkpoint is kept in the database and
//! emitted to the SIEM export, so a copy lives outside the database.
//!
//! Several processes may append (a server and a command on the same
//! data dir): each catches up with what the others wrote before it
//! appends, and a number taken meanwhile makes it catch up and try
//! again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use haven_model::audit::{
    Anchored, EXPORT_FORMAT, Entry, Export, ExportedEntry, Tree, Verification, checkpoint_text,
    verify,
};
use haven_store::{Store, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::delivery::{Event, Exporter};
use crate::jobs::runner::open_repository;
use haven_model::catalog::Catalog;
use haven_model::tasks::RepoTarget;

/// How many rows are read at a time.
const PAGE: u64 = 10_000;

/// What someone did, to record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Who (`local:ana`, `api-token`, `haven`).
    pub actor: String,
    /// The roles they acted with (`operator,approver`).
    pub role: Option<String>,
    /// What (`recovery.start`).
    pub action: String,
    /// To what (`recovery:3`).
    pub target: String,
    /// From where (`cli`, `api`, `scheduler`).
    pub origin: String,
    /// `success`, `refused` or `failed`.
    pub outcome: String,
    /// The request's digest ([`haven_model::audit::digest_of`]).
    pub digest: Option<String>,
}

/// Why the audit log cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The key cannot be read or made.
    #[error("the audit log's key: {0}")]
    Key(String),
    /// The database cannot be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The log of one data dir.
pub struct AuditLog {
    store: Arc<dyn Store>,
    signer: signed_note::StandardSigner,
    verifier_key: String,
    origin: String,
    exporter: Option<Arc<Exporter>>,
    tree: Mutex<Tree>,
}

/// Where a data dir keeps the log's keys.
pub fn key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("audit")
}

impl AuditLog {
    /// The log of `data_dir` (its key made on first use), caught up with
    /// the entries in `store`.
    pub async fn open(
        data_dir: &Path,
        store: Arc<dyn Store>,
        exporter: Option<Arc<Exporter>>,
    ) -> Result<AuditLog, AuditError> {
        let (signing_key, verifier_key) = keys(data_dir)?;
        let signer = signed_note::StandardSigner::new(&signing_key)
            .map_err(|e| AuditError::Key(format!("audit/log.key is not a signing key: {e}")))?;
        let origin = haven_model::audit::origin_of_key(&verifier_key);
        let log = AuditLog {
            store,
            signer,
            verifier_key,
            origin,
            exporter,
            tree: Mutex::new(Tree::default()),
        };
        log.catch_up(&mut *log.tree.lock().await).await?;
        Ok(log)
    }

    /// The one audit function: append `action` as the next entry and
    /// sign the checkpoint that covers it.
    pub async fn record(&self, action: Action) -> Result<u64, AuditError> {
        let mut tree = self.tree.lock().await;
        loop {
            self.catch_up(&mut tree).await?;
            let entry = Entry {
                seq: tree.size(),
                at: Timestamp::now(),
                actor: action.actor.clone(),
                role: action.role.clone(),
                action: action.action.clone(),
                target: action.target.clone(),
                origin: action.origin.clone(),
                outcome: action.outcome.clone(),
                digest: action.digest.clone(),
            };
            match self.store.append_audit(&entry).await {
                Ok(()) => {
                    tree.push(entry.leaf());
                    self.sign(&tree).await?;
                    return Ok(entry.seq);
                }
                // Another process took the number: catch up, try again.
                Err(StoreError::AuditTaken(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sign a checkpoint of the log as it is now (if it grew since the
    /// last one); its note.
    pub async fn checkpoint(&self) -> Result<Option<String>, AuditError> {
        let mut tree = self.tree.lock().await;
        self.catch_up(&mut tree).await?;
        let last = self.store.newest_audit_checkpoint().await?;
        if tree.size() == 0 || last.is_some_and(|(size, _)| size >= tree.size()) {
            return Ok(None);
        }
        self.sign(&tree).await.map(Some)
    }

    /// Check the log against every checkpoint in the database and
    /// `outside` (copies kept elsewhere).
    pub async fn verify(&self, outside: Vec<Anchored>) -> Result<Verification, AuditError> {
        verify_store(self.store.as_ref(), &self.verifier_key, outside).await
    }

    /// How many entries it holds (as far as this process knows).
    pub async fn size(&self) -> u64 {
        self.tree.lock().await.size()
    }

    /// The log's public key (a signed-note verifier key).
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// Entries `from..to` with their inclusion proofs against the newest
    /// checkpoint (signed now if the newest does not cover the log).
    pub async fn export(&self, from: u64, to: Option<u64>) -> Result<Export, AuditError> {
        let tree = {
            let mut tree = self.tree.lock().await;
            self.catch_up(&mut tree).await?;
            tree.clone()
        };
        let size = tree.size();
        let note = match self.store.newest_audit_checkpoint().await? {
            Some((covered, note)) if covered == size => note,
            _ => self.sign(&tree).await?,
        };
        let to = to.unwrap_or(size).min(size);
        let mut entries = Vec::new();
        for (seq, entry, _) in self
            .store
            .audit_entries(from, to.saturating_sub(from))
            .await?
        {
            let record = String::from_utf8(entry.leaf_bytes()).unwrap_or_default();
            let proof = tree.prove(size, seq).map_err(AuditError::Key)?;
            entries.push(ExportedEntry { seq, record, proof });
        }
        Ok(Export {
            format: EXPORT_FORMAT.into(),
            verifier_key: self.verifier_key.clone(),
            checkpoint: note,
            entries,
        })
    }

    /// The newest `limit` entries matching `filter`, newest first, looked
    /// for among the newest [`SEARCH_SCAN`] (a page of the console must
    /// not read a log of millions).
    pub async fn search(&self, filter: &AuditFilter, limit: u64) -> Result<Vec<Entry>, AuditError> {
        const PAGE: u64 = 1000;
        let size = {
            let mut tree = self.tree.lock().await;
            self.catch_up(&mut tree).await?;
            tree.size()
        };
        let floor = size.saturating_sub(SEARCH_SCAN);
        let mut found = Vec::new();
        let mut end = size;
        while end > floor && (found.len() as u64) < limit {
            let start = end.saturating_sub(PAGE).max(floor);
            let page = self.store.audit_entries(start, end - start).await?;
            for (_, entry, _) in page.into_iter().rev() {
                if filter.matches(&entry) && (found.len() as u64) < limit {
                    found.push(entry);
                }
            }
            end = start;
        }
        Ok(found)
    }

    /// The first `limit` entries from `from` on matching `filter`, oldest
    /// first, looked for among [`SEARCH_SCAN`] entries.
    pub async fn search_from(
        &self,
        filter: &AuditFilter,
        from: u64,
        limit: u64,
    ) -> Result<Vec<Entry>, AuditError> {
        const PAGE: u64 = 1000;
        let mut found = Vec::new();
        let mut start = from;
        while start < from.saturating_add(SEARCH_SCAN) && (found.len() as u64) < limit {
            let page = self.store.audit_entries(start, PAGE).await?;
            let Some((last, _, _)) = page.last() else {
                break;
            };
            start = last + 1;
            found.extend(
                page.into_iter()
                    .map(|(_, entry, _)| entry)
                    .filter(|e| filter.matches(e)),
            );
        }
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(found)
    }

    /// The entries from `from`, at most `limit`.
    pub async fn entries(&self, from: u64, limit: u64) -> Result<Vec<Entry>, AuditError> {
        Ok(self
            .store
            .audit_entries(from, limit)
            .await?
            .into_iter()
            .map(|(_, entry, _)| entry)
            .collect())
    }

    async fn sign(&self, tree: &Tree) -> Result<String, AuditError> {
        let size = tree.size();
        let root = tree.root(size).expect("the tree has this size");
        let text = checkpoint_text(&self.origin, size, root).map_err(AuditError::Key)?;
        let mut note = signed_note::Note::new(&text, &[])
            .map_err(|e| AuditError::Key(format!("cannot write the checkpoint: {e}")))?;
        note.add_sigs(&[&self.signer])
            .map_err(|e| AuditError::Key(format!("cannot sign the checkpoint: {e}")))?;
        let note = String::from_utf8_lossy(&note.to_bytes()).into_owned();
        self.store.add_audit_checkpoint(size, &note).await?;
        if let Some(exporter) = &self.exporter {
            exporter.emit(
                Event::new(
                    "audit-checkpoint",
                    "event",
                    "configuration",
                    Timestamp::now(),
                )
                .message(format!("audit log checkpoint at {size} entries"))
                .haven("audit_checkpoint", serde_json::json!(note)),
            );
        }
        Ok(note)
    }

    /// Add to the tree what was appended since it was last read.
    async fn catch_up(&self, tree: &mut Tree) -> Result<(), AuditError> {
        loop {
            let rows = self.store.audit_entries(tree.size(), PAGE).await?;
            if rows.is_empty() {
                return Ok(());
            }
            for (_, _, leaf) in rows {
                tree.push(leaf);
            }
        }
    }
}

/// Check the log in `store` against its checkpoints and `outside`.
pub async fn verify_store(
    store: &dyn Store,
    verifier_key: &str,
    outside: Vec<Anchored>,
) -> Result<Verification, AuditError> {
    let mut rows = Vec::new();
    loop {
        let page = store.audit_entries(rows.len() as u64, PAGE).await?;
        if page.is_empty() {
            break;
        }
        rows.extend(page);
    }
    let mut anchored: Vec<Anchored> = store
        .audit_checkpoints()
        .await?
        .into_iter()
        .map(|(_, note)| Anchored {
            place: "the database".into(),
            note,
        })
        .collect();
    anchored.extend(outside);
    Ok(verify(
        &rows,
        &anchored,
        verifier_key,
        &haven_model::audit::origin_of_key(verifier_key),
    ))
}

/// The signing and verifier keys of `data_dir`, made on first use.
fn keys(data_dir: &Path) -> Result<(String, String), AuditError> {
    let dir = key_dir(data_dir);
    let (private, public) = (dir.join("log.key"), dir.join("log.pub"));
    let read = |p: &Path| std::fs::read_to_string(p).map(|s| s.trim().to_string());
    if private.exists() {
        let skey = read(&private)
            .map_err(|e| AuditError::Key(format!("cannot read {}: {e}", private.display())))?;
        let vkey = read(&public)
            .map_err(|e| AuditError::Key(format!("cannot read {}: {e}", public.display())))?;
        return Ok((skey, vkey));
    }
    crate::instance::files::private_dir(&dir)
        .map_err(|e| AuditError::Key(format!("cannot create {}: {e}", dir.display())))?;
    let name = format!("haven-audit.{}", short_id());
    let (skey, vkey) = signed_note::generate_key(&mut rand_core::OsRng, &name);
    crate::instance::files::write_private(&public, format!("{vkey}\n").as_bytes())
        .and_then(|()| {
            crate::instance::files::write_private(&private, format!("{skey}\n").as_bytes())
        })
        .map_err(|e| AuditError::Key(format!("cannot write the key in {}: {e}", dir.display())))?;
    Ok((skey, vkey))
}

/// A few random hex digits, so two data dirs' logs have different names.
fn short_id() -> String {
    let bytes: [u8; 4] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Record a change made through the instance interface (who, in what
/// role, from where, what, to what, the request's digest, how it went):
/// the one audit function for people's changes. A log that cannot be
/// written does not undo the change; it is logged as an error, loudly.
pub async fn note(log: &AuditLog, action: Action) {
    let name = action.action.clone();
    if let Err(e) = log.record(action).await {
        tracing::error!(
            action = name,
            "the audit log cannot record this change: {e}"
        );
    }
}

/// The checkpoints an export file holds (its `audit-checkpoint` events):
/// copies outside the database.
pub fn anchors_in_export(path: &Path) -> Vec<Anchored> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|line| line.contains("audit-checkpoint"))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|doc| {
            doc["haven"]["audit_checkpoint"]
                .as_str()
                .map(|note| Anchored {
                    place: format!("the export {}", path.display()),
                    note: note.to_string(),
                })
        })
        .collect()
}

/// What `haven audit verify` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditReport {
    /// What verification found.
    #[serde(flatten)]
    pub verification: Verification,
    /// The log's public key (what an auditor verifies with).
    pub verifier_key: String,
    /// Checkpoints found outside the database.
    pub outside: u64,
    /// Repositories asked for whose anchors could not be read.
    pub unreadable: Vec<String>,
}

/// Verify a data dir's log against its database, its export file and
/// the anchors in the repositories `against` (with `catalog`).
pub async fn report(
    log: &AuditLog,
    export_file: Option<&Path>,
    against: Option<(&Catalog, &[String])>,
) -> Result<AuditReport, AuditError> {
    let mut outside = export_file.map(anchors_in_export).unwrap_or_default();
    let mut unreadable = Vec::new();
    if let Some((catalog, ids)) = against {
        let (found, problems) = anchors_in_repositories(catalog, ids).await;
        outside.extend(found);
        unreadable = problems;
    }
    let count = outside.len() as u64;
    let mut verification = log.verify(outside).await?;
    for problem in &unreadable {
        verification.problems.push(haven_model::audit::Problem {
            first_bad: None,
            detail: format!("cannot read the anchors: {problem}"),
        });
    }
    Ok(AuditReport {
        verification,
        verifier_key: log.verifier_key().to_string(),
        outside: count,
        unreadable,
    })
}

/// Record what Haven's own automation did (`origin`: `scheduler`,
/// `watch`): the actor is `haven`. Without a log (a core run in a test),
/// nothing is recorded; a failure is logged as an error.
pub async fn automation(
    log: Option<&AuditLog>,
    action: &str,
    target: String,
    origin: &str,
    outcome: &str,
) {
    let Some(log) = log else {
        return;
    };
    let recorded = log
        .record(Action {
            actor: haven_model::actor::Actor::haven().to_string(),
            role: None,
            action: action.to_string(),
            target,
            origin: origin.to_string(),
            outcome: outcome.to_string(),
            digest: None,
        })
        .await;
    if let Err(e) = recorded {
        tracing::error!(action, "the audit log cannot record this change: {e}");
    }
}

/// What anchoring did in one repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Anchoring {
    /// The repository.
    pub repository: String,
    /// The size of the checkpoint written there.
    pub size: Option<u64>,
    /// Until when the storage's Object Lock keeps it (none: the storage
    /// has no Object Lock).
    #[serde(default)]
    pub retained_until: Option<Timestamp>,
    /// Why it could not be written.
    pub error: Option<String>,
}

/// How long the storage keeps an anchored checkpoint where it enforces
/// Object Lock (GOVERNANCE mode): 400 days, past a yearly audit.
pub const ANCHOR_RETENTION: jiff::SignedDuration = jiff::SignedDuration::from_hours(400 * 24);

impl AuditLog {
    /// Write the newest checkpoint into every repository of `catalog`
    /// (off the async threads: repositories are opened).
    pub async fn anchor(&self, catalog: &Catalog) -> Result<Vec<Anchoring>, AuditError> {
        let Some((size, note)) = self.store.newest_audit_checkpoint().await? else {
            return Ok(Vec::new());
        };
        let repos: Vec<RepoTarget> = catalog.repositories.iter().map(RepoTarget::of).collect();
        let until = Timestamp::now() + ANCHOR_RETENTION;
        let mode = haven_engine::object_lock::LockMode::Governance;
        let done = tokio::task::spawn_blocking(move || {
            repos
                .iter()
                .map(|repo| {
                    let written = open_repository(repo)
                        .map_err(|e| format!("{e:#}"))
                        .and_then(|r| {
                            r.put_anchor_retained(note.as_bytes(), mode, until)
                                .map_err(|e| haven_model::errors::chain_text(&e))
                        });
                    Anchoring {
                        repository: repo.id.clone(),
                        size: written.as_ref().ok().map(|_| size),
                        retained_until: written.as_ref().ok().and_then(|(_, until)| *until),
                        error: written.err(),
                    }
                })
                .collect()
        })
        .await
        .map_err(|e| AuditError::Key(format!("anchoring stopped: {e}")))?;
        Ok(done)
    }
}

/// The checkpoints kept in repositories `ids` of `catalog` (every one
/// when empty), and the repositories that could not be read.
pub async fn anchors_in_repositories(
    catalog: &Catalog,
    ids: &[String],
) -> (Vec<Anchored>, Vec<String>) {
    let repos: Vec<RepoTarget> = catalog
        .repositories
        .iter()
        .filter(|r| ids.is_empty() || ids.iter().any(|id| id.as_str() == r.id.value.as_str()))
        .map(RepoTarget::of)
        .collect();
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !repos.iter().any(|r| r.id == **id))
        .map(|id| format!("no repository {id} in the catalog"))
        .collect();
    let (found, mut problems) = tokio::task::spawn_blocking(move || {
        let mut found = Vec::new();
        let mut problems = Vec::new();
        for repo in &repos {
            match open_repository(repo)
                .map_err(|e| format!("{e:#}"))
                .and_then(|r| r.anchors().map_err(|e| haven_model::errors::chain_text(&e)))
            {
                Ok(notes) => found.extend(notes.into_iter().map(|bytes| Anchored {
                    place: format!("repository {}", repo.id),
                    note: String::from_utf8_lossy(&bytes).into_owned(),
                })),
                Err(e) => problems.push(format!("repository {}: {e}", repo.id)),
            }
        }
        (found, problems)
    })
    .await
    .unwrap_or_else(|e| {
        (
            Vec::new(),
            vec![format!("reading the repositories stopped: {e}")],
        )
    });
    problems.extend(missing);
    (found, problems)
}

/// How many of the newest entries a search looks through at most.
pub const SEARCH_SCAN: u64 = 100_000;

/// What to look for in the log; every given field must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The actor contains this (any case).
    pub actor: Option<String>,
    /// The action starts with this.
    pub action: Option<String>,
    /// The target contains this (any case).
    pub target: Option<String>,
    /// The outcome is this.
    pub outcome: Option<String>,
}

impl AuditFilter {
    /// Does `entry` match?
    pub fn matches(&self, entry: &Entry) -> bool {
        let contains = |text: &str, part: &Option<String>| {
            part.as_ref()
                .is_none_or(|p| text.to_lowercase().contains(&p.to_lowercase()))
        };
        contains(&entry.actor, &self.actor)
            && contains(&entry.target, &self.target)
            && self
                .action
                .as_ref()
                .is_none_or(|a| entry.action.starts_with(a.as_str()))
            && self.outcome.as_ref().is_none_or(|o| &entry.outcome == o)
    }

    /// Nothing asked for.
    pub fn is_empty(&self) -> bool {
        *self == AuditFilter::default()
    }
}
