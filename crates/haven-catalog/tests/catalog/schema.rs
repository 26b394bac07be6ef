//! The JSON Schema is snapshot-tested, and kept in step with the loader:
//! for every table, its properties are exactly the keys the loader knows.

use std::collections::BTreeSet;

use haven_catalog::{SourceFile, load_sources};
use serde_json::Value;

#[test]
fn the_schema_is_stable() {
    let text = serde_json::to_string_pretty(&haven_catalog::schema::schema()).expect("json");
    insta::assert_snapshot!("catalog_schema", text);
}

/// The keys the loader lists as known for the table a stray key sits in.
fn loader_keys(toml: &str) -> BTreeSet<String> {
    let loaded = load_sources(
        vec![SourceFile::new("t.toml".into(), toml.into())],
        Vec::new(),
    );
    let unknown = loaded
        .findings
        .iter()
        .find(|f| f.code == "HVN-E002")
        .unwrap_or_else(|| panic!("no unknown-key finding for:\n{toml}\n{:?}", loaded.findings));
    let list = unknown
        .help
        .split("known keys: ")
        .nth(1)
        .expect("known keys");
    list.split(", ").map(str::to_string).collect()
}

fn schema_keys(path: &[&str]) -> BTreeSet<String> {
    let schema = haven_catalog::schema::schema();
    let mut node = &schema;
    for step in path {
        node = &node["properties"][*step];
        if node["type"] == "array" {
            node = &node["items"];
        }
    }
    node["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no properties at {path:?}"))
        .keys()
        .cloned()
        .collect()
}

#[test]
fn every_table_of_the_schema_has_exactly_the_loaders_keys() {
    let service = "[[service]]\nid = \"s\"\ntier = 3\n";
    let system = "[[system]]\nid = \"y\"\nkind = \"vm\"\n";
    let policy = "[[policy]]\nid = \"p\"\nschedule = \"0 1 * * *\"\nrepository = \"r\"\n";
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["service"], format!("{service}zzz = 1")),
        (
            vec!["service", "impact"],
            format!("{service}[service.impact]\nzzz = 1"),
        ),
        (vec!["system"], format!("{system}zzz = 1")),
        (
            vec!["system", "backup_set"],
            format!("{system}[[system.backup_set]]\npaths = [\"/\"]\nzzz = 1"),
        ),
        (vec!["policy"], format!("{policy}zzz = 1")),
        (
            vec!["policy", "retention"],
            format!("{policy}[policy.retention]\nzzz = 1"),
        ),
        (
            vec!["policy", "integrity_check"],
            format!("{policy}[policy.integrity_check]\nschedule = \"0 1 * * *\"\nzzz = 1"),
        ),
        (
            vec!["repository"],
            "[[repository]]\nid = \"r\"\nurl = \"/x\"\nzzz = 1".into(),
        ),
        (vec!["team"], "[[team]]\nid = \"t\"\nzzz = 1".into()),
        (
            vec!["channel"],
            "[[channel]]\nid = \"c\"\ntype = \"command\"\nrun = \"true\"\nzzz = 1".into(),
        ),
        (
            vec!["calendar"],
            "[[calendar]]\nid = \"c\"\nhours = \"08:00-18:00\"\nzzz = 1".into(),
        ),
        (
            vec!["escalation"],
            "[[escalation]]\nid = \"e\"\nzzz = 1\n[[escalation.step]]\nchannels = [\"c\"]".into(),
        ),
        (
            vec!["escalation", "step"],
            "[[escalation]]\nid = \"e\"\n[[escalation.step]]\nchannels = [\"c\"]\nzzz = 1".into(),
        ),
        (
            vec!["maintenance"],
            "[[maintenance]]\nid = \"m\"\nschedule = \"0 1 * * 0\"\nduration = \"1h\"\nzzz = 1"
                .into(),
        ),
        (
            vec!["team", "member"],
            "[[team]]\nid = \"t\"\n[[team.member]]\nname = \"n\"\nzzz = 1".into(),
        ),
        (vec!["vendor"], "[[vendor]]\nid = \"v\"\nzzz = 1".into()),
        (
            vec!["plan"],
            "[[plan]]\nid = \"p\"\nservices = \"all\"\nzzz = 1".into(),
        ),
        (
            vec!["drill"],
            "[[drill]]\nid = \"d\"\nschedule = \"0 3 * * 0\"\nzzz = 1".into(),
        ),
        (
            vec!["regulation"],
            "[[regulation]]\nid = \"g\"\nzzz = 1".into(),
        ),
    ];
    for (path, toml) in cases {
        assert_eq!(
            schema_keys(&path),
            loader_keys(&toml),
            "table {}",
            path.join(".")
        );
    }
    // A check's keys depend on its type: the schema lists their union.
    let mut union = BTreeSet::new();
    for body in [
        "type = \"command\"\nrun = \"true\"",
        "type = \"sql\"\nquery = \"q\"\nexpect = \"e\"",
        "type = \"http\"\nurl = \"u\"",
        "type = \"tcp\"\naddress = \"a:1\"",
    ] {
        union.extend(loader_keys(&format!(
            "{system}[[system.check]]\n{body}\nzzz = 1"
        )));
    }
    assert_eq!(schema_keys(&["system", "check"]), union);
    // So do a recovery step's.
    let mut union = BTreeSet::new();
    for body in [
        "type = \"command\"\nrun = \"true\"",
        "type = \"sql\"\nquery = \"q\"\nexpect = \"e\"",
        "type = \"http\"\nurl = \"u\"",
        "type = \"tcp\"\naddress = \"a:1\"",
        "type = \"wait\"\nduration = \"1m\"",
        "type = \"checkpoint\"\nprompt = \"p\"",
    ] {
        union.extend(loader_keys(&format!(
            "{service}[[service.recovery]]\n{body}\nzzz = 1"
        )));
    }
    assert_eq!(schema_keys(&["service", "recovery"]), union);
    let top: BTreeSet<String> = schema_keys(&[]);
    let kinds: BTreeSet<String> = haven_catalog::load::KINDS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(top, kinds);
}

#[test]
fn every_schema_property_is_described() {
    // Editors show these descriptions: every key has one (tables too).
    fn walk(v: &Value, path: &str) {
        if let Some(props) = v["properties"].as_object() {
            for (k, p) in props {
                assert!(
                    p["description"].is_string() || p["properties"].is_object(),
                    "{path}.{k} has no description"
                );
                let inner = if p["items"]["properties"].is_object() {
                    &p["items"]
                } else {
                    p
                };
                walk(inner, &format!("{path}.{k}"));
            }
        }
    }
    walk(&haven_catalog::schema::schema(), "");
}
