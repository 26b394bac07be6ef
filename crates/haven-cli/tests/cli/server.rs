//! `haven server` and the commands that talk to it: a real server process
//! on loopback with a real repository and SQLite database, killed with
//! SIGKILL mid-job, reloaded with SIGHUP, stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{PASSWORD, Workspace, parse_json};

/// Wait until `ready` holds (checked every 50 ms), or fail after 60 s.
pub(crate) fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait for a process to exit, or fail after 60 s.
pub(crate) fn exited(child: &mut Child) -> std::process::ExitStatus {
    let mut status = None;
    wait_for("the process to exit", || {
        status = child.try_wait().expect("wait");
        status.is_some()
    });
    status.expect("exited")
}

/// `haven server` on `data`, started from a shell with `umask` and extra
/// environment, its log in `log`; back once it listens (its address
/// file is written), or failing with its log when it exits first.
pub(crate) fn start_server_in(
    data: &Path,
    log: &Path,
    umask: &str,
    env: &[(&str, &str)],
) -> Server {
    let _ = std::fs::remove_file(data.join("server.addr"));
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$@\""))
        .arg("sh")
        .arg(assert_cmd::cargo::cargo_bin("haven"))
        .arg("server")
        .arg("--data-dir")
        .arg(data)
        .env("HAVEN_PASSWORD", PASSWORD)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("start the server");
    wait_for("the server's address file", || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server exited with {status}:\n{}", log_of(log));
        }
        data.join("server.addr").exists()
    });
    Server(child)
}

/// A server a test started: killed when the test ends without stopping
/// it (a failed assertion must not leave servers behind).
pub(crate) struct Server(pub(crate) Child);

impl std::ops::Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub(crate) struct Instance {
    pub ws: Workspace,
    pub data: PathBuf,
}

impl Instance {
    /// A data dir whose catalog has a file system and a "database" whose
    /// dump command blocks until the file `go` exists.
    pub fn new() -> Self {
        let ws = Workspace::new();
        ws.init();
        let data = ws.path("data-dir");
        std::fs::create_dir_all(data.join("catalog")).expect("mkdir");
        std::fs::create_dir_all(ws.path("files")).expect("mkdir");
        std::fs::write(ws.path("files/a.txt"), "some important data\n").expect("write");
        std::fs::write(data.join("haven.toml"), "listen = \"127.0.0.1:0\"\n").expect("write");
        let instance = Instance { ws, data };
        instance.write_catalog("files");
        instance
    }

    fn write_catalog(&self, files_dir: &str) {
        let catalog = format!(
            r#"
[[service]]
id = "orders"
tier = 1
rpo = "2d"
rto = "1d"
mtd = "3d"
depends_on = ["orders-db", "file-share"]

[[system]]
id = "file-share"
kind = "file-server"
policy = "daily"

[[system.backup_set]]
paths = ["{files}"]

[[system]]
id = "orders-db"
kind = "database-postgres"
policy = "daily"

[[system.backup_set]]
name = "dump"
command = "echo $$ > {pid}; while [ ! -e {go} ]; do sleep 0.05; done; echo orders-data"

[[policy]]
id = "daily"
schedule = "0 3 * * *"
timezone = "UTC"
repository = "main"

[[repository]]
id = "main"
url = "{repo}"
password = "env:HAVEN_PASSWORD"
"#,
            files = self.ws.path(files_dir).display(),
            go = self.ws.path("go").display(),
            pid = self.ws.path("dump.pid").display(),
            repo = self.ws.repo().display(),
        );
        std::fs::write(self.data.join("catalog/catalog.toml"), catalog).expect("write");
    }

    /// Channels and one escalation step: `broken` (a gateway that is down,
    /// one retry after `retry_delay`) fails over to `log`, which appends
    /// each message to `notified`.
    fn write_watch(&self, retry_delay: &str, notified: &Path) {
        let watch = format!(
            r#"
[[channel]]
id = "broken"
type = "command"
run = "echo gateway down >&2; exit 3"
retries = 1
retry_delay = "{retry_delay}"

[[channel]]
id = "log"
type = "command"
run = "cat >> {notified}"

[[escalation]]
id = "everything"

[[escalation.step]]
channels = ["broken", "log"]
wait = "1h"
"#,
            notified = notified.display()
        );
        std::fs::write(self.data.join("catalog/watch.toml"), watch).expect("write");
    }

    pub fn haven(&self) -> assert_cmd::Command {
        let mut cmd = self.ws.haven();
        cmd.arg("--data-dir").arg(&self.data);
        cmd
    }

    pub fn json(&self, args: &[&str], code: i32) -> Value {
        let out = self.haven().arg("--json").args(args).output().expect("run");
        parse_json(&out, code)
    }

    pub fn start_server(&self, log: &str) -> Server {
        self.start_server_with_umask(log, "022")
    }

    /// The server started from a shell with `umask` set.
    fn start_server_with_umask(&self, log: &str, umask: &str) -> Server {
        self.start_server_with(log, umask, &[])
    }

    /// The server started from a shell with `umask` set and extra
    /// environment.
    pub fn start_server_with(&self, log: &str, umask: &str, env: &[(&str, &str)]) -> Server {
        start_server_in(&self.data, &self.ws.path(log), umask, env)
    }

    pub fn jobs(&self) -> Vec<Value> {
        self.json(&["jobs", "--limit", "1000"], 0)
            .as_array()
            .expect("array")
            .clone()
    }

    pub fn job_where(&self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        self.jobs().into_iter().find(|j| pred(j))
    }
}

pub(crate) fn is(job: &Value, task: &str, outcome: &str) -> bool {
    job["task"] == task && job["outcome"] == outcome
}

pub(crate) fn signal(child: &Child, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, signal).expect("signal");
}

/// Is `pid` gone (exited, or a zombie waiting to be reaped)?
pub(crate) fn process_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

pub(crate) fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn the_server_runs_jobs_records_evidence_and_serves_status_jobs_and_run() {
    let inst = Instance::new();
    std::fs::write(inst.ws.path("go"), "").expect("go");
    let mut server = inst.start_server("server.log");
    // A second server on the same data dir is refused.
    let second = inst.haven().arg("server").output().expect("run");
    assert_eq!(second.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&second.stderr)
            .contains("another Haven server is using the data dir"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    // Never backed up yet: measured from when the server first saw it.
    let status = inst.json(&["status"], 0);
    assert_eq!(status["source"], "server");
    let queued = inst.json(&["run", "file-share"], 0);
    assert_eq!(queued["queued"][0], "backup:file-share/default");
    let queued = inst.json(&["run", "orders-db"], 0);
    assert_eq!(queued["queued"][0], "backup:orders-db/dump");
    wait_for("both backups", || {
        inst.job_where(|j| is(j, "backup:file-share/default", "success"))
            .is_some()
            && inst
                .job_where(|j| is(j, "backup:orders-db/dump", "success"))
                .is_some()
    });
    let job = inst
        .job_where(|j| is(j, "backup:file-share/default", "success"))
        .expect("job");
    assert_eq!(job["trigger"], "manual");
    assert_eq!(job["system"], "file-share");
    assert_eq!(job["policy"], "daily");
    assert_eq!(job["stats"]["files_new"], 1);
    assert!(job["stats"]["bytes_added"].as_u64().expect("bytes") > 0);
    let snapshot = job["snapshot_id"].as_str().expect("snapshot").to_string();
    // The evidence matches the repository.
    let snapshots = inst.ws.json(&["snapshots"], 0);
    assert!(
        snapshots
            .as_array()
            .expect("array")
            .iter()
            .any(|s| s["id"] == snapshot.as_str()),
        "{snapshots}"
    );
    let shown = inst.json(&["job", "show", &job["id"].to_string()], 0);
    assert_eq!(shown, job);
    let status = inst.json(&["status"], 0);
    let service = &status["services"][0];
    assert_eq!(service["service"], "orders");
    assert_eq!(service["state"], "ok");
    assert!(
        service["next_run"]
            .as_str()
            .expect("next run")
            .ends_with("Z")
    );
    inst.haven()
        .args(["status", "--fail-on", "violated"])
        .assert()
        .code(0);
    // Unknown system: explained, exit 1.
    let out = inst.haven().args(["run", "nope"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no backups in the catalog"));
    // The API refuses requests without the token.
    let address = std::fs::read_to_string(inst.data.join("server.addr")).expect("addr");
    let answer = http_get(address.trim(), "/api/v1/status", None);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let token = std::fs::read_to_string(inst.data.join("api-token")).expect("token");
    let answer = http_get(address.trim(), "/api/v1/status", Some(token.trim()));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A broken catalog is refused on reload; the server keeps the old one.
    std::fs::write(inst.data.join("catalog/broken.toml"), "[[system]\n").expect("write");
    signal(&server, rustix::process::Signal::HUP);
    wait_for("the reload to be refused", || {
        log_of(&inst.ws.path("server.log")).contains("keeping the previous catalog")
    });
    assert_eq!(
        inst.json(&["run", "file-share"], 0)["queued"][0],
        "backup:file-share/default"
    );
    // Fixed again: picked up from the file change, no signal needed.
    std::fs::remove_file(inst.data.join("catalog/broken.toml")).expect("rm");
    wait_for("the reload", || {
        log_of(&inst.ws.path("server.log")).contains("catalog reloaded")
    });
    // The start, both reloads and the backups' jobs are in the audit log,
    // as Haven's own.
    let log = inst.json(&["audit", "log"], 0);
    let automation: Vec<(String, String)> = log
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["actor"] == "haven")
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (field("action"), field("outcome"))
        })
        .collect();
    for expected in [
        ("server.start", "success"),
        ("catalog.reload", "refused"),
        ("catalog.reload", "success"),
        ("backup.start", "success"),
    ] {
        let expected = (expected.0.to_string(), expected.1.to_string());
        assert!(automation.contains(&expected), "{expected:?}: {log:#}");
    }
    signal(&server, rustix::process::Signal::TERM);
    let status = exited(&mut server);
    assert!(
        status.success(),
        "{status:?}\n{}",
        log_of(&inst.ws.path("server.log"))
    );
    assert!(!inst.data.join("server.addr").exists());
    // Without a server, the same commands read the data dir.
    let status = inst.json(&["status"], 0);
    assert_eq!(status["source"], "data-dir");
    assert_eq!(status["services"][0]["state"], "ok");
    let jobs = inst.jobs();
    assert_eq!(
        jobs.len(),
        3,
        "two manual runs of file-share, one of orders-db: {jobs:?}"
    );
}

pub(crate) fn http_get(address: &str, path: &str, token: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn sigkill_mid_job_records_it_interrupted_runs_it_again_and_loses_no_record() {
    let inst = Instance::new();
    std::fs::write(inst.ws.path("go"), "").expect("go");
    let mut server = inst.start_server("first.log");
    inst.json(&["run", "orders-db"], 0);
    wait_for("the first backup", || {
        inst.job_where(|j| is(j, "backup:orders-db/dump", "success"))
            .is_some()
    });
    // The next dump blocks until `go` exists again.
    std::fs::remove_file(inst.ws.path("go")).expect("rm");
    inst.json(&["run", "orders-db"], 0);
    wait_for("the second backup to run", || {
        inst.job_where(|j| is(j, "backup:orders-db/dump", "running"))
            .is_some()
    });
    let before = inst.jobs();
    let running = inst
        .job_where(|j| is(j, "backup:orders-db/dump", "running"))
        .expect("running");
    signal(&server, rustix::process::Signal::KILL);
    exited(&mut server);
    // The data dir is free again; the record still says running.
    let on_disk = inst.json(&["job", "show", &running["id"].to_string()], 0);
    assert_eq!(on_disk["outcome"], "running");
    let mut server = inst.start_server("second.log");
    let died = inst.json(&["job", "show", &running["id"].to_string()], 0);
    assert_eq!(died["outcome"], "interrupted");
    assert!(
        died["message"]
            .as_str()
            .expect("message")
            .contains("the server stopped")
    );
    wait_for("the job to run again", || {
        inst.job_where(|j| is(j, "backup:orders-db/dump", "running") && j["trigger"] == "recovery")
            .is_some()
    });
    // Exactly one job of the task runs.
    let running_now: Vec<Value> = inst
        .jobs()
        .into_iter()
        .filter(|j| j["task"] == "backup:orders-db/dump" && j["outcome"] == "running")
        .collect();
    assert_eq!(running_now.len(), 1, "{running_now:?}");
    assert_eq!(running_now[0]["attempt"], 2);
    std::fs::write(inst.ws.path("go"), "").expect("go");
    wait_for("the recovery to succeed", || {
        inst.job_where(|j| is(j, "backup:orders-db/dump", "success") && j["trigger"] == "recovery")
            .is_some()
    });
    signal(&server, rustix::process::Signal::TERM);
    assert!(exited(&mut server).success());
    // Every record from before the kill is still there, unchanged but
    // for the interrupted one.
    let after = inst.jobs();
    for job in &before {
        let now = after
            .iter()
            .find(|j| j["id"] == job["id"])
            .unwrap_or_else(|| panic!("job {} lost", job["id"]));
        if job["id"] != running["id"] {
            assert_eq!(now, job);
        }
    }
    // The repository is consistent and has both snapshots.
    inst.ws.haven().args(["repo", "check"]).assert().success();
    let snapshots = inst.ws.json(&["snapshots"], 0);
    assert_eq!(snapshots.as_array().expect("array").len(), 2);
}

#[test]
fn without_a_server_run_works_in_the_foreground_and_fail_on_gates_pipelines() {
    let inst = Instance::new();
    std::fs::write(inst.ws.path("go"), "").expect("go");
    // Before any backup: no evidence yet for either system.
    let jobs = inst.json(&["run", "file-share"], 0);
    let outcomes: Vec<(&str, &str)> = jobs
        .as_array()
        .expect("array")
        .iter()
        .map(|j| {
            (
                j["task"].as_str().unwrap_or(""),
                j["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(outcomes, [("backup:file-share/default", "success")]);
    let status = inst.json(&["status"], 0);
    assert_eq!(status["source"], "data-dir");
    let systems: Vec<(&str, &str)> = status["systems"]
        .as_array()
        .expect("array")
        .iter()
        .map(|s| {
            (
                s["system"].as_str().unwrap_or(""),
                s["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    // orders-db was never backed up: not "ok", however young.
    assert_eq!(
        systems,
        [("orders-db", "unprotected"), ("file-share", "ok")]
    );
    // A failing backup (the paths vanished): exit 1, classified.
    inst.write_catalog("gone");
    let out = inst
        .haven()
        .arg("--json")
        .args(["run", "file-share"])
        .output()
        .expect("run");
    let jobs = parse_json(&out, 1);
    assert_eq!(jobs[0]["outcome"], "failed");
    assert_eq!(jobs[0]["failure"]["class"], "configuration-drift");
    assert_eq!(jobs[0]["failure"]["detail"], "path-missing");
    let failed = inst.json(&["jobs", "--failed"], 0);
    assert_eq!(failed.as_array().expect("array").len(), 1);
    let since = inst.json(&["jobs", "--since", "1h", "--system", "file-share"], 0);
    assert_eq!(since.as_array().expect("array").len(), 2);
    // Pipelines: only states at or worse than the limit fail.
    inst.haven()
        .args(["status", "--fail-on", "quarantined"])
        .assert()
        .code(0);
    let quarantined = inst.json(&["status", "--state", "quarantined"], 0);
    assert_eq!(quarantined["systems"], serde_json::json!([]));
    // Bad input is explained.
    let out = inst
        .haven()
        .args(["jobs", "--since", "yesterday-ish"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
    let out = inst
        .haven()
        .args(["status", "--data-dir", "/nonexistent/haven"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Haven data dir"));
    std::fs::write(inst.data.join("haven.toml"), "listen = \"nowhere\"\n").expect("write");
    let out = inst.haven().args(["status"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("haven.toml") && err.contains("`listen`"),
        "{err}"
    );
}

#[test]
fn a_system_never_backed_up_past_its_rpo_is_quarantined_and_fails_the_pipeline() {
    let inst = Instance::new();
    // A failing run registers both sets; then pretend Haven first saw
    // them 4 days ago (RPO 2d: 150 % is 3d).
    inst.write_catalog("gone");
    inst.haven().args(["run", "file-share"]).assert().code(1);
    let db = inst.data.join("haven.db");
    let four_days_ago = jiff::Timestamp::now().as_millisecond() - 4 * 86_400_000;
    rewrite_first_seen(&db, four_days_ago);
    let out = inst
        .haven()
        .arg("--json")
        .args([
            "status",
            "--state",
            "quarantined",
            "--fail-on",
            "quarantined",
        ])
        .output()
        .expect("run");
    let status = parse_json(&out, 1);
    let systems: Vec<&str> = status["systems"]
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["system"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(systems, ["file-share", "orders-db"]);
    assert_eq!(status["systems"][0]["never_backed_up"], true);
    assert_eq!(status["services"][0]["state"], "quarantined");
}

/// Move every set's "first seen" back in time (as if the server had been
/// protecting them for a while).
fn rewrite_first_seen(db: &Path, ms: i64) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect({db:?}); c.execute('UPDATE set_states SET first_seen = {ms}'); c.commit()",
            db = db.display().to_string()
        ))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_demo_builds_an_instance_from_acme_backs_everything_up_and_is_reused() {
    let ws = Workspace::new();
    let data = ws.path("demo");
    let acme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme");
    let stdout = ws.path("demo.out");
    let log = ws.path("demo.log");
    let mut demo = Command::new(assert_cmd::cargo::cargo_bin("haven"))
        .args(["demo", "--listen", "127.0.0.1:0", "--from"])
        .arg(&acme)
        .arg("--data-dir")
        .arg(&data)
        .env_remove("HAVEN_PASSWORD")
        .env_remove("HAVEN_REPO")
        .stdout(std::fs::File::create(&stdout).expect("out"))
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start the demo");
    wait_for("the demo's first backups", || {
        if let Ok(Some(status)) = demo.try_wait() {
            panic!("the demo exited with {status}:\n{}", log_of(&log));
        }
        log_of(&stdout).contains("The server keeps running")
    });
    let printed = log_of(&stdout);
    assert!(
        printed.contains("SERVICE") && printed.contains("haven status --data-dir"),
        "{printed}"
    );
    // The console's address and a one-time admin password: it logs in.
    let console = printed
        .lines()
        .find_map(|l| l.strip_prefix("Console: http://"))
        .expect("the console's address");
    let address = console.split('/').next().expect("address").to_string();
    let password = console
        .split("password ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .expect("the password")
        .to_string();
    let form = format!("name=admin&password={password}");
    let (status, head, body) = crate::access::http(
        &address,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    );
    assert_eq!(status, 303, "{body}");
    assert!(head.contains("haven_session=hvs_"), "{head}");
    // Every backed-up system has a good first backup, through the API.
    let mut cmd = assert_cmd::Command::cargo_bin("haven").expect("haven");
    let out = cmd
        .args(["--json", "status", "--data-dir"])
        .arg(&data)
        .output()
        .expect("status");
    let status = parse_json(&out, 0);
    assert_eq!(status["source"], "server");
    let systems = status["systems"].as_array().expect("array");
    assert_eq!(systems.len(), 14, "{status}");
    for system in systems {
        if system["system"] == "shop-db" {
            // No MySQL in the demo: its dump fails on purpose, and its
            // RPO clock started before the demo: violated at once.
            assert_eq!(system["last_outcome"], "failed", "{system}");
            assert_eq!(system["state"], "violated", "{system}");
            continue;
        }
        assert_eq!(system["last_outcome"], "success", "{system}");
        assert_ne!(system["state"], "quarantined", "{system}");
    }
    let webshop = status["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["service"] == "webshop")
        .expect("the webshop");
    assert_eq!(webshop["state"], "violated", "{webshop}");
    // A failed drill: the PLM vault's sample data lacks its index.
    assert!(
        printed.contains(" of plm-vault: fail (measured RTO"),
        "{printed}"
    );
    // An open request: dana's recovery of the ERP waits for approval.
    assert!(
        printed.contains("dana asks to recover the ERP"),
        "{printed}"
    );
    let mut cmd = assert_cmd::Command::cargo_bin("haven").expect("haven");
    let out = cmd
        .args(["--json", "request", "list", "--data-dir"])
        .arg(&data)
        .output()
        .expect("requests");
    let requests = parse_json(&out, 0);
    assert!(
        requests.as_array().is_some_and(|r| r
            .iter()
            .any(|r| r["action"] == "recovery.start" && r["state"] == "pending")),
        "{requests}"
    );
    // The database systems dump a real PostgreSQL cluster where the
    // binaries are installed; scripts/test.sh makes sure they are and
    // requires it.
    let catalog = std::fs::read_to_string(data.join("catalog/systems.toml")).expect("catalog");
    if std::env::var_os("HAVEN_TEST_REQUIRE_POSTGRES").is_some()
        || Path::new("/usr/lib/postgresql").exists()
    {
        assert!(catalog.contains("pg_dump -h"), "{catalog}");
        assert!(
            log_of(&log).contains("PostgreSQL cluster in"),
            "{}",
            log_of(&log)
        );
        // Its databases are drilled for real: a throwaway cluster loaded
        // from each dump, the catalog's sql checks run there.
        for system in ["erp-db", "mes-db"] {
            assert!(
                printed.contains(&format!(" of {system}: pass (measured RTO")),
                "{printed}"
            );
        }
    }
    signal(&demo, rustix::process::Signal::TERM);
    assert!(exited(&mut demo).success(), "{}", log_of(&log));
    let cluster = std::path::PathBuf::from(format!("{}.postgres", data.display()));
    if cluster.exists() {
        assert!(
            !cluster.join("data/postmaster.pid").exists(),
            "PostgreSQL stopped"
        );
    }
    // Again: the same data dir is reused, nothing regenerated.
    let before = std::fs::read_to_string(data.join("secrets/repository.pw")).expect("pw");
    let mut cmd = assert_cmd::Command::cargo_bin("haven").expect("haven");
    let out = cmd
        .args(["demo", "--no-server", "--from"])
        .arg(&acme)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("demo again");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("reusing the demo data dir"));
    let after = std::fs::read_to_string(data.join("secrets/repository.pw")).expect("pw");
    assert_eq!(before, after);
}

#[test]
fn sigterm_lets_a_running_job_finish_within_the_shutdown_timeout_and_interrupts_it_after() {
    let inst = Instance::new();
    // Phase 1: the job can finish in time.
    let mut server = inst.start_server("first.log");
    inst.json(&["run", "orders-db"], 0);
    wait_for("the backup to run", || {
        inst.job_where(|j| is(j, "backup:orders-db/dump", "running"))
            .is_some()
    });
    signal(&server, rustix::process::Signal::TERM);
    wait_for("the server to wait for its job", || {
        log_of(&inst.ws.path("first.log")).contains("shutting down: waiting")
    });
    assert!(
        server.try_wait().expect("wait").is_none(),
        "the server waits"
    );
    std::fs::write(inst.ws.path("go"), "").expect("go");
    assert!(exited(&mut server).success());
    let done = inst
        .job_where(|j| j["task"] == "backup:orders-db/dump")
        .expect("job");
    assert_eq!(done["outcome"], "success", "{done}");
    // Phase 2: a job that does not finish within the timeout is recorded
    // as interrupted.
    std::fs::remove_file(inst.ws.path("go")).expect("rm");
    std::fs::write(
        inst.data.join("haven.toml"),
        "listen = \"127.0.0.1:0\"\nshutdown_timeout = \"1s\"\n",
    )
    .expect("settings");
    let mut server = inst.start_server("second.log");
    inst.json(&["run", "orders-db"], 0);
    wait_for("the backup to run", || {
        inst.job_where(|j| is(j, "backup:orders-db/dump", "running"))
            .is_some()
    });
    signal(&server, rustix::process::Signal::TERM);
    assert!(exited(&mut server).success());
    // Its dump command (which would wait for `go` forever) was killed
    // with its process group, not left behind.
    let pid = std::fs::read_to_string(inst.ws.path("dump.pid")).expect("dump pid");
    wait_for("the interrupted job's dump to be killed", || {
        process_gone(pid.trim())
    });
    let cut = inst
        .job_where(|j| j["task"] == "backup:orders-db/dump")
        .expect("job");
    assert_eq!(cut["outcome"], "interrupted", "{cut}");
    assert!(
        cut["message"]
            .as_str()
            .expect("message")
            .contains("shut down")
    );
    // Let the orphaned dump command end.
    std::fs::write(inst.ws.path("go"), "").expect("go");
}

#[test]
fn alerts_are_raised_notified_with_failover_acknowledged_and_held_by_maintenance() {
    let inst = Instance::new();
    std::fs::write(inst.ws.path("go"), "").expect("go");
    // The file share's path does not exist: its backups fail.
    inst.write_catalog("missing");
    let notified = inst.ws.path("notified.txt");
    inst.write_watch("1s", &notified);
    std::fs::write(
        inst.data.join("haven.toml"),
        "listen = \"127.0.0.1:0\"\n[export]\nfile = \"events.jsonl\"\n",
    )
    .expect("write");
    let mut server = inst.start_server("server.log");

    inst.haven().args(["run", "file-share"]).assert().success();
    let open_alert = |rule: &str| {
        inst.json(&["alerts", "--open"], 0)
            .as_array()
            .expect("array")
            .iter()
            .find(|a| a["rule"] == rule)
            .cloned()
    };
    let mut alert = None;
    wait_for("a job-failed alert", || {
        alert = open_alert("job-failed");
        alert.is_some()
    });
    let alert = alert.expect("alert");
    let id = alert["id"].as_i64().expect("id").to_string();
    assert_eq!(
        alert["severity"], "critical",
        "major, raised for the tier-1 service"
    );
    assert_eq!(alert["subject"]["service"], "orders");
    assert_eq!(alert["facts"]["class"], "configuration-drift");
    // The first channel fails twice (one retry), the second takes it.
    wait_for("the notification", || {
        std::fs::read_to_string(&notified).is_ok_and(|t| t.contains("file-share"))
    });
    let mut detail = Value::Null;
    wait_for("three recorded attempts", || {
        detail = inst.json(&["alert", "show", &id], 0);
        detail["deliveries"]
            .as_array()
            .is_some_and(|d| d.len() == 3)
    });
    let attempts: Vec<(String, bool)> = detail["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| {
            (
                d["channel"].as_str().unwrap_or("").to_string(),
                d["ok"] == true,
            )
        })
        .collect();
    assert_eq!(
        attempts,
        vec![
            ("broken".into(), false),
            ("broken".into(), false),
            ("log".into(), true)
        ]
    );
    assert_eq!(
        detail["deliveries"][0]["error"],
        "the command exited with 3: gateway down"
    );
    // Every attempt is in the audit log as Haven's.
    let log = inst.json(&["audit", "log"], 0);
    let sent: Vec<(String, String)> = log
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "notification.send" && e["actor"] == "haven")
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (field("target"), field("outcome"))
        })
        .collect();
    let to = |channel: &str| format!("alert:{id} channel:{channel}");
    assert_eq!(
        sent,
        vec![
            (to("broken"), "failed".to_string()),
            (to("broken"), "failed".to_string()),
            (to("log"), "delivered".to_string()),
        ]
    );
    let text = inst.haven().args(["alerts"]).output().expect("alerts");
    let table = String::from_utf8_lossy(&text.stdout);
    assert!(table.contains("service orders (tier 1)"), "{table}");
    assert!(table.contains("MTTD"), "{table}");

    // Acknowledged through the API by a person who names herself: the
    // token is who acted, her name is recorded beside it, unverified.
    let acked = inst.json(&["alert", "ack", &id, "--by", "ana"], 0);
    assert_eq!(acked["state"], "acknowledged");
    assert_eq!(acked["acknowledged_by"], "api-token");
    assert_eq!(acked["acknowledged_declared"], "ana");
    let resolved = inst.json(&["alert", "resolve", &id, "--reason", "path restored"], 0);
    assert_eq!(resolved["state"], "resolved");
    let again = inst.json(&["alert", "resolve", &id], 1);
    inst.json(&["alert", "ack", "999"], 1);
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("already resolved")
    );

    // A maintenance window holds the next alert back…
    let window = inst.json(
        &[
            "maintenance",
            "add",
            "--system",
            "file-share",
            "--for",
            "1h",
            "--reason",
            "disk swap",
        ],
        0,
    );
    assert_eq!(window["id"], 1);
    let list = inst.json(&["maintenance", "list"], 0);
    assert_eq!(list[0]["id"], "m1");
    assert_eq!(list[0]["active"], true);
    let bad = inst.json(
        &["maintenance", "add", "--system", "nowhere", "--for", "1h"],
        2,
    );
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("system nowhere")
    );
    let mails_before = std::fs::read_to_string(&notified).expect("notified");
    inst.haven().args(["run", "file-share"]).assert().success();
    let mut held = None;
    wait_for("a held alert", || {
        held = open_alert("job-failed");
        held.is_some()
    });
    let held = held.expect("held");
    assert_eq!(held["suppressed_by"], "m1");
    assert!(held["notified_at"].is_null());
    assert_eq!(
        std::fs::read_to_string(&notified).expect("notified"),
        mails_before
    );
    // … and notifies it when the window ends early.
    inst.json(&["maintenance", "end", "m1"], 0);
    wait_for("the held alert to be notified", || {
        std::fs::read_to_string(&notified).is_ok_and(|t| t.len() > mails_before.len())
    });

    // Test messages report their delivery in the exit code.
    inst.haven()
        .args(["notify", "test", "log"])
        .assert()
        .success();
    inst.haven()
        .args(["notify", "test", "broken"])
        .assert()
        .code(1);
    inst.haven()
        .args(["notify", "test", "nope"])
        .assert()
        .code(1);

    signal(&server, rustix::process::Signal::TERM);
    assert!(exited(&mut server).success());
    // Every event went to the SIEM file, ECS-shaped, people's actions with
    // their names.
    let events: Vec<Value> = std::fs::read_to_string(inst.data.join("events.jsonl"))
        .expect("events")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["event"]["action"].as_str().unwrap_or(""))
        .collect();
    for action in [
        "job-started",
        "job-finished",
        "run-requested",
        "alert-opened",
        "notification-failed",
        "notification-delivered",
        "alert-acknowledged",
        "alert-resolved",
        "maintenance-added",
        "maintenance-ended",
        "alert-unsuppressed",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    let ack = events
        .iter()
        .find(|e| e["event"]["action"] == "alert-acknowledged")
        .expect("ack event");
    assert_eq!(ack["user"]["name"], "api-token");
    assert_eq!(ack["haven"]["declared_user"], "ana");
    assert!(ack["@timestamp"].as_str().expect("time").ends_with('Z'));
}

#[test]
fn a_notification_killed_during_a_retry_backoff_is_resumed_after_the_restart() {
    let inst = Instance::new();
    std::fs::write(inst.ws.path("go"), "").expect("go");
    inst.write_catalog("missing");
    let notified = inst.ws.path("notified.txt");
    inst.write_watch("5s", &notified);
    let mut server = inst.start_server("server.log");
    inst.haven().args(["run", "file-share"]).assert().success();
    let attempts = |inst: &Instance| -> Vec<(String, u64, bool)> {
        let alerts = inst.json(&["alerts", "--open"], 0);
        let Some(id) = alerts
            .as_array()
            .and_then(|a| a.iter().find(|a| a["rule"] == "job-failed"))
            .and_then(|a| a["id"].as_i64())
        else {
            return Vec::new();
        };
        inst.json(&["alert", "show", &id.to_string()], 0)["deliveries"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|d| {
                        (
                            d["channel"].as_str().unwrap_or("").to_string(),
                            d["attempt"].as_u64().unwrap_or(0),
                            d["ok"] == true,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    // The first channel failed once: its retry waits 5 s. The server is
    // killed in that wait; nothing else has been tried.
    wait_for("the first failed attempt", || !attempts(&inst).is_empty());
    signal(&server, rustix::process::Signal::KILL);
    exited(&mut server);
    assert_eq!(
        attempts(&inst),
        vec![("broken".into(), 1, false)],
        "killed during the backoff"
    );
    assert!(!notified.exists());

    // After the restart the delivery goes on where it stood: the retry,
    // then the next channel (the escalation's next page is an hour away).
    let mut server = inst.start_server("server-2.log");
    wait_for("the resumed notification", || {
        std::fs::read_to_string(&notified).is_ok_and(|t| t.contains("file-share"))
    });
    wait_for("the delivery on record", || {
        attempts(&inst).last().is_some_and(|a| a.2)
    });
    assert_eq!(
        attempts(&inst),
        vec![
            ("broken".into(), 1, false),
            ("broken".into(), 2, false),
            ("log".into(), 1, true)
        ]
    );
    signal(&server, rustix::process::Signal::TERM);
    assert!(exited(&mut server).success());
    let log = log_of(&inst.ws.path("server-2.log"));
    assert!(
        log.contains("resuming a notification queued before the restart"),
        "{log}"
    );
}

/// A heartbeat monitor on loopback: it answers 503 to the first
/// `fail_first` calls, then 200, and hands each call's path and body over.
pub(crate) fn heartbeat_monitor(
    fail_first: usize,
) -> (u16, std::sync::mpsc::Receiver<(String, Value)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            reader.read_line(&mut request).expect("request line");
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("header");
                if line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().expect("length");
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            let status = if n < fail_first {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if tx.send((request.trim().to_string(), body)).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

#[test]
fn the_server_calls_its_heartbeat_monitor_and_records_when_it_cannot() {
    let inst = Instance::new();
    let (port, calls) = heartbeat_monitor(1);
    // The push URL carries a token: kept in a file, never echoed.
    let url_file = inst.ws.path("heartbeat-url");
    std::fs::write(
        &url_file,
        format!("http://127.0.0.1:{port}/ping/secret-token-42\n"),
    )
    .expect("write");
    std::fs::write(
        inst.data.join("haven.toml"),
        format!(
            "listen = \"127.0.0.1:0\"\n[export]\nfile = \"events.jsonl\"\n\
             [heartbeat]\nurl = \"file:{}\"\nevery = \"1s\"\n",
            url_file.display()
        ),
    )
    .expect("write");
    let mut server = inst.start_server("server.log");

    let wait = Duration::from_secs(60);
    let (first, _) = calls.recv_timeout(wait).expect("a first heartbeat");
    assert_eq!(first, "POST /ping/secret-token-42 HTTP/1.1");
    let (_, pulse) = calls.recv_timeout(wait).expect("a second heartbeat");
    assert_eq!(pulse["version"], 1);
    assert_eq!(pulse["haven_version"], env!("CARGO_PKG_VERSION"));
    assert!(pulse["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(pulse["status"], "ok");
    assert_eq!(pulse["active_alerts"], 0);
    // A number (the daily 03:00 backup may be running if the test is).
    assert!(pulse["running_jobs"].is_u64(), "{pulse}");
    assert!(
        ["ok", "at-risk", "unprotected", "violated", "quarantined"]
            .contains(&pulse["worst_compliance"].as_str().unwrap_or("")),
        "{pulse}"
    );

    // The monitor refused the first call and took the next: one failure
    // and one recovery are on record, not one event per call.
    let events = inst.data.join("events.jsonl");
    let actions = || -> Vec<String> {
        std::fs::read_to_string(&events)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|e| e["event"]["action"].as_str().map(str::to_string))
            .filter(|a| a.starts_with("heartbeat-"))
            .collect()
    };
    wait_for("the heartbeat's recovery on record", || {
        actions().contains(&"heartbeat-restored".to_string())
    });
    calls.recv_timeout(wait).expect("a third heartbeat");
    assert_eq!(actions(), vec!["heartbeat-failed", "heartbeat-restored"]);
    let failed = std::fs::read_to_string(&events).expect("events");
    assert!(failed.contains("HTTP 503"), "{failed}");

    signal(&server, rustix::process::Signal::TERM);
    assert!(exited(&mut server).success());
    let log = log_of(&inst.ws.path("server.log"));
    assert!(log.contains("heartbeat failed"), "{log}");
    assert!(!log.contains("secret-token-42"), "{log}");
    assert!(!failed.contains("secret-token-42"), "{failed}");
}

/// Every file of the data dir with its mode.
fn modes_of(dir: &Path) -> Vec<(PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = vec![(
        dir.to_path_buf(),
        std::fs::metadata(dir).expect("stat").permissions().mode() & 0o777,
    )];
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
            out.push((path, mode));
        }
    }
    out
}

/// Regression: the data dir, `haven.db` (and `-wal`, `-shm`), the events
/// file and `server.addr` followed the umask (0644/0755), though they hold
/// job logs and alert text; an exposed API token was used as it was.
#[test]
fn the_instance_keeps_its_files_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let inst = Instance::new();
    std::fs::write(
        inst.data.join("haven.toml"),
        "listen = \"127.0.0.1:0\"\n[export]\nfile = \"events.jsonl\"\n",
    )
    .expect("write");
    // As a packager might leave it: readable by everyone.
    std::fs::set_permissions(&inst.data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(inst.ws.path("go"), "").expect("go");
    let mut server = inst.start_server_with_umask("server.log", "000");
    inst.json(&["run", "file-share"], 0);
    wait_for("the backup", || {
        inst.job_where(|j| is(j, "backup:file-share/default", "success"))
            .is_some()
    });
    let files = modes_of(&inst.data);
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    for expected in [
        "haven.db",
        "haven.db-wal",
        "haven.db-shm",
        "events.jsonl",
        "server.addr",
        "api-token",
        "server.lock",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    for (path, mode) in &files {
        let private = if path == &inst.data { 0o700 } else { 0o600 };
        // Files the test itself wrote (catalog, settings) are its own.
        if path.ends_with("haven.toml") {
            continue;
        }
        assert_eq!(*mode, private, "{} is {mode:o}", path.display());
    }
    signal(&server, rustix::process::Signal::TERM);
    assert!(exited(&mut server).success());

    // A token other users could read is refused, by the client and the
    // server alike, with the fix.
    let token = inst.data.join("api-token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let fix = format!("chmod 600 {}", token.display());
    let out = inst.haven().arg("server").output().expect("server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&fix), "{stderr}");
}

/// A server started with `--catalog` (here `HAVEN_CATALOG`) records the
/// catalog it read; `haven status` after it stopped reads the same one,
/// not the data dir's default.
#[test]
fn status_after_the_server_stopped_reads_the_catalog_the_server_used() {
    let inst = Instance::new();
    let elsewhere = inst.ws.path("elsewhere-catalog");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let text = std::fs::read_to_string(inst.data.join("catalog/catalog.toml"))
        .expect("read")
        .replace("id = \"orders\"", "id = \"orders-elsewhere\"");
    std::fs::write(elsewhere.join("catalog.toml"), text).expect("write");
    let elsewhere_text = elsewhere.display().to_string();
    let mut server =
        inst.start_server_with("server.log", "022", &[("HAVEN_CATALOG", &elsewhere_text)]);
    let through_server = inst.json(&["status"], 0);
    assert_eq!(through_server["source"], "server");
    signal(&server, rustix::process::Signal::TERM);
    assert!(exited(&mut server).success());
    let status = inst.json(&["status"], 0);
    assert_eq!(status["source"], "data-dir");
    assert_eq!(
        status["services"][0]["service"], "orders-elsewhere",
        "{status:#}"
    );
    // An explicit --catalog still wins.
    let default = inst.data.join("catalog");
    let status = inst.json(
        &["status", "--catalog", default.to_str().expect("utf-8")],
        0,
    );
    assert_eq!(status["services"][0]["service"], "orders", "{status:#}");
}

/// `haven run SYSTEM --wait` through a server follows the queued job to
/// its end and exits with its outcome.
#[test]
fn run_wait_follows_the_servers_job_to_its_end() {
    let inst = Instance::new();
    let mut server = inst.start_server("server.log");
    let mut waiting = std::process::Command::new(assert_cmd::cargo::cargo_bin("haven"))
        .args(["--json", "run", "orders-db", "--wait", "--data-dir"])
        .arg(&inst.data)
        .env("HAVEN_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run --wait");
    // The dump runs (and blocks on `go`): the command is still waiting.
    wait_for("the dump to start", || inst.ws.path("dump.pid").exists());
    assert!(
        waiting.try_wait().expect("try_wait").is_none(),
        "returned before the job ended"
    );
    std::fs::write(inst.ws.path("go"), "").expect("go");
    let out = waiting.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    let ran: Value = serde_json::from_slice(&out.stdout).expect("json");
    // The same document as a run without a server: the jobs, as they ended.
    let jobs = ran.as_array().expect("the jobs");
    assert_eq!(jobs.len(), 1, "{ran}");
    assert_eq!(jobs[0]["task"], "backup:orders-db/dump");
    assert_eq!(jobs[0]["outcome"], "success");
    signal(&server, rustix::process::Signal::TERM);
    assert!(exited(&mut server).success());
}

/// Users and tokens: a user added (a weak password refused), a token
/// made for it opens the API; revoked, or its user disabled, it does
/// not. Every change is in the audit log, and no password or token
/// secret is stored or logged anywhere.
#[test]
fn users_and_tokens_open_the_api_and_leave_no_secret_behind() {
    let inst = Instance::new();
    std::fs::write(
        inst.data.join("haven.toml"),
        "listen = \"127.0.0.1:0\"\n[export]\nfile = \"events.jsonl\"\n",
    )
    .expect("settings");
    let haven = |args: &[&str], stdin: &str| {
        let mut cmd = inst.ws.haven();
        cmd.arg("--data-dir")
            .arg(&inst.data)
            .args(args)
            .write_stdin(stdin.to_string());
        cmd.output().expect("haven")
    };
    let weak = haven(
        &[
            "--json",
            "user",
            "add",
            "ana",
            "--role",
            "operator",
            "--password-stdin",
        ],
        "short\n",
    );
    assert_eq!(parse_json(&weak, 2)["error"]["code"], "invalid-argument");
    let password = "correct horse battery staple";
    let added = haven(
        &[
            "--json",
            "user",
            "add",
            "ana",
            "--role",
            "operator",
            "--role",
            "auditor",
            "--password-stdin",
        ],
        &format!("{password}\n"),
    );
    let added = parse_json(&added, 0);
    assert_eq!(
        added[0]["roles"],
        serde_json::json!(["operator", "auditor"])
    );
    assert!(added[0].get("password_hash").is_none(), "{added:#}");
    let refused = haven(
        &[
            "--json", "token", "create", "ci", "--user", "ana", "--role", "admin",
        ],
        "",
    );
    assert_eq!(parse_json(&refused, 2)["error"]["code"], "invalid-argument");
    let created = parse_json(
        &haven(
            &[
                "--json",
                "token",
                "create",
                "ci",
                "--user",
                "ana",
                "--role",
                "operator",
                "--expires",
                "30d",
            ],
            "",
        ),
        0,
    );
    let secret = created["secret"].as_str().expect("secret").to_string();
    let id = created["token"]["id"].as_str().expect("id").to_string();
    assert!(secret.starts_with("hvn_"));

    let mut server = inst.start_server("server.log");
    let address = std::fs::read_to_string(inst.data.join("server.addr")).expect("addr");
    let address = address.trim();
    assert_eq!(api_call(address, "GET", "/api/v1/status", &secret), 200);
    assert_eq!(
        api_call(address, "GET", "/api/v1/status", "hvn_not-a-token"),
        401
    );
    // A change through the API is recorded as the token's user, whatever
    // the request declares.
    assert_eq!(
        api_call(address, "POST", "/api/v1/alerts/999999/ack", &secret),
        404
    );
    // Revoked (through the server), it no longer opens the API.
    let revoked = parse_json(&haven(&["--json", "token", "revoke", &id], ""), 0);
    assert!(revoked[0]["revoked_at"].is_string(), "{revoked:#}");
    assert_eq!(api_call(address, "GET", "/api/v1/status", &secret), 401);
    // A new one works until its user is disabled.
    let second = parse_json(
        &haven(
            &[
                "--json", "token", "create", "ci2", "--user", "ana", "--role", "auditor",
            ],
            "",
        ),
        0,
    );
    let second = second["secret"].as_str().expect("secret").to_string();
    assert_eq!(api_call(address, "GET", "/api/v1/status", &second), 200);
    parse_json(&haven(&["--json", "user", "disable", "ana"], ""), 0);
    assert_eq!(api_call(address, "GET", "/api/v1/status", &second), 401);

    let log = parse_json(&haven(&["--json", "audit", "log"], ""), 0);
    let actions: Vec<&str> = log
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    for action in ["user.add", "token.create", "token.revoke", "user.disable"] {
        assert!(actions.contains(&action), "{action}: {log:#}");
    }
    let acknowledged = log
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "alert.acknowledge")
        .expect("the acknowledgement");
    assert_eq!(acknowledged["outcome"], "failed");
    assert!(
        acknowledged["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with(&format!("user:ana ({id})"))),
        "{acknowledged:#}"
    );
    signal(&server, rustix::process::Signal::TERM);
    assert!(exited(&mut server).success());
    // No secret in clear anywhere in the data dir (database, export, logs).
    for entry in walkdir::WalkDir::new(&inst.data).into_iter().flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for secret_text in [password, secret.as_str(), second.as_str()] {
            assert!(
                !text.contains(secret_text),
                "{} holds a secret",
                entry.path().display()
            );
        }
    }
}

/// `method path` on the API with `token` and, for a POST, the body `{}`:
/// the HTTP status.
pub(crate) fn api_call(address: &str, method: &str, path: &str, token: &str) -> u16 {
    let body = if method == "POST" { "{}" } else { "" };
    api_send(address, method, path, token, body).0
}

/// `method path` with `token` and `body`: the status and the answer's
/// body.
pub(crate) fn api_send(
    address: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
