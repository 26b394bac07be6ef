//! The analyses a continuity review relies on, as tables of small
//! catalogs and the findings they must (and must not) produce.

use haven_catalog::{SourceFile, check, load_sources};

/// `(code, message, help)` of every finding of a one-file catalog.
fn findings(toml: &str) -> Vec<(String, String, String)> {
    let loaded = load_sources(
        vec![SourceFile::new("c.toml".into(), toml.into())],
        Vec::new(),
    );
    assert!(loaded.findings.is_empty(), "{:#?}", loaded.findings);
    // Early September: the coming year holds both clock changes.
    check(&loaded, "2026-09-01T00:00:00Z".parse().expect("now"))
        .into_iter()
        .map(|d| (d.code.to_string(), d.message.clone(), d.help.clone()))
        .collect()
}

fn one_policy(schedule: &str, timezone: &str, rpo: &str) -> String {
    format!(
        r#"
[[service]]
id = "lab"
tier = 2
rpo = "{rpo}"
rto = "4h"
mtd = "1d"
depends_on = ["lab-db"]

[[system]]
id = "lab-db"
kind = "database-postgres"
policy = "p"

[[system.backup_set]]
command = "pg_dump lab"

[[policy]]
id = "p"
schedule = "{schedule}"
timezone = "{timezone}"
expected_duration = "5m"
repository = "main"

[[repository]]
id = "main"
url = "/srv/main"
password = "env:HAVEN_PASSWORD"
"#
    )
}

/// Only the clock change makes a frequent local schedule miss its RPO:
/// the finding names the change and its date and advises what helps,
/// not "schedule more often".
#[test]
fn a_gap_made_by_a_clock_change_is_explained_with_the_fix_that_works() {
    let cases = [
        // (schedule, zone, rpo, expected in message, expected in help)
        (
            "*/15 * * * *",
            "Europe/Berlin",
            "1h",
            Some((
                "can be 1h 15m apart when Europe/Berlin repeats the local times from 02:00 to 03:00 on 2026-10-25",
                "timezone = \"UTC\"",
            )),
        ),
        ("*/15 * * * *", "UTC", "1h", None),
        ("*/15 * * * *", "Europe/Berlin", "2h", None),
        // A nightly schedule too rare for its RPO: the schedule is the
        // cause, whatever the clock does.
        (
            "0 1 * * *",
            "Europe/Berlin",
            "4h",
            Some((
                "can be 1d 1h apart, plus up to",
                "schedule backups more often",
            )),
        ),
    ];
    for (schedule, zone, rpo, expected) in cases {
        let found: Vec<_> = findings(&one_policy(schedule, zone, rpo))
            .into_iter()
            .filter(|f| f.0 == "HVN-E020")
            .collect();
        match expected {
            None => assert!(found.is_empty(), "{schedule} {zone} {rpo}: {found:#?}"),
            Some((message, help)) => {
                assert_eq!(found.len(), 1, "{schedule} {zone} {rpo}: {found:#?}");
                assert!(found[0].1.contains(message), "{}", found[0].1);
                assert!(found[0].2.contains(help), "{}", found[0].2);
                if help.contains("UTC") {
                    assert!(!found[0].2.contains("more often"), "{}", found[0].2);
                }
            }
        }
    }
}
