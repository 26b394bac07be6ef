//! The watch tables: channels, calendars, escalation policies and
//! maintenance windows load from the example catalog, and every mistake
//! is reported where it was made.

use std::path::Path;

use haven_catalog::{SourceFile, check, load_dir, load_sources};
use haven_model::alerts::Severity;
use haven_model::catalog::SecretRef;
use haven_model::catalog::watch::{ChannelKind, Hours, MaintenanceTime, MaybeSecret};

#[test]
fn the_example_catalog_declares_channels_escalation_and_maintenance() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme");
    let loaded = load_dir(&dir).expect("acme loads");
    let errors: Vec<_> = check(&loaded, jiff::Timestamp::now())
        .into_iter()
        .filter(|d| d.code.starts_with("HVN-E"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let c = &loaded.catalog;
    let types: Vec<&str> = c.channels.iter().map(|ch| ch.kind.type_name()).collect();
    assert_eq!(types, ["email", "slack", "teams", "webhook", "command"]);
    let slack = &c.channels[1];
    assert!(matches!(
        &slack.kind,
        ChannelKind::Slack { url: MaybeSecret::Secret(SecretRef::Env(v)) } if v == "ACME_SLACK_WEBHOOK"
    ));
    assert_eq!(c.channels[4].retries, 1);
    assert_eq!(c.calendars[0].holidays.len(), 5);
    let first = &c.escalations[0];
    assert_eq!(first.severities, [Severity::Critical]);
    assert_eq!(first.tiers, [1]);
    assert_eq!(first.steps.len(), 2);
    assert_eq!(first.steps[0].repeat, 2);
    assert_eq!(c.escalations[2].hours, Hours::OffHours);
    assert!(matches!(
        c.maintenance[0].when,
        MaintenanceTime::Recurring { .. }
    ));
    let MaintenanceTime::Once { start, end } = c.maintenance[1].when else {
        panic!("a one-off window")
    };
    assert_eq!(start.to_string(), "2026-12-27T19:00:00Z");
    assert_eq!(end.duration_since(start).as_hours(), 8);
}

fn findings(toml: &str) -> Vec<(String, String, usize)> {
    let loaded = load_sources(
        vec![SourceFile::new("w.toml".into(), toml.into())],
        Vec::new(),
    );
    check(&loaded, jiff::Timestamp::now())
        .into_iter()
        .map(|d| (d.code.to_string(), d.message.clone(), d.line.unwrap_or(0)))
        .collect()
}

#[test]
fn mistakes_in_watch_tables_are_reported_with_their_place() {
    let toml = r#"[[channel]]
id = "mail"
type = "email"
smtp = "127.0.0.1:25"
from = "haven@example.org"
to = ["ops@example.org"]
url = "https://example.org"
password = "hunter2"

[[channel]]
id = "hook"
type = "webhok"

[[channel]]
id = "chat"
type = "slack"

[[calendar]]
id = "office"
days = ["mon", "fri", "sunday"]
hours = "08:00-18:00"
holidays = ["24.12.2026"]

[[escalation]]
id = "night"
hours = "off-hours"

[[escalation.step]]
channels = ["mail", "pager"]
wait = "soon"

[[maintenance]]
id = "patching"
services = ["nowhere"]
schedule = "0 2 * * 0"
"#;
    let found = findings(toml);
    let has = |code: &str, text: &str, line: usize| {
        assert!(
            found
                .iter()
                .any(|(c, m, l)| c == code && m.contains(text) && *l == line),
            "no {code} {text:?} at line {line} in {found:#?}"
        );
    };
    has(
        "HVN-E002",
        "`url` does not apply to a channel of type email",
        7,
    );
    has("HVN-E006", "`password` is written inline", 8);
    has("HVN-E003", "\"webhok\" is not one of email, webhook", 12);
    has("HVN-E004", "a slack channel needs `url`", 16);
    has("HVN-E003", "\"sunday\" is not one of mon", 20);
    has("HVN-E003", "\"24.12.2026\" is not a date", 22);
    has("HVN-E003", "needs a business-hours calendar", 26);
    has("HVN-E012", "unknown channel `pager`", 29);
    has("HVN-E003", "`wait`", 30);
    has("HVN-E003", "needs a positive `duration`", 35);
    // The secret itself is never echoed.
    assert!(found.iter().all(|(_, m, _)| !m.contains("hunter2")));
}

#[test]
fn scope_references_and_duplicate_ids_are_checked() {
    let toml = r#"[[maintenance]]
id = "w"
systems = ["ghost"]
start = "2026-12-05 22:00"
end = "2026-12-05 21:00"

[[channel]]
id = "x"
type = "command"
run = "true"

[[channel]]
id = "x"
type = "command"
run = "false"

[[maintenance]]
id = "v"
systems = ["ghost"]
start = "2026-12-05T22:00:00Z"
end = "2026-12-06T02:00:00Z"
"#;
    let found = findings(toml);
    let codes: Vec<(&str, usize)> = found.iter().map(|(c, _, l)| (c.as_str(), *l)).collect();
    assert!(codes.contains(&("HVN-E003", 5)), "{found:#?}"); // end before start
    assert!(codes.contains(&("HVN-E005", 13)), "{found:#?}");
    assert!(codes.contains(&("HVN-E012", 18)), "{found:#?}");
}

#[test]
fn commands_take_their_credentials_from_env_by_reference() {
    let toml = r#"
[[system]]
id = "erp-db"
kind = "database-postgres"
[[system.backup_set]]
name = "db"
command = "pg_dump -Fc erp"
env = { PGPASSWORD = "file:/etc/haven/erp.pw", PGHOST = "db1", PGUSER = "env:ERP_USER" }

[[channel]]
id = "pager"
type = "command"
run = "pager-send"
env = { PAGER_TOKEN = "env:PAGER_TOKEN" }
"#;
    let loaded = load_sources(
        vec![SourceFile::new("e.toml".into(), toml.into())],
        Vec::new(),
    );
    let errors: Vec<_> = check(&loaded, jiff::Timestamp::now())
        .into_iter()
        .filter(|d| d.code.starts_with("HVN-E00"))
        .collect();
    assert!(errors.is_empty(), "load errors: {errors:#?}");
    let set = &loaded.catalog.systems[0].backup_sets[0];
    let env: Vec<(&str, &MaybeSecret)> = set
        .env
        .iter()
        .map(|v| (v.name.as_str(), &v.value))
        .collect();
    assert_eq!(
        env,
        [
            ("PGHOST", &MaybeSecret::Plain("db1".into())),
            (
                "PGPASSWORD",
                &MaybeSecret::Secret(SecretRef::File("/etc/haven/erp.pw".into()))
            ),
            (
                "PGUSER",
                &MaybeSecret::Secret(SecretRef::Env("ERP_USER".into()))
            ),
        ]
    );
    let ChannelKind::Command { env, .. } = &loaded.catalog.channels[0].kind else {
        panic!("a command channel")
    };
    assert_eq!(
        env[0].value,
        MaybeSecret::Secret(SecretRef::Env("PAGER_TOKEN".into()))
    );
}

#[test]
fn mistakes_in_env_are_reported_with_their_place() {
    let found = findings(
        r#"
[[system]]
id = "erp-db"
kind = "database-postgres"
[[system.backup_set]]
name = "db"
command = "pg_dump -Fc erp"
env = { PGPASSWORD = "hunter2", HAVEN_X = "1", "1BAD" = "x", PGPORT = 5432, PGUSER = "env:" }

[[policy]]
id = "nightly"
schedule = "0 2 * * *"
repository = "local"
env = "PGPASSWORD=x"

[[channel]]
id = "mail"
type = "email"
smtp = "mail:25"
from = "h@x"
to = ["o@x"]
env = { A = "b" }
"#,
    );
    let has = |code: &str, text: &str, line: usize| {
        assert!(
            found
                .iter()
                .any(|(c, m, l)| c == code && m.contains(text) && *l == line),
            "{code} {text:?} at line {line} in {found:#?}"
        );
    };
    has("HVN-E006", "`env.PGPASSWORD` is written inline", 8);
    has("HVN-E003", "\"HAVEN_X\" is reserved", 8);
    has(
        "HVN-E003",
        "\"1BAD\" is not an environment variable name",
        8,
    );
    has("HVN-E003", "`env.PGPORT` must be a string", 8);
    has("HVN-E003", "`env.PGUSER` refers to nothing", 8);
    has("HVN-E003", "`env` must be a table", 14);
    has(
        "HVN-E002",
        "`env` does not apply to a channel of type email",
        22,
    );
}

/// Schedules and time zones are parsed where they are read: each bad one
/// is an error at its line, with what is wrong and a valid example, and
/// nothing loads that the server could not schedule.
#[test]
fn schedules_and_time_zones_are_parsed_at_load_and_refused_at_their_line() {
    let policy = |schedule: &str, tz: &str| {
        format!(
            "[[repository]]\nid = \"r\"\nurl = \"/srv/r\"\n\n[[policy]]\nid = \"p\"\nrepository = \"r\"\nschedule = \"{schedule}\"\ntimezone = \"{tz}\"\n[policy.integrity_check]\nschedule = \"0 */6 * *\"\n"
        )
    };
    for bad in ["0 */6 * *", "every 6 hours", "", "61 * * * *"] {
        let loaded = load_sources(
            vec![SourceFile::new("p.toml".into(), policy(bad, "UTC"))],
            Vec::new(),
        );
        assert!(loaded.catalog.policies.is_empty(), "{bad:?} loaded");
        let found = findings(&policy(bad, "UTC"));
        let at_8: Vec<_> = found.iter().filter(|f| f.2 == 8).collect();
        assert_eq!(at_8.len(), 1, "{bad:?}: {found:#?}");
        assert!(at_8[0].0.starts_with("HVN-E"), "{at_8:?}");
        assert!(
            at_8[0].1.contains("`schedule`") && at_8[0].1.contains("not a cron schedule"),
            "{at_8:?}"
        );
        // The integrity check's schedule is refused at its own line.
        assert!(
            found.iter().any(|f| f.2 == 11 && f.1.contains("4 fields")),
            "{found:#?}"
        );
    }
    let found = findings(&policy("30 2 * * *", "Mars/Olympus"));
    assert!(
        found
            .iter()
            .any(|f| f.2 == 9 && f.1.contains("\"Mars/Olympus\" is not an IANA time zone")),
        "{found:#?}"
    );
    let calendar = "[[calendar]]\nid = \"office\"\ntimezone = \"Europe/Berlln\"\ndays = [\"mon\"]\nhours = \"08:00-18:00\"\n";
    let loaded = load_sources(
        vec![SourceFile::new("c.toml".into(), calendar.into())],
        Vec::new(),
    );
    assert!(
        loaded.catalog.calendars.is_empty(),
        "an unknown zone must not load as 'closed'"
    );
    assert!(
        findings(calendar)
            .iter()
            .any(|f| f.2 == 3 && f.1.contains("Europe/Berlln"))
    );
}
