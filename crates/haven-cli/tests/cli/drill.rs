//! `haven drill SYSTEM`: a real restore into a sandbox under the data dir,
//! the system's checks run against it, every step timed, the verdict
//! judged against its services' objectives; the sandbox is gone after.

use std::path::Path;

use serde_json::Value;

use crate::helpers::{PASSWORD, Workspace, noise, parse_json};

struct Site {
    ws: Workspace,
    data: std::path::PathBuf,
}

fn site(check: &str) -> Site {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    std::fs::create_dir_all(data.join("catalog")).expect("mkdir");
    std::fs::create_dir_all(ws.path("docs")).expect("mkdir");
    std::fs::write(ws.path("docs/readme.txt"), "the documents\n").expect("write");
    std::fs::write(ws.path("docs/big.bin"), noise(3 << 20, 7)).expect("write");
    let catalog = format!(
        r#"
[[service]]
id = "intranet"
tier = 2
rpo = "1d"
rto = "4h"
mtd = "1d"
depends_on = ["docs"]

[[system]]
id = "docs"
kind = "file-server"
policy = "nightly"

[[system.backup_set]]
paths = ["{docs}"]

[[system.check]]
type = "command"
run = "{check}"
expect_exit = 0
expect_output = "the documents"

[[policy]]
id = "nightly"
schedule = "0 2 * * *"
repository = "main"

[[repository]]
id = "main"
url = "{repo}"
password = "env:HAVEN_PASSWORD"
"#,
        docs = ws.path("docs").display(),
        repo = ws.repo().display(),
    );
    std::fs::write(data.join("catalog/catalog.toml"), catalog).expect("catalog");
    let site = Site { ws, data };
    site.haven().args(["run", "docs"]).assert().success();
    site
}

impl Site {
    fn haven(&self) -> assert_cmd::Command {
        let mut cmd = self.ws.haven();
        cmd.arg("--data-dir")
            .arg(&self.data)
            .env("HAVEN_PASSWORD", PASSWORD);
        cmd
    }

    fn drill(&self, extra: &[&str], code: i32) -> Value {
        let out = self
            .haven()
            .args(["--json", "drill", "docs"])
            .args(extra)
            .output()
            .expect("drill");
        parse_json(&out, code)
    }

    fn sandboxes(&self) -> Vec<std::path::PathBuf> {
        let dir = self.data.join("sandboxes");
        std::fs::read_dir(&dir)
            .map(|d| d.map(|e| e.expect("entry").path()).collect())
            .unwrap_or_default()
    }
}

/// The check reads the restored copy, remapped into the sandbox.
fn readme_check(ws: &Workspace) -> String {
    let inside = ws.path("docs/readme.txt");
    let relative = inside
        .strip_prefix("/")
        .expect("absolute")
        .display()
        .to_string();
    format!("cat \\\"$HAVEN_SANDBOX/{relative}\\\"")
}

#[test]
fn a_drill_restores_into_a_sandbox_runs_the_checks_and_measures() {
    // The check needs the site's paths: set it once the site exists.
    let s = site("true");
    let check = readme_check(&s.ws);
    let text = std::fs::read_to_string(s.data.join("catalog/catalog.toml"))
        .expect("read")
        .replace("run = \"true\"", &format!("run = \"{check}\""));
    std::fs::write(s.data.join("catalog/catalog.toml"), text).expect("write");

    let drill = s.drill(&[], 0);
    assert_eq!(drill["verdict"], "pass", "{drill:#}");
    assert_eq!(drill["system"], "docs");
    let steps = drill["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{drill:#}");
    assert_eq!(steps[0]["kind"], "restore");
    assert!(
        steps[0]["detail"]
            .as_str()
            .expect("detail")
            .contains("verified")
    );
    assert_eq!(steps[1]["kind"], "check");
    assert!(
        steps[1]["detail"]
            .as_str()
            .expect("detail")
            .contains("the documents")
    );
    // Measured and judged against the intranet's objectives.
    assert_eq!(drill["objectives"]["rto"], "PT4H");
    assert!(
        drill["measured_rto"]
            .as_str()
            .is_some_and(|d| d.starts_with("PT"))
    );
    assert!(drill["achieved_rpo"].as_str().is_some());
    assert!(drill["bytes"].as_u64().expect("bytes") > 3 << 20);
    assert!(
        s.sandboxes().is_empty(),
        "the sandbox is removed: {:?}",
        s.sandboxes()
    );
    // The production files were never touched.
    assert_eq!(
        std::fs::read_to_string(s.ws.path("docs/readme.txt")).expect("read"),
        "the documents\n"
    );

    // --keep leaves the sandbox and says where.
    let kept = s.drill(&["--keep"], 0);
    let path = kept["kept_sandbox"].as_str().expect("kept");
    assert!(Path::new(path).is_dir());
    assert_eq!(s.sandboxes().len(), 1);
}

#[test]
fn a_failing_check_or_a_damaged_pack_fails_the_drill_with_the_reason() {
    let s = site("echo something else");
    let drill = s.drill(&[], 1);
    assert_eq!(drill["verdict"], "fail");
    let reasons = drill["reasons"].to_string();
    assert!(
        reasons.contains("check 1 (command `echo something else`) failed"),
        "{reasons}"
    );
    assert!(reasons.contains("output lacks"), "{reasons}");
    assert!(s.sandboxes().is_empty());

    // A damaged pack: the restore step fails, naming the damaged file.
    let pack = walkdir::WalkDir::new(s.ws.repo().join("data"))
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .max_by_key(|e| e.metadata().expect("stat").len())
        .expect("a pack")
        .into_path();
    let mut bytes = std::fs::read(&pack).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&pack, bytes).expect("write");
    let drill = s.drill(&[], 1);
    let reasons = drill["reasons"].to_string();
    assert!(reasons.contains("restore failed"), "{reasons}");
    assert!(
        reasons.contains("big.bin"),
        "names the damaged file: {reasons}"
    );
    assert!(s.sandboxes().is_empty());

    // Nothing to drill is an error, not a pass.
    let out = s
        .haven()
        .args(["--json", "drill", "nope"])
        .output()
        .expect("run");
    assert_eq!(parse_json(&out, 1)["error"]["code"], "no-such-system");
}

/// Every drill is kept as evidence: `haven drills` lists them, newest
/// first, with verdict and measurements.
#[test]
fn drills_are_recorded_and_listed() {
    let s = site("echo the documents");
    let first = s.drill(&[], 0);
    assert!(first["id"].as_i64().expect("id") > 0, "recorded: {first:#}");
    let text = std::fs::read_to_string(s.data.join("catalog/catalog.toml"))
        .expect("read")
        .replace("run = \"echo the documents\"", "run = \"exit 4\"");
    std::fs::write(s.data.join("catalog/catalog.toml"), text).expect("write");
    let second = s.drill(&[], 1);
    let out = s
        .haven()
        .args(["--json", "drills", "--system", "docs"])
        .output()
        .expect("list");
    let drills = parse_json(&out, 0);
    let listed: Vec<(i64, &str)> = drills
        .as_array()
        .expect("drills")
        .iter()
        .map(|d| {
            (
                d["id"].as_i64().expect("id"),
                d["verdict"].as_str().expect("verdict"),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (second["id"].as_i64().expect("id"), "fail"),
            (first["id"].as_i64().expect("id"), "pass")
        ]
    );
    assert_eq!(
        drills[0]["steps"].as_array().map(Vec::len),
        Some(2),
        "kept whole"
    );
    // The trend counts passing drills only.
    let out = s
        .haven()
        .args(["--json", "drills", "--trend"])
        .output()
        .expect("trend");
    let trend = parse_json(&out, 0);
    assert_eq!(trend["systems"][0]["id"], "docs");
    assert_eq!(trend["systems"][0]["drills"], 1);
    assert_eq!(trend["systems"][0]["first"], first["measured_rto"]);
    assert!(
        trend["systems"][0]["change_per_30_days"].is_null(),
        "one drill: no trend"
    );
    assert_eq!(
        trend["services"],
        serde_json::json!([]),
        "no service drill yet"
    );
}

/// `haven drill SERVICE` drills the service's backed-up systems and
/// judges the whole against the service's objectives; it is recorded
/// beside its system drills and has its own trend.
#[test]
fn a_service_is_drilled_through_its_systems() {
    let s = site("echo the documents");
    let out = s
        .haven()
        .args(["--json", "drill", "intranet"])
        .output()
        .expect("drill");
    let service = parse_json(&out, 0);
    assert_eq!(service["service"], "intranet");
    assert_eq!(service["verdict"], "pass", "{service:#}");
    assert_eq!(service["waves"], serde_json::json!([["docs"]]));
    assert_eq!(service["objectives"]["rto"], "PT4H");
    let system = &service["systems"][0];
    assert_eq!(system["system"], "docs");
    assert_eq!(service["drills"], serde_json::json!([system["id"].clone()]));
    assert!(
        system["by"]
            .as_str()
            .is_some_and(|b| b.ends_with("(drill of service intranet)")),
        "{system:#}"
    );
    // The whole takes at least its system's drill.
    let duration = |v: &Value| -> jiff::SignedDuration {
        v.as_str().expect("duration").parse().expect("duration")
    };
    let whole = duration(&service["measured_rto"]);
    let part = duration(&system["measured_rto"]);
    assert!(whole >= part, "{whole:?} {part:?}");
    let out = s
        .haven()
        .args(["--json", "drills", "--service", "intranet"])
        .output()
        .expect("list");
    let listed = parse_json(&out, 0);
    assert_eq!(listed[0]["id"], service["id"]);
    let out = s
        .haven()
        .args(["--json", "drills", "--trend"])
        .output()
        .expect("trend");
    assert_eq!(parse_json(&out, 0)["services"][0]["id"], "intranet");
    // A system of the service that was never backed up fails the service
    // (it could not be recovered); the others' drills are kept.
    let text = std::fs::read_to_string(s.data.join("catalog/catalog.toml"))
        .expect("read")
        .replace(
            "depends_on = [\"docs\"]",
            "depends_on = [\"docs\", \"notes\"]",
        )
        + "\n[[system]]\nid = \"notes\"\nkind = \"file-server\"\npolicy = \"nightly\"\n\n[[system.backup_set]]\npaths = [\"/srv/notes\"]\n";
    std::fs::write(s.data.join("catalog/catalog.toml"), text).expect("write");
    let out = s
        .haven()
        .args(["--json", "drill", "intranet"])
        .output()
        .expect("drill");
    let failed = parse_json(&out, 1);
    assert_eq!(failed["verdict"], "fail");
    assert!(
        failed["reasons"][0].as_str().is_some_and(|r| r
            .starts_with("notes could not be drilled: system notes set default has no snapshot")),
        "{failed:#}"
    );
    assert_eq!(failed["systems"][0]["system"], "docs");
    assert_eq!(failed["systems"][0]["verdict"], "pass");
    assert!(
        failed["systems"][0]["id"].as_i64().is_some_and(|id| id > 0),
        "recorded"
    );

    // Neither a service nor a system: one clear error.
    let out = s
        .haven()
        .args(["--json", "drill", "intranett"])
        .output()
        .expect("drill");
    let error = parse_json(&out, 1);
    assert_eq!(error["error"]["code"], "no-such-system");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nor a service")),
        "{error:#}"
    );
}

/// A "production" PostgreSQL cluster for the tests: initdb and pg_ctl
/// (as `nobody` when the tests run as root), a socket in its directory.
pub(crate) struct Production {
    pub(crate) bin: std::path::PathBuf,
    pub(crate) root: std::path::PathBuf,
    run_as: Option<u32>,
}

impl Production {
    pub(crate) fn start(root: &Path) -> Production {
        let mut bins: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (scripts/test.sh installs it)")
            .map(|e| e.expect("entry").path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .collect();
        bins.sort();
        let bin = bins.pop().expect("initdb");
        std::fs::create_dir_all(root).expect("mkdir");
        let run_as = rustix::process::geteuid().is_root().then_some(65534);
        if let Some(uid) = run_as {
            let id = Some(rustix::process::Uid::from_raw(uid));
            rustix::fs::chown(root, id, Some(rustix::process::Gid::from_raw(uid))).expect("chown");
        }
        let pg = Production {
            bin,
            root: root.to_path_buf(),
            run_as,
        };
        let data = pg.root.join("data").display().to_string();
        pg.run("initdb", &["-D", &data, "-U", "haven", "--auth=trust"]);
        let options = format!("-k {} -p 5999 -c listen_addresses=''", pg.root.display());
        let log = pg.root.join("log").display().to_string();
        pg.run(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
        pg
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let path = self.bin.join(program);
        let mut cmd = match self.run_as {
            Some(uid) => {
                let mut c = std::process::Command::new("setpriv");
                c.args([
                    format!("--reuid={uid}"),
                    format!("--regid={uid}"),
                    "--clear-groups".into(),
                ])
                .arg(path);
                c
            }
            None => std::process::Command::new(path),
        };
        let out = cmd.args(args).output().expect("run");
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn psql(&self, sql: &str) -> String {
        let host = self.root.display().to_string();
        self.run(
            "psql",
            &[
                "-h",
                &host,
                "-p",
                "5999",
                "-U",
                "haven",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-X",
                "-q",
                "-A",
                "-t",
                "-c",
                sql,
            ],
        )
    }

    pub(crate) fn dump_command(&self) -> String {
        format!(
            "{} -h {} -p 5999 -U haven -Fc postgres",
            self.bin.join("pg_dump").display(),
            self.root.display()
        )
    }
}

impl Drop for Production {
    fn drop(&mut self) {
        let data = self.root.join("data").display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

/// A real database with rows, protected by a pg_dump set: the drill loads
/// the dump into a throwaway cluster, runs the sql checks against it,
/// measures the achieved RPO from the data, and leaves nothing behind.
/// The shop needs the database (through its orders service) and a file
/// tree: drilled as one service, both are restored and verified.
#[test]
fn a_postgres_dump_is_loaded_into_a_throwaway_cluster_and_checked() {
    let ws = Workspace::new();
    ws.init();
    // Outside the workspace: `nobody` must reach it.
    let prod_dir = std::env::temp_dir().join(format!("haven-test-prod-{}", std::process::id()));
    let prod = Production::start(&prod_dir);
    prod.psql(
        "CREATE TABLE items (id int PRIMARY KEY, updated_at timestamptz); \
         INSERT INTO items SELECT g, now() - interval '2 hours' FROM generate_series(1, 100) g;",
    );
    let data = ws.path("data");
    std::fs::create_dir_all(data.join("catalog")).expect("mkdir");
    let catalog = |expect: &str| {
        format!(
            r#"
[[service]]
id = "shop"
tier = 1
rpo = "1d"
rto = "4h"
mtd = "1d"
depends_on = ["orders", "shop-files"]

[[service]]
id = "orders"
tier = 1
rpo = "1d"
rto = "2h"
mtd = "1d"
depends_on = ["shop-db"]

[[system]]
id = "shop-files"
kind = "file-server"
policy = "nightly"

[[system.backup_set]]
paths = ["{files}"]

[[system.check]]
type = "command"
run = "grep -r 'catalogue' ."
expect_exit = 0

[[system]]
id = "shop-db"
kind = "database-postgres"
policy = "nightly"
recovery_point_query = "SELECT max(updated_at) FROM items"

[[system.backup_set]]
command = "{dump}"

[[system.check]]
type = "sql"
query = "SELECT count(*) FROM items"
expect = "{expect}"

[[system.check]]
type = "command"
run = "psql -X -A -t -c 'SELECT 1'"
expect_exit = 0

[[policy]]
id = "nightly"
schedule = "0 2 * * *"
repository = "main"

[[repository]]
id = "main"
url = "{repo}"
password = "env:HAVEN_PASSWORD"
"#,
            dump = prod.dump_command(),
            repo = ws.repo().display(),
            files = ws.path("shop-files").display(),
        )
    };
    std::fs::create_dir_all(ws.path("shop-files")).expect("mkdir");
    std::fs::write(ws.path("shop-files/index.html"), "the catalogue\n").expect("write");
    std::fs::write(data.join("catalog/catalog.toml"), catalog("100")).expect("catalog");
    let haven = || {
        let mut cmd = ws.haven();
        cmd.arg("--data-dir")
            .arg(&data)
            .env("HAVEN_PASSWORD", PASSWORD);
        cmd
    };
    haven().args(["run", "shop-db"]).assert().success();
    haven().args(["run", "shop-files"]).assert().success();
    let drill = |code: i32| {
        parse_json(
            &haven()
                .args(["--json", "drill", "shop-db"])
                .output()
                .expect("drill"),
            code,
        )
    };
    let passed = drill(0);
    assert_eq!(passed["verdict"], "pass", "{passed:#}");
    assert_eq!(passed["sandbox"], "postgres");
    let kinds: Vec<&str> = passed["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        ["restore", "start", "load", "check", "check", "check"],
        "{passed:#}"
    );
    assert_eq!(passed["steps"][3]["detail"], "100");
    // The achieved RPO comes from the data: rows last updated 2 hours
    // before, although the snapshot is a few seconds old.
    let rpo: jiff::SignedDuration = passed["achieved_rpo"]
        .as_str()
        .expect("rpo")
        .parse()
        .expect("duration");
    assert!(
        rpo >= jiff::SignedDuration::from_hours(2) && rpo < jiff::SignedDuration::from_hours(3),
        "{rpo:?}: {passed:#}"
    );

    // The shop as a whole: the database and the file tree (needed side by
    // side), each verified, the whole timed against the shop's RTO.
    let service = |code: i32| {
        parse_json(
            &haven()
                .args(["--json", "drill", "shop"])
                .output()
                .expect("drill"),
            code,
        )
    };
    let shop = service(0);
    assert_eq!(shop["verdict"], "pass", "{shop:#}");
    assert_eq!(
        shop["waves"],
        serde_json::json!([["shop-db", "shop-files"]]),
        "{shop:#}"
    );
    let verified: Vec<(&str, &str)> = shop["systems"]
        .as_array()
        .expect("systems")
        .iter()
        .map(|d| {
            (
                d["system"].as_str().expect("system"),
                d["verdict"].as_str().expect("verdict"),
            )
        })
        .collect();
    assert_eq!(verified.len(), 2, "{shop:#}");
    assert!(verified.contains(&("shop-db", "pass")) && verified.contains(&("shop-files", "pass")));

    // A wrong expectation fails the drill, saying what the data said.
    std::fs::write(data.join("catalog/catalog.toml"), catalog("101")).expect("catalog");
    let failed = drill(1);
    let shop = service(1);
    assert!(
        shop["reasons"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("system shop-db failed its drill")),
        "{shop:#}"
    );
    assert!(
        failed["reasons"]
            .to_string()
            .contains("the answer is \\\"100\\\", expected \\\"101\\\""),
        "{failed:#}"
    );

    // No throwaway cluster and no sandbox is left.
    assert!(
        !std::fs::read_dir(data.join("sandboxes"))
            .expect("sandboxes")
            .any(|_| true)
    );
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("shop-db-postgres-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    drop(prod);
    let _ = std::fs::remove_dir_all(&prod_dir);
}

/// SIGINT mid-drill: the check's processes are killed and the sandbox is
/// removed before the command exits; nothing is left behind.
#[test]
fn an_interrupted_drill_leaves_no_process_or_directory_behind() {
    let s = site("true");
    let pid_file = s.ws.path("check.pid");
    let text = std::fs::read_to_string(s.data.join("catalog/catalog.toml"))
        .expect("read")
        .replace(
            "run = \"true\"",
            &format!(
                "run = \"sleep 300 & echo $! > {}; wait\"",
                pid_file.display()
            ),
        );
    std::fs::write(s.data.join("catalog/catalog.toml"), text).expect("write");
    let mut drill = std::process::Command::new(assert_cmd::cargo::cargo_bin("haven"))
        .args(["--json", "drill", "docs", "--data-dir"])
        .arg(&s.data)
        .env("HAVEN_PASSWORD", PASSWORD)
        .env("HAVEN_REPO", s.ws.repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("drill");
    // The shell creates the file before it writes the pid: wait for a pid.
    let mut sleeper = String::new();
    crate::server::wait_for("the check's process", || {
        sleeper = std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
            .to_string();
        sleeper.parse::<u32>().is_ok()
    });
    assert_eq!(s.sandboxes().len(), 1, "the drill is in its sandbox");
    crate::server::signal(&drill, rustix::process::Signal::INT);
    let status = crate::server::exited(&mut drill);
    assert_eq!(status.code(), Some(1));
    assert!(s.sandboxes().is_empty(), "{:?}", s.sandboxes());
    assert!(
        crate::server::process_gone(&sleeper),
        "the check's process was killed"
    );
}

/// Readiness in `haven status`: not-verified → verified → needs
/// verification once the catalog changes what the drill proved → failed.
#[test]
fn status_shows_each_services_readiness_from_its_drills() {
    let s = site("echo the documents");
    let readiness = || {
        let out = s
            .haven()
            .args(["--json", "status"])
            .output()
            .expect("status");
        let status = parse_json(&out, 0);
        let service = status["services"]
            .as_array()
            .expect("services")
            .iter()
            .find(|x| x["service"] == "intranet")
            .cloned()
            .expect("intranet");
        (
            service["readiness"].as_str().unwrap_or("").to_string(),
            service["readiness_reason"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    };
    assert_eq!(readiness().0, "not-verified");
    s.drill(&[], 0);
    let (state, why) = readiness();
    assert_eq!(state, "verified", "{why}");
    assert!(why.starts_with("docs: drill "), "{why}");
    // The pass's restore throughput predicts the RTO for today's size.
    let out = s
        .haven()
        .args(["--json", "status"])
        .output()
        .expect("status");
    let status = parse_json(&out, 0);
    let predicted = status["systems"][0]["predicted_rto"]
        .as_str()
        .expect("predicted");
    assert!(predicted.starts_with("PT"), "{status:#}");
    assert_eq!(
        status["services"][0]["predicted_rto"].as_str(),
        Some(predicted)
    );
    // The check changes: the pass no longer proves the system as declared.
    let edit = |from: &str, to: &str| {
        let text = std::fs::read_to_string(s.data.join("catalog/catalog.toml"))
            .expect("read")
            .replace(from, to);
        std::fs::write(s.data.join("catalog/catalog.toml"), text).expect("write");
    };
    edit("echo the documents", "echo the documents; true");
    assert_eq!(readiness().0, "needs-verification");
    edit("echo the documents; true", "exit 1");
    s.drill(&[], 1);
    let (state, why) = readiness();
    assert_eq!(state, "failed");
    assert!(why.contains("failed"), "{why}");
}

/// `haven drills show ID` (or `haven drill show ID`): the evidence an
/// auditor asks for, as Markdown or one self-contained HTML page with the
/// step timeline as SVG.
#[test]
fn a_drill_is_reported_for_an_auditor() {
    let s = site("echo the documents");
    let id = s.drill(&[], 0)["id"].as_i64().expect("id").to_string();
    let show = |format: &str| {
        let out = s
            .haven()
            .args(["drills", "show", &id, "--format", format])
            .output()
            .expect("show");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let md = show("md");
    assert!(
        md.starts_with(&format!("# Drill {id} of docs: PASS")),
        "{md}"
    );
    assert!(md.contains("| RTO | 4h |"), "{md}");
    assert!(
        md.contains("check 1 (command `echo the documents`)"),
        "{md}"
    );
    let html = show("html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg"), "the timeline");
    assert!(!html.contains("<script"), "no scripts");
    // No external resources: the SVG namespace is the only URL.
    assert_eq!(html.matches("http").count(), 1, "{html}");
    let json: Value = serde_json::from_str(&show("json")).expect("json");
    assert_eq!(json["id"].to_string(), id);
    // `haven drill show ID` is the same report.
    let out = s
        .haven()
        .args(["drill", "show", &id, "--format", "md"])
        .output()
        .expect("drill show");
    assert_eq!(String::from_utf8(out.stdout).expect("utf-8"), md);
    let out = s
        .haven()
        .args(["--json", "drills", "show", "9999"])
        .output()
        .expect("show");
    assert_eq!(parse_json(&out, 1)["error"]["code"], "no-such-drill");
}

/// Through a running server a failed drill opens `drill-failed`, and the
/// next passing drill resolves it.
#[test]
fn a_failed_drill_through_the_server_is_an_alert_until_a_drill_passes() {
    let s = site("echo something else");
    std::fs::write(s.data.join("haven.toml"), "listen = \"127.0.0.1:0\"\n").expect("settings");
    let mut server = crate::server::start_server_in(&s.data, &s.ws.path("server.log"), "022", &[]);
    let failed = s.drill(&[], 1);
    let alerts = |open: bool| {
        let mut args = vec!["--json", "alerts"];
        if open {
            args.push("--open");
        }
        let out = s.haven().args(&args).output().expect("alerts");
        parse_json(&out, 0)
            .as_array()
            .expect("alerts")
            .iter()
            .filter(|a| a["rule"] == "drill-failed")
            .cloned()
            .collect::<Vec<Value>>()
    };
    let open = alerts(true);
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_eq!(open[0]["key"], "drill-failed:docs");
    assert!(
        open[0]["summary"]
            .as_str()
            .expect("summary")
            .contains(&format!("drill {} of docs failed", failed["id"])),
        "{}",
        open[0]
    );
    // The check is fixed (the server reloads the catalog) and passes.
    let text = std::fs::read_to_string(s.data.join("catalog/catalog.toml"))
        .expect("read")
        .replace("echo something else", "echo the documents");
    std::fs::write(s.data.join("catalog/catalog.toml"), text).expect("write");
    let mut passed = Value::Null;
    crate::server::wait_for("the reloaded catalog to pass the drill", || {
        let out = s
            .haven()
            .args(["--json", "drill", "docs"])
            .output()
            .expect("drill");
        passed = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        passed["verdict"] == "pass"
    });
    assert!(alerts(true).is_empty(), "{:#?}", alerts(false));
    assert_eq!(alerts(false)[0]["state"], "resolved");
    crate::server::signal(&server, rustix::process::Signal::TERM);
    assert!(crate::server::exited(&mut server).success());
}

/// "Anything else": a set declares how to load its restored dump and how
/// to start the restored service; the drill runs both in the sandbox with
/// a free loopback port, probes the started service there, and kills it
/// when done.
#[test]
fn a_declared_load_and_start_are_probed_in_the_sandbox() {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    std::fs::create_dir_all(data.join("catalog")).expect("mkdir");
    let python = std::env::var("HAVEN_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let catalog = format!(
        r#"
[[service]]
id = "site"
tier = 2
rpo = "1d"
rto = "4h"
mtd = "1d"
depends_on = ["web"]

[[system]]
id = "web"
kind = "web-server"
policy = "nightly"

[[system.backup_set]]
name = "pages"
command = "printf 'the front page'"
restore_command = "mkdir www && cp \"$HAVEN_RESTORE_FILE\" www/index.html && echo $HAVEN_PORT > port"
start = "{python} -m http.server $HAVEN_PORT --bind 127.0.0.1 --directory www"

[[system.check]]
type = "http"
url = "http://127.0.0.1:$HAVEN_PORT/index.html"
expect_status = 200

[[system.check]]
type = "tcp"
address = "127.0.0.1:${{HAVEN_PORT}}"

[[system.check]]
type = "command"
run = "test \"$(cat port)\" = \"$HAVEN_PORT\" && curl -fsS http://127.0.0.1:$HAVEN_PORT/ || cat www/index.html"
expect_output = "the front page"

[[policy]]
id = "nightly"
schedule = "0 2 * * *"
repository = "main"

[[repository]]
id = "main"
url = "{repo}"
password = "env:HAVEN_PASSWORD"
"#,
        repo = ws.repo().display(),
    );
    std::fs::write(data.join("catalog/catalog.toml"), catalog).expect("catalog");
    let haven = || {
        let mut cmd = ws.haven();
        cmd.arg("--data-dir")
            .arg(&data)
            .env("HAVEN_PASSWORD", PASSWORD);
        cmd
    };
    haven().args(["run", "web"]).assert().success();
    let drill = parse_json(
        &haven()
            .args(["--json", "drill", "web", "--keep"])
            .output()
            .expect("drill"),
        0,
    );
    assert_eq!(drill["verdict"], "pass", "{drill:#}");
    assert_eq!(drill["sandbox"], "command");
    let kinds: Vec<&str> = drill["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        ["restore", "load", "start", "check", "check", "check"]
    );
    assert_eq!(drill["steps"][3]["detail"], "status 200");
    // The service is gone with the drill: its port no longer answers.
    let kept = std::path::PathBuf::from(drill["kept_sandbox"].as_str().expect("kept"));
    let port: u16 = std::fs::read_to_string(kept.join("port"))
        .expect("port")
        .trim()
        .parse()
        .expect("port number");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the started service was stopped"
    );
    std::fs::remove_dir_all(&kept).expect("remove the kept sandbox");
}

/// SIGINT while a PostgreSQL drill runs its checks: the throwaway cluster
/// is stopped and its directory removed, the check's process killed and
/// the sandbox removed before the command exits.
#[test]
fn an_interrupted_postgres_drill_stops_its_cluster() {
    let ws = Workspace::new();
    ws.init();
    let prod_dir = std::env::temp_dir().join(format!("haven-test-prod-int-{}", std::process::id()));
    let prod = Production::start(&prod_dir);
    prod.psql("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);");
    let data = ws.path("data");
    std::fs::create_dir_all(data.join("catalog")).expect("mkdir");
    let pid_file = ws.path("check.pid");
    let catalog = format!(
        r#"
[[system]]
id = "ledger-db"
kind = "database-postgres"
policy = "nightly"

[[system.backup_set]]
command = "{dump}"

[[system.check]]
type = "command"
run = "sleep 300 & echo $! > {pid_file}; wait"

[[policy]]
id = "nightly"
schedule = "0 2 * * *"
repository = "main"

[[repository]]
id = "main"
url = "{repo}"
password = "env:HAVEN_PASSWORD"
"#,
        dump = prod.dump_command(),
        pid_file = pid_file.display(),
        repo = ws.repo().display(),
    );
    std::fs::write(data.join("catalog/catalog.toml"), catalog).expect("catalog");
    ws.haven()
        .arg("--data-dir")
        .arg(&data)
        .env("HAVEN_PASSWORD", PASSWORD)
        .args(["run", "ledger-db"])
        .assert()
        .success();
    let mut drill = std::process::Command::new(assert_cmd::cargo::cargo_bin("haven"))
        .args(["--json", "drill", "ledger-db", "--data-dir"])
        .arg(&data)
        .env("HAVEN_PASSWORD", PASSWORD)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("drill");
    let mut sleeper = String::new();
    crate::server::wait_for("the check's process", || {
        sleeper = std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
            .to_string();
        sleeper.parse::<u32>().is_ok()
    });
    // The throwaway cluster runs now: its postmaster's pid.
    let cluster = std::env::temp_dir().join(format!("ledger-db-postgres-{}", drill.id()));
    let postmaster = std::fs::read_to_string(cluster.join("data/postmaster.pid"))
        .expect("the cluster runs")
        .lines()
        .next()
        .expect("pid line")
        .to_string();
    crate::server::signal(&drill, rustix::process::Signal::INT);
    assert_eq!(crate::server::exited(&mut drill).code(), Some(1));
    assert!(!cluster.exists(), "the cluster's directory is removed");
    assert!(
        crate::server::process_gone(&postmaster),
        "the throwaway PostgreSQL stopped"
    );
    assert!(
        crate::server::process_gone(&sleeper),
        "the check was killed"
    );
    assert!(
        std::fs::read_dir(data.join("sandboxes"))
            .expect("sandboxes")
            .next()
            .is_none(),
        "no sandbox left"
    );
    drop(prod);
    let _ = std::fs::remove_dir_all(&prod_dir);
}

/// `haven recover --dry-run`: the waves, the steps and the forecast, the
/// system's estimate taken from its last passing drill.
#[test]
fn a_recovery_dry_run_forecasts_from_the_drill_history() {
    let s = site("echo the documents");
    let forecast = |code: i32| {
        let out = s
            .haven()
            .args(["--json", "recover", "--services", "intranet", "--dry-run"])
            .output()
            .expect("recover");
        parse_json(&out, code)
    };
    let before = forecast(0);
    assert_eq!(before["plan"]["units"][0]["id"], "docs");
    assert_eq!(
        before["plan"]["units"][0]["steps"][0]["name"],
        "restore docs/default"
    );
    assert_eq!(before["items"][0]["basis"], "no estimate (counted as none)");
    assert_eq!(
        before["critical_path"],
        serde_json::json!(["docs", "intranet"])
    );
    let drill = s.drill(&[], 0);
    let after = forecast(0);
    let basis = after["items"][0]["basis"].as_str().expect("basis");
    assert!(
        basis.starts_with(&format!("drill {}: its restore throughput", drill["id"])),
        "{after:#}"
    );
    assert_ne!(after["items"][0]["estimate"], "PT0S");
    assert_eq!(after["breaches"], serde_json::json!([]));
    // Unknown names are errors with their code.
    let out = s
        .haven()
        .args(["--json", "recover", "--plan", "nope", "--dry-run"])
        .output()
        .expect("recover");
    assert_eq!(parse_json(&out, 1)["error"]["code"], "no-such-plan");
}
