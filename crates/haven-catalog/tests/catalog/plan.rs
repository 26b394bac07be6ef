//! Recovery order over a small catalog: foundations first, then data,
//! then services in dependency order; one timing model (from the
//! disruption, nothing back before what it needs, each step its restore
//! estimate) gives every item's earliest completion and the critical path.

use haven_catalog::{SourceFile, load_sources};
use haven_model::catalog::plan::recovery_order;

const CATALOG: &str = r#"
[[service]]
id = "shop"
tier = 2
rpo = "15m"
rto = "2h"
mtd = "1d"
depends_on = ["erp", "dns", "psp"]
[service.impact]
per_hour = 9000.0

[[service]]
id = "erp"
tier = 1
rpo = "1h"
rto = "4h"
mtd = "1d"
depends_on = ["erp-db", "ad"]
[service.impact]
per_hour = 40000.0

[[service]]
id = "wiki"
tier = 4
depends_on = ["wiki-vm"]

[[system]]
id = "erp-db"
kind = "database-postgres"

[[system]]
id = "wiki-vm"
kind = "vm"

[[system]]
id = "ad"
kind = "identity"

[[system]]
id = "dns"
kind = "dns"

[[system]]
id = "core-switch"
kind = "network"

[[vendor]]
id = "psp"
sla_rto = "6h"
"#;

fn order(services: &[&str]) -> Result<Vec<Vec<String>>, String> {
    let loaded = load_sources(
        vec![SourceFile::new("plan.toml".into(), CATALOG.to_string())],
        Vec::new(),
    );
    assert!(loaded.findings.is_empty(), "{:?}", loaded.findings);
    let services: Vec<String> = services.iter().map(|s| s.to_string()).collect();
    recovery_order(&loaded.catalog, &services).map(|o| {
        o.waves
            .into_iter()
            .map(|w| w.into_iter().map(|i| i.id).collect())
            .collect()
    })
}

#[test]
fn waves_bring_foundations_first_and_services_after_what_they_need() {
    let waves = order(&["shop"]).expect("order");
    assert_eq!(
        waves,
        vec![
            // dns before identity; the vendor has no dependencies.
            vec!["dns".to_string(), "psp".to_string()],
            vec!["ad".to_string()],
            vec!["erp-db".to_string()],
            vec!["erp".to_string()],
            vec!["shop".to_string()],
        ]
    );
    // Everything: tier 1 first within a wave, then by impact.
    let all = order(&[]).expect("order");
    assert_eq!(all.concat().len(), 9, "{all:?}");
    assert!(all[0].contains(&"core-switch".to_string()), "{all:?}");
    let last_wave_of = |id: &str| all.iter().position(|w| w.iter().any(|x| x == id));
    assert!(last_wave_of("erp") < last_wave_of("shop"));
    assert!(last_wave_of("wiki-vm") < last_wave_of("wiki"));
    assert!(order(&["nope"]).is_err());
}

#[test]
fn the_critical_path_is_the_chain_that_completes_last() {
    let loaded = load_sources(
        vec![SourceFile::new("plan.toml".into(), CATALOG.to_string())],
        Vec::new(),
    );
    let plan = recovery_order(&loaded.catalog, &["shop".to_string()]).expect("order");
    // No estimates: the vendor's committed 6h (counted from the
    // disruption, not added to anything) is what the shop waits for
    // last. RTOs are deadlines, never durations to add up.
    assert_eq!(
        plan.critical_path,
        vec!["psp".to_string(), "shop".to_string()]
    );
    assert_eq!(
        plan.critical_path_time,
        Some(jiff::SignedDuration::from_hours(6))
    );
    assert!(plan.without_estimate.contains(&"erp-db".to_string()));
}

fn hours(h: i64) -> Option<jiff::SignedDuration> {
    Some(jiff::SignedDuration::from_mins(h * 60))
}

/// The hospital case: a lab (MTD 8h) behind identity and its database.
/// Adding RTOs along the chain gave 20h, unflagged; the one model gives
/// each item's earliest completion from the disruption and flags what
/// misses its RTO or MTD. Within a wave the shortest RTO comes first.
#[test]
fn earliest_completions_follow_dependencies_and_estimates_and_flag_late_services() {
    let text = r#"
[[service]]
id = "lab"
tier = 2
rto = "6h"
mtd = "8h"
rpo = "4h"
restore_estimate = "3h"
depends_on = ["lab-db", "directory"]

[[service]]
id = "directory"
tier = 1
rto = "2h"
mtd = "8h"
rpo = "4h"
restore_estimate = "30m"
depends_on = ["ad"]

[[service]]
id = "pharmacy"
tier = 1
rto = "12h"
mtd = "1d"
rpo = "4h"
restore_estimate = "1h"
depends_on = ["lab-db"]

[[system]]
id = "ad"
kind = "identity"
restore_estimate = "2h"

[[system]]
id = "lab-db"
kind = "database-postgres"
restore_estimate = "5h"
"#;
    let loaded = load_sources(
        vec![SourceFile::new("lab.toml".into(), text.into())],
        Vec::new(),
    );
    assert!(loaded.findings.is_empty(), "{:?}", loaded.findings);
    let plan = recovery_order(&loaded.catalog, &[]).expect("order");
    let item = |id: &str| {
        plan.waves
            .iter()
            .flatten()
            .find(|i| i.id == id)
            .cloned()
            .expect(id)
    };
    // ad 2h; the database waits for identity (a foundation): 2h + 5h.
    assert_eq!(item("ad").earliest_completion, hours(2));
    assert_eq!(item("lab-db").earliest_completion, hours(7));
    assert_eq!(item("lab-db").waits_for.as_deref(), Some("ad"));
    assert_eq!(
        item("directory").earliest_completion,
        Some(jiff::SignedDuration::from_mins(150))
    );
    assert_eq!(item("directory").late, Some("rto"), "2h 30m > RTO 2h");
    // The lab waits for the later of its two dependencies.
    assert_eq!(item("lab").earliest_completion, hours(10));
    assert_eq!(item("lab").waits_for.as_deref(), Some("lab-db"));
    assert_eq!(item("lab").late, Some("mtd"), "10h > MTD 8h");
    assert_eq!(item("pharmacy").earliest_completion, hours(8));
    assert_eq!(item("pharmacy").late, None);
    assert_eq!(plan.critical_path, ["ad", "lab-db", "lab"]);
    assert_eq!(plan.critical_path_time, hours(10));
    assert!(
        plan.without_estimate.is_empty(),
        "{:?}",
        plan.without_estimate
    );
    // Within the last wave the lab (RTO 6h) comes before the pharmacy
    // (RTO 12h), although the pharmacy is tier 1 and the lab tier 2.
    let last: Vec<&str> = plan
        .waves
        .last()
        .expect("waves")
        .iter()
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(last, ["lab", "pharmacy"]);

    // catalog check says the same, with the chain.
    let found = haven_catalog::check(&loaded, "2026-09-01T00:00:00Z".parse().expect("now"));
    let codes: Vec<(&str, String)> = found
        .iter()
        .filter(|d| d.code == "HVN-E030" || d.code == "HVN-W031")
        .map(|d| (d.code, d.message.clone()))
        .collect();
    assert_eq!(codes.len(), 2, "{codes:#?}");
    assert!(codes.iter().any(|(c, m)| *c == "HVN-E030"
        && m.contains("service lab cannot be back within its MTD 8h: the earliest is 10h after a disruption (ad (+2h) → lab-db (+5h) → lab (+3h))")), "{codes:#?}");
    assert!(
        codes
            .iter()
            .any(|(c, m)| *c == "HVN-W031" && m.contains("service directory")),
        "{codes:#?}"
    );
}

#[test]
fn a_cycle_has_no_order() {
    let text = r#"
[[service]]
id = "a"
tier = 3
depends_on = ["b"]
[[service]]
id = "b"
tier = 3
depends_on = ["a"]
"#;
    let loaded = load_sources(
        vec![SourceFile::new("c.toml".into(), text.into())],
        Vec::new(),
    );
    let err = recovery_order(&loaded.catalog, &[]).expect_err("cycle");
    assert!(err.contains("cycle"), "{err}");
}

/// A service's page draws what it needs, all the way down, each at its
/// longest chain from the service, and who needs it.
#[test]
fn a_services_neighbourhood_is_what_it_needs_at_its_longest_depth() {
    use haven_model::catalog::graph::neighbourhood;
    let loaded = load_sources(
        vec![SourceFile::new("plan.toml".into(), CATALOG.to_string())],
        Vec::new(),
    );
    let shop = neighbourhood(&loaded.catalog, "shop").expect("shop");
    let depths: Vec<(&str, usize)> = shop
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), n.depth))
        .collect();
    assert_eq!(
        depths,
        vec![
            ("shop", 0),
            ("dns", 1),
            ("erp", 1),
            ("psp", 1),
            ("ad", 2),
            ("erp-db", 2)
        ]
    );
    let mut edges = shop.edges.clone();
    edges.sort();
    assert_eq!(
        edges,
        vec![
            ("erp".to_string(), "ad".to_string()),
            ("erp".to_string(), "erp-db".to_string()),
            ("shop".to_string(), "dns".to_string()),
            ("shop".to_string(), "erp".to_string()),
            ("shop".to_string(), "psp".to_string()),
        ]
    );
    assert!(shop.dependents.is_empty());
    let erp = neighbourhood(&loaded.catalog, "erp").expect("erp");
    assert_eq!(erp.dependents, vec!["shop".to_string()]);
    assert_eq!(erp.nodes[0].label, "erp (tier 1)");
    assert!(neighbourhood(&loaded.catalog, "nothing").is_none());
}

/// The loaded catalog finds its services, systems and vendors by id
/// through its index, and still finds what was added after loading (the
/// index no longer holds then, and lookups scan).
#[test]
fn ids_are_found_through_the_index_and_after_the_catalog_changes() {
    let loaded = load_sources(
        vec![SourceFile::new("plan.toml".into(), CATALOG.to_string())],
        Vec::new(),
    );
    let mut catalog = loaded.catalog;
    assert_eq!(catalog.kind_of("shop"), Some("service"));
    assert_eq!(catalog.kind_of("erp-db"), Some("system"));
    assert_eq!(catalog.kind_of("psp"), Some("vendor"));
    assert_eq!(catalog.kind_of("nothing"), None);
    assert_eq!(catalog.service("erp").map(|s| s.tier.value), Some(1));
    assert!(
        catalog.system("shop").is_none(),
        "a service is not a system"
    );
    let mut copy = catalog.service("wiki").expect("wiki").clone();
    copy.id.value = "intranet".into();
    catalog.services.push(copy);
    assert_eq!(catalog.kind_of("intranet"), Some("service"));
    catalog.services.swap(0, 1);
    catalog.index_ids();
    assert_eq!(catalog.kind_of("intranet"), Some("service"));
    assert_eq!(
        catalog.service("shop").map(|s| s.id.value.to_string()),
        Some("shop".into())
    );
}
