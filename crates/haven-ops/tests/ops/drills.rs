//! Scheduled drills over simulated months: the server drills a tier-1
//! service's system on its `[[drill]]` schedule (real restores from a real
//! repository, the clock simulated), records each drill beside its job,
//! and readiness moves not-verified → verified → needs-verification (the
//! catalog changed) → failed → verified, with `drill-failed` and
//! `drill-overdue` raised and resolved on the way.

use std::path::{Path, PathBuf};

use haven_engine::{BackupOptions, InitOptions, KdfParams, Location, NoProgress, Repository};
use haven_model::alerts::Rule;
use haven_model::drills::{Readiness, Verdict};
use haven_ops::drills::DrillingRunner;
use haven_ops::jobs::{EngineRunner, set_tags};

use crate::sim::*;

struct Estate {
    dir: tempfile::TempDir,
    repo: PathBuf,
    password: PathBuf,
    files: PathBuf,
}

impl Estate {
    fn new() -> Estate {
        let dir = tempfile::tempdir().expect("dir");
        let repo = dir.path().join("repo");
        let password = dir.path().join("password");
        std::fs::write(&password, "drill test\n").expect("password");
        Repository::init(
            &Location::parse(&repo.display().to_string()).expect("location"),
            b"drill test",
            &InitOptions {
                // Cheap keys: this test is about schedules, not key strength.
                kdf: KdfParams {
                    m_cost: 1024,
                    t_cost: 1,
                    p_cost: 1,
                },
                ..InitOptions::default()
            },
        )
        .expect("init");
        let files = dir.path().join("shop-files");
        std::fs::create_dir_all(&files).expect("mkdir");
        std::fs::write(files.join("orders.csv"), "id,total\n1,20\n").expect("write");
        Estate {
            dir,
            repo,
            password,
            files,
        }
    }

    /// A real snapshot of the files, dated `at` (simulated time).
    fn backup(&self, at: Timestamp) {
        let repo = Repository::open(
            &Location::parse(&self.repo.display().to_string()).expect("location"),
            b"drill test",
        )
        .expect("open");
        repo.backup(
            std::slice::from_ref(&self.files),
            &BackupOptions {
                tags: set_tags("shop-files", "default"),
                time: Some(at),
                ..BackupOptions::default()
            },
            &NoProgress,
        )
        .expect("backup");
    }

    /// The catalog; `check` is the shell command the drill verifies with.
    fn catalog(&self, check: &str) -> String {
        format!(
            r#"
[[service]]
id = "shop"
tier = 1
rpo = "2d"
rto = "4h"
mtd = "1d"
depends_on = ["shop-files"]

[[system]]
id = "shop-files"
kind = "file-server"
policy = "daily"

[[system.backup_set]]
paths = ["{files}"]

[[system.check]]
type = "command"
run = "{check}"
expect_exit = 0

[[policy]]
id = "daily"
schedule = "0 1 * * *"
repository = "main"

[[repository]]
id = "main"
url = "{repo}"
password = "file:{password}"

[[drill]]
id = "monthly"
tiers = [1]
schedule = "0 3 1 * *"
interval = "14d"
"#,
            files = self.files.display(),
            repo = self.repo.display(),
            password = self.password.display(),
        )
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

async fn readiness(sim: &Sim) -> Readiness {
    let drills = sim.store.drills(None, 100).await.expect("drills");
    let report = sim
        .report()
        .await
        .with_readiness(sim.core.catalog(), &drills, &HashMap::new());
    report.services[0].readiness.expect("readiness")
}

async fn active(sim: &Sim, rule: Rule) -> bool {
    sim.store
        .alerts(&haven_store::AlertFilter {
            active: true,
            service: None,
            limit: 100,
        })
        .await
        .expect("alerts")
        .iter()
        .any(|a| a.rule == rule)
}

/// Real snapshots the day before `until`, then run to it.
async fn run_to(sim: &mut Sim, estate: &Estate, until: &str) {
    let until = at(until);
    estate.backup(until - SignedDuration::from_hours(24));
    sim.run_until(until).await;
}

#[tokio::test]
async fn scheduled_drills_keep_a_tier_1_service_verified_over_months() {
    let estate = Estate::new();
    let start = at("2027-01-10T00:00:00Z");
    let mut sim = Sim::start(
        estate.data_dir(),
        settings(estate.data_dir(), ""),
        catalog(&estate.catalog("test -f */orders.csv || find . -name orders.csv | grep -q .")),
        ManualClock::new(start),
        Scripted::default(),
    )
    .await;
    let clock: Arc<dyn Clock> = Arc::new(sim.clock.clone());
    sim.drills = Some(Arc::new(DrillingRunner::new(
        Arc::new(EngineRunner),
        estate.data_dir().to_path_buf(),
        clock,
    )));
    assert_eq!(readiness(&sim).await, Readiness::NotVerified);

    // February 1st, 03:00: the first scheduled drill passes.
    run_to(&mut sim, &estate, "2027-02-01T04:00:00Z").await;
    let drills = sim.store.drills(None, 100).await.expect("drills");
    assert_eq!(drills.len(), 1, "one scheduled drill: {drills:#?}");
    assert_eq!(drills[0].verdict, Verdict::Pass, "{:#?}", drills[0]);
    assert_eq!(drills[0].started_at, at("2027-02-01T03:00:00Z"));
    assert!(
        drills[0].by.starts_with("schedule (job "),
        "{}",
        drills[0].by
    );
    let job = sim
        .all_jobs()
        .await
        .into_iter()
        .find(|j| j.planned.kind == JobKind::Drill)
        .expect("the drill is a job");
    assert_eq!(job.outcome, Outcome::Success);
    assert_eq!(job.planned.task, "drill:shop-files");
    assert_eq!(readiness(&sim).await, Readiness::Verified);

    // Its interval (14 days) runs out before the next drill: overdue.
    run_to(&mut sim, &estate, "2027-02-16T00:00:00Z").await;
    assert!(active(&sim, Rule::DrillOverdue).await);
    assert_eq!(readiness(&sim).await, Readiness::NeedsVerification);

    // March 1st passes again: overdue resolves.
    run_to(&mut sim, &estate, "2027-03-01T04:00:00Z").await;
    assert!(!active(&sim, Rule::DrillOverdue).await);
    assert_eq!(readiness(&sim).await, Readiness::Verified);

    // The check changes (a catalog change): the pass no longer proves
    // the system as declared, and the next drill of the new check fails.
    sim.core
        .reload(catalog(&estate.catalog("grep -rq 'no such order' .")))
        .await
        .expect("reload");
    assert_eq!(readiness(&sim).await, Readiness::NeedsVerification);
    run_to(&mut sim, &estate, "2027-04-01T04:00:00Z").await;
    assert_eq!(readiness(&sim).await, Readiness::Failed);
    assert!(active(&sim, Rule::DrillFailed).await);
    // The drill's verdict is drill-failed's, not a job failure's.
    assert!(!active(&sim, Rule::JobFailed).await);
    let drills = sim.store.drills(None, 100).await.expect("drills");
    assert_eq!(drills[0].verdict, Verdict::Fail);
    assert!(
        drills[0].reasons[0].contains("check 1"),
        "{:?}",
        drills[0].reasons
    );

    // Fixed: the May drill passes and everything resolves.
    sim.core
        .reload(catalog(&estate.catalog("grep -rq 'id,total' .")))
        .await
        .expect("reload");
    run_to(&mut sim, &estate, "2027-05-01T04:00:00Z").await;
    assert_eq!(readiness(&sim).await, Readiness::Verified);
    assert!(!active(&sim, Rule::DrillFailed).await);
    let drills = sim.store.drills(None, 100).await.expect("drills");
    assert_eq!(drills.len(), 4, "one drill a month: {drills:#?}");
}
