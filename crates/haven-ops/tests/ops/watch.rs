//! The watch over simulated days and weeks: alerts open, recur and
//! resolve from job evidence; escalation walks its steps until someone
//! acknowledges; maintenance windows hold notifications back while the
//! RPO clock keeps running; anomalies, copy lag and capacity forecasts
//! come from the history. Manual clock, scripted jobs, real SQLite.

use crate::sim::*;
use haven_model::alerts::{Alert, AlertState, Rule, Severity};
use haven_store::AlertFilter;

const WATCH: &str = r#"
[[service]]
id = "erp"
tier = 1
rpo = "4h"
rto = "4h"
mtd = "1d"
depends_on = ["erp-db"]

[[channel]]
id = "sms"
type = "command"
run = "true"

[[channel]]
id = "mail"
type = "command"
run = "true"

[[escalation]]
id = "tier1"
tiers = [1]

[[escalation.step]]
channels = ["sms", "mail"]
wait = "10m"
repeat = 1

[[escalation.step]]
channels = ["mail"]
wait = "30m"
"#;

async fn alerts(sim: &Sim) -> Vec<Alert> {
    let mut all = sim
        .store
        .alerts(&AlertFilter {
            limit: 1000,
            ..AlertFilter::default()
        })
        .await
        .expect("alerts");
    all.reverse();
    all
}

/// Alerts other than RPO states (a daily schedule cannot keep the
/// test service's 4 h RPO; those tests look at other rules).
async fn not_rpo(sim: &Sim) -> Vec<Alert> {
    alerts(sim)
        .await
        .into_iter()
        .filter(|a| {
            !matches!(
                a.rule,
                Rule::RpoAtRisk | Rule::RpoViolated | Rule::RpoQuarantined
            )
        })
        .collect()
}

fn pages(sim: &Sim) -> Vec<(String, usize, Vec<String>)> {
    sim.notified
        .iter()
        .map(|(t, n)| {
            (
                t.strftime("%H:%M").to_string(),
                n.step.unwrap_or(99),
                n.channels.clone(),
            )
        })
        .collect()
}

async fn start(
    extra_catalog: &str,
    schedule: &str,
    settings_text: &str,
) -> (Sim, tempfile::TempDir) {
    let text = format!(
        "{WATCH}{REPO}{}{extra_catalog}",
        one_system("erp-db", "p", schedule, "UTC", None)
    );
    Sim::in_temp(&text, settings_text, at("2026-11-23T00:30:00Z")).await
}

#[tokio::test]
async fn a_failing_backup_raises_one_alert_that_escalates_recurs_and_resolves_itself() {
    let (mut sim, _dir) = start("", "0 * * * *", "retry_attempts = 1\n").await;
    sim.runner
        .set("erp-db", Script::fail(FailureClass::Storage));
    sim.run_until(at("2026-11-23T02:05:00Z")).await;

    let all = alerts(&sim).await;
    assert_eq!(all.len(), 1, "{all:#?}");
    let alert = &all[0];
    assert_eq!(alert.rule, Rule::JobFailed);
    assert_eq!(alert.key, "job-failed:backup:erp-db/default");
    // Major for a failed job, raised one level for a tier-1 service.
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(alert.subject.service.as_deref(), Some("erp"));
    assert_eq!(
        alert.occurrences, 2,
        "the 02:00 failure is the same condition"
    );
    assert_eq!(
        alert.facts.get("class").map(String::as_str),
        Some("storage")
    );
    assert_eq!(alert.state, AlertState::Open);

    // Step 1 (SMS, failing over to mail) at 01:01, repeated once 10 min
    // later, then step 2 (mail) 10 min after that; nothing after the
    // last step's wait.
    let sms_mail = vec!["sms".to_string(), "mail".to_string()];
    assert_eq!(
        pages(&sim),
        vec![
            ("01:01".to_string(), 0, sms_mail.clone()),
            ("01:11".to_string(), 0, sms_mail),
            ("01:21".to_string(), 1, vec!["mail".to_string()]),
        ]
    );
    assert_eq!(alert.escalation.as_ref().and_then(|e| e.next_at), None);

    // The next backup works: the alert resolves itself.
    sim.runner.set("erp-db", Script::ok());
    sim.run_until(at("2026-11-23T03:05:00Z")).await;
    let alert = &alerts(&sim).await[0];
    assert_eq!(alert.state, AlertState::Resolved);
    assert_eq!(alert.resolved_by.as_deref(), Some("haven"));
    assert!(
        alert
            .resolution
            .as_deref()
            .is_some_and(|r| r.contains("succeeded")),
        "{alert:?}"
    );
    // Detected when the job ended; resolved two hours after it began.
    assert_eq!(alert.time_to_detect(), SignedDuration::ZERO);
    assert_eq!(
        alert.time_to_resolve(),
        Some(SignedDuration::from_mins(121))
    );
}

/// Ana, through the API: the token authenticates, her name is declared.
fn ana() -> haven_model::actor::Actor {
    haven_model::actor::Actor::new("api-token", Some("ana"))
}

#[tokio::test]
async fn acknowledging_stops_the_escalation() {
    let (mut sim, _dir) = start("", "0 * * * *", "retry_attempts = 1\n").await;
    sim.runner
        .set("erp-db", Script::fail(FailureClass::Connectivity));
    sim.run_until(at("2026-11-23T01:05:00Z")).await;
    let id = alerts(&sim).await[0].id;
    let acked = sim.core.acknowledge(id, &ana()).await.expect("ack");
    assert_eq!(acked.state, AlertState::Acknowledged);
    assert_eq!(acked.acknowledged_by.as_deref(), Some("api-token"));
    assert_eq!(acked.acknowledged_declared.as_deref(), Some("ana"));
    assert_eq!(
        acked.time_to_acknowledge(),
        Some(SignedDuration::from_mins(4))
    );
    sim.run_until(at("2026-11-23T04:00:00Z")).await;
    let ours = sim
        .notified
        .iter()
        .filter(|(_, n)| n.alert.as_ref().is_some_and(|a| a.id == id))
        .count();
    assert_eq!(ours, 1, "only the page before the acknowledgement");
    // Still failing: the acknowledged alert counts the occurrences.
    let alert = &alerts(&sim).await[0];
    assert_eq!(alert.state, AlertState::Acknowledged);
    assert_eq!(alert.occurrences, 3);
    // Resolved by hand, it stays resolved; a later failure is a new alert.
    sim.core
        .resolve(id, &ana(), "moved the repository")
        .await
        .expect("resolve");
    sim.run_until(at("2026-11-23T05:05:00Z")).await;
    let all: Vec<Alert> = alerts(&sim)
        .await
        .into_iter()
        .filter(|a| a.rule == Rule::JobFailed)
        .collect();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].resolved_by.as_deref(), Some("api-token"));
    assert_eq!(all[0].resolved_declared.as_deref(), Some("ana"));
    assert_eq!(all[1].state, AlertState::Open);
}

#[tokio::test]
async fn inside_a_maintenance_window_alerts_are_held_and_the_rpo_clock_keeps_running() {
    let window = r#"
[[maintenance]]
id = "erp-upgrade"
reason = "ERP release upgrade"
services = ["erp"]
start = "2026-11-23T00:45:00Z"
end = "2026-11-23T05:00:00Z"
"#;
    let (mut sim, _dir) = start(window, "0 * * * *", "retry_attempts = 1\n").await;
    sim.runner
        .set("erp-db", Script::fail(FailureClass::Connectivity));
    sim.run_until(at("2026-11-23T04:00:00Z")).await;
    let held = alerts(&sim).await;
    let rules: Vec<Rule> = held.iter().map(|a| a.rule).collect();
    // The job failure, its streak turning systemic (third failure in a
    // row), and at-risk: never backed up since 00:30, the RPO clock
    // crossed 80 % of 4 h at 03:42 even during maintenance.
    assert_eq!(
        rules,
        vec![Rule::JobFailed, Rule::SystemicFailure, Rule::RpoAtRisk],
        "{held:#?}"
    );
    assert!(
        held.iter()
            .all(|a| a.suppressed_by.as_deref() == Some("erp-upgrade") && a.notified_at.is_none())
    );
    assert_eq!(held[2].condition_since, at("2026-11-23T03:42:00Z"));
    // Evaluated every minute, recorded every five: raised at 03:43 (the
    // first minute past the threshold), refreshed at 03:48, 03:53, 03:58.
    assert_eq!(held[2].first_seen, at("2026-11-23T03:43:00Z"));
    assert_eq!(held[2].last_seen, at("2026-11-23T03:58:00Z"));
    assert!(
        sim.notified.is_empty(),
        "nothing is notified inside the window"
    );
    let report = sim.report().await;
    assert_eq!(
        report.systems[0].compliance.state,
        haven_model::compliance::RpoState::AtRisk
    );

    // At 04:30 the RPO is violated (the at-risk alert gives way to the
    // violated one), still held.
    sim.run_until(at("2026-11-23T04:59:00Z")).await;
    assert!(sim.notified.is_empty());
    // At the window's end, what is still open is notified.
    sim.run_until(at("2026-11-23T05:01:00Z")).await;
    let when: Vec<String> = sim
        .notified
        .iter()
        .map(|(t, n)| {
            format!(
                "{} {}",
                t.strftime("%H:%M"),
                n.alert.as_ref().map_or("?", |a| a.rule.id())
            )
        })
        .collect();
    assert_eq!(
        when,
        vec![
            "05:00 job-failed",
            "05:00 systemic-failure",
            "05:00 rpo-violated"
        ]
    );

    // Past 150 % of the RPO (06:30): quarantined, critical; the violated
    // alert gives way to it.
    sim.run_until(at("2026-11-23T06:35:00Z")).await;
    let all = alerts(&sim).await;
    let rpo: Vec<(Rule, AlertState, Severity)> = all
        .iter()
        .filter(|a| a.key.starts_with("rpo-"))
        .map(|a| (a.rule, a.state, a.severity))
        .collect();
    assert_eq!(
        rpo,
        vec![
            (Rule::RpoAtRisk, AlertState::Resolved, Severity::Major),
            (Rule::RpoViolated, AlertState::Resolved, Severity::Critical),
            (Rule::RpoQuarantined, AlertState::Open, Severity::Critical),
        ]
    );
    let quarantined = all.last().expect("quarantined");
    assert_eq!(quarantined.condition_since, at("2026-11-23T06:30:00Z"));
}

#[tokio::test]
async fn durations_and_volumes_far_from_the_baseline_raise_anomalies_both_ways() {
    let (mut sim, _dir) = start("", "0 2 * * *", "").await;
    let day = |d: i64| at("2026-11-23T03:59:00Z") + SignedDuration::from_hours(24 * d);
    let normal = || Script::ok().taking(SignedDuration::from_mins(30));
    sim.runner.set("erp-db", normal());
    // Ten ordinary nights build the baseline (30 min, 100 MiB).
    sim.run_until(day(9)).await;
    assert!(not_rpo(&sim).await.is_empty());
    let open = |all: &[Alert]| -> Vec<(Rule, String)> {
        all.iter()
            .filter(|a| a.is_active())
            .map(|a| {
                (
                    a.rule,
                    a.facts.get("deviation").cloned().unwrap_or_default(),
                )
            })
            .collect()
    };
    // Night 11 takes 90 minutes: over the policy's maximum (1 h) and far
    // above the baseline.
    sim.runner
        .set("erp-db", Script::ok().taking(SignedDuration::from_mins(90)));
    sim.run_until(day(10)).await;
    assert_eq!(
        open(&not_rpo(&sim).await),
        vec![
            (Rule::DurationOverMax, String::new()),
            (Rule::DurationAnomaly, "above".into())
        ]
    );
    // Night 12 is normal again: both resolve.
    sim.runner.set("erp-db", normal());
    sim.run_until(day(11)).await;
    assert!(open(&not_rpo(&sim).await).is_empty());
    // Night 13: suspiciously quick.
    sim.runner
        .set("erp-db", Script::ok().taking(SignedDuration::from_mins(5)));
    sim.run_until(day(12)).await;
    assert_eq!(
        open(&not_rpo(&sim).await),
        vec![(Rule::DurationAnomaly, "below".into())]
    );
    // Night 14: normal time but 40 GiB changed instead of 100 MiB: a burst
    // that looks like mass encryption.
    sim.runner.set("erp-db", normal().changing(40 << 30));
    sim.run_until(day(13)).await;
    let all = not_rpo(&sim).await;
    assert_eq!(open(&all), vec![(Rule::VolumeAnomaly, "above".into())]);
    let burst = all
        .iter()
        .find(|a| a.rule == Rule::VolumeAnomaly)
        .expect("burst");
    assert!(burst.summary.contains("ransomware"), "{}", burst.summary);
    assert_eq!(
        burst.severity,
        Severity::Critical,
        "major, raised for tier 1"
    );
    // Night 15: 1 MiB changed: far below (a source that vanished?) — the
    // same condition, another occurrence.
    sim.runner.set("erp-db", normal().changing(1 << 20));
    sim.run_until(day(14)).await;
    let all = not_rpo(&sim).await;
    let volume = all
        .iter()
        .find(|a| a.rule == Rule::VolumeAnomaly)
        .expect("volume");
    assert_eq!(volume.occurrences, 2);
    assert_eq!(
        volume.facts.get("deviation").map(String::as_str),
        Some("below")
    );
}

#[tokio::test]
async fn a_secondary_repository_falling_behind_raises_copy_lag() {
    let offsite = r#"
[[repository]]
id = "offsite"
url = "/srv/haven/offsite"
password = "env:HAVEN_PASSWORD"
"#;
    let system = one_system("erp-db", "p", "0 * * * *", "UTC", None).replace(
        "repository = \"main\"",
        "repository = \"main\"\ncopies = [\"offsite\"]",
    );
    let text = format!("{WATCH}{REPO}{offsite}{system}");
    let (mut sim, _dir) =
        Sim::in_temp(&text, "retry_attempts = 1\n", at("2026-11-23T00:30:00Z")).await;
    sim.run_until(at("2026-11-23T02:00:00Z")).await;
    assert!(alerts(&sim).await.is_empty(), "copies keep up");
    // The offsite link breaks: copies fail from 02:00 on.
    sim.runner
        .set_kind(JobKind::Copy, Script::fail(FailureClass::Connectivity));
    sim.run_until(at("2026-11-23T07:30:00Z")).await;
    let lag: Vec<Alert> = alerts(&sim)
        .await
        .into_iter()
        .filter(|a| a.rule == Rule::CopyLag)
        .collect();
    assert_eq!(lag.len(), 1);
    let lag = &lag[0];
    assert_eq!(lag.key, "copy-lag:erp-db/default>offsite");
    // The last good copy started at 01:02; the primary's 06:02 backup is
    // more than 4 h newer: detected with the backup that crossed it.
    assert_eq!(lag.first_seen, at("2026-11-23T06:02:00Z"));
    assert_eq!(lag.facts.get("rpo").map(String::as_str), Some("4h"));
    // The link is back: the next copy catches up and the alert resolves.
    sim.runner.set_kind(JobKind::Copy, Script::ok());
    sim.run_until(at("2026-11-23T08:10:00Z")).await;
    let all = alerts(&sim).await;
    assert!(
        all.iter()
            .filter(|a| a.rule == Rule::CopyLag)
            .all(|a| !a.is_active())
    );
}

#[tokio::test]
async fn capacity_is_forecast_from_a_month_of_growth_then_reached() {
    let repo_with_capacity = REPO.replace(
        "password = \"env:HAVEN_PASSWORD\"",
        "password = \"env:HAVEN_PASSWORD\"\ncapacity_bytes = 1_000_000_000_000",
    );
    let text = format!(
        "{WATCH}{repo_with_capacity}{}",
        one_system("erp-db", "p", "0 2 * * *", "UTC", None)
    );
    let (mut sim, _dir) = Sim::in_temp(
        &text,
        "[alerts]\ncapacity_horizon = \"7d\"\n",
        at("2026-11-01T00:30:00Z"),
    )
    .await;
    // 500 GB on 1 November, 20 GB more every night: 80 % (800 GB) on the
    // 16th.
    let mut opened = Vec::new();
    for d in 1..=20u64 {
        let used = 500_000_000_000 + (d - 1) * 20_000_000_000;
        sim.runner.set("erp-db", Script::ok().filling(used));
        sim.run_until(at(&format!("2026-11-{d:02}T03:00:00Z")))
            .await;
        for a in not_rpo(&sim).await {
            if !opened.iter().any(|(r, _, _)| *r == a.rule) {
                opened.push((a.rule, d, a.facts.get("forecast_at").cloned()));
            }
        }
    }
    let forecast = &opened[0];
    assert_eq!(forecast.0, Rule::CapacityForecast);
    // Seven days ahead of the 16th (the horizon).
    assert_eq!(forecast.1, 9, "{opened:?}");
    assert!(
        forecast
            .2
            .as_deref()
            .is_some_and(|t| t.starts_with("2026-11-16")),
        "{opened:?}"
    );
    assert_eq!(opened[1].0, Rule::CapacityUsed);
    assert_eq!(opened[1].1, 16);
    let all = not_rpo(&sim).await;
    let f = all
        .iter()
        .find(|a| a.rule == Rule::CapacityForecast)
        .expect("forecast");
    assert_eq!(
        f.state,
        AlertState::Resolved,
        "superseded once the threshold is reached"
    );
    assert!(f.summary.contains("2026-11-16"), "{}", f.summary);
}

#[tokio::test]
async fn the_escalation_policy_follows_business_hours_over_a_simulated_week() {
    let calendar = r#"
[[calendar]]
id = "office"
timezone = "Europe/Berlin"
days = ["mon", "tue", "wed", "thu", "fri"]
hours = "08:00-18:00"
holidays = ["2026-11-25"]

[[escalation]]
id = "office-hours"
hours = "business"
calendar = "office"

[[escalation.step]]
channels = ["mail"]
wait = "1h"

[[escalation]]
id = "after-hours"
hours = "off-hours"
calendar = "office"

[[escalation.step]]
channels = ["sms"]
wait = "1h"
"#;
    // Only the two calendar policies: drop the tier-1 policy of WATCH.
    let base = WATCH.split("[[escalation]]").next().unwrap_or_default();
    let text = format!(
        "{base}{calendar}{REPO}{}",
        one_system("erp-db", "p", "0 3,12 * * *", "Europe/Berlin", None)
    );
    let monday = at("2026-11-23T00:00:00Z");
    let settings_text = "retry_attempts = 1\nsystemic_after = 1000\n";
    let (mut sim, _dir) = Sim::in_temp(&text, settings_text, monday).await;
    sim.runner
        .set("erp-db", Script::fail(FailureClass::Storage));
    let week_end = at("2026-11-30T00:00:00Z");
    let mut seen = 0;
    while sim.clock.now() < week_end {
        let until = sim.clock.now() + SignedDuration::from_hours(1);
        sim.run_until(until).await;
        // Someone resolves each failure alert after its first page, so the
        // next failure raises (and routes) a new one.
        for (_, n) in &sim.notified[seen..] {
            if let Some(alert) = &n.alert
                && alert.rule == Rule::JobFailed
            {
                sim.core
                    .resolve(alert.id, &ana(), "looked at it")
                    .await
                    .expect("resolve");
            }
        }
        seen = sim.notified.len();
    }
    let routed: Vec<String> = sim
        .notified
        .iter()
        .filter(|(_, n)| n.alert.as_ref().is_some_and(|a| a.rule == Rule::JobFailed))
        .map(|(t, n)| {
            let local = t.to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").expect("tz"));
            format!("{} {}", local.strftime("%a %H:%M"), n.channels.join(","))
        })
        .collect();
    // Nights go to SMS; noon on working days to mail, except the holiday
    // (Wednesday) and the weekend.
    assert_eq!(
        routed,
        vec![
            "Mon 03:01 sms",
            "Mon 12:01 mail",
            "Tue 03:01 sms",
            "Tue 12:01 mail",
            "Wed 03:01 sms",
            "Wed 12:01 sms",
            "Thu 03:01 sms",
            "Thu 12:01 mail",
            "Fri 03:01 sms",
            "Fri 12:01 mail",
            "Sat 03:01 sms",
            "Sat 12:01 sms",
            "Sun 03:01 sms",
            "Sun 12:01 sms",
        ]
    );
}

#[tokio::test]
async fn late_starts_partial_backups_and_failed_integrity_checks_raise_their_alerts() {
    // Two systems due at 02:00, one job at a time, 45 minutes each: the
    // second starts 45 minutes late. The repository is checked at 05:00.
    let second = one_system("crm-db", "q", "0 2 * * *", "UTC", None).replace(
        "repository = \"main\"",
        "repository = \"main\"\n\n[policy.integrity_check]\nschedule = \"0 5 * * *\"\nread_data_percent = 5.0",
    );
    let text = format!(
        "{WATCH}{REPO}{}{second}",
        one_system("erp-db", "p", "0 2 * * *", "UTC", None)
    );
    let (mut sim, _dir) = Sim::in_temp(
        &text,
        "max_jobs = 1\nretry_attempts = 1\n",
        at("2026-11-23T01:00:00Z"),
    )
    .await;
    let slow = Script::ok().taking(SignedDuration::from_mins(45));
    sim.runner.set("erp-db", slow.clone());
    sim.runner.set(
        "crm-db",
        Script {
            outcome: Outcome::Partial,
            ..slow
        },
    );
    sim.runner
        .set_kind(JobKind::Check, Script::fail(FailureClass::DataIntegrity));
    sim.run_until(at("2026-11-23T05:30:00Z")).await;
    let all = not_rpo(&sim).await;
    let found: Vec<(Rule, String, Severity)> = all
        .iter()
        .map(|a| (a.rule, a.key.clone(), a.severity))
        .collect();
    let has = |rule: Rule| found.iter().find(|(r, _, _)| *r == rule).cloned();
    let (_, key, _) = has(Rule::StartDelay).expect("a start-delay alert");
    let late = all
        .iter()
        .find(|a| a.rule == Rule::StartDelay)
        .expect("late");
    assert_eq!(
        late.facts.get("delay").map(String::as_str),
        Some("45m"),
        "{key}"
    );
    let (_, key, severity) = has(Rule::JobPartial).expect("a job-partial alert");
    assert_eq!(key, "job-partial:backup:crm-db/default");
    assert_eq!(
        severity,
        Severity::Warning,
        "crm-db serves no service: base severity"
    );
    let (_, key, severity) = has(Rule::IntegrityCheckFailed).expect("an integrity alert");
    assert_eq!(key, "integrity-check-failed:main");
    assert_eq!(severity, Severity::Critical);
    // A damaged repository is not also reported as a plain failed job.
    assert!(has(Rule::JobFailed).is_none(), "{found:?}");
}

/// A system the plan cannot schedule is a `setup` alert, not a log line:
/// raised at start, kept while the problem stands, resolved by the reload
/// that fixes it.
#[tokio::test]
async fn a_system_the_plan_cannot_schedule_is_a_setup_alert_until_a_reload_fixes_it() {
    let text = |repository: &str| {
        format!(
            r#"
[[service]]
id = "lab"
tier = 1
rpo = "1d"
rto = "4h"
mtd = "8h"
depends_on = ["lab-db"]

[[system]]
id = "lab-db"
kind = "database-postgres"
policy = "nightly"

[[system.backup_set]]
name = "db"
command = "pg_dump lab"

[[policy]]
id = "nightly"
schedule = "0 2 * * *"
repository = "{repository}"

[[repository]]
id = "main"
url = "/srv/main"
"#
        )
    };
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("haven.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("store"));
    let clock = ManualClock::new(at("2026-03-02T08:00:00Z"));
    let (mut core, _, problems) = Core::start(
        settings(dir.path(), ""),
        Arc::clone(&store),
        Arc::new(clock.clone()),
        catalog(&text("missing")),
    )
    .await
    .expect("core");
    assert_eq!(problems.len(), 1, "{problems:?}");
    let setup = |all: Vec<Alert>| -> Vec<Alert> {
        all.into_iter().filter(|a| a.rule == Rule::Setup).collect()
    };
    let filter = AlertFilter {
        limit: 100,
        ..AlertFilter::default()
    };
    let open = setup(store.alerts(&filter).await.expect("alerts"));
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_eq!(open[0].key, "setup:plan:system:lab-db");
    assert_eq!(open[0].state, AlertState::Open);
    assert_eq!(
        open[0].severity,
        Severity::Critical,
        "a tier-1 service's system"
    );
    assert_eq!(open[0].subject.service.as_deref(), Some("lab"));
    assert!(
        open[0].summary.contains(
            "lab-db is not backed up: repository missing of policy nightly does not exist"
        ),
        "{}",
        open[0].summary
    );
    assert!(core.plan().tasks.is_empty(), "nothing planned for lab-db");

    // The same problem after a reload stays one alert.
    clock.advance(SignedDuration::from_hours(1));
    core.reload(catalog(&text("missing")))
        .await
        .expect("reload");
    assert_eq!(setup(store.alerts(&filter).await.expect("alerts")).len(), 1);

    clock.advance(SignedDuration::from_hours(1));
    let problems = core.reload(catalog(&text("main"))).await.expect("reload");
    assert!(problems.is_empty(), "{problems:?}");
    let after = setup(store.alerts(&filter).await.expect("alerts"));
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].state, AlertState::Resolved, "{after:#?}");
    assert!(core.plan().tasks.contains_key("backup:lab-db/db"));
}
