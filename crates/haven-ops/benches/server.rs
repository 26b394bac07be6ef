//! Server benchmark (not a test; `bench/server.sh` runs it and writes
//! `bench/results/server.md`). Builds a data dir with 10,000 systems and
//! 1,000,000 job records, then times, as medians of several runs:
//!
//! - compliance evaluation for every system and service, from the
//!   per-set evidence the server keeps (the peer: the same "last good
//!   backup per system" computed straight from the 1M job rows);
//! - the full status report (compliance plus the next run of every
//!   system);
//! - the scheduler's tick for 10,000 systems, with nothing due and with
//!   every system due at once.
//!
//! usage: cargo bench -p haven-ops --bench server -- DATA_DIR
//! (the data dir is created; `haven status --data-dir DATA_DIR` then
//! times the whole command, see bench/server.sh)

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use haven_model::compliance;
use haven_model::jobs::{Job, JobKind, JobStats, NewJob, Outcome, SetState, Trigger};
use haven_model::tasks::{Limits, Scheduler, plan};
use haven_ops::instance::{Overrides, Settings};
use haven_ops::status;
use haven_store::{SqliteStore, Store};
use jiff::{SignedDuration, Timestamp};

const SYSTEMS: usize = 10_000;
const JOBS: usize = 1_000_000;
const REPS: usize = 7;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn time<T>(mut f: impl FnMut() -> T) -> f64 {
    let start = Instant::now();
    std::hint::black_box(f());
    start.elapsed().as_secs_f64() * 1000.0
}

fn catalog_text() -> String {
    let mut text = String::new();
    let schedules = ["*/15 * * * *", "5 * * * *", "30 1 * * *"];
    for (i, schedule) in schedules.iter().enumerate() {
        let _ = write!(
            text,
            "[[policy]]\nid = \"p{i}\"\nschedule = \"{schedule}\"\ntimezone = \"UTC\"\nmax_duration = \"10m\"\nrepository = \"r{}\"\n\n",
            i % 2
        );
    }
    for r in 0..2 {
        let _ = write!(
            text,
            "[[repository]]\nid = \"r{r}\"\nurl = \"/srv/haven/r{r}\"\npassword = \"env:HAVEN_PASSWORD\"\n\n"
        );
    }
    // Ten systems per service, all on one policy, with an RPO that
    // policy can meet.
    for s in 0..SYSTEMS {
        let _ = write!(
            text,
            "[[system]]\nid = \"sys-{s}\"\nkind = \"file-server\"\npolicy = \"p{}\"\n\n[[system.backup_set]]\npaths = [\"/srv/data/{s}\"]\n\n",
            (s / 10) % 3
        );
    }
    for v in 0..SYSTEMS / 10 {
        let deps: Vec<String> = (0..10).map(|k| format!("\"sys-{}\"", v * 10 + k)).collect();
        let rpo = ["1h", "2h", "2d"][v % 3];
        let _ = write!(
            text,
            "[[service]]\nid = \"svc-{v}\"\ntier = {}\nrpo = \"{rpo}\"\nrto = \"1d\"\nmtd = \"3d\"\ndepends_on = [{}]\n\n",
            v % 4 + 1,
            deps.join(", ")
        );
    }
    text
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(dir) = std::env::args().skip(1).find(|a| !a.starts_with('-')) else {
        eprintln!("usage: cargo bench -p haven-ops --bench server -- DATA_DIR");
        std::process::exit(2);
    };
    let data = std::path::PathBuf::from(dir);
    let (settings, catalog) = instance(&data);
    let now = Timestamp::now();
    let store = SqliteStore::open(&settings.database).await.expect("store");
    generate(&store, now).await;
    let (plan, problems) = plan(&catalog, &settings.prune);
    assert!(problems.is_empty());
    let (evaluate, report, peer) = evaluation(&store, &catalog, &plan, &settings, now).await;
    let (idle, all_due) = scheduling(&plan, &settings, now);
    println!("compliance_ms {evaluate:.1}");
    println!("status_report_ms {report:.1}");
    println!("peer_group_by_ms {peer:.1}");
    println!("tick_idle_ms {idle:.2}");
    println!("tick_all_due_ms {all_due:.2}");
    println!("tasks {}", plan.tasks.len());
}

/// A fresh data dir with the benchmark catalog (which must be valid).
fn instance(data: &std::path::Path) -> (Settings, Arc<haven_model::catalog::Catalog>) {
    let _ = std::fs::remove_dir_all(data);
    std::fs::create_dir_all(data.join("catalog")).expect("mkdir");
    std::fs::write(data.join("catalog/catalog.toml"), catalog_text()).expect("catalog");
    let settings = Settings::load(data, &Overrides::default()).expect("settings");
    let loaded = haven_catalog::load_dir(&settings.catalog).expect("load");
    assert!(loaded.findings.is_empty(), "{:?}", loaded.findings.first());
    let errors = haven_catalog::check(&loaded, Timestamp::now())
        .into_iter()
        .filter(|d| d.severity == haven_model::catalog::Severity::Error)
        .count();
    assert_eq!(errors, 0, "the benchmark catalog must be valid");
    (settings, Arc::new(loaded.catalog))
}

/// One backup of system `s`, the `j`th of its history.
fn job(s: usize, j: usize, per_system: usize, now: Timestamp) -> Job {
    let system = format!("sys-{s}");
    let at =
        now - SignedDuration::from_mins(((per_system - j) * 24 * 60 / 10) as i64 + (s % 97) as i64);
    let outcome = if (s + j).is_multiple_of(23) {
        Outcome::Failed
    } else {
        Outcome::Success
    };
    Job {
        id: 0,
        planned: NewJob {
            kind: JobKind::Backup,
            task: format!("backup:{system}/default"),
            system: Some(system),
            backup_set: Some("default".into()),
            policy: Some(format!("p{}", (s / 10) % 3)),
            repository: Some(format!("r{}", s % 2)),
            trigger: Trigger::Schedule,
            attempt: 1,
            scheduled_at: at,
        },
        started_at: Some(at),
        ended_at: Some(at + SignedDuration::from_mins(3)),
        outcome,
        stats: JobStats {
            files_new: 3,
            files_changed: 10,
            files_unmodified: 1000,
            bytes_changed: 1 << 20,
            bytes_total: 1 << 30,
            bytes_added: 1 << 18,
            repository_bytes: Some(1 << 40),
        },
        snapshot_id: outcome.is_good().then(|| format!("{s:08x}{j:056x}")),
        failure: None,
        message: Some("snapshot saved".into()),
        log: String::new(),
    }
}

/// 1,000,000 job records over the last 100 days, 10,000 set states.
async fn generate(store: &SqliteStore, now: Timestamp) {
    let started = Instant::now();
    let mut states = Vec::with_capacity(SYSTEMS);
    let per_system = JOBS / SYSTEMS;
    let mut batch = Vec::with_capacity(100_000);
    for s in 0..SYSTEMS {
        let system = format!("sys-{s}");
        let mut state = SetState::new(
            &system,
            "default",
            now - SignedDuration::from_hours(2400),
            "c",
        );
        for j in 0..per_system {
            let job = job(s, j, per_system, now);
            if job.outcome.is_good() {
                state.last_good_at = job.ended_at;
            }
            batch.push(job);
            if batch.len() == batch.capacity() {
                store.import_jobs(&batch).await.expect("import");
                batch.clear();
            }
        }
        states.push(state);
    }
    store.import_jobs(&batch).await.expect("import");
    for state in &states {
        store.put_set_state(state).await.expect("state");
    }
    eprintln!(
        "generated {JOBS} jobs and {SYSTEMS} set states in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Medians (ms) of: the compliance evaluation, the status report, and
/// the peer (the last good backup per system straight from the jobs).
async fn evaluation(
    store: &SqliteStore,
    catalog: &haven_model::catalog::Catalog,
    plan: &haven_model::tasks::Plan,
    settings: &Settings,
    now: Timestamp,
) -> (f64, f64, f64) {
    let mut evaluate = Vec::new();
    let mut report = Vec::new();
    let mut peer = Vec::new();
    let pool = sqlx::SqlitePool::connect(&settings.database)
        .await
        .expect("pool");
    for _ in 0..REPS {
        let start = Instant::now();
        let states = store.set_states().await.expect("states");
        let c = compliance::evaluate(catalog, &states, now, settings.thresholds);
        std::hint::black_box(&c);
        evaluate.push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        let states = store.set_states().await.expect("states");
        let r = status::report(catalog, plan, &states, settings, now, "bench");
        std::hint::black_box(&r);
        report.push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT system, MAX(ended_at) FROM jobs WHERE kind = 'backup' \
             AND outcome IN ('success', 'partial') GROUP BY system",
        )
        .fetch_all(&pool)
        .await
        .expect("peer");
        let last: HashMap<String, i64> = rows.into_iter().collect();
        std::hint::black_box(&last);
        peer.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    (median(evaluate), median(report), median(peer))
}

/// Medians (ms) of a scheduler tick with nothing due, and with every
/// system due at once.
fn scheduling(plan: &haven_model::tasks::Plan, settings: &Settings, now: Timestamp) -> (f64, f64) {
    let marks: HashMap<String, Timestamp> = HashMap::new();
    let limits = Limits {
        global: 4,
        per_repository: 2,
    };
    let (mut scheduler, _) = Scheduler::new(plan.clone(), limits, settings.retry, &marks, now);
    let idle: Vec<f64> = (0..REPS)
        .map(|_| time(|| scheduler.tick(now).start.len()))
        .collect();
    let mut all_due = Vec::new();
    for _ in 0..REPS {
        let (mut fresh, _) = Scheduler::new(plan.clone(), limits, settings.retry, &marks, now);
        // One day later, every task has missed runs and comes due.
        let later = now + SignedDuration::from_hours(25);
        all_due.push(time(|| fresh.tick(later).start.len()));
    }
    (median(idle), median(all_due))
}
