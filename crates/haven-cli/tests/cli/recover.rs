//! `haven recover`: a real PostgreSQL database and a file tree destroyed
//! and brought back in dependency order from their backups, a checkpoint
//! a person confirms, a SIGKILL midway and `--resume`, point-in-time
//! recovery, and pre-flight refusing before anything is touched.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::drill::Production;
use crate::helpers::{PASSWORD, SmallFs, Workspace, is_root, noise, parse_json, read_tree};

/// A catalog: the shop needs orders (which needs the database) and its
/// files; orders waits at a checkpoint after its database is back.
struct Estate {
    ws: Workspace,
    data: PathBuf,
    files: PathBuf,
    prod: Option<Production>,
    prod_dir: PathBuf,
}

impl Estate {
    fn new(repo_url: Option<&str>) -> Estate {
        let ws = Workspace::new();
        ws.init();
        let prod_dir = std::env::temp_dir().join(format!(
            "haven-test-prod-recover-{}-{}",
            std::process::id(),
            next()
        ));
        let prod = Production::start(&prod_dir);
        prod.psql(
            "CREATE TABLE items (id int PRIMARY KEY, name text); \
             INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 250) g;",
        );
        let files = ws.path("shop-files");
        std::fs::create_dir_all(files.join("img")).expect("mkdir");
        std::fs::write(files.join("index.html"), "the catalogue\n").expect("write");
        std::fs::write(files.join("img/logo.bin"), noise(300_000, 7)).expect("write");
        let data = ws.path("data");
        std::fs::create_dir_all(data.join("catalog")).expect("mkdir");
        let estate = Estate {
            data,
            files,
            prod: Some(prod),
            prod_dir,
            ws,
        };
        let repo = repo_url.map_or_else(|| estate.ws.repo().display().to_string(), str::to_string);
        std::fs::write(
            estate.data.join("catalog/catalog.toml"),
            estate.catalog(&repo),
        )
        .expect("catalog");
        estate
    }

    fn catalog(&self, repo: &str) -> String {
        let host = self.prod().root.display();
        let pg_restore = self.prod().bin.join("pg_restore");
        format!(
            r#"
[[service]]
id = "shop"
tier = 1
rpo = "1d"
rto = "4h"
mtd = "1d"
depends_on = ["orders", "shop-files"]

[[service.recovery]]
type = "command"
run = "test -f \"$HAVEN_TARGET{files}/index.html\""

[[service]]
id = "orders"
tier = 1
rpo = "1d"
rto = "2h"
mtd = "1d"
depends_on = ["shop-db"]

[[service.recovery]]
type = "sql"
query = "SELECT count(*) FROM items"
expect = "250"
env = {{ PGHOST = "{host}", PGPORT = "5999", PGUSER = "haven", PGDATABASE = "postgres" }}

[[service.recovery]]
type = "checkpoint"
prompt = "confirm DNS points to the recovery site"

[[system]]
id = "shop-files"
kind = "file-server"
policy = "nightly"

[[system.backup_set]]
paths = ["{files}"]

[[system.check]]
type = "command"
run = "grep -q catalogue \"$HAVEN_SANDBOX{files}/index.html\""

[[system]]
id = "shop-db"
kind = "database-postgres"
policy = "nightly"

[[system.backup_set]]
command = "{dump}"
recover_command = "{pg_restore} --clean --if-exists -h {host} -p 5999 -U haven -d postgres"

[[policy]]
id = "nightly"
schedule = "0 2 * * *"
repository = "main"

[[repository]]
id = "main"
url = "{repo}"
password = "env:HAVEN_PASSWORD"
"#,
            dump = self.prod().dump_command(),
            files = self.files.display(),
            pg_restore = pg_restore.display(),
        )
    }

    fn prod(&self) -> &Production {
        self.prod.as_ref().expect("running")
    }

    fn haven(&self) -> assert_cmd::Command {
        let mut cmd = self.ws.haven();
        cmd.arg("--data-dir").arg(&self.data);
        cmd
    }

    fn json(&self, args: &[&str], code: i32) -> Value {
        let out = self
            .haven()
            .arg("--json")
            .args(args)
            .output()
            .expect("haven");
        parse_json(&out, code)
    }

    /// `haven --json recover ARGS` in the background.
    fn spawn(&self, args: &[&str]) -> Child {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("haven"))
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--json")
            .arg("recover")
            .args(args)
            .env("HAVEN_PASSWORD", PASSWORD)
            .env_remove("HAVEN_PASSWORD_FILE")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn haven recover")
    }

    fn status(&self, run: i64) -> Value {
        self.json(&["recover", "status", &run.to_string()], 0)
    }

    /// Poll the run's status until `ready` holds (60 s at most).
    fn wait_for(&self, run: i64, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self
                .haven()
                .args(["--json", "recover", "status", &run.to_string()])
                .output()
                .expect("haven");
            // The run is recorded once pre-flight has looked.
            let status: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if out.status.success() && ready(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {status:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn count_items(&self) -> String {
        self.prod()
            .psql("SELECT count(*) FROM items")
            .trim()
            .to_string()
    }
}

impl Drop for Estate {
    fn drop(&mut self) {
        // The cluster stops before its directory goes.
        drop(self.prod.take());
        let _ = std::fs::remove_dir_all(&self.prod_dir);
    }
}

fn next() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// The step numbered by what it is named.
fn step<'a>(view: &'a Value, name_has: &str) -> &'a Value {
    view["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"].as_str().is_some_and(|n| n.contains(name_has)))
        .unwrap_or_else(|| panic!("no step named like {name_has:?}: {view:#}"))
}

fn time(v: &Value) -> jiff::Timestamp {
    v.as_str().expect("time").parse().expect("timestamp")
}

fn finish(child: Child) -> Value {
    let out = child.wait_with_output().expect("wait");
    parse_json(&out, 0)
}

/// The ransomware case, end to end: both systems destroyed, `recover
/// --all` restores the database (into its recover_command) and the files
/// in dependency order, stops at the checkpoint; killed there, `--resume`
/// goes on without redoing a restore, the test confirms, and the run
/// completes with the data verified and a measured RTO per service.
#[test]
fn a_recovery_restores_in_order_waits_at_the_checkpoint_and_resumes_after_a_kill() {
    let estate = Estate::new(None);
    estate.haven().args(["run", "shop-db"]).assert().success();
    estate
        .haven()
        .args(["run", "shop-files"])
        .assert()
        .success();
    let before: BTreeMap<PathBuf, Vec<u8>> = read_tree(&estate.files);

    // Disaster: the table dropped, the files encrypted and deleted.
    estate.prod().psql("DROP TABLE items");
    std::fs::write(estate.files.join("index.html"), "encrypted!").expect("write");
    std::fs::remove_file(estate.files.join("img/logo.bin")).expect("rm");

    let mut first = estate.spawn(&["--all", "--reason", "ransomware drill"]);
    let waiting = estate.wait_for(1, "the checkpoint", |v| {
        step(v, "checkpoint")["state"] == "waiting"
            && step(v, "check 1 of shop-files")["state"] == "done"
    });
    // Everything before the checkpoint is back and verified; the shop,
    // which needs orders, has not started.
    assert_eq!(estate.count_items(), "250");
    assert_eq!(read_tree(&estate.files), before);
    assert_eq!(
        step(&waiting, "restore shop-db")["state"],
        "done",
        "{waiting:#}"
    );
    assert_eq!(
        step(&waiting, "SELECT count")["state"],
        "done",
        "{waiting:#}"
    );
    assert_eq!(
        step(&waiting, "check 1 of shop-files")["state"],
        "done",
        "{waiting:#}"
    );
    assert_eq!(step(&waiting, "test -f")["state"], "pending", "{waiting:#}");
    assert_eq!(waiting["state"], "running");

    // The executor is killed: the run shows interrupted.
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let killed = estate.status(1);
    assert_eq!(killed["state"], "interrupted", "{killed:#}");
    let restore_started = step(&killed, "restore shop-db")["started_at"].clone();

    let second = estate.spawn(&["--resume", "1"]);
    let checkpoint = estate.wait_for(1, "the checkpoint again", |v| {
        v["state"] == "running" && step(v, "checkpoint")["state"] == "waiting"
    });
    let number = step(&checkpoint, "checkpoint")["number"]
        .as_i64()
        .expect("number");
    // Only a waiting checkpoint is confirmed; a done step is not.
    let refused = estate.json(&["recover", "confirm", "1", "1"], 1);
    assert_eq!(refused["error"]["code"], "recovery-conflict", "{refused:#}");
    estate
        .haven()
        .args([
            "recover",
            "confirm",
            "1",
            &number.to_string(),
            "--by",
            "ana",
            "--note",
            "dig says recovery site",
        ])
        .assert()
        .success();
    let done = finish(second);

    assert_eq!(done["state"], "completed", "{done:#}");
    assert_eq!(done["resumed"], 1);
    assert_eq!(done["reason"], "ransomware drill");
    // No finished step ran twice: the restores kept their first start.
    for s in done["steps"].as_array().expect("steps") {
        assert_eq!(s["attempts"], 1, "{s:#}");
        assert!(
            ["done"].contains(&s["state"].as_str().expect("state")),
            "{s:#}"
        );
    }
    assert_eq!(
        step(&done, "restore shop-db")["started_at"],
        restore_started
    );
    let confirmed = &step(&done, "checkpoint")["decisions"][0];
    assert_eq!(confirmed["decision"], "confirm");
    assert!(
        confirmed["by"].as_str().is_some_and(|b| b.contains("ana")),
        "{confirmed:#}"
    );
    assert_eq!(confirmed["note"], "dig says recovery site");

    // Dependency order, from the step records.
    let ended = |name: &str| time(&step(&done, name)["ended_at"]);
    let started = |name: &str| time(&step(&done, name)["started_at"]);
    assert!(ended("restore shop-db") <= started("SELECT count"));
    assert!(ended("checkpoint") <= started("test -f"));
    assert!(ended("check 1 of shop-files") <= started("test -f"));

    // The data is back, and every service has a measured RTO.
    assert_eq!(estate.count_items(), "250");
    assert_eq!(read_tree(&estate.files), before);
    for service in done["services"].as_array().expect("services") {
        assert!(service["measured_rto"].is_string(), "{service:#}");
        assert_eq!(service["verdict"], "met", "{service:#}");
    }
    let lost = &done["snapshots"];
    assert_eq!(lost.as_array().expect("snapshots").len(), 2, "{done:#}");

    // The evidence as a report an auditor reads.
    let html = estate
        .haven()
        .args(["recover", "report", "1", "--format", "html"])
        .output()
        .expect("report");
    let html = String::from_utf8(html.stdout).expect("utf-8");
    assert!(
        html.contains("<svg") && html.contains("confirm by"),
        "{html}"
    );
    assert!(!html.contains(PASSWORD));

    // Every change went through the audit log, and the log verifies.
    let log = estate.json(&["audit", "log"], 0);
    let actions: Vec<&str> = log
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert!(
        ["recovery.start", "recovery.resume", "recovery.confirm"]
            .iter()
            .all(|a| actions.contains(a)),
        "{log:#}"
    );
    let confirmed = log
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "recovery.confirm" && e["outcome"] == "success")
        .expect("the confirmation");
    assert!(
        confirmed["actor"]
            .as_str()
            .is_some_and(|a| a.contains("ana")),
        "{confirmed:#}"
    );
    assert_eq!(confirmed["target"], format!("recovery:1:step:{number}"));
    let verified = estate.json(&["audit", "verify"], 0);
    assert_eq!(verified["problems"], serde_json::json!([]), "{verified:#}");
    assert_eq!(verified["entries"], verified["checkpoints_ok"]);
}

/// `--at` recovers every system to its newest snapshot before the time
/// (before the infection), into an alternate directory, and reports the
/// data lost.
#[test]
fn a_point_in_time_recovery_takes_the_snapshot_before_the_time() {
    let estate = Estate::new(None);
    estate
        .haven()
        .args(["run", "shop-files"])
        .assert()
        .success();
    let clean = read_tree(&estate.files);
    let snapshots = estate.json(&["snapshots"], 0);
    let first = snapshots.as_array().expect("list")[0].clone();
    let first_time = time(&first["time"]);
    // The infection, backed up faithfully.
    std::fs::write(estate.files.join("index.html"), "encrypted!").expect("write");
    estate
        .haven()
        .args(["run", "shop-files"])
        .assert()
        .success();

    let target = estate.ws.path("recovered");
    let all = estate.json(&["snapshots"], 0);
    let second = all
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["id"] != first["id"])
        .expect("the second snapshot");
    let second_time = time(&second["time"]);
    assert!(second_time > first_time);
    // Between the two: before the infection was backed up.
    let at = (first_time + second_time.duration_since(first_time) / 2).to_string();
    let target_arg = format!("alternate:{}", target.display());
    let out = estate
        .haven()
        .args([
            "--json",
            "recover",
            "--services",
            "shop",
            "--at",
            &at,
            "--target",
            &target_arg,
        ])
        .output()
        .expect("recover");
    // The database has no snapshot before that time: pre-flight refuses.
    let refused = parse_json(&out, 1);
    assert_eq!(refused["state"], "refused", "{refused:#}");
    assert!(
        refused["preflight"]
            .to_string()
            .contains("system shop-db set"),
        "{refused:#}"
    );
    assert!(!target.exists(), "nothing is touched");

    // The file server alone (a service of its own for this run).
    let catalog = std::fs::read_to_string(estate.data.join("catalog/catalog.toml")).expect("read");
    let catalog = catalog.replacen(
        "[[system]]\nid = \"shop-files\"",
        "[[service]]\nid = \"web\"\ntier = 2\nrpo = \"1d\"\nrto = \"4h\"\nmtd = \"2d\"\ndepends_on = [\"shop-files\"]\n\n[[system]]\nid = \"shop-files\"",
        1,
    );
    std::fs::write(estate.data.join("catalog/catalog.toml"), catalog).expect("catalog");
    let done = parse_json(
        &estate
            .haven()
            .args([
                "--json",
                "recover",
                "--services",
                "web",
                "--at",
                &at,
                "--target",
                &target_arg,
            ])
            .output()
            .expect("recover"),
        0,
    );
    assert_eq!(done["state"], "completed", "{done:#}");
    let used = &done["snapshots"][0];
    assert_eq!(used["snapshot"], first["id"], "{done:#}");
    assert!(used["data_lost"].is_string());
    // Under the system's own directory, at the files' full paths (as in a
    // drill's sandbox).
    let restored = target
        .join("shop-files")
        .join(estate.files.strip_prefix("/").expect("absolute"));
    assert_eq!(read_tree(&restored), clean);
    // Production is untouched by a recovery elsewhere.
    assert_eq!(
        std::fs::read(estate.files.join("index.html")).expect("read"),
        b"encrypted!"
    );
}

/// Pre-flight stops a run before anything is touched: a repository that
/// is not there, then a target without room for the restore.
#[test]
fn preflight_failures_stop_the_run_before_anything_is_touched() {
    let estate = Estate::new(Some("/nonexistent/haven-repo"));
    std::fs::write(estate.files.join("index.html"), "damaged").expect("write");
    // A recovery step whose program is not installed.
    let catalog = std::fs::read_to_string(estate.data.join("catalog/catalog.toml"))
        .expect("read")
        .replacen(
            "run = \"test -f",
            "run = \"no-such-program-haven && test -f",
            1,
        );
    std::fs::write(estate.data.join("catalog/catalog.toml"), catalog).expect("catalog");
    let refused = estate.json(&["recover", "--all"], 1);
    assert_eq!(refused["state"], "refused", "{refused:#}");
    let findings = refused["preflight"].to_string();
    assert!(findings.contains("repository"), "{findings}");
    assert!(
        findings.contains("`no-such-program-haven` is not found"),
        "{findings}"
    );
    assert_eq!(
        std::fs::read(estate.files.join("index.html")).expect("read"),
        b"damaged"
    );
    // Recorded as evidence, with nothing run.
    let status = estate.status(1);
    assert_eq!(status["state"], "refused");
    assert!(
        status["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["state"] == "pending")
    );
    // --force needs a reason.
    let out = estate
        .haven()
        .args(["recover", "--all", "--force"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(
        is_root(),
        "the space half of this test mounts a 1 MiB tmpfs and must run as root (CI does)"
    );
    let estate = Estate::new(None);
    std::fs::write(estate.files.join("big.bin"), noise(3 << 20, 9)).expect("write");
    estate
        .haven()
        .args(["run", "shop-files"])
        .assert()
        .success();
    estate.haven().args(["run", "shop-db"]).assert().success();
    let small = SmallFs::mount(estate.ws.path("small"), "1m");
    let target = format!("alternate:{}", small.0.join("out").display());
    let refused = estate.json(&["recover", "--all", "--target", &target], 1);
    assert_eq!(refused["state"], "refused", "{refused:#}");
    assert!(
        refused["preflight"]
            .to_string()
            .contains("free; the restore needs"),
        "{refused:#}"
    );
    assert!(!small.0.join("out").exists());
}

/// Through a running server: the run executes in the server, a checkpoint
/// waiting too long is an alert until confirmed, a failed critical step
/// halts the run (an alert) until a person retries it (it fails again)
/// and then skips it; the run completes, partly.
#[test]
fn a_halted_run_and_a_waiting_checkpoint_are_alerts_until_people_decide() {
    let estate = Estate::new(None);
    estate.haven().args(["run", "shop-db"]).assert().success();
    estate
        .haven()
        .args(["run", "shop-files"])
        .assert()
        .success();
    let catalog = std::fs::read_to_string(estate.data.join("catalog/catalog.toml")).expect("read");
    let catalog = catalog.replacen(
        "run = \"test -f \\\"$HAVEN_TARGET",
        "run = \"test -f /nonexistent/flag && test -f \\\"$HAVEN_TARGET",
        1,
    );
    assert!(catalog.contains("/nonexistent/flag"));
    std::fs::write(estate.data.join("catalog/catalog.toml"), catalog).expect("catalog");
    std::fs::write(
        estate.data.join("haven.toml"),
        "listen = \"127.0.0.1:0\"\nevaluate_every = \"1s\"\n\n[alerts]\ncheckpoint_wait = \"1s\"\n",
    )
    .expect("settings");
    let _server =
        crate::server::start_server_in(&estate.data, &estate.ws.path("server.log"), "022", &[]);
    let alerts = |rule: &str| -> Vec<Value> {
        let all = estate.json(&["alerts"], 0);
        all.as_array()
            .expect("alerts")
            .iter()
            .filter(|a| a["rule"] == rule)
            .cloned()
            .collect()
    };
    let follower = estate.spawn(&["--all", "--reason", "fire in the data centre"]);
    let waiting = estate.wait_for(1, "the checkpoint", |v| {
        step(v, "checkpoint")["state"] == "waiting"
    });
    let checkpoint = step(&waiting, "checkpoint")["number"].to_string();
    crate::server::wait_for("checkpoint-waiting", || {
        alerts("checkpoint-waiting")
            .iter()
            .any(|a| a["state"] == "open")
    });
    let open = alerts("checkpoint-waiting");
    assert_eq!(
        open[0]["key"],
        format!("checkpoint-waiting:1:{checkpoint}"),
        "{open:#?}"
    );
    estate
        .haven()
        .args(["recover", "confirm", "1", &checkpoint])
        .assert()
        .success();

    let halted = estate.wait_for(1, "the halt", |v| v["state"] == "halted");
    let failing = step(&halted, "test -f")["number"].to_string();
    crate::server::wait_for("recovery-halted", || {
        alerts("recovery-halted")
            .iter()
            .any(|a| a["state"] == "open")
    });
    crate::server::wait_for("checkpoint-waiting resolved", || {
        alerts("checkpoint-waiting")
            .iter()
            .all(|a| a["state"] == "resolved")
    });
    // Retry needs a reason; it runs the step again, which fails again.
    let out = estate
        .haven()
        .args(["recover", "retry", "1", &failing])
        .output()
        .expect("retry");
    assert_eq!(out.status.code(), Some(2));
    estate
        .haven()
        .args(["recover", "retry", "1", &failing, "--reason", "DNS fixed"])
        .assert()
        .success();
    let again = estate.wait_for(1, "the second attempt", |v| {
        step(v, "test -f")["attempts"] == 2 && v["state"] == "halted"
    });
    assert_eq!(step(&again, "test -f")["state"], "failed");
    estate
        .haven()
        .args([
            "recover",
            "skip",
            "1",
            &failing,
            "--reason",
            "the shop starts by hand",
            "--by",
            "ana",
        ])
        .assert()
        .success();
    let out = follower.wait_with_output().expect("follow");
    // Completed, but not everything was done: partial.
    let done = parse_json(&out, 3);
    assert_eq!(done["state"], "completed", "{done:#}");
    let skipped = step(&done, "test -f");
    assert_eq!(skipped["state"], "skipped");
    let decided: Vec<&str> = skipped["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| d["decision"].as_str().expect("decision"))
        .collect();
    assert_eq!(decided, ["retry", "skip"]);
    crate::server::wait_for("recovery-halted resolved", || {
        alerts("recovery-halted")
            .iter()
            .all(|a| a["state"] == "resolved")
    });
    // The people's decisions through the API are in the audit log, which
    // verifies through the API too.
    let log = estate.json(&["audit", "log"], 0);
    let decided: Vec<(&str, &str)> = log
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["target"] == format!("recovery:1:step:{failing}"))
        .map(|e| {
            (
                e["action"].as_str().expect("action"),
                e["outcome"].as_str().expect("outcome"),
            )
        })
        .collect();
    assert_eq!(
        decided,
        [("recovery.retry", "success"), ("recovery.skip", "success")],
        "{log:#}"
    );
    // So are the alerts the server's rules opened and resolved.
    let automation: Vec<(&str, &str)> = log
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["origin"] == "watch")
        .map(|e| {
            (
                e["action"].as_str().expect("action"),
                e["actor"].as_str().expect("actor"),
            )
        })
        .collect();
    assert!(automation.contains(&("alert.open", "haven")), "{log:#}");
    assert!(automation.contains(&("alert.resolve", "haven")), "{log:#}");
    let verified = estate.json(&["audit", "verify"], 0);
    assert_eq!(verified["problems"], serde_json::json!([]), "{verified:#}");
    assert_eq!(estate.count_items(), "250");
}

/// SIGINT while a run executes in the command: the recover_command it
/// started is killed with it (nothing keeps writing behind it) and the
/// run shows interrupted; it holds its service for pre-flight until
/// resumed or abandoned; a new run then loads the dump to completion.
#[test]
fn an_interrupted_recovery_kills_its_commands_and_can_be_abandoned() {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    std::fs::create_dir_all(data.join("catalog")).expect("mkdir");
    let marker = format!("haven-recover-sigint-{}", std::process::id());
    let loaded = ws.path("loaded.txt");
    let catalog = format!(
        r#"
[[service]]
id = "ledger"
tier = 2
rpo = "1d"
rto = "4h"
mtd = "1d"
depends_on = ["ledger-db"]

[[system]]
id = "ledger-db"
kind = "database"
policy = "nightly"

[[system.backup_set]]
name = "dump"
command = "printf 'row 1\nrow 2\n'"
recover_command = ": {marker}; if [ ! -e {flag} ]; then touch {flag}; sleep 300; fi; cat > {loaded}"

[[policy]]
id = "nightly"
schedule = "0 2 * * *"
repository = "main"

[[repository]]
id = "main"
url = "{repo}"
password = "env:HAVEN_PASSWORD"
"#,
        flag = ws.path("first-attempt").display(),
        loaded = loaded.display(),
        repo = ws.repo().display(),
    );
    std::fs::write(data.join("catalog/catalog.toml"), catalog).expect("catalog");
    let haven = || {
        let mut cmd = ws.haven();
        cmd.arg("--data-dir").arg(&data);
        cmd
    };
    haven().args(["run", "ledger-db"]).assert().success();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("haven"))
        .arg("--data-dir")
        .arg(&data)
        .args(["--json", "recover", "--all"])
        .env("HAVEN_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let sleeping = || {
        std::fs::read_dir("/proc")
            .expect("proc")
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .any(|cmd| String::from_utf8_lossy(&cmd).contains(&marker))
    };
    crate::server::wait_for("the recover_command", sleeping);
    crate::server::signal(&child, rustix::process::Signal::INT);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume 1"));
    assert!(!sleeping(), "the recover_command outlived the recovery");
    let status = parse_json(
        &haven()
            .args(["--json", "recover", "status", "1"])
            .output()
            .expect("status"),
        0,
    );
    assert_eq!(status["state"], "interrupted", "{status:#}");

    // A new run on the same service is refused while run 1 may be
    // resumed; abandoned (with a reason), run 1 no longer stands in the way.
    let refused = parse_json(
        &haven()
            .args(["--json", "recover", "--all"])
            .output()
            .expect("recover"),
        1,
    );
    assert!(
        refused["preflight"]
            .to_string()
            .contains("resume it (`haven recover --resume 1`)"),
        "{refused:#}"
    );
    let out = haven()
        .args(["recover", "abandon", "1"])
        .output()
        .expect("abandon");
    assert_eq!(out.status.code(), Some(2), "a reason is required");
    let abandoned = parse_json(
        &haven()
            .args([
                "--json",
                "recover",
                "abandon",
                "1",
                "--reason",
                "restored by hand",
                "--by",
                "ana",
            ])
            .output()
            .expect("abandon"),
        0,
    );
    assert_eq!(abandoned["state"], "abandoned", "{abandoned:#}");
    assert_eq!(abandoned["abandoned"]["note"], "restored by hand");
    let resumed = parse_json(
        &haven()
            .args(["--json", "recover", "--resume", "1"])
            .output()
            .expect("resume"),
        1,
    );
    assert_eq!(resumed["error"]["code"], "recovery-conflict", "{resumed:#}");
    let done = parse_json(
        &haven()
            .args(["--json", "recover", "--all"])
            .output()
            .expect("recover"),
        0,
    );
    assert_eq!(done["state"], "completed", "{done:#}");
    assert_eq!(done["id"], 3, "run 2 was refused: {done:#}");
    assert_eq!(step(&done, "restore ledger-db")["attempts"], 1, "{done:#}");
    assert_eq!(
        std::fs::read_to_string(&loaded).expect("loaded"),
        "row 1\nrow 2\n"
    );
}

/// The audit log's entries export with inclusion proofs that verify
/// offline (an altered one does not); its checkpoints are copied into
/// the export file, so a log rebuilt from scratch (the database deleted)
/// verifies against itself but not against those copies: `haven audit
/// verify` exits 1 naming entry 0.
#[test]
fn the_audit_log_exports_with_proofs_and_a_rebuilt_log_is_caught() {
    let estate = Estate::new(None);
    std::fs::write(
        estate.data.join("haven.toml"),
        "[export]\nfile = \"events.jsonl\"\n",
    )
    .expect("settings");
    estate
        .haven()
        .args(["run", "shop-files"])
        .assert()
        .success();
    estate
        .haven()
        .args(["run", "shop-files"])
        .assert()
        .success();
    let intact = estate.json(&["audit", "verify"], 0);
    assert_eq!(intact["entries"], 2, "{intact:#}");
    assert_eq!(intact["outside"], 2, "{intact:#}");
    assert_eq!(intact["problems"], serde_json::json!([]));
    // Exported with proofs, the entries verify offline against the
    // signed checkpoint; an altered one does not.
    let export = estate
        .haven()
        .args(["audit", "export", "--from", "0"])
        .output()
        .expect("export");
    assert!(export.status.success());
    let file = estate.ws.path("audit-export.json");
    std::fs::write(&file, &export.stdout).expect("write");
    let pubkey = estate.data.join("audit/log.pub");
    let offline = |file: &std::path::Path, code: i32| {
        let out = estate
            .ws
            .haven()
            .args(["--json", "audit", "verify-export"])
            .arg(file)
            .arg("--key")
            .arg(&pubkey)
            .output()
            .expect("verify-export");
        parse_json(&out, code)
    };
    let valid = offline(&file, 0);
    assert_eq!(
        (valid["valid"].clone(), valid["entries"].clone()),
        (true.into(), 2.into()),
        "{valid:#}"
    );
    let text = String::from_utf8(export.stdout).expect("utf-8");
    let altered = estate.ws.path("altered.json");
    std::fs::write(
        &altered,
        text.replacen("system:shop-files", "system:shop-db", 1),
    )
    .expect("write");
    let invalid = offline(&altered, 1);
    assert!(
        invalid["problem"]
            .as_str()
            .is_some_and(|p| p.contains("is not in the log")),
        "{invalid:#}"
    );

    let key = std::fs::metadata(estate.data.join("audit/log.key")).expect("key");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);

    // The newest checkpoint goes into the repository too.
    let anchored = estate.json(&["audit", "anchor"], 0);
    assert_eq!(anchored[0]["repository"], "main", "{anchored:#}");
    assert_eq!(anchored[0]["size"], 2, "{anchored:#}");

    for file in ["haven.db", "haven.db-wal", "haven.db-shm"] {
        let _ = std::fs::remove_file(estate.data.join(file));
    }
    estate
        .haven()
        .args(["run", "shop-files"])
        .assert()
        .success();
    // With the export gone as well, only the repository's copy shows it.
    let events = estate.data.join("events.jsonl");
    let kept_events = std::fs::read(&events).expect("events");
    std::fs::remove_file(&events).expect("rm");
    let unaware = estate.json(&["audit", "verify"], 0);
    assert_eq!(unaware["problems"], serde_json::json!([]), "{unaware:#}");
    let against = estate.json(&["audit", "verify", "--against", "main"], 1);
    // The repository holds the checkpoint for 2 entries: the log of 1
    // is truncated from entry 1 on (entry 0 has no copy to compare).
    assert_eq!(against["problems"][0]["first_bad"], 1, "{against:#}");
    assert!(
        against["problems"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("truncated") && d.contains("repository main")),
        "{against:#}"
    );
    std::fs::write(&events, kept_events).expect("restore the export");
    let rebuilt = estate.json(&["audit", "verify"], 1);
    assert_eq!(rebuilt["entries"], 1, "{rebuilt:#}");
    assert_eq!(rebuilt["problems"][0]["first_bad"], 0, "{rebuilt:#}");
    assert!(
        rebuilt["problems"].to_string().contains("truncated"),
        "{rebuilt:#}"
    );

    // Without a usable key, reads go on and changes are refused: nothing
    // is changed unrecorded.
    std::fs::remove_file(estate.data.join("audit/log.pub")).expect("rm");
    estate.json(&["recover", "status"], 0);
    let refused = estate.json(&["run", "shop-files"], 1);
    assert_eq!(refused["error"]["code"], "audit-unavailable", "{refused:#}");
    let jobs = estate.json(&["jobs"], 0);
    assert_eq!(
        jobs.as_array().expect("jobs").len(),
        1,
        "no new job: {jobs:#}"
    );
}
