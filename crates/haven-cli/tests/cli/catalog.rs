//! `haven catalog check`: every problem at once, with file:line:col,
//! code, severity and help; exit 1 on errors, 0 with warnings only.

use std::path::PathBuf;

use crate::helpers::{Workspace, parse_json};

fn broken(code: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../examples/broken/{code}"))
}

#[test]
fn check_reports_errors_with_positions_and_exits_1() {
    let ws = Workspace::new();
    let out = ws
        .haven()
        .args(["--json", "catalog", "check"])
        .arg(broken("HVN-E012"))
        .output()
        .expect("run");
    let report = parse_json(&out, 1);
    assert_eq!(report["errors"], 3, "{report}");
    let first = &report["findings"][0];
    assert_eq!(first["code"], "HVN-E012");
    assert_eq!(first["severity"], "error");
    assert!(
        first["file"]
            .as_str()
            .expect("file")
            .ends_with("catalog.toml")
    );
    assert_eq!(first["line"], 5);
    assert_eq!(first["column"], 10);
    assert_eq!(first["snippet"], "owner = \"web-team\"");
    assert!(first["help"].as_str().expect("help").contains("[[team]]"));
    assert_eq!(first["objects"][0]["kind"], "service");

    // Human output: compiler-style, all findings, a summary line.
    let out = ws
        .haven()
        .args(["catalog", "check", "--catalog"])
        .arg(broken("HVN-E012"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("error[HVN-E012]").count(), 3, "{text}");
    assert!(text.contains("catalog.toml:6:27"), "{text}");
    assert!(text.contains("did you mean `identity`?"), "{text}");
}

#[test]
fn warnings_only_exit_0_and_a_missing_catalog_is_explained() {
    let ws = Workspace::new();
    let out = ws
        .haven()
        .env("HAVEN_CATALOG", broken("HVN-W014"))
        .args(["--json", "catalog", "check"])
        .output()
        .expect("run");
    let report = parse_json(&out, 0);
    assert_eq!(report["errors"], 0);
    let inversions = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == "HVN-W014")
        .count();
    assert_eq!(inversions, 2, "{report}");

    let out = ws
        .haven()
        .current_dir(ws.path(""))
        .env_remove("HAVEN_CATALOG")
        .args(["catalog", "check"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read the catalog directory catalog"),
        "{stderr}"
    );
}

#[test]
fn plan_order_and_graph_read_the_catalog() {
    let ws = Workspace::new();
    let dir = broken("HVN-W014");
    let out = ws
        .haven()
        .args(["--json", "plan", "order", "shop", "--catalog"])
        .arg(&dir)
        .output()
        .expect("run");
    let order = parse_json(&out, 0);
    let waves = order["waves"].as_array().expect("waves");
    assert_eq!(waves.len(), 2, "{order}");
    assert_eq!(waves[1][0]["id"], "shop");
    // From the disruption: the vendor is back at its committed 2h, the
    // shop (RTO 1h, no estimate) not before (RTOs are never added up).
    assert_eq!(
        order["critical_path"],
        serde_json::json!(["payment-gateway", "shop"])
    );
    // Durations in JSON are ISO 8601, as everywhere.
    assert_eq!(order["critical_path_time"], "PT2H");
    assert_eq!(waves[1][0]["earliest_completion"], "PT2H");
    assert_eq!(waves[1][0]["late"], "rto");
    assert_eq!(
        order["without_estimate"],
        serde_json::json!(["erp", "shop"])
    );

    let out = ws
        .haven()
        .args(["catalog", "graph", "--format", "dot"])
        .arg(&dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(dot.starts_with("digraph dependencies {"), "{dot}");
    assert!(dot.contains("\"shop\" -> \"erp\";"), "{dot}");

    // A catalog with errors is refused, pointing at `catalog check`.
    let out = ws
        .haven()
        .args(["plan", "order", "--catalog"])
        .arg(broken("HVN-E002"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("haven catalog check"));
}

#[test]
fn bia_ranks_services_by_impact_in_every_format() {
    let ws = Workspace::new();
    let dir = ws.path("catalog");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(
        dir.join("services.toml"),
        r#"
[[service]]
id = "wiki"
tier = 4
[service.impact]
per_hour = 100.0
customer = 1

[[service]]
id = "shop"
tier = 2
rpo = "15m"
rto = "1h"
mtd = "4h"
strategy = "active-passive"
[service.impact]
per_hour = 9000.0
currency = "EUR"
legal = 3
customer = 5

[[service]]
id = "payroll"
tier = 3
[service.impact]
legal = 5
reputational = 5
"#,
    )
    .expect("write");
    let out = ws
        .haven()
        .args(["--json", "bia"])
        .arg(&dir)
        .output()
        .expect("run");
    let rows = parse_json(&out, 0);
    let ids: Vec<&str> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["shop", "wiki", "payroll"]);
    assert_eq!(rows[0]["rto"], "PT1H");
    assert_eq!(rows[0]["qualitative_score"], 75);
    assert_eq!(rows[0]["strategy"], "active-passive");

    let out = ws
        .haven()
        .args(["bia", "--scoring", "qualitative", "--format", "csv"])
        .arg(&dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let csv = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0]
            .starts_with("service,tier,impact/h,inherited/h,carries,score,MTD,intolerable after"),
        "{csv}"
    );
    assert!(
        lines[1].starts_with("payroll,3,"),
        "qualitative ranks the 5/5 ratings first: {csv}"
    );

    let out = ws
        .haven()
        .args(["bia", "--format", "markdown"])
        .arg(&dir)
        .output()
        .expect("run");
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains(
            "| shop | 2 | 9000 EUR | 9000 EUR |  | 75 | 4h |  | 1h | 15m | active-passive |"
        ),
        "{md}"
    );
}

#[test]
fn schema_is_one_json_document() {
    let ws = Workspace::new();
    let out = ws
        .haven()
        .args(["catalog", "schema"])
        .output()
        .expect("run");
    let schema = parse_json(&out, 0);
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        schema["properties"]["service"]["items"]["additionalProperties"], false,
        "unknown keys are errors in editors too"
    );
}

#[test]
fn the_default_catalog_comes_from_the_data_dir_settings() {
    let ws = Workspace::new();
    let data = ws.path("haven-data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(
        data.join("haven.toml"),
        format!(
            "catalog = {:?}\nlisten = \"127.0.0.1:8080\"\n",
            broken("HVN-W014").display().to_string()
        ),
    )
    .expect("write");
    // From the working directory's ./haven-data…
    let out = ws
        .haven()
        .current_dir(ws.path(""))
        .env_remove("HAVEN_CATALOG")
        .env_remove("HAVEN_DATA_DIR")
        .args(["--json", "catalog", "check"])
        .output()
        .expect("run");
    let report = parse_json(&out, 0);
    assert!(
        report["catalog"]
            .as_str()
            .expect("dir")
            .ends_with("HVN-W014"),
        "{report}"
    );
    // …or from HAVEN_DATA_DIR; --catalog and HAVEN_CATALOG take precedence.
    let out = ws
        .haven()
        .env_remove("HAVEN_CATALOG")
        .env("HAVEN_DATA_DIR", &data)
        .args(["plan", "order"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ws
        .haven()
        .env("HAVEN_DATA_DIR", &data)
        .env("HAVEN_CATALOG", broken("HVN-E010"))
        .args(["catalog", "check"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "HAVEN_CATALOG wins");
}

/// A schedule cron cannot read used to pass the check and then never
/// run; now every one is an error at its line, with a valid example.
#[test]
fn schedules_that_cannot_run_fail_the_check_at_their_line() {
    let ws = Workspace::new();
    let dir = ws.path("bad-schedules");
    std::fs::create_dir_all(&dir).expect("dir");
    let mut text = String::from("[[repository]]\nid = \"main\"\nurl = \"/srv/main\"\n");
    for (i, schedule) in ["0 */6 * *", "every 6 hours", "", "61 * * * *"]
        .iter()
        .enumerate()
    {
        text.push_str(&format!(
            "\n[[policy]]\nid = \"p{i}\"\nrepository = \"main\"\nschedule = \"{schedule}\"\n"
        ));
    }
    std::fs::write(dir.join("catalog.toml"), &text).expect("write");
    let out = ws
        .haven()
        .args(["--json", "catalog", "check"])
        .arg(&dir)
        .output()
        .expect("run");
    let report = parse_json(&out, 1);
    let bad: Vec<_> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == "HVN-E003")
        .collect();
    let lines: Vec<i64> = bad.iter().filter_map(|f| f["line"].as_i64()).collect();
    assert_eq!(lines, [8, 13, 18, 23], "{report}");
    for f in &bad {
        let message = f["message"].as_str().expect("message");
        assert!(message.contains("not a cron schedule"), "{message}");
        let help = f["help"].as_str().expect("help");
        assert!(help.contains("\"30 2 * * *\""), "{help}");
    }
}
