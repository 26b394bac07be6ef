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
