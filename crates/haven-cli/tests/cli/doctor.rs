//! `haven doctor` and `haven repo init --all`: what would make the first
//! jobs fail is listed before anyone is paged, and the server raises a
//! `setup` alert for each at start.

use serde_json::Value;

use crate::helpers::{Workspace, parse_json};
use crate::server::{Instance, signal};

fn check<'a>(report: &'a Value, subject: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["subject"] == subject)
        .unwrap_or_else(|| panic!("no check {subject}: {report:#}"))
}

#[test]
fn doctor_lists_what_would_fail_and_repo_init_all_creates_the_catalogs_repositories() {
    let ws = Workspace::new();
    let data = ws.path("data");
    std::fs::create_dir_all(data.join("catalog")).expect("mkdir");
    std::fs::write(data.join("haven.toml"), "catalog = \"catalog\"\n").expect("settings");
    let catalog = format!(
        r#"
[[system]]
id = "db"
kind = "database-postgres"
policy = "nightly"

[[system.backup_set]]
command = "pg_dump_that_is_not_installed -Fc db"
env = {{ PGPASSWORD = "env:HAVEN_TEST_UNSET_PG_PASSWORD" }}

[[policy]]
id = "nightly"
schedule = "0 2 * * *"
repository = "main"
copies = ["offsite"]
pre_hook = "/bin/true"

[[repository]]
id = "main"
url = "{main}"
password = "env:HAVEN_PASSWORD"

[[repository]]
id = "offsite"
url = "{offsite}"
password = "env:HAVEN_TEST_UNSET_OFFSITE_PASSWORD"
"#,
        main = ws.path("main-repo").display(),
        offsite = ws.path("offsite-repo").display(),
    );
    std::fs::write(data.join("catalog/catalog.toml"), catalog).expect("catalog");
    let doctor = || {
        ws.haven()
            .arg("--data-dir")
            .arg(&data)
            .args(["--json", "doctor"])
            .output()
            .expect("run")
    };

    let report = parse_json(&doctor(), 1);
    assert_eq!(report["problems"], 4, "{report:#}");
    let main = check(&report, "repository main");
    assert_eq!(main["ok"], false);
    assert!(
        main["detail"]
            .as_str()
            .expect("detail")
            .contains("not initialised"),
        "{main}"
    );
    assert!(
        main["fix"]
            .as_str()
            .expect("fix")
            .contains("haven repo init --all"),
        "{main}"
    );
    let offsite = check(&report, "repository offsite");
    assert!(
        offsite["detail"]
            .as_str()
            .expect("detail")
            .contains("HAVEN_TEST_UNSET_OFFSITE_PASSWORD is not set"),
        "{offsite}"
    );
    let secret = check(&report, "system db set default: env PGPASSWORD");
    assert_eq!(secret["area"], "secret");
    assert_eq!(secret["ok"], false);
    let command = check(
        &report,
        "system db set default: pg_dump_that_is_not_installed",
    );
    assert_eq!(
        (command["area"].as_str(), command["ok"].as_bool()),
        (Some("command"), Some(false))
    );
    assert_eq!(
        check(&report, "policy nightly pre_hook: /bin/true")["ok"],
        true
    );
    assert_eq!(check(&report, "system clock")["ok"], true);
    // Problems first.
    assert_eq!(report["checks"][0]["ok"], false);

    // `repo init --all`: what can be created is, the rest says why.
    let out = ws
        .haven()
        .arg("--data-dir")
        .arg(&data)
        .args(["--json", "repo", "init", "--all"])
        .output()
        .expect("run");
    let made = parse_json(&out, 1);
    assert_eq!(made[0]["id"], "main");
    assert_eq!(made[0]["outcome"], "created");
    assert_eq!(made[1]["outcome"], "failed");
    assert!(
        made[1]["error"]
            .as_str()
            .expect("error")
            .contains("HAVEN_TEST_UNSET_OFFSITE_PASSWORD")
    );
    let again = ws
        .haven()
        .arg("--data-dir")
        .arg(&data)
        .args(["--json", "repo", "init", "--all"])
        .output()
        .expect("run");
    assert_eq!(parse_json(&again, 1)[0]["outcome"], "exists");

    let report = parse_json(&doctor(), 1);
    assert_eq!(report["problems"], 3, "{report:#}");
    assert_eq!(check(&report, "repository main")["ok"], true);

    // --send-test: a test message through every channel.
    let notified = ws.path("notified.txt");
    std::fs::write(
        data.join("catalog/watch.toml"),
        format!(
            "[[channel]]\nid = \"log\"\ntype = \"command\"\nrun = \"cat >> {}\"\n\n[[channel]]\nid = \"pager\"\ntype = \"command\"\nrun = \"echo gateway down >&2; exit 3\"\nretries = 0\n",
            notified.display()
        ),
    )
    .expect("watch");
    let out = ws
        .haven()
        .arg("--data-dir")
        .arg(&data)
        .args(["--json", "doctor", "--send-test"])
        .output()
        .expect("run");
    let report = parse_json(&out, 1);
    assert_eq!(check(&report, "channel log")["ok"], true, "{report:#}");
    let pager = check(&report, "channel pager");
    assert_eq!(pager["ok"], false);
    assert!(
        pager["detail"]
            .as_str()
            .expect("detail")
            .contains("gateway down"),
        "{pager}"
    );
    assert!(
        std::fs::read_to_string(&notified)
            .expect("sent")
            .contains("TEST MESSAGE")
    );

    // The human list names each problem and its fix.
    let out = ws
        .haven()
        .arg("--data-dir")
        .arg(&data)
        .arg("doctor")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("PROBLEM system db set default: pg_dump_that_is_not_installed"),
        "{text}"
    );
    assert!(text.contains("3 problems"), "{text}");
    assert!(
        text.contains("fix: install it, or give its full path in the catalog"),
        "{text}"
    );
}

/// The server runs the same checks at start: one `setup` alert per
/// problem, before any job fails; `haven doctor` through the server sees
/// what the server sees.
#[test]
fn the_server_raises_a_setup_alert_per_preflight_problem_at_start() {
    let inst = Instance::new();
    std::fs::write(
        inst.data.join("catalog/extra.toml"),
        r#"
[[system]]
id = "ledger-db"
kind = "database-mysql"
policy = "daily"

[[system.backup_set]]
command = "mysqldump_that_is_not_installed ledger"
"#,
    )
    .expect("write");
    let mut server = inst.start_server("server.log");
    let alerts = inst.json(&["alerts", "--open"], 0);
    let setup: Vec<&Value> = alerts
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["rule"] == "setup")
        .collect();
    assert_eq!(setup.len(), 1, "{alerts:#}");
    assert_eq!(
        setup[0]["key"],
        "setup:preflight:system ledger-db set default: mysqldump_that_is_not_installed"
    );
    assert!(
        setup[0]["summary"]
            .as_str()
            .expect("summary")
            .contains("is not found on PATH"),
        "{}",
        setup[0]
    );
    let report = inst.json(&["doctor"], 1);
    assert_eq!(report["problems"], 1, "{report:#}");
    signal(&server, rustix::process::Signal::TERM);
    let _ = server.wait();
}
