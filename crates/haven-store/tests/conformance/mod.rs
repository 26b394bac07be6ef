//! The conformance suite every [`Store`] implementation must pass. It
//! uses the trait alone; each backend's test file runs every check on a
//! fresh, empty store.

use haven_model::actor::Actor;
use haven_model::alerts::{
    self, AlertState, Condition, Delivery, EscalationProgress, PendingNotification, Rule, Severity,
    Subject,
};
use haven_model::catalog::watch::Scope;
use haven_model::jobs::NewJob;
use haven_model::jobs::{
    Failure, FailureClass, Job, JobKind, JobStats, Layer, Outcome, SetState, Trigger,
};
use haven_model::maintenance::Recorded;
use haven_store::{AlertFilter, JobEnd, JobFilter, Store, StoreError};
use jiff::{SignedDuration, Timestamp};

/// Every check, by name, so a backend's test file runs them one by one.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh;
            jobs_round_trip_with_every_field,
            one_running_job_per_task,
            running_jobs_become_interrupted,
            filters_select_and_order_jobs,
            set_states_are_saved_with_the_job_that_changes_them,
            schedule_marks_are_remembered,
            finishing_an_unknown_or_ended_job_fails,
            imported_jobs_are_queryable,
            alerts_round_trip_and_one_is_active_per_condition,
            deliveries_and_maintenance_are_recorded,
            latest_jobs_and_capacity_samples_come_from_job_evidence,
            queued_notifications_keep_their_progress_until_done,
            drills_are_kept_as_evidence,
            recovery_runs_keep_their_steps,
            users_and_tokens_are_kept_and_found_by_their_secret,
            approval_requests_are_decided_once,
            sessions_and_login_failures_are_kept,
        );
    };
    ($fresh:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _guard) = $fresh.await;
                conformance::$name(store.as_ref()).await;
            }
        )+
    };
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("time")
}

fn backup(system: &str, set: &str) -> NewJob {
    NewJob {
        kind: JobKind::Backup,
        task: format!("backup:{system}/{set}"),
        system: Some(system.into()),
        backup_set: Some(set.into()),
        policy: Some("nightly".into()),
        repository: Some("local".into()),
        trigger: Trigger::Schedule,
        attempt: 1,
        scheduled_at: t(0),
    }
}

fn failed(at: Timestamp, class: FailureClass) -> JobEnd {
    JobEnd {
        ended_at: Some(at),
        outcome: Some(Outcome::Failed),
        failure: Some(Failure {
            class,
            detail: "unreachable".into(),
            layer: Layer::Network,
        }),
        message: Some("connection refused".into()),
        log: "trying\nconnection refused\n".into(),
        drill: None,
        ..JobEnd::default()
    }
}

fn succeeded(at: Timestamp, snapshot: &str) -> JobEnd {
    JobEnd {
        ended_at: Some(at),
        outcome: Some(Outcome::Success),
        stats: JobStats {
            files_new: 3,
            files_changed: 2,
            files_unmodified: 10,
            bytes_changed: 4096,
            bytes_total: 1 << 40,
            bytes_added: 1234,
            repository_bytes: Some(5 << 30),
        },
        snapshot_id: Some(snapshot.into()),
        message: Some("snapshot saved".into()),
        log: "ok\n".into(),
        drill: None,
        ..JobEnd::default()
    }
}

pub async fn jobs_round_trip_with_every_field(store: &dyn Store) {
    let new = backup("erp-db", "db");
    let started = store.start_job(&new, t(5)).await.expect("start");
    assert_eq!(started.outcome, Outcome::Running);
    assert_eq!(started.started_at, Some(t(5)));
    assert_eq!(started.start_delay(), Some(SignedDuration::from_secs(5)));
    let end = succeeded(t(65), "abc123");
    let done = store
        .finish_job(started.id, &end, None)
        .await
        .expect("finish");
    let expected = Job {
        id: started.id,
        planned: NewJob {
            kind: JobKind::Backup,
            task: "backup:erp-db/db".into(),
            system: Some("erp-db".into()),
            backup_set: Some("db".into()),
            policy: Some("nightly".into()),
            repository: Some("local".into()),
            trigger: Trigger::Schedule,
            attempt: 1,
            scheduled_at: t(0),
        },
        started_at: Some(t(5)),
        ended_at: Some(t(65)),
        outcome: Outcome::Success,
        stats: end.stats.clone(),
        snapshot_id: Some("abc123".into()),
        failure: None,
        message: Some("snapshot saved".into()),
        log: "ok\n".into(),
    };
    assert_eq!(done, expected);
    assert_eq!(store.job(started.id).await.expect("job"), Some(expected));
    assert_eq!(done.duration(), Some(SignedDuration::from_secs(60)));
    assert_eq!(store.job(started.id + 1000).await.expect("job"), None);

    let second = store.start_job(&new, t(100)).await.expect("start");
    let failed_job = store
        .finish_job(second.id, &failed(t(110), FailureClass::Connectivity), None)
        .await
        .expect("finish");
    assert_eq!(
        failed_job.failure,
        Some(Failure {
            class: FailureClass::Connectivity,
            detail: "unreachable".into(),
            layer: Layer::Network,
        })
    );
    let skipped = store
        .record_skipped(&new, t(200), "could not start inside its window")
        .await
        .expect("skip");
    assert_eq!(skipped.outcome, Outcome::Skipped);
    assert_eq!(skipped.started_at, None);
    assert_eq!(
        skipped.message.as_deref(),
        Some("could not start inside its window")
    );
}

pub async fn one_running_job_per_task(store: &dyn Store) {
    let new = backup("erp-db", "db");
    let first = store.start_job(&new, t(1)).await.expect("start");
    let again = store.start_job(&new, t(2)).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyRunning { ref task }) if task == "backup:erp-db/db"),
        "{again:?}"
    );
    // Another task runs alongside.
    store
        .start_job(&backup("erp-db", "files"), t(2))
        .await
        .expect("other task");
    // Skipped records do not count as running.
    store
        .record_skipped(&new, t(2), "busy")
        .await
        .expect("skip");
    store
        .finish_job(first.id, &succeeded(t(3), "s1"), None)
        .await
        .expect("finish");
    store
        .start_job(&new, t(4))
        .await
        .expect("start after the first ended");
}

pub async fn running_jobs_become_interrupted(store: &dyn Store) {
    let state = SetState::new("erp-db", "db", t(0), "c1");
    store.put_set_state(&state).await.expect("state");
    let running = store
        .start_job(&backup("erp-db", "db"), t(1))
        .await
        .expect("start");
    let other = store
        .start_job(&backup("mail", "maildirs"), t(1))
        .await
        .expect("start");
    store
        .finish_job(other.id, &succeeded(t(2), "s"), None)
        .await
        .expect("finish");
    let interrupted = store
        .interrupt_running(t(10), "the server stopped while this job ran")
        .await
        .expect("interrupt");
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0].id, running.id);
    assert_eq!(interrupted[0].outcome, Outcome::Interrupted);
    assert_eq!(interrupted[0].ended_at, Some(t(10)));
    let stored = store.job(running.id).await.expect("job").expect("exists");
    assert_eq!(stored.outcome, Outcome::Interrupted);
    let states = store.set_states().await.expect("states");
    assert_eq!(states[0].last_outcome, Some(Outcome::Interrupted));
    assert!(
        store
            .interrupt_running(t(11), "again")
            .await
            .expect("none")
            .is_empty()
    );
    // The task can run again.
    store
        .start_job(&backup("erp-db", "db"), t(12))
        .await
        .expect("restart");
}

pub async fn filters_select_and_order_jobs(store: &dyn Store) {
    let mut ids = Vec::new();
    for (i, system) in ["a", "b", "a", "c", "a"].iter().enumerate() {
        let mut new = backup(system, "set");
        new.scheduled_at = t(i as i64 * 100);
        let job = store
            .start_job(&new, t(i as i64 * 100 + 1))
            .await
            .expect("start");
        let end = if i % 2 == 0 {
            succeeded(t(i as i64 * 100 + 50), "s")
        } else {
            failed(t(i as i64 * 100 + 50), FailureClass::Storage)
        };
        store.finish_job(job.id, &end, None).await.expect("finish");
        ids.push(job.id);
    }
    let all = store.jobs(&JobFilter::default()).await.expect("jobs");
    let all_ids: Vec<i64> = all.iter().map(|j| j.id).collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(all_ids, newest_first);
    let of_a = store
        .jobs(&JobFilter {
            system: Some("a".into()),
            ..JobFilter::default()
        })
        .await
        .expect("jobs");
    assert_eq!(
        of_a.iter().map(|j| j.id).collect::<Vec<_>>(),
        [ids[4], ids[2], ids[0]]
    );
    let failed_jobs = store
        .jobs(&JobFilter {
            outcomes: vec![Outcome::Failed, Outcome::Interrupted],
            ..JobFilter::default()
        })
        .await
        .expect("jobs");
    assert_eq!(
        failed_jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        [ids[3], ids[1]]
    );
    let recent = store
        .jobs(&JobFilter {
            since: Some(t(200)),
            limit: 2,
            ..JobFilter::default()
        })
        .await
        .expect("jobs");
    assert_eq!(
        recent.iter().map(|j| j.id).collect::<Vec<_>>(),
        [ids[4], ids[3]]
    );
    let prunes = store
        .jobs(&JobFilter {
            kind: Some(JobKind::Prune),
            ..JobFilter::default()
        })
        .await
        .expect("jobs");
    assert!(prunes.is_empty());
    // Counted by system, kind and outcome (for /metrics).
    let counts: Vec<(Option<String>, String, String, u64)> = store
        .job_counts()
        .await
        .expect("counts")
        .into_iter()
        .map(|c| (c.system, c.kind, c.outcome, c.count))
        .collect();
    let row = |s: &str, o: &str, n| (Some(s.to_string()), "backup".to_string(), o.to_string(), n);
    assert_eq!(
        counts,
        vec![
            row("a", "success", 3),
            row("b", "failed", 1),
            row("c", "failed", 1)
        ]
    );
}

pub async fn set_states_are_saved_with_the_job_that_changes_them(store: &dyn Store) {
    let state = SetState::new("erp-db", "db", t(0), "c1");
    store.put_set_state(&state).await.expect("put");
    assert_eq!(
        store.set_states().await.expect("states"),
        std::slice::from_ref(&state)
    );
    let job = store
        .start_job(&backup("erp-db", "db"), t(1))
        .await
        .expect("start");
    let mut finished = job.clone();
    finished.outcome = Outcome::Failed;
    finished.ended_at = Some(t(2));
    finished.failure = Some(Failure {
        class: FailureClass::Authentication,
        detail: "wrong-password".into(),
        layer: Layer::Identity,
    });
    let next = state.after(&finished, 1);
    assert!(next.systemic);
    store
        .finish_job(
            job.id,
            &failed(t(2), FailureClass::Authentication),
            Some(&next),
        )
        .await
        .expect("finish");
    assert_eq!(
        store.set_states().await.expect("states"),
        std::slice::from_ref(&next)
    );
    let good = store
        .start_job(&backup("erp-db", "db"), t(3))
        .await
        .expect("start");
    let mut done = good.clone();
    done.outcome = Outcome::Success;
    done.ended_at = Some(t(4));
    done.snapshot_id = Some("s".into());
    let healthy = next.after(&done, 1);
    store
        .finish_job(good.id, &succeeded(t(4), "s"), Some(&healthy))
        .await
        .expect("finish");
    let states = store.set_states().await.expect("states");
    assert_eq!(states, [healthy]);
    assert_eq!(states[0].last_good_at, Some(t(4)));
    assert_eq!(states[0].last_good_job, Some(good.id));
    assert!(!states[0].systemic);
}

pub async fn schedule_marks_are_remembered(store: &dyn Store) {
    assert!(store.schedule_marks().await.expect("marks").is_empty());
    store
        .set_schedule_mark("backup:a/set", t(10))
        .await
        .expect("mark");
    store
        .set_schedule_mark("prune:local", t(20))
        .await
        .expect("mark");
    store
        .set_schedule_mark("backup:a/set", t(30))
        .await
        .expect("mark");
    let mut marks = store.schedule_marks().await.expect("marks");
    marks.sort();
    assert_eq!(
        marks,
        [
            ("backup:a/set".to_string(), t(30)),
            ("prune:local".to_string(), t(20))
        ]
    );
}

pub async fn finishing_an_unknown_or_ended_job_fails(store: &dyn Store) {
    let missing = store.finish_job(4242, &succeeded(t(1), "s"), None).await;
    assert!(
        matches!(missing, Err(StoreError::NoSuchJob(4242))),
        "{missing:?}"
    );
    let job = store
        .start_job(&backup("a", "set"), t(1))
        .await
        .expect("start");
    store
        .finish_job(job.id, &succeeded(t(2), "s"), None)
        .await
        .expect("finish");
    // A job ends once; a late second end (e.g. after an interruption was
    // recorded) changes nothing.
    let twice = store
        .finish_job(job.id, &failed(t(3), FailureClass::Unknown), None)
        .await;
    assert!(matches!(twice, Err(StoreError::NoSuchJob(_))), "{twice:?}");
    let stored = store.job(job.id).await.expect("job").expect("exists");
    assert_eq!(stored.outcome, Outcome::Success);
}

pub async fn imported_jobs_are_queryable(store: &dyn Store) {
    let template = Job {
        id: 0,
        planned: NewJob {
            kind: JobKind::Backup,
            task: "backup:x/set".into(),
            system: Some("x".into()),
            backup_set: Some("set".into()),
            policy: None,
            repository: None,
            trigger: Trigger::Schedule,
            attempt: 1,
            scheduled_at: t(0),
        },
        started_at: Some(t(0)),
        ended_at: Some(t(1)),
        outcome: Outcome::Success,
        stats: JobStats::default(),
        snapshot_id: None,
        failure: None,
        message: None,
        log: String::new(),
    };
    let jobs: Vec<Job> = (0..2500)
        .map(|i| Job {
            planned: NewJob {
                scheduled_at: t(i),
                system: Some(format!("sys-{}", i % 10)),
                ..template.planned.clone()
            },
            ..template.clone()
        })
        .collect();
    store.import_jobs(&jobs).await.expect("import");
    let of_sys3 = store
        .jobs(&JobFilter {
            system: Some("sys-3".into()),
            limit: 1000,
            ..JobFilter::default()
        })
        .await
        .expect("jobs");
    assert_eq!(of_sys3.len(), 250);
}

fn condition(key: &str, service: &str) -> Condition {
    Condition {
        key: key.into(),
        rule: Rule::JobFailed,
        severity: Severity::Critical,
        subject: Subject {
            service: Some(service.into()),
            tier: Some(1),
            system: Some("erp-db".into()),
            backup_set: Some("db".into()),
            repository: None,
        },
        summary: "backup of erp-db/db failed: connection refused".into(),
        facts: [("class".to_string(), "connectivity".to_string())].into(),
        since: t(10),
        evidence: Some("17".into()),
    }
}

pub async fn alerts_round_trip_and_one_is_active_per_condition(store: &dyn Store) {
    let raised = alerts::raise(0, condition("job-failed:erp-db/db", "erp"), t(20));
    let stored = store.insert_alert(&raised).await.expect("insert");
    assert!(stored.id > 0);
    assert_eq!(
        alerts::Alert {
            id: 0,
            ..stored.clone()
        },
        raised
    );
    // A second active alert of the same condition is refused.
    let again = store.insert_alert(&raised).await;
    assert!(
        matches!(again, Err(StoreError::AlertExists(_))),
        "{again:?}"
    );

    let mut acked = stored.acknowledged(t(30), &Actor::new("api-token", Some("ana")));
    acked.escalation = Some(EscalationProgress {
        policy: "tier1".into(),
        step: 1,
        round: 2,
        next_at: None,
    });
    acked.notified_at = Some(t(21));
    acked.suppressed_by = Some("patching".into());
    store.update_alert(&acked).await.expect("update");
    assert_eq!(
        store.alert(stored.id).await.expect("read"),
        Some(acked.clone())
    );

    let resolved = acked.resolved(t(90), &Actor::haven(), "backup 18 succeeded");
    store.update_alert(&resolved).await.expect("resolve");
    // Resolved: the condition may raise a new alert.
    let second = store
        .insert_alert(&alerts::raise(
            0,
            condition("job-failed:erp-db/db", "erp"),
            t(100),
        ))
        .await
        .expect("a new alert after resolution");
    store
        .insert_alert(&alerts::raise(0, condition("copy-lag:x", "crm"), t(101)))
        .await
        .expect("another condition");

    let active = store
        .alerts(&AlertFilter {
            active: true,
            ..AlertFilter::default()
        })
        .await
        .expect("active");
    assert_eq!(active.len(), 2);
    assert_eq!(active[1].id, second.id, "newest first");
    assert!(active.iter().all(|a| a.state == AlertState::Open));
    let erp = store
        .alerts(&AlertFilter {
            service: Some("erp".into()),
            ..AlertFilter::default()
        })
        .await
        .expect("by service");
    assert_eq!(erp.len(), 2);
    assert_eq!(erp[1].state, AlertState::Resolved);
    assert!(matches!(
        store
            .update_alert(&alerts::Alert {
                id: 999_999,
                ..resolved
            })
            .await,
        Err(StoreError::NoSuchAlert(999_999))
    ));
}

pub async fn deliveries_and_maintenance_are_recorded(store: &dyn Store) {
    let alert = store
        .insert_alert(&alerts::raise(0, condition("k", "erp"), t(0)))
        .await
        .expect("alert");
    let attempt = |n: u32, ok: bool| Delivery {
        id: 0,
        alert_id: Some(alert.id),
        channel: if ok { "mail" } else { "sms" }.into(),
        channel_type: if ok { "email" } else { "command" }.into(),
        step: Some(0),
        attempt: n,
        at: t(i64::from(n)),
        ok,
        error: (!ok).then(|| "connection refused".into()),
    };
    for d in [attempt(1, false), attempt(2, false), attempt(1, true)] {
        store.record_delivery(&d).await.expect("delivery");
    }
    let test = Delivery {
        alert_id: None,
        ..attempt(1, true)
    };
    store.record_delivery(&test).await.expect("test delivery");
    let recorded = store.deliveries(Some(alert.id)).await.expect("deliveries");
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[0].error.as_deref(), Some("connection refused"));
    assert!(recorded[2].ok);
    assert_eq!(store.deliveries(None).await.expect("tests").len(), 1);

    let window = Recorded {
        id: 0,
        window: None,
        scope: Scope {
            services: vec!["erp".into()],
            systems: vec![],
            repositories: vec!["offsite".into()],
        },
        start: t(100),
        end: t(200),
        reason: Some("SAN firmware".into()),
        created_by: "api-token".into(),
        declared_by: Some("ana".into()),
        created_at: t(50),
    };
    let added = store.add_maintenance(&window).await.expect("add");
    assert_eq!(
        Recorded {
            id: 0,
            ..added.clone()
        },
        window
    );
    assert_eq!(
        store.maintenance(t(0)).await.expect("list"),
        vec![added.clone()]
    );
    store.end_maintenance(added.id, t(150)).await.expect("end");
    // Ending never extends a window.
    store
        .end_maintenance(added.id, t(500))
        .await
        .expect("end again");
    let listed = store.maintenance(t(0)).await.expect("list");
    assert_eq!(listed[0].end, t(150));
    assert!(store.maintenance(t(150)).await.expect("list").is_empty());
}

pub async fn latest_jobs_and_capacity_samples_come_from_job_evidence(store: &dyn Store) {
    for (set, at, ok) in [
        ("a", 10, true),
        ("a", 20, false),
        ("b", 30, true),
        ("a", 40, true),
    ] {
        let mut new = backup("erp-db", set);
        new.scheduled_at = t(at);
        let job = store.start_job(&new, t(at)).await.expect("start");
        let mut end = if ok {
            succeeded(t(at + 5), "snap")
        } else {
            failed(t(at + 5), FailureClass::Storage)
        };
        end.stats.repository_bytes = ok.then_some(1000 + at as u64);
        store.finish_job(job.id, &end, None).await.expect("finish");
    }
    let latest = store
        .latest_jobs(JobKind::Backup, &[Outcome::Success])
        .await
        .expect("latest");
    let seen: Vec<(&str, Option<Timestamp>)> = latest
        .iter()
        .map(|j| (j.planned.task.as_str(), j.ended_at))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("backup:erp-db/a", Some(t(45))),
            ("backup:erp-db/b", Some(t(35)))
        ]
    );
    let any = store
        .latest_jobs(JobKind::Backup, &[])
        .await
        .expect("latest of any outcome");
    assert_eq!(any.len(), 2);
    assert!(
        store
            .latest_jobs(JobKind::Copy, &[])
            .await
            .expect("none")
            .is_empty()
    );

    let samples = store
        .capacity_samples("local", t(20))
        .await
        .expect("samples");
    assert_eq!(samples, vec![(t(35), 1030), (t(45), 1040)]);
    assert!(
        store
            .capacity_samples("other", t(0))
            .await
            .expect("none")
            .is_empty()
    );
}

pub async fn queued_notifications_keep_their_progress_until_done(store: &dyn Store) {
    let alert = store
        .insert_alert(&alerts::raise(0, condition("k", "erp"), t(0)))
        .await
        .expect("alert");
    let pending = |channels: &[&str]| PendingNotification {
        id: 0,
        alert_id: alert.id,
        step: Some(1),
        channels: channels.iter().map(|c| (*c).to_string()).collect(),
        channel: 0,
        attempt: 1,
        not_before: t(0),
        queued_at: t(0),
    };
    let first = store
        .queue_notification(&pending(&["sms", "mail"]))
        .await
        .expect("queue");
    let second = store
        .queue_notification(&pending(&["mail"]))
        .await
        .expect("queue");
    assert!(second.id > first.id);
    // The first channel failed once; its retry waits until t(90).
    let moved = PendingNotification {
        attempt: 2,
        not_before: t(90),
        ..first.clone()
    };
    store.update_notification(&moved).await.expect("update");
    assert_eq!(
        store.queued_notifications().await.expect("queued"),
        vec![moved.clone(), second.clone()],
        "oldest first, with their progress"
    );
    store.finish_notification(first.id).await.expect("finish");
    store
        .finish_notification(first.id)
        .await
        .expect("finishing twice is harmless");
    assert_eq!(
        store.queued_notifications().await.expect("queued"),
        vec![second]
    );
}

pub async fn drills_are_kept_as_evidence(store: &dyn Store) {
    use haven_model::drills::{Drill, Objectives, Step, StepKind, Verdict};
    let drill = |system: &str, at: i64, verdict: Verdict| Drill {
        id: 0,
        system: system.into(),
        by: "schedule".into(),
        snapshot_id: "ab".repeat(32),
        snapshot_time: t(at - 60),
        sandbox: "files".into(),
        started_at: t(at),
        ended_at: t(at + 5),
        steps: vec![Step {
            kind: StepKind::Restore,
            name: "restore set default".into(),
            started_at: t(at),
            duration: jiff::SignedDuration::from_secs(5),
            ok: verdict == Verdict::Pass,
            detail: "10 files".into(),
        }],
        measured_rto: jiff::SignedDuration::from_secs(5),
        achieved_rpo: jiff::SignedDuration::from_secs(65),
        bytes: 1000,
        objectives: Objectives::default(),
        verdict,
        reasons: vec![],
        config: "c0ffee".into(),
    };
    let first = store
        .record_drill(&drill("db", 0, Verdict::Pass))
        .await
        .expect("record");
    assert!(first.id > 0);
    store
        .record_drill(&drill("db", 100, Verdict::Fail))
        .await
        .expect("record");
    store
        .record_drill(&drill("files", 50, Verdict::Pass))
        .await
        .expect("record");
    let of_db = store.drills(Some("db"), 10).await.expect("drills");
    assert_eq!(of_db.len(), 2);
    assert_eq!(of_db[0].verdict, Verdict::Fail, "newest first");
    assert_eq!(of_db[1], first, "kept whole");
    assert_eq!(store.drills(None, 2).await.expect("drills").len(), 2);
}

pub async fn recovery_runs_keep_their_steps(store: &dyn Store) {
    use haven_model::recovery::run::{
        Decided, Decision, RecoveryRun, RestoreTarget, RunState, StepRecord, StepState,
    };
    use haven_model::recovery::{PlannedStep, RunPlan, Selection, StepKind, Unit, UnitKind};
    let step = |number: u32| PlannedStep {
        number,
        unit: "db".into(),
        kind: StepKind::Restore {
            set: format!("s{number}"),
        },
        name: format!("restore db/s{number}"),
        critical: true,
    };
    let plan = RunPlan {
        plan: None,
        concurrency: 4,
        units: vec![Unit {
            id: "db".into(),
            kind: UnitKind::System,
            wave: 0,
            needs: vec![],
            steps: vec![step(1), step(2)],
        }],
        deferred: vec![],
    };
    let run = |at: i64| RecoveryRun {
        id: 0,
        selection: Selection::All,
        plan: plan.clone(),
        by: "local:ana".into(),
        reason: Some("fire".into()),
        at: None,
        target: RestoreTarget::Original,
        preflight: vec![],
        forced: None,
        snapshots: vec![],
        state: RunState::Running,
        started_at: t(at),
        ended_at: None,
        executor: None,
        heartbeat: t(at),
        resumed: 0,
        abandoned: None,
    };
    let steps = StepRecord::all_pending(&plan);
    let first = store
        .create_recovery(&run(0), &steps)
        .await
        .expect("create");
    let second = store
        .create_recovery(&run(10), &steps)
        .await
        .expect("create");
    assert!(first.id > 0 && second.id > first.id);
    let (read, read_steps) = store
        .recovery(first.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(read, first, "the record keeps its id");
    assert_eq!(read_steps, steps);

    let mut done = steps[1].clone();
    done.state = StepState::Done;
    done.attempts = 1;
    done.decisions.push(Decided {
        decision: Decision::Confirm,
        by: "ana".into(),
        at: t(5),
        note: Some("seen".into()),
    });
    store.put_recovery_step(first.id, &done).await.expect("put");
    let ended = RecoveryRun {
        state: RunState::Completed,
        ended_at: Some(t(6)),
        ..first.clone()
    };
    store.update_recovery(&ended).await.expect("update");
    let (read, read_steps) = store
        .recovery(first.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(read, ended);
    assert_eq!(read_steps, vec![steps[0].clone(), done.clone()]);
    let one = store
        .recovery_step(first.id, done.number)
        .await
        .expect("step");
    assert_eq!(one, Some(done));
    assert_eq!(store.recovery_step(first.id, 99).await.expect("step"), None);
    // The other run is untouched; runs list newest first.
    let (_, other) = store
        .recovery(second.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(other, steps);
    let ids: Vec<i64> = store
        .recoveries(10)
        .await
        .expect("list")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [second.id, first.id]);
    assert!(store.recovery(9999).await.expect("read").is_none());
    assert!(matches!(
        store
            .update_recovery(&RecoveryRun { id: 9999, ..ended })
            .await,
        Err(StoreError::Corrupt(_))
    ));
}

pub async fn users_and_tokens_are_kept_and_found_by_their_secret(store: &dyn Store) {
    use haven_model::access::{Owner, Role, Token, User};
    let user = User {
        name: "ana".into(),
        roles: vec![Role::Operator],
        teams: vec!["ecommerce".into()],
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        disabled: false,
        created_at: t(0),
        password_set_at: t(0),
        totp_sealed: String::new(),
        totp: false,
        totp_step: 0,
        sso: false,
        failed_logins: 0,
        lockouts: 0,
        locked_until: None,
    };
    store.put_user(&user).await.expect("user");
    let disabled = User {
        disabled: true,
        ..user.clone()
    };
    store.put_user(&disabled).await.expect("replace");
    assert_eq!(store.users().await.expect("users"), vec![disabled]);
    let token = |id: &str, hash: &str| Token {
        id: id.into(),
        name: "ci".into(),
        owner: Owner::User("ana".into()),
        roles: vec![Role::Operator],
        secret_hash: hash.into(),
        created_at: t(0),
        expires_at: t(100),
        revoked_at: None,
    };
    store.put_token(&token("tok_1", "aa")).await.expect("token");
    store.put_token(&token("tok_2", "bb")).await.expect("token");
    let found = store
        .token_by_secret("bb")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found.id, "tok_2");
    assert!(store.token_by_secret("cc").await.expect("lookup").is_none());
    let revoked = Token {
        revoked_at: Some(t(50)),
        ..token("tok_1", "aa")
    };
    store.put_token(&revoked).await.expect("revoke");
    let all = store.tokens().await.expect("tokens");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], revoked);
    // Two tokens never share a secret.
    assert!(store.put_token(&token("tok_3", "bb")).await.is_err());
}

pub async fn approval_requests_are_decided_once(store: &dyn Store) {
    use haven_model::approval::{ApprovalRequest, Decision, RequestState};
    let asked = ApprovalRequest {
        id: 0,
        action: "token.revoke".into(),
        target: "token:tok_1".into(),
        because: "revoking a token".into(),
        payload: serde_json::json!({"id": "tok_1"}),
        requested_by: "user:ana (tok_2)".into(),
        requester: Some("ana".into()),
        requester_roles: Vec::new(),
        reason: Some("left the team".into()),
        requested_at: t(0),
        expires_at: t(100),
        state: RequestState::Pending,
        decision: None,
        outcome: None,
        review_due: None,
        review: None,
    };
    let first = store.add_approval(&asked).await.expect("add");
    let second = store.add_approval(&asked).await.expect("add");
    assert!(first.id > 0 && second.id > first.id);
    assert_eq!(
        store.approval(first.id).await.expect("read"),
        Some(first.clone())
    );
    let approved = ApprovalRequest {
        state: RequestState::Approved,
        decision: Some(Decision {
            by: "user:bo".into(),
            at: t(5),
            note: None,
        }),
        ..first.clone()
    };
    assert!(
        store
            .update_approval(&approved, RequestState::Pending)
            .await
            .expect("decide")
    );
    // A second decision compares against the state it read: too late.
    let rejected = ApprovalRequest {
        state: RequestState::Rejected,
        ..first.clone()
    };
    assert!(
        !store
            .update_approval(&rejected, RequestState::Pending)
            .await
            .expect("decide")
    );
    assert_eq!(
        store.approval(first.id).await.expect("read"),
        Some(approved)
    );
    let listed: Vec<i64> = store
        .approvals(10)
        .await
        .expect("list")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, vec![second.id, first.id]);
    assert_eq!(store.approval(9999).await.expect("read"), None);
}

pub async fn sessions_and_login_failures_are_kept(store: &dyn Store) {
    use haven_model::access::Session;
    let session = Session {
        id: "ses_1".into(),
        user: "ana".into(),
        secret_hash: "aa".into(),
        method: "password".into(),
        created_at: t(0),
        last_seen: t(0),
        expires_at: t(100),
    };
    store.put_session(&session).await.expect("session");
    let touched = Session {
        last_seen: t(5),
        ..session.clone()
    };
    store.put_session(&touched).await.expect("touch");
    assert_eq!(
        store.session_by_secret("aa").await.expect("read"),
        Some(touched)
    );
    store.delete_session("ses_1").await.expect("end");
    assert_eq!(store.session_by_secret("aa").await.expect("read"), None);
    for (at, who) in [(1, "ana"), (2, "bo"), (3, "nobody")] {
        store
            .add_login_failure(t(at), who, "api 127.0.0.1:1")
            .await
            .expect("failure");
    }
    assert_eq!(store.login_failures_since(t(2)).await.expect("count"), 2);
    assert_eq!(store.login_failures_since(t(4)).await.expect("count"), 0);
}
