//! The server's core over simulated weeks: a manual clock, a scripted
//! runner instead of the engine, and a real SQLite store. Each test
//! covers days or weeks of schedules in milliseconds.

use crate::sim::*;
use haven_ops::api::{Instance, JobsQuery, RunOutcome, RunRequest};

#[tokio::test]
async fn simulated_weeks_run_every_scheduled_backup_once_across_dst_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}{}{REPO}",
        one_system(
            "nightly-sys",
            "nightly",
            "30 2 * * *",
            "Europe/Berlin",
            None
        ),
        one_system("hourly-sys", "hourly", "0 * * * *", "UTC", None)
    );
    // Both clock changes of 2026 in Berlin: forward on 29 March (02:30
    // does not exist that night), back on 25 October (02:30 twice).
    for (from, days, nightly_runs) in [
        ("2026-03-22T00:00:00Z", 14, 13),
        ("2026-10-18T00:00:00Z", 14, 14),
    ] {
        let sub = dir.path().join(from.replace(':', "-"));
        std::fs::create_dir_all(&sub).expect("dir");
        let clock = ManualClock::new(at(from));
        let mut sim = Sim::start(
            &sub,
            settings(&sub, ""),
            catalog(&text),
            clock,
            Scripted::default(),
        )
        .await;
        sim.run_until(at(from) + SignedDuration::from_hours(24 * days))
            .await;
        let berlin = TimeZone::get("Europe/Berlin").expect("tz");
        let nightly = sim.backups_of("nightly-sys");
        assert_eq!(nightly.len(), nightly_runs, "nightly runs from {from}");
        for job in &nightly {
            let local = berlin.to_datetime(job.started_at.expect("started"));
            assert_eq!((local.hour(), local.minute()), (2, 30), "{job:?}");
            assert_eq!(job.planned.trigger, Trigger::Schedule);
            assert_eq!(job.start_delay(), Some(SignedDuration::ZERO));
        }
        assert_eq!(sim.backups_of("hourly-sys").len() as i64, 24 * days);
        // Nothing ran twice at once, nothing was skipped.
        let all = sim.all_jobs().await;
        let odd = all
            .iter()
            .find(|j| !matches!(j.outcome, Outcome::Success | Outcome::Running));
        assert!(odd.is_none(), "{odd:?}");
    }
}

#[tokio::test]
async fn downtime_gives_one_catch_up_run_per_schedule_not_a_storm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}{REPO}",
        one_system("sys", "hourly", "0 * * * *", "UTC", None)
    );
    let start = at("2026-05-04T00:00:00Z");
    let clock = ManualClock::new(start);
    let mut sim = Sim::start(
        dir.path(),
        settings(dir.path(), ""),
        catalog(&text),
        clock.clone(),
        Scripted::default(),
    )
    .await;
    sim.run_until(start + SignedDuration::from_hours(4) + SignedDuration::from_mins(30))
        .await;
    // A new task starts at its next time after the server first sees it.
    assert_eq!(sim.backups_of("sys").len(), 4);
    // Ten hours down.
    drop(sim);
    clock.set(start + SignedDuration::from_hours(15) + SignedDuration::from_mins(17));
    let mut sim = Sim::start(
        dir.path(),
        settings(dir.path(), ""),
        catalog(&text),
        clock.clone(),
        Scripted::default(),
    )
    .await;
    sim.step().await;
    let first = sim.backups_of("sys");
    assert_eq!(first.len(), 1, "one catch-up, not ten");
    assert_eq!(first[0].planned.trigger, Trigger::CatchUp);
    assert_eq!(first[0].planned.scheduled_at, at("2026-05-04T15:00:00Z"));
    assert_eq!(first[0].start_delay(), Some(SignedDuration::from_mins(17)));
    sim.run_until(clock.now() + SignedDuration::from_hours(3))
        .await;
    let after: Vec<Trigger> = sim
        .backups_of("sys")
        .iter()
        .map(|j| j.planned.trigger)
        .collect();
    assert_eq!(
        after,
        [
            Trigger::CatchUp,
            Trigger::Schedule,
            Trigger::Schedule,
            Trigger::Schedule
        ]
    );
    // Nothing was skipped: the missed times are covered by the catch-up.
    let all = sim.all_jobs().await;
    assert!(all.iter().all(|j| j.outcome != Outcome::Skipped), "{all:?}");
}

#[tokio::test]
async fn a_job_running_when_the_server_died_is_recorded_interrupted_and_runs_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}{REPO}",
        one_system("sys", "daily", "0 2 * * *", "UTC", None)
    );
    let start = at("2026-05-04T01:59:00Z");
    let clock = ManualClock::new(start);
    let mut sim = Sim::start(
        dir.path(),
        settings(dir.path(), ""),
        catalog(&text),
        clock.clone(),
        Scripted::default(),
    )
    .await;
    sim.run_until(at("2026-05-04T02:00:00Z")).await;
    let running = sim.backups_of("sys");
    assert_eq!(running.len(), 1);
    let id = running[0].id;
    // The server dies (its pending job never reports) and restarts later.
    drop(sim);
    clock.advance(SignedDuration::from_mins(5));
    let mut sim = Sim::start(
        dir.path(),
        settings(dir.path(), ""),
        catalog(&text),
        clock.clone(),
        Scripted::default(),
    )
    .await;
    let died = sim.store.job(id).await.expect("job").expect("kept");
    assert_eq!(died.outcome, Outcome::Interrupted);
    assert_eq!(died.ended_at, Some(at("2026-05-04T02:05:00Z")));
    assert_eq!(
        died.message.as_deref(),
        Some(haven_ops::server::INTERRUPTED)
    );
    sim.step().await;
    let again = sim.backups_of("sys");
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].planned.trigger, again[0].planned.attempt),
        (Trigger::Recovery, 2)
    );
    assert_eq!(again[0].planned.scheduled_at, at("2026-05-04T02:05:00Z"));
    sim.run_until(clock.now() + SignedDuration::from_mins(5))
        .await;
    let all = sim.all_jobs().await;
    let outcomes: Vec<Outcome> = all.iter().map(|j| j.outcome).collect();
    assert_eq!(&outcomes[..2], [Outcome::Interrupted, Outcome::Success]);
}

#[tokio::test]
async fn a_job_that_cannot_start_inside_its_window_waits_for_the_next_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}{}{REPO}",
        one_system("alpha", "p1", "0 1 * * *", "UTC", Some("01:00-02:00")),
        one_system("beta", "p2", "0 1 * * *", "UTC", Some("01:00-02:00"))
    );
    let start = at("2026-06-01T00:00:00Z");
    let clock = ManualClock::new(start);
    let runner = Scripted::default();
    // alpha takes 90 minutes; with one job at a time, beta cannot start
    // before its window closes.
    runner.set("alpha", Script::ok().taking(SignedDuration::from_mins(90)));
    let mut sim = Sim::start(
        dir.path(),
        settings(dir.path(), "max_jobs = 1\n"),
        catalog(&text),
        clock,
        runner.clone(),
    )
    .await;
    sim.run_until(start + SignedDuration::from_hours(3)).await;
    assert_eq!(sim.backups_of("alpha").len(), 1);
    assert!(
        sim.backups_of("beta").is_empty(),
        "beta must not start outside its window"
    );
    let all = sim.all_jobs().await;
    let skipped: Vec<&Job> = all
        .iter()
        .filter(|j| j.outcome == Outcome::Skipped)
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].planned.system.as_deref(), Some("beta"));
    assert!(
        skipped[0]
            .message
            .as_deref()
            .unwrap_or("")
            .contains("could not start inside its window (01:00-02:00"),
        "{:?}",
        skipped[0].message
    );
    // The next night alpha is quick again and both run inside the window.
    runner.set("alpha", Script::ok());
    sim.run_until(start + SignedDuration::from_hours(27)).await;
    let beta = sim.backups_of("beta");
    assert_eq!(beta.len(), 1);
    let started = beta[0].started_at.expect("started");
    assert!(started >= at("2026-06-02T01:00:00Z") && started < at("2026-06-02T02:00:00Z"));
}

#[tokio::test]
async fn transient_failures_retry_with_backoff_until_systemic_and_a_new_configuration_lifts_that() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}{REPO}",
        one_system("sys", "p", "0 */6 * * *", "UTC", None)
    );
    let start = at("2026-07-01T05:00:00Z");
    let clock = ManualClock::new(start);
    let runner = Scripted::default();
    runner.set("sys", Script::fail(FailureClass::Connectivity));
    let mut sim = Sim::start(
        dir.path(),
        settings(
            dir.path(),
            "retry_attempts = 3\nretry_delay = \"2m\"\nsystemic_after = 3\n",
        ),
        catalog(&text),
        clock.clone(),
        runner.clone(),
    )
    .await;
    sim.run_until(start + SignedDuration::from_hours(2)).await;
    let runs = sim.backups_of("sys");
    let shape: Vec<(Trigger, u32)> = runs
        .iter()
        .map(|j| (j.planned.trigger, j.planned.attempt))
        .collect();
    assert_eq!(
        shape,
        [
            (Trigger::Schedule, 1),
            (Trigger::Retry, 2),
            (Trigger::Retry, 3)
        ]
    );
    // Backoff: 2 min then 4 min (±25 % jitter), after each 1-minute failure.
    let gap = |a: &Job, b: &Job| {
        b.started_at
            .expect("s")
            .duration_since(a.started_at.expect("s"))
    };
    let first = gap(runs[0], runs[1]) - SignedDuration::from_mins(1);
    let second = gap(runs[1], runs[2]) - SignedDuration::from_mins(1);
    assert!(
        first >= SignedDuration::from_secs(90) && first <= SignedDuration::from_secs(180),
        "{first:?}"
    );
    assert!(
        second >= SignedDuration::from_secs(180) && second <= SignedDuration::from_secs(360),
        "{second:?}"
    );
    // The retry keeps the original due time: its start delay shows it.
    assert_eq!(runs[2].planned.scheduled_at, runs[0].planned.scheduled_at);
    // Three failures of one class: systemic. The next scheduled run runs,
    // fails, and is not retried.
    let states = sim.store.set_states().await.expect("states");
    assert!(states[0].systemic, "{states:?}");
    sim.run_until(start + SignedDuration::from_hours(8)).await;
    let shape: Vec<(Trigger, u32)> = sim
        .backups_of("sys")
        .iter()
        .map(|j| (j.planned.trigger, j.planned.attempt))
        .collect();
    assert_eq!(shape.len(), 4, "{shape:?}");
    assert_eq!(shape[3], (Trigger::Schedule, 1));
    let report = sim.report().await;
    assert!(report.systems[0].compliance.systemic);
    // A new configuration (another path) gets automatic retries again.
    let changed = text.replace("/srv/sys", "/srv/sys-new");
    sim.core.reload(catalog(&changed)).await.expect("reload");
    assert!(!sim.store.set_states().await.expect("states")[0].systemic);
    sim.run_until(start + SignedDuration::from_hours(14)).await;
    let triggers: Vec<Trigger> = sim
        .backups_of("sys")
        .iter()
        .skip(4)
        .map(|j| j.planned.trigger)
        .collect();
    assert_eq!(
        triggers,
        [Trigger::Schedule, Trigger::Retry, Trigger::Retry]
    );
    // Authentication failures are not transient: no retry at all.
    runner.set("sys", Script::fail(FailureClass::Authentication));
    let before = sim.backups_of("sys").len();
    sim.run_until(start + SignedDuration::from_hours(20)).await;
    assert_eq!(sim.backups_of("sys").len(), before + 1);
}

#[tokio::test]
async fn rpo_states_follow_the_age_of_the_last_good_backup_and_quarantined_comes_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        r#"
[[service]]
id = "orders"
tier = 1
rpo = "4h"
depends_on = ["orders-db"]

[[service]]
id = "wiki"
tier = 3
rpo = "4h"
depends_on = ["wiki-vm"]
{}{}{REPO}"#,
        one_system("orders-db", "p1", "0 * * * *", "UTC", None),
        one_system("wiki-vm", "p2", "0 * * * *", "UTC", None)
    );
    let start = at("2026-08-03T00:00:00Z");
    let clock = ManualClock::new(start);
    let runner = Scripted::default();
    let mut sim = Sim::start(
        dir.path(),
        settings(dir.path(), ""),
        catalog(&text),
        clock.clone(),
        runner.clone(),
    )
    .await;
    sim.run_until(start + SignedDuration::from_hours(3)).await;
    let state_of = |sim: &Sim, system: &str| {
        sim.core
            .compliance()
            .systems
            .iter()
            .find(|s| s.system == system)
            .map(|s| s.state)
    };
    assert_eq!(state_of(&sim, "orders-db"), Some(RpoState::Ok));
    // From now on orders-db fails (not transient: no retries). Its last
    // good backup started at 03:00 (before the script changed) and
    // ended at 03:02.
    runner.set("orders-db", Script::fail(FailureClass::Authentication));
    let last_good = at("2026-08-03T03:02:00Z");
    let mut seen = Vec::new();
    while clock.now() < last_good + SignedDuration::from_hours(7) {
        clock.advance(SignedDuration::from_mins(1));
        sim.step().await;
        sim.core.evaluate();
        let state = state_of(&sim, "orders-db").expect("state");
        if seen.last().map(|(s, _)| *s) != Some(state) {
            seen.push((state, clock.now().duration_since(last_good)));
        }
    }
    let mins = |m: i64| SignedDuration::from_mins(m);
    // 80 % of 4h = 3h12m, 4h, 150 % = 6h: each state from the first
    // minute past its threshold.
    assert_eq!(seen[0].0, RpoState::Ok);
    assert_eq!(
        seen[1..],
        [
            (RpoState::AtRisk, mins(193)),
            (RpoState::Violated, mins(241)),
            (RpoState::Quarantined, mins(361)),
        ]
    );
    let report = sim.report().await;
    let services: Vec<(&str, RpoState)> = report
        .services
        .iter()
        .map(|s| (s.compliance.service.as_str(), s.compliance.state))
        .collect();
    assert_eq!(
        services,
        [("orders", RpoState::Quarantined), ("wiki", RpoState::Ok)]
    );
    assert_eq!(report.systems[0].compliance.system, "orders-db");
    assert_eq!(report.systems[0].last_outcome, Some(Outcome::Failed));
    assert!(report.services[0].next_run.is_some());
    let quarantined = report.clone().only(RpoState::Quarantined);
    assert_eq!(quarantined.systems.len(), 1);
    assert_eq!(quarantined.services.len(), 1);
}

#[tokio::test]
async fn follow_ups_and_manual_runs_never_run_a_task_twice_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}{REPO}\n[[repository]]\nid = \"second\"\nurl = \"/srv/haven/second\"\npassword = \"env:X\"\n",
        one_system("sys", "p", "0 3 * * *", "UTC", None)
    )
    .replace(
        "repository = \"main\"\n",
        "repository = \"main\"\ncopies = [\"second\"]\n\n[policy.retention]\nkeep_last = 3\n\n[policy.integrity_check]\nschedule = \"0 5 * * *\"\nread_data_percent = 5.0\n",
    );
    let start = at("2026-09-01T00:00:00Z");
    let clock = ManualClock::new(start);
    let runner = Scripted::default();
    runner.set("sys", Script::ok().taking(SignedDuration::from_mins(30)));
    let mut sim = Sim::start(
        dir.path(),
        settings(dir.path(), ""),
        catalog(&text),
        clock.clone(),
        runner,
    )
    .await;
    let queued = sim.core.run_now("sys").expect("has backups");
    assert_eq!(queued.queued, ["backup:sys/default"]);
    sim.step().await;
    // Asked again while it runs: reported busy, not queued twice.
    let again = sim.core.run_now("sys").expect("has backups");
    assert_eq!(again.busy, ["backup:sys/default"]);
    assert!(sim.core.run_now("nonexistent").is_none());
    sim.run_until(start + SignedDuration::from_hours(5) + SignedDuration::from_mins(1))
        .await;
    let all = sim.all_jobs().await;
    let tasks: Vec<(&str, Trigger)> = all
        .iter()
        .map(|j| (j.planned.task.as_str(), j.planned.trigger))
        .collect();
    // After each backup: the copy and retention of the primary (at once,
    // by name), then retention where the copy went. Each repository is
    // pruned once a day (04:00 UTC plus a stagger); the policy's
    // integrity check runs on its own schedule (05:00).
    assert_eq!(
        tasks,
        [
            ("backup:sys/default", Trigger::Manual),
            ("copy:sys/default>second", Trigger::FollowUp),
            ("forget:sys/default@main", Trigger::FollowUp),
            ("forget:sys/default@second", Trigger::FollowUp),
            ("backup:sys/default", Trigger::Schedule),
            ("copy:sys/default>second", Trigger::FollowUp),
            ("forget:sys/default@main", Trigger::FollowUp),
            ("forget:sys/default@second", Trigger::FollowUp),
            ("prune:main", Trigger::Schedule),
            ("prune:second", Trigger::Schedule),
            ("check:p", Trigger::Schedule),
        ]
    );
    let check = all.last().expect("check");
    assert_eq!(check.started_at, Some(at("2026-09-01T05:00:00Z")));
    assert_eq!(check.planned.repository.as_deref(), Some("main"));
    // No two jobs of one task overlap.
    for a in &all {
        for b in &all {
            if a.id < b.id && a.planned.task == b.planned.task {
                assert!(
                    a.ended_at.expect("ended") <= b.started_at.expect("started"),
                    "{a:?} {b:?}"
                );
            }
        }
    }
}

/// A runner whose first job panics (a bug in Haven), then works.
struct PanicsOnce {
    calls: std::sync::atomic::AtomicUsize,
}

impl Runner for PanicsOnce {
    fn run(&self, spec: &JobSpec) -> JobEnd {
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            let empty: Vec<u8> = Vec::new();
            let index = spec.record.attempt as usize + 2;
            // A real bug's panic, not a scripted failure.
            let _ = empty[index];
        }
        Scripted::default().run(spec)
    }
}

/// Poll `ready` every 20 ms until it holds, or fail after 30 s.
async fn eventually<T>(what: &str, mut ready: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(value) = ready().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Regression: a panic inside a job killed its thread without a word:
/// the job stayed `running` forever and its slot was never freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_panics_is_recorded_failed_internal_frees_its_slot_and_runs_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("catalog")).expect("mkdir");
    let text = format!(
        "{}{REPO}",
        one_system("sys", "nightly", "0 3 * * *", "UTC", None)
    );
    std::fs::write(dir.path().join("catalog/catalog.toml"), &text).expect("catalog");
    let settings = settings(
        dir.path(),
        "retry_delay = \"1s\"\nretry_max_delay = \"1s\"\nmax_jobs = 1\n",
    );
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&settings.database).await.expect("store"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (handle_tx, handle_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(haven_ops::server::run(
        settings,
        store,
        Arc::new(haven_ops::clock::SystemClock),
        Arc::new(PanicsOnce {
            calls: std::sync::atomic::AtomicUsize::new(0),
        }),
        catalog(&text),
        async move {
            let _ = stopped.await;
        },
        move |handle| {
            let _ = handle_tx.send(handle);
        },
    ));
    let handle = handle_rx.await.expect("the server started");
    let by = haven_model::actor::Actor::haven();
    let request = RunRequest {
        system: "sys".into(),
        by,
    };
    let RunOutcome::Queued(queued) = handle.run(&request).await.expect("sys has backups") else {
        panic!("a server queues")
    };
    assert_eq!(queued.queued, ["backup:sys/default"]);

    let filter = JobsQuery {
        system: Some("sys".into()),
        limit: Some(10),
        ..JobsQuery::default()
    };
    let jobs = eventually("the panicked job and its retry", async || {
        let jobs = handle.jobs(&filter).await.expect("jobs");
        (jobs.len() == 2 && jobs.iter().all(|j| j.outcome != Outcome::Running)).then_some(jobs)
    })
    .await;
    let (retry, panicked) = (&jobs[0], &jobs[1]);
    assert_eq!(panicked.outcome, Outcome::Failed);
    let failure = panicked.failure.as_ref().expect("classified");
    assert_eq!(
        (failure.class, failure.detail.as_str()),
        (FailureClass::Internal, "panic")
    );
    let message = panicked.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("index out of bounds") && message.contains("bug"),
        "{message}"
    );
    // The slot was freed and the task tried again, as a retry.
    assert_eq!(
        (retry.planned.trigger, retry.planned.attempt),
        (Trigger::Retry, 2)
    );
    assert_eq!(retry.outcome, Outcome::Success);
    assert!(handle.health().await.expect("health").is_ok());

    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("the server stops cleanly");
}

/// While a live recovery restores a system, its scheduled backups are
/// skipped, saying why (a backup would save half-restored data); once its
/// restore has settled, they run again.
#[tokio::test]
async fn scheduled_backups_of_a_system_being_restored_are_held() {
    use haven_model::recovery::run::{
        ExecutorId, RecoveryRun, RestoreTarget, RunState, StepRecord, StepState,
    };
    use haven_model::recovery::{Selection, plan_run};
    let start = at("2026-06-01T00:30:00Z");
    let text = format!(
        "{}{REPO}[[service]]\nid = \"svc\"\ntier = 2\nrpo = \"1d\"\nrto = \"4h\"\nmtd = \"1d\"\ndepends_on = [\"held-sys\"]\n",
        one_system("held-sys", "hourly", "0 * * * *", "UTC", None)
    );
    let (mut sim, _dir) = Sim::in_temp(&text, "", start).await;
    let catalog = sim.core.catalog().clone();
    let plan = plan_run(&catalog, &Selection::All).expect("plan");
    let steps = StepRecord::all_pending(&plan);
    let run = sim
        .store
        .create_recovery(
            &RecoveryRun {
                id: 0,
                selection: Selection::All,
                plan,
                by: "local:ana".into(),
                reason: None,
                at: None,
                target: RestoreTarget::Original,
                preflight: vec![],
                forced: None,
                snapshots: vec![],
                state: RunState::Running,
                started_at: start,
                ended_at: None,
                // This process: alive, so the run is live.
                executor: Some(ExecutorId {
                    host: haven_engine::host::hostname(),
                    pid: std::process::id(),
                }),
                heartbeat: start,
                resumed: 0,
                abandoned: None,
            },
            &steps,
        )
        .await
        .expect("run");
    sim.run_until(start + SignedDuration::from_hours(3)).await;
    assert!(sim.backups_of("held-sys").is_empty());
    let skipped: Vec<Job> = sim
        .all_jobs()
        .await
        .into_iter()
        .filter(|j| j.outcome == Outcome::Skipped)
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:#?}");
    assert!(
        skipped[0].message.as_deref().is_some_and(
            |m| m.contains(&format!("held: recovery run {} restores held-sys", run.id))
        ),
        "{skipped:#?}"
    );
    // The restore is done: the next hours back up again.
    let mut done = steps[0].clone();
    done.state = StepState::Done;
    sim.store
        .put_recovery_step(run.id, &done)
        .await
        .expect("step");
    sim.run_until(start + SignedDuration::from_hours(6)).await;
    assert_eq!(sim.backups_of("held-sys").len(), 3);
}
