//! Recovery as declared: `[[plan]]` entries and `[[service.recovery]]`
//! steps load as written, and every mistake is reported where it was made.

use haven_catalog::{SourceFile, check, load_sources};
use haven_model::catalog::recovery::{DEFAULT_CONCURRENCY, PlanServices, StepAction};
use jiff::SignedDuration;

const ESTATE: &str = r#"
[[service]]
id = "erp"
tier = 1
depends_on = ["erp-db"]

[[service.recovery]]
name = "point the load balancer at the recovered ERP"
type = "command"
run = "lbctl enable erp"
env = { LB_TOKEN = "file:/etc/haven/lb.token" }
timeout = "2m"

[[service.recovery]]
type = "sql"
query = "SELECT count(*) > 0 FROM invoices"
expect = "t"
env = { PGHOST = "erp-db-1", PGDATABASE = "erp" }

[[service.recovery]]
type = "wait"
duration = "5m"
critical = false

[[service.recovery]]
type = "checkpoint"
prompt = "confirm DNS points to the recovery site"

[[service.recovery]]
type = "http"
url = "https://erp.example/health"

[[service.recovery]]
type = "tcp"
address = "erp-db-1:5432"

[[system]]
id = "erp-db"
kind = "database-postgres"

[[system.backup_set]]
command = "pg_dump -Fc erp"
recover_command = "pg_restore --clean --if-exists -d erp"

[[service]]
id = "wiki"
tier = 4
"#;

fn load(extra: &str) -> haven_catalog::LoadedCatalog {
    load_sources(
        vec![SourceFile::new("r.toml".into(), format!("{ESTATE}{extra}"))],
        Vec::new(),
    )
}

/// Findings the recovery tables cause (the estate has no objectives nor
/// policies: those findings are left out).
fn findings(extra: &str) -> Vec<(String, String, usize)> {
    check(&load(extra), jiff::Timestamp::now())
        .into_iter()
        .filter(|d| !matches!(d.code, "HVN-E011" | "HVN-E015" | "HVN-W016"))
        .filter(|d| d.code.starts_with("HVN-E"))
        .map(|d| (d.code.to_string(), d.message.clone(), d.line.unwrap_or(0)))
        .collect()
}

#[test]
fn plans_and_recovery_steps_load_as_written() {
    let loaded = load(
        r#"
[[plan]]
id = "ransomware"
description = "rebuild from backups"
services = "all"
defer_tiers = [4]

[[plan]]
id = "erp-only"
services = ["erp"]
concurrency = 2
"#,
    );
    assert_eq!(findings(""), []);
    let c = &loaded.catalog;
    let all = &c.plans[0];
    assert_eq!(all.services, PlanServices::All);
    assert_eq!(all.concurrency, DEFAULT_CONCURRENCY);
    assert_eq!(all.defer_tiers, [4]);
    let erp = &c.plans[1];
    assert!(matches!(&erp.services, PlanServices::Listed(l) if l[0].value == "erp"));
    assert_eq!(erp.concurrency, 2);

    let steps = &c.service("erp").expect("erp").recovery;
    let types: Vec<&str> = steps.iter().map(|s| s.action.type_name()).collect();
    assert_eq!(
        types,
        ["command", "sql", "wait", "checkpoint", "http", "tcp"]
    );
    assert_eq!(
        steps[0].display_name(),
        "point the load balancer at the recovered ERP"
    );
    assert_eq!(steps[0].timeout, Some(SignedDuration::from_mins(2)));
    assert!(
        matches!(&steps[0].action, StepAction::Command { env, .. } if env[0].name == "LB_TOKEN")
    );
    assert!(steps[0].critical, "critical unless said");
    assert!(!steps[2].critical);
    assert!(
        matches!(steps[2].action, StepAction::Wait { duration } if duration == SignedDuration::from_mins(5))
    );
    assert_eq!(
        steps[3].display_name(),
        "checkpoint: confirm DNS points to the recovery site"
    );
    let set = &c.system("erp-db").expect("erp-db").backup_sets[0];
    assert_eq!(
        set.recover_command.as_deref(),
        Some("pg_restore --clean --if-exists -d erp")
    );
}

#[test]
fn mistakes_in_plans_and_steps_are_reported_with_their_place() {
    let base = ESTATE.lines().count();
    let found = findings(
        r#"
[[plan]]
id = "no-services"

[[plan]]
id = "none-at-once"
services = "all"
concurrency = 0

[[plan]]
id = "typo"
services = ["ERP", "erp"]
defer_tiers = [5]

[[plan]]
id = "typo"
services = "everything"

[[service]]
id = "crm"
tier = 3

[[service.recovery]]
type = "reboot"

[[service.recovery]]
type = "wait"

[[system]]
id = "files"
kind = "file-server"

[[system.backup_set]]
paths = ["/srv"]
recover_command = "cat > /dev/null"
"#,
    );
    let has = |code: &str, needle: &str, line: usize| {
        assert!(
            found
                .iter()
                .any(|(c, m, l)| c == code && m.contains(needle) && *l == line),
            "expected {code} `{needle}` at line {line} in {found:#?}"
        );
    };
    has("HVN-E003", "a plan needs `services`", base + 3);
    has("HVN-E003", "`concurrency` must be at least 1", base + 8);
    has("HVN-E012", "unknown service `ERP`", base + 12);
    has("HVN-E003", "`defer_tiers`: 5 is not a tier", base + 13);
    has(
        "HVN-E003",
        "`services` must be a list of service ids or \"all\", found \"everything\"",
        base + 17,
    );
    has("HVN-E003", "recovery step type \"reboot\"", base + 24);
    has("HVN-E003", "a `wait` step needs a `duration`", base + 27);
    has(
        "HVN-E003",
        "`recover_command` reads a restored dump",
        base + 35,
    );
}

const SHOP: &str = r#"
[[service]]
id = "shop"
tier = 1
rto = "2h"
mtd = "4h"
depends_on = ["orders", "shop-files"]

[[service.recovery]]
type = "checkpoint"
prompt = "confirm the shop's DNS points to the recovery site"

[[service.recovery]]
type = "wait"
duration = "10m"
critical = false

[[service]]
id = "orders"
tier = 1
rto = "1h"
mtd = "4h"
depends_on = ["orders-db"]

[[service]]
id = "reports"
tier = 4
depends_on = ["orders-db"]

[[system]]
id = "orders-db"
kind = "database-postgres"
policy = "p"
restore_estimate = "30m"

[[system.backup_set]]
command = "pg_dump -Fc orders"

[[system.check]]
type = "sql"
query = "SELECT 1"
expect = "1"

[[system]]
id = "shop-files"
kind = "file-server"
policy = "p"
restore_estimate = "50m"

[[system.backup_set]]
paths = ["/srv/shop"]

[[policy]]
id = "p"
schedule = "0 1 * * *"
repository = "main"

[[repository]]
id = "main"
url = "/srv/haven"

[[plan]]
id = "everything-but-reports"
services = "all"
defer_tiers = [4]
concurrency = 1
"#;

fn shop() -> haven_model::catalog::Catalog {
    let loaded = load_sources(
        vec![SourceFile::new("s.toml".into(), SHOP.into())],
        Vec::new(),
    );
    assert!(loaded.findings.is_empty(), "{:?}", loaded.findings);
    loaded.catalog
}

#[test]
fn a_run_is_planned_in_waves_with_numbered_steps_and_deferred_tiers_left_out() {
    use haven_model::recovery::{Selection, StepKind, UnitKind, plan_run};
    let catalog = shop();
    let plan = plan_run(&catalog, &Selection::Plan("everything-but-reports".into())).expect("plan");
    let order: Vec<(usize, &str)> = plan.units.iter().map(|u| (u.wave, u.id.as_str())).collect();
    assert_eq!(
        order,
        [
            (0, "orders-db"),
            (0, "shop-files"),
            (1, "orders"),
            (2, "shop")
        ],
        "systems first, then what needs them; the tier-4 report service is deferred"
    );
    assert_eq!(plan.deferred, ["reports"]);
    assert_eq!(plan.concurrency, 1);
    let steps: Vec<(u32, &str)> = plan
        .units
        .iter()
        .flat_map(|u| &u.steps)
        .map(|s| (s.number, s.name.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (1, "restore orders-db/default"),
            (2, "check 1 of orders-db"),
            (3, "restore shop-files/default"),
            (
                4,
                "shop: checkpoint: confirm the shop's DNS points to the recovery site"
            ),
            (5, "shop: wait 10m"),
        ]
    );
    assert!(
        matches!(plan.step(4).expect("step 4").kind, StepKind::Recovery { ref action, .. } if action == "checkpoint")
    );
    assert!(!plan.step(5).expect("step 5").critical);
    assert_eq!(plan.units[3].kind, UnitKind::Service);
    assert_eq!(plan.units[3].needs, ["orders", "shop-files"]);
    // Asked for by name, a deferred tier comes along when it is needed;
    // an unknown plan or service is an error naming it.
    let all = plan_run(&catalog, &Selection::All).expect("all");
    assert!(all.units.iter().any(|u| u.id == "reports"));
    assert_eq!(
        plan_run(&catalog, &Selection::Plan("nope".into()))
            .expect_err("no plan")
            .to_string(),
        "there is no plan `nope` in the catalog"
    );
    assert_eq!(
        plan_run(&catalog, &Selection::Services(vec!["shpo".into()]))
            .expect_err("no service")
            .to_string(),
        "there is no service `shpo` in the catalog"
    );
}

#[test]
fn the_forecast_follows_estimates_dependencies_and_concurrency() {
    use haven_model::recovery::{Estimate, Selection, forecast, plan_run};
    use std::collections::HashMap;
    let catalog = shop();
    let mins = SignedDuration::from_mins;
    let at = |f: &haven_model::recovery::Forecast, id: &str| {
        let i = f.items.iter().find(|i| i.id == id).expect(id);
        (i.start, i.end)
    };
    // One at a time: the file tree waits for the database's slot.
    let one = plan_run(&catalog, &Selection::Plan("everything-but-reports".into())).expect("plan");
    let f = forecast(&catalog, one, &HashMap::new());
    assert_eq!(at(&f, "orders-db"), (mins(0), mins(30)));
    assert_eq!(at(&f, "shop-files"), (mins(30), mins(80)));
    assert_eq!(
        at(&f, "orders"),
        (mins(80), mins(80)),
        "its own time: none declared"
    );
    assert_eq!(at(&f, "shop"), (mins(80), mins(90)), "its wait step");
    assert_eq!(f.completion, mins(90));
    // orders and the file tree are both back at 1h 20m: the longer chain.
    assert_eq!(f.critical_path, ["orders-db", "orders", "shop"]);
    assert!(
        f.breaches
            .iter()
            .any(|b| b == "orders would be back after 1h 20m, later than its RTO of 1h"),
        "{:?}",
        f.breaches
    );
    // Side by side (the default concurrency), with a drill's measured
    // estimate for the database.
    let side = plan_run(&catalog, &Selection::Services(vec!["shop".into()])).expect("plan");
    let estimates = HashMap::from([(
        "orders-db".to_string(),
        Estimate {
            duration: mins(20),
            basis: "drill 7".into(),
        },
    )]);
    let f = forecast(&catalog, side, &estimates);
    assert_eq!(at(&f, "orders-db"), (mins(0), mins(20)));
    assert_eq!(at(&f, "shop-files"), (mins(0), mins(50)));
    assert_eq!(at(&f, "shop"), (mins(50), mins(60)));
    assert_eq!(f.items[0].basis, "drill 7");
    assert!(f.breaches.is_empty(), "{:?}", f.breaches);
}

#[test]
fn a_need_is_met_when_a_working_alternative_is_back() {
    use haven_model::recovery::{Selection, forecast, plan_run};
    use std::collections::HashMap;
    let toml = r#"
[[service]]
id = "payments"
tier = 1
rto = "2h"
mtd = "4h"
depends_on = ["isp-a"]

[[vendor]]
id = "isp-a"
sla_rto = "4h"
alternatives = ["isp-b"]

[[vendor]]
id = "isp-b"
sla_rto = "1h"
"#;
    let loaded = load_sources(
        vec![SourceFile::new("v.toml".into(), toml.into())],
        Vec::new(),
    );
    assert!(loaded.findings.is_empty(), "{:?}", loaded.findings);
    let catalog = loaded.catalog;
    let plan = plan_run(&catalog, &Selection::All).expect("plan");
    let f = forecast(&catalog, plan, &HashMap::new());
    let payments = f
        .items
        .iter()
        .find(|i| i.id == "payments")
        .expect("payments");
    assert_eq!(
        payments.start,
        SignedDuration::from_hours(1),
        "the backup ISP"
    );
    assert!(f.breaches.is_empty(), "{:?}", f.breaches);
}

/// A recorded run measures each service from the run's start until its
/// last step (and what it needs) ended; people decide only on what waits
/// for them; a halted run and a checkpoint waiting too long are alerts.
#[test]
fn a_run_measures_each_service_and_people_decide_only_what_waits() {
    use haven_model::recovery::run::{
        Decision, RecoveryRun, RestoreTarget, RunState, RunView, StepRecord, StepState,
        refuse_decision,
    };
    use haven_model::recovery::{Selection, plan_run};
    let catalog = shop();
    let plan = plan_run(&catalog, &Selection::Plan("everything-but-reports".into())).expect("plan");
    let t0: jiff::Timestamp = "2026-11-29T10:00:00Z".parse().expect("time");
    let mins = |m: i64| t0 + SignedDuration::from_mins(m);
    let run = RecoveryRun {
        id: 7,
        selection: Selection::All,
        plan: plan.clone(),
        by: "local:ana".into(),
        reason: None,
        at: None,
        target: RestoreTarget::Original,
        preflight: Vec::new(),
        forced: None,
        snapshots: Vec::new(),
        state: RunState::Running,
        started_at: t0,
        ended_at: None,
        executor: None,
        heartbeat: t0,
        resumed: 0,
        abandoned: None,
    };
    let mut steps = StepRecord::all_pending(&plan);
    let mut set = |n: usize, state: StepState, start: i64, end: Option<i64>| {
        steps[n].state = state;
        steps[n].started_at = Some(mins(start));
        steps[n].ended_at = end.map(mins);
    };
    set(0, StepState::Done, 0, Some(20));
    set(1, StepState::Done, 20, Some(25));
    set(2, StepState::Done, 0, Some(40));
    set(3, StepState::Waiting, 40, None);
    let view = RunView::new(&catalog, run.clone(), steps.clone());
    let measured: Vec<(&str, Option<SignedDuration>, &str)> = view
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.measured_rto, s.verdict.as_str()))
        .collect();
    assert_eq!(
        measured,
        [
            ("orders", Some(SignedDuration::from_mins(25)), "met"),
            ("shop", None, "not-back"),
        ]
    );
    // Only the waiting checkpoint can be confirmed or skipped.
    assert!(refuse_decision(&steps[3], Decision::Confirm).is_none());
    assert!(refuse_decision(&steps[3], Decision::Skip).is_none());
    let done = refuse_decision(&steps[0], Decision::Confirm).expect("refused");
    assert!(
        done.contains("step 1") && done.contains("is done"),
        "{done}"
    );
    assert!(refuse_decision(&steps[3], Decision::Retry).is_some());

    // Waiting 40 minutes (more than 30) is an alert; so is a failed
    // critical step, which halts the run.
    let wait = SignedDuration::from_mins(30);
    let rules = |v: &RunView, now: i64| -> Vec<String> {
        haven_model::alert_rules::recovery(&catalog, std::slice::from_ref(v), wait, mins(now))
            .holding
            .into_iter()
            .map(|c| c.key)
            .collect()
    };
    assert_eq!(rules(&view, 60), Vec::<String>::new());
    assert_eq!(rules(&view, 80), ["checkpoint-waiting:7:4"]);
    let mut failed = steps.clone();
    failed[3].state = StepState::Done;
    failed[3].ended_at = Some(mins(90));
    failed[4].state = StepState::Failed;
    failed[4].critical = true;
    failed[4].started_at = Some(mins(90));
    failed[4].ended_at = Some(mins(100));
    let halted = RunView::new(&catalog, run.clone(), failed.clone());
    assert_eq!(rules(&halted, 101), ["recovery-halted:7"]);
    assert_eq!(halted.services[1].measured_rto, None);

    // Skipped, the shop is back at the skip; 110 minutes is within its
    // RTO of 2 hours.
    failed[4].state = StepState::Skipped;
    failed[4].ended_at = Some(mins(110));
    let back = RunView::new(&catalog, run, failed);
    assert_eq!(
        back.services[1].measured_rto,
        Some(SignedDuration::from_mins(110))
    );
    assert_eq!(back.services[1].verdict, "met");
    assert!(rules(&back, 200).is_empty());

    assert_eq!(
        RestoreTarget::parse("original"),
        Ok(RestoreTarget::Original)
    );
    assert_eq!(
        RestoreTarget::parse("alternate:/srv/recovered"),
        Ok(RestoreTarget::Alternate("/srv/recovered".into()))
    );
    assert!(RestoreTarget::parse("alternate:srv").is_err());
    assert!(RestoreTarget::parse("elsewhere").is_err());
}
