//! Recovery order over a small catalog: foundations first, then data,
//! then services in dependency order; the critical path sums RTOs.

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
fn the_critical_path_is_the_longest_chain_of_recovery_times() {
    let loaded = load_sources(
        vec![SourceFile::new("plan.toml".into(), CATALOG.to_string())],
        Vec::new(),
    );
    let plan = recovery_order(&loaded.catalog, &["shop".to_string()]).expect("order");
    // erp (4h) then shop (2h) = 6h; psp (6h) then shop = 8h.
    assert_eq!(
        plan.critical_path,
        vec!["psp".to_string(), "shop".to_string()]
    );
    assert_eq!(
        plan.critical_path_time,
        Some(jiff::SignedDuration::from_hours(8))
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
