//! `[[drill]]` schedules: which services the server drills when, and how
//! long a pass proves them; every mistake reported where it was made.

use haven_catalog::{SourceFile, check, load_sources};
use jiff::SignedDuration;

const ESTATE: &str = r#"
[[service]]
id = "shop"
tier = 1
depends_on = ["shop-db", "files"]

[[service]]
id = "wiki"
tier = 3
depends_on = ["files"]

[[service]]
id = "lab"
tier = 2
depends_on = ["lab-db"]

[[system]]
id = "shop-db"
kind = "database-postgres"

[[system]]
id = "files"
kind = "linux-server"

[[system]]
id = "lab-db"
kind = "database-postgres"
"#;

fn load(extra: &str) -> haven_catalog::LoadedCatalog {
    load_sources(
        vec![SourceFile::new("d.toml".into(), format!("{ESTATE}{extra}"))],
        Vec::new(),
    )
}

fn findings(extra: &str) -> Vec<(String, String, usize)> {
    check(&load(extra), jiff::Timestamp::now())
        .into_iter()
        // The estate has no objectives nor policies: only what the drill
        // tables cause counts here.
        .filter(|d| !matches!(d.code, "HVN-E011" | "HVN-E015"))
        .filter(|d| d.code.starts_with("HVN-E") || d.code == "HVN-W034")
        .map(|d| (d.code.to_string(), d.message.clone(), d.line.unwrap_or(0)))
        .collect()
}

#[test]
fn drill_entries_cover_services_by_name_then_by_tier() {
    let loaded = load(
        r#"
[[drill]]
id = "critical"
tiers = [1]
schedule = "0 3 * * 0"
timezone = "Europe/Berlin"
window = "01:00-05:00"

[[drill]]
id = "shop-weekly"
services = ["shop"]
schedule = "0 2 * * 6"
interval = "14d"

[[drill]]
id = "everything-else"
schedule = "0 4 1 * *"
"#,
    );
    assert_eq!(findings(""), []);
    let c = &loaded.catalog;
    assert_eq!(c.drills.len(), 3);
    let of = |s: &str| c.drill_schedule_of_service(s).map(|d| d.id.value.as_str());
    // By name before by tier; an entry without services or tiers covers
    // the rest.
    assert_eq!(of("shop"), Some("shop-weekly"));
    assert_eq!(of("lab"), Some("everything-else"));
    assert_eq!(of("wiki"), Some("everything-else"));
    // A system shared by a tier-1 and a tier-3 service follows the tier 1
    // service's schedule and its (declared) interval.
    let files = c.drill_schedule_of_system("files").expect("covered");
    assert_eq!(files.id.value, "shop-weekly");
    assert_eq!(
        c.drill_interval_of_system("files"),
        SignedDuration::from_hours(14 * 24)
    );
    // No interval declared: the tier's default (tier 2: 90 days).
    assert_eq!(
        c.drill_interval_of_system("lab-db"),
        SignedDuration::from_hours(90 * 24)
    );
    assert_eq!(c.tier_of_system("files"), 1);
    let critical = &c.drills[0];
    assert_eq!(critical.timezone.value.name(), "Europe/Berlin");
    assert!(critical.window.is_some());
}

#[test]
fn without_entries_readiness_follows_the_tier_defaults() {
    let c = load("").catalog;
    assert!(c.drill_schedule_of_system("files").is_none());
    assert_eq!(
        c.drill_interval_of_system("files"),
        SignedDuration::from_hours(30 * 24)
    );
    assert_eq!(
        c.drill_interval_of_system("lab-db"),
        SignedDuration::from_hours(90 * 24)
    );
}

#[test]
fn mistakes_in_drill_entries_are_reported_with_their_place() {
    let found = findings(
        r#"
[[drill]]
id = "bad-cron"
schedule = "every sunday"

[[drill]]
id = "bad-tier"
tiers = [7]
schedule = "0 3 * * 0"

[[drill]]
id = "bad-service"
services = ["shpo"]
schedule = "0 3 * * 0"

[[drill]]
id = "bad-interval"
schedule = "0 3 * * 0"
interval = "0d"

[[drill]]
id = "either-day"
schedule = "0 3 1-7 * 0"

[[drill]]
id = "either-day"
schedule = "0 3 * * 0"
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
    let base = ESTATE.lines().count();
    has("HVN-E003", "`schedule`", base + 4);
    has("HVN-E003", "`tiers`: 7 is not a tier", base + 8);
    has("HVN-E012", "unknown service `shpo`", base + 13);
    has("HVN-E003", "`interval` must be positive", base + 19);
    has("HVN-W034", "drill either-day", base + 23);
    has("HVN-E005", "either-day", base + 26);
}

#[test]
fn a_restore_command_needs_a_dump_to_load() {
    let found = findings(
        r#"
[[system]]
id = "web"
kind = "web-server"

[[system.backup_set]]
paths = ["/srv/www"]
restore_command = "cp -r srv/www site"
start = "python3 -m http.server $HAVEN_PORT"
"#,
    );
    let base = ESTATE.lines().count();
    assert!(
        found.iter().any(|(c, m, l)| c == "HVN-E003"
            && m.contains("`restore_command` loads a dump")
            && *l == base + 8),
        "{found:#?}"
    );
    assert_eq!(
        found.len(),
        1,
        "`start` is fine on a set of paths: {found:#?}"
    );
}
