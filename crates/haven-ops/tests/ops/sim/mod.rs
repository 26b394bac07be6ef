//! A simulated server for tests: a manual clock, a scripted runner
//! instead of the engine, and a real SQLite store. Shared by the
//! scheduler tests and the watch tests.

#![allow(dead_code, unused_imports)] // each test file uses part of it

pub use std::collections::HashMap;
pub use std::sync::{Arc, Mutex};

pub use haven_catalog::SourceFile;
pub use haven_model::compliance::RpoState;
pub use haven_model::jobs::{
    Failure, FailureClass, Job, JobKind, JobStats, Layer, Outcome, Trigger,
};
pub use haven_model::tasks::JobSpec;
pub use haven_ops::clock::{Clock, ManualClock};
pub use haven_ops::instance::{Overrides, Settings};
pub use haven_ops::jobs::Runner;
pub use haven_ops::server::Core;
pub use haven_ops::status;
pub use haven_store::{JobEnd, JobFilter, SqliteStore, Store};
pub use jiff::tz::TimeZone;
pub use jiff::{SignedDuration, Timestamp};

/// What a scripted job does: how it ends and how long it takes.
#[derive(Clone)]
pub struct Script {
    pub outcome: Outcome,
    pub class: Option<FailureClass>,
    pub takes: SignedDuration,
    pub bytes_changed: u64,
    pub repository_bytes: Option<u64>,
}

impl Script {
    pub fn ok() -> Self {
        Script {
            outcome: Outcome::Success,
            class: None,
            takes: SignedDuration::from_mins(2),
            bytes_changed: 100 << 20,
            repository_bytes: None,
        }
    }

    pub fn fail(class: FailureClass) -> Self {
        Script {
            outcome: Outcome::Failed,
            class: Some(class),
            takes: SignedDuration::from_mins(1),
            ..Script::ok()
        }
    }

    pub fn taking(mut self, takes: SignedDuration) -> Self {
        self.takes = takes;
        self
    }

    pub fn changing(mut self, bytes: u64) -> Self {
        self.bytes_changed = bytes;
        self
    }

    pub fn filling(mut self, repository_bytes: u64) -> Self {
        self.repository_bytes = Some(repository_bytes);
        self
    }
}

/// Scripts by system (everything else succeeds in two minutes).
#[derive(Clone, Default)]
pub struct Scripted {
    by_system: Arc<Mutex<HashMap<String, Script>>>,
    by_kind: Arc<Mutex<HashMap<JobKind, Script>>>,
}

impl Scripted {
    pub fn set(&self, system: &str, script: Script) {
        self.by_system
            .lock()
            .expect("lock")
            .insert(system.into(), script);
    }

    /// Script every job of a kind other than backups.
    pub fn set_kind(&self, kind: JobKind, script: Script) {
        self.by_kind.lock().expect("lock").insert(kind, script);
    }

    pub fn script(&self, spec: &JobSpec) -> Script {
        let map = self.by_system.lock().expect("lock");
        match (spec.record.kind, spec.record.system.as_deref()) {
            (JobKind::Backup, Some(system)) => map.get(system).cloned().unwrap_or_else(Script::ok),
            (kind, _) => self
                .by_kind
                .lock()
                .expect("lock")
                .get(&kind)
                .cloned()
                .unwrap_or_else(Script::ok),
        }
    }
}

impl Runner for Scripted {
    fn run(&self, spec: &JobSpec) -> JobEnd {
        let script = self.script(spec);
        JobEnd {
            ended_at: None,
            outcome: Some(script.outcome),
            stats: JobStats {
                bytes_changed: script.bytes_changed,
                repository_bytes: script.repository_bytes,
                ..JobStats::default()
            },
            snapshot_id: script.outcome.is_good().then(|| "0123abcd".into()),
            failure: script.class.map(|class| Failure {
                class,
                detail: "scripted".into(),
                layer: Layer::Network,
            }),
            message: Some(format!("scripted {}", script.outcome.as_str())),
            log: String::new(),
            drill: None,
        }
    }
}

/// A core driven minute by minute; jobs take the time their script says.
pub struct Sim {
    pub core: Core,
    pub clock: ManualClock,
    pub runner: Scripted,
    /// Runs drill jobs for real (restores from a real repository), when
    /// set; other jobs stay scripted.
    pub drills: Option<Arc<dyn Runner>>,
    pub store: Arc<dyn Store>,
    pub pending: Vec<(Timestamp, i64, JobEnd)>,
    pub started: Vec<Job>,
    /// Notifications the core decided, with when.
    pub notified: Vec<(Timestamp, haven_model::alerts::Notification)>,
}

pub fn at(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

pub fn catalog(text: &str) -> Arc<haven_model::catalog::Catalog> {
    let loaded = haven_catalog::load_sources(
        vec![SourceFile::new("sim.toml".into(), text.to_string())],
        Vec::new(),
    );
    assert!(loaded.findings.is_empty(), "{:?}", loaded.findings);
    Arc::new(loaded.catalog)
}

pub fn settings(dir: &std::path::Path, extra: &str) -> Settings {
    std::fs::write(dir.join("haven.toml"), extra).expect("settings");
    Settings::load(dir, &Overrides::default()).expect("settings")
}

impl Sim {
    pub async fn start(
        dir: &std::path::Path,
        settings: Settings,
        catalog: Arc<haven_model::catalog::Catalog>,
        clock: ManualClock,
        runner: Scripted,
    ) -> Sim {
        let url = format!("sqlite://{}", dir.join("haven.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("store"));
        let clock_arc: Arc<dyn Clock> = Arc::new(clock.clone());
        let (core, _, problems) = Core::start(settings, Arc::clone(&store), clock_arc, catalog)
            .await
            .expect("core");
        assert!(problems.is_empty(), "{problems:?}");
        Sim {
            core,
            clock,
            runner,
            drills: None,
            store,
            pending: Vec::new(),
            started: Vec::new(),
            notified: Vec::new(),
        }
    }

    /// A simulator over a fresh temporary data dir, from the catalog's and
    /// haven.toml's text and the simulated start.
    pub async fn in_temp(
        catalog_text: &str,
        settings_text: &str,
        start: Timestamp,
    ) -> (Sim, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("dir");
        let sim = Sim::start(
            dir.path(),
            settings(dir.path(), settings_text),
            catalog(catalog_text),
            ManualClock::new(start),
            Scripted::default(),
        )
        .await;
        (sim, dir)
    }

    /// Advance minute by minute until `until`.
    pub async fn run_until(&mut self, until: Timestamp) {
        while self.clock.now() < until {
            self.clock.advance(SignedDuration::from_mins(1));
            self.step().await;
        }
    }

    pub async fn step(&mut self) {
        let now = self.clock.now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(end, _, _)| *end <= now);
        self.pending = later;
        for (_, id, end) in due {
            self.core.finish(id, end).await.expect("finish");
        }
        self.core.settle().await.expect("settle");
        // As the server does every `evaluate_every` (a minute here).
        self.core.evaluate();
        self.core.watch_level().await.expect("watch");
        self.core.watch_recoveries().await.expect("recoveries");
        let ticked = self.core.tick().await;
        assert!(ticked.failure.is_none(), "{:?}", ticked.failure);
        for (job, spec) in ticked.started {
            let script = self.runner.script(&spec);
            let end = match (&spec.work, &self.drills) {
                (haven_model::tasks::Work::Drill { .. }, Some(drills)) => drills.run(&spec),
                _ => self.runner.run(&spec),
            };
            self.pending.push((now + script.takes, job.id, end));
            self.started.push(job);
        }
        for n in self.core.take_notifications() {
            self.notified.push((now, n));
        }
    }

    pub fn backups_of(&self, system: &str) -> Vec<&Job> {
        self.started
            .iter()
            .filter(|j| {
                j.planned.kind == JobKind::Backup && j.planned.system.as_deref() == Some(system)
            })
            .collect()
    }

    /// The status report as of the simulated now.
    pub async fn report(&self) -> status::StatusReport {
        status::report(
            self.core.catalog(),
            self.core.plan(),
            &self.store.set_states().await.expect("states"),
            self.core.settings(),
            self.clock.now(),
            "test",
        )
    }

    pub async fn all_jobs(&self) -> Vec<Job> {
        let mut jobs = self
            .store
            .jobs(&JobFilter {
                limit: 100_000,
                ..JobFilter::default()
            })
            .await
            .expect("jobs");
        jobs.reverse();
        jobs
    }
}

pub const REPO: &str = r#"
[[repository]]
id = "main"
url = "/srv/haven/main"
password = "env:HAVEN_PASSWORD"
"#;

pub fn one_system(
    system: &str,
    policy: &str,
    schedule: &str,
    tz: &str,
    window: Option<&str>,
) -> String {
    let window = window.map_or(String::new(), |w| format!("window = \"{w}\"\n"));
    format!(
        r#"
[[system]]
id = "{system}"
kind = "file-server"
policy = "{policy}"

[[system.backup_set]]
paths = ["/srv/{system}"]

[[policy]]
id = "{policy}"
schedule = "{schedule}"
timezone = "{tz}"
{window}max_duration = "1h"
repository = "main"
"#
    )
}
