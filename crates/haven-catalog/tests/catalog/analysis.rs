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

/// `(code, message, help, line, note)` of every diagnostic.
fn diagnostics(toml: &str) -> Vec<(String, String, String, usize, Option<String>)> {
    let loaded = load_sources(
        vec![SourceFile::new("c.toml".into(), toml.into())],
        Vec::new(),
    );
    check(&loaded, "2026-09-01T00:00:00Z".parse().expect("now"))
        .into_iter()
        .map(|d| {
            (
                d.code.to_string(),
                d.message.clone(),
                d.help.clone(),
                d.line.unwrap_or(0),
                d.note.clone(),
            )
        })
        .collect()
}

fn with_code<'a>(
    all: &'a [(String, String, String, usize, Option<String>)],
    code: &str,
) -> Vec<&'a (String, String, String, usize, Option<String>)> {
    all.iter().filter(|d| d.0 == code).collect()
}

const CHAIN: &str = r#"
[[service]]
id = "erp"
tier = 1
rpo = "1d"
rto = "8h"
mtd = "1d"
depends_on = ["identity-svc"]

[[service]]
id = "lab"
tier = 1
rpo = "1d"
rto = "8h"
mtd = "1d"
depends_on = ["identity-svc"]

[[service]]
id = "identity-svc"
tier = 1
rpo = "1d"
rto = "2h"
mtd = "1d"
depends_on = ["dc"]

[[system]]
id = "dc"
kind = "dns"
"#;

/// A sole domain controller every tier-1 service needs through the
/// identity service is a single point of failure; a working alternative
/// takes that away, a misspelt one does not.
#[test]
fn single_points_of_failure_are_found_through_any_chain_and_alternatives_count() {
    let found = diagnostics(CHAIN);
    let spof = with_code(&found, "HVN-W021");
    assert_eq!(spof.len(), 1, "{found:#?}");
    assert!(
        spof[0]
            .1
            .contains("system dc is needed by 3 tier-1 services")
            && spof[0].1.contains("erp through identity-svc")
            && spof[0].1.contains("identity-svc directly"),
        "{}",
        spof[0].1
    );
    let with_alternative = CHAIN.replace(
        "kind = \"dns\"\n",
        "kind = \"dns\"\nalternatives = [\"dc2\"]\n\n[[system]]\nid = \"dc2\"\nkind = \"dns\"\n",
    );
    assert!(with_code(&diagnostics(&with_alternative), "HVN-W021").is_empty());
    let misspelt = CHAIN.replace(
        "kind = \"dns\"\n",
        "kind = \"dns\"\nalternatives = [\"dc-2\"]\n",
    );
    let found = diagnostics(&misspelt);
    assert_eq!(
        with_code(&found, "HVN-W021").len(),
        1,
        "an unknown alternative cannot take over"
    );
    assert_eq!(with_code(&found, "HVN-E012").len(), 1, "{found:#?}");
}

const VENDORS: &str = r#"
[[service]]
id = "shop"
tier = 2
rpo = "1d"
rto = "2h"
mtd = "1d"
depends_on = ["isp"]

[[vendor]]
id = "isp"
sla_rto = "8h"
alternatives = ["isp-b"]

[[vendor]]
id = "isp-b"
sla_rto = "1h"
"#;

/// A dependency with an alternative is back when the earliest of them is:
/// in the RTO-inversion check and in the recovery timing alike, and the
/// help never advises adding an alternative that exists.
#[test]
fn declared_alternatives_count_in_inversions_and_timing() {
    let found = diagnostics(VENDORS);
    assert!(with_code(&found, "HVN-W014").is_empty(), "{found:#?}");
    assert!(with_code(&found, "HVN-W031").is_empty(), "{found:#?}");
    let loaded = load_sources(
        vec![SourceFile::new("v.toml".into(), VENDORS.into())],
        Vec::new(),
    );
    let order = haven_model::catalog::plan::recovery_order(&loaded.catalog, &["shop".into()])
        .expect("order");
    let shop = order
        .waves
        .iter()
        .flatten()
        .find(|i| i.id == "shop")
        .expect("shop");
    assert_eq!(
        shop.earliest_completion,
        Some(jiff::SignedDuration::from_hours(1))
    );
    assert_eq!(shop.waits_for.as_deref(), Some("isp-b"));

    let both_slow = VENDORS.replace("sla_rto = \"1h\"", "sla_rto = \"6h\"");
    let found = diagnostics(&both_slow);
    let inversion = with_code(&found, "HVN-W014");
    assert_eq!(inversion.len(), 1, "{found:#?}");
    assert!(
        inversion[0]
            .1
            .contains("with RTO 6h (the earliest of it and its alternatives isp-b)"),
        "{}",
        inversion[0].1
    );
    assert!(
        !inversion[0].2.contains("add an alternative"),
        "{}",
        inversion[0].2
    );
}

/// A tier-1 service depending on a tier-3 one is a finding of its own,
/// even when the RTOs are consistent.
#[test]
fn a_tier_inversion_is_its_own_finding() {
    let text = r#"
[[service]]
id = "webshop"
tier = 1
rpo = "1h"
rto = "4h"
mtd = "8h"
depends_on = ["helpdesk"]

[[service]]
id = "helpdesk"
tier = 3
rto = "2h"
"#;
    let found = diagnostics(text);
    assert!(
        with_code(&found, "HVN-W014").is_empty(),
        "RTOs are consistent"
    );
    let inversion = with_code(&found, "HVN-W032");
    assert_eq!(inversion.len(), 1, "{found:#?}");
    assert!(
        inversion[0]
            .1
            .contains("tier-1 service webshop depends on tier-3 service helpdesk")
    );
    assert_eq!(inversion[0].3, 8, "points at the dependency");
}

/// Where a finding points helps fix it: a duplicate shows the first
/// definition, a cycle the dependency that closes it, and a value that
/// is there but unreadable is not also reported missing.
#[test]
fn findings_point_where_the_fix_is() {
    let duplicate =
        "[[system]]\nid = \"db\"\nkind = \"vm\"\n\n[[system]]\nid = \"db\"\nkind = \"vm\"\n";
    let found = diagnostics(duplicate);
    let dup = with_code(&found, "HVN-E005");
    assert_eq!(dup.len(), 1, "{found:#?}");
    assert_eq!(dup[0].3, 6);
    assert_eq!(dup[0].4.as_deref(), Some("first defined at c.toml:2:7"));

    let cycle = "[[service]]\nid = \"a\"\ntier = 3\ndepends_on = [\"b\"]\n\n[[service]]\nid = \"b\"\ntier = 3\ndepends_on = [\"c\", \"a\"]\n\n[[service]]\nid = \"c\"\ntier = 3\n";
    let found = diagnostics(cycle);
    let cycles = with_code(&found, "HVN-E013");
    assert_eq!(cycles.len(), 1, "{found:#?}");
    assert_eq!(cycles[0].3, 9, "b's dependency on a closes the cycle");

    let unreadable =
        "[[service]]\nid = \"erp\"\ntier = 1\nrpo = \"1h\"\nrto = \"four hours\"\nmtd = \"1d\"\n";
    let found = diagnostics(unreadable);
    assert_eq!(with_code(&found, "HVN-E003").len(), 1, "{found:#?}");
    assert!(
        with_code(&found, "HVN-E011").is_empty(),
        "a written but unreadable rto is not also missing: {found:#?}"
    );
    let missing = "[[service]]\nid = \"erp\"\ntier = 1\nrpo = \"1h\"\nmtd = \"1d\"\n";
    assert_eq!(with_code(&diagnostics(missing), "HVN-E011").len(), 1);
}

/// The BIA as practitioners write it: a service carries the impact of
/// everything that stops without it, ranked by that; an impact curve
/// says when losses become intolerable, and an MTD later than that is
/// flagged.
#[test]
fn impact_is_inherited_through_dependencies_and_the_curve_suggests_an_mtd() {
    let text = r#"
[[service]]
id = "network"
tier = 1
rpo = "1d"
rto = "1h"
mtd = "8h"
[service.impact]
per_hour = 1000.0

[[service]]
id = "erp"
tier = 1
rpo = "1h"
rto = "4h"
mtd = "3d"
depends_on = ["network"]
impact_over_time = { "1h" = 5000, "8h" = 60000, "1d" = 400000, "3d" = 1500000 }
[service.impact]
per_hour = 40000.0
tolerable_loss = 500000.0

[[service]]
id = "shop"
tier = 1
rpo = "1h"
rto = "2h"
mtd = "8h"
depends_on = ["erp"]
[service.impact]
per_hour = 25000.0
"#;
    let loaded = load_sources(
        vec![SourceFile::new("b.toml".into(), text.into())],
        Vec::new(),
    );
    assert!(loaded.findings.is_empty(), "{:#?}", loaded.findings);
    let findings = haven_model::catalog::analysis::analyse(
        &loaded.catalog,
        "2026-09-01T00:00:00Z".parse().expect("now"),
    );
    let rows = haven_model::catalog::bia::bia(
        &loaded.catalog,
        &findings,
        haven_model::catalog::bia::Scoring::Quantitative,
    );
    let ranked: Vec<(&str, Option<f64>)> = rows
        .iter()
        .map(|r| (r.id.as_str(), r.inherited_impact_per_hour))
        .collect();
    // The network's own 1000/h carries the ERP's and, through it, the
    // shop's: it ranks first.
    assert_eq!(
        ranked,
        [
            ("network", Some(66000.0)),
            ("erp", Some(65000.0)),
            ("shop", Some(25000.0))
        ]
    );
    assert_eq!(rows[0].carried_for, ["erp", "shop"]);
    assert_eq!(
        rows[0].impact_per_hour,
        Some(1000.0),
        "own impact kept beside"
    );
    let erp = &rows[1];
    assert_eq!(
        erp.intolerable_after,
        Some(jiff::SignedDuration::from_hours(28))
    );
    assert_eq!(erp.impact_over_time.len(), 4);
    let w033 = findings.iter().filter(|f| f.code == "HVN-W033").count();
    assert_eq!(w033, 1, "MTD 3d is later than 1d 4h");

    // A curve that goes down is refused where it is written.
    let bad = text.replace("\"3d\" = 1500000", "\"3d\" = 15");
    let found = diagnostics(&bad);
    assert!(
        found
            .iter()
            .any(|d| d.0 == "HVN-E003" && d.1.contains("accumulated loss goes down")),
        "{found:#?}"
    );
}

/// Money is written as people write it: `per_hour = 12500` is as good as
/// `12500.0`; a negative amount is refused with its place.
#[test]
fn an_amount_may_be_an_integer_and_never_negative() {
    let service = |impact: &str| {
        format!(
            "[[service]]\nid = \"erp\"\ntier = 3\n[service.impact]\n{impact}\ncurrency = \"EUR\"\n"
        )
    };
    let loaded = load_sources(
        vec![SourceFile::new(
            "c.toml".into(),
            service("per_hour = 12500\ntolerable_loss = 90000"),
        )],
        Vec::new(),
    );
    assert!(loaded.findings.is_empty(), "{:#?}", loaded.findings);
    let impact = &loaded.catalog.services[0].impact;
    assert_eq!(impact.per_hour, Some(12_500.0));
    assert_eq!(impact.tolerable_loss, Some(90_000.0));
    let refused = load_sources(
        vec![SourceFile::new("c.toml".into(), service("per_hour = -5"))],
        Vec::new(),
    );
    let finding = refused.findings.first().expect("a finding");
    assert!(
        finding
            .message
            .contains("`per_hour` must be a number of at least 0"),
        "{finding:?}"
    );
}
