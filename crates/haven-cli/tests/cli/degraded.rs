//! A server whose database fails keeps working. Regression: a locked or
//! full database made `haven server` exit (`error: no job 2`; `database
//! is locked`), and monitoring with it.
//!
//! Each test breaks the database under a running server while a job is
//! running, and checks that the server keeps answering (`/healthz` says
//! `degraded`), that the `store-unavailable` alert reaches its channel
//! although it cannot be recorded, and that once the database works again
//! the server recovers by itself: the job's record is written (its real
//! outcome and end, nothing lost) and the alert is recorded, resolved,
//! with its delivery.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::helpers::SmallFs;
use crate::server::{Instance, exited, heartbeat_monitor, http_get, is, log_of, signal, wait_for};

/// `(HTTP status, JSON body)` of `GET /healthz`.
fn healthz(inst: &Instance) -> (u16, Value) {
    let address = std::fs::read_to_string(inst.data.join("server.addr")).expect("address");
    let answer = http_get(address.trim(), "/healthz", None);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let doc = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    (status, doc)
}

/// One channel, `log`, appending every message to `notified`, for every
/// alert.
fn write_watch(inst: &Instance, notified: &Path) {
    let watch = format!(
        r#"
[[channel]]
id = "log"
type = "command"
run = "cat >> {notified}"

[[escalation]]
id = "everything"

[[escalation.step]]
channels = ["log"]
wait = "1h"
"#,
        notified = notified.display()
    );
    std::fs::write(inst.data.join("catalog/watch.toml"), watch).expect("write");
}

/// Start the blocking dump (`orders-db`) and wait until it runs.
fn start_the_dump(inst: &Instance) {
    inst.json(&["run", "orders-db"], 0);
    wait_for("the dump to run", || {
        inst.job_where(|j| is(j, "backup:orders-db/dump", "running"))
            .is_some()
    });
}

/// While the database is broken: the server answers, says why, and the
/// alert reaches its channel.
fn check_degraded(inst: &Instance, notified: &Path, cause: &str) {
    let mut health = (0, Value::Null);
    wait_for("/healthz to say degraded", || {
        health = healthz(inst);
        health.0 == 503
    });
    let (_, doc) = health;
    assert_eq!(doc["status"], "degraded", "{doc}");
    let error = doc["store"]["error"].as_str().expect("the store's error");
    assert!(error.contains(cause), "{doc}");
    wait_for("the store-unavailable alert to reach its channel", || {
        log_of(notified).contains("store-unavailable")
    });
    let (_, doc) = healthz(inst);
    assert_eq!(
        doc["store"]["pending_records"], 1,
        "the job's end is held in memory: {doc}"
    );
}

/// Once the database works again: healthy, the job recorded as it ended,
/// the alert recorded and resolved with its delivery.
fn check_recovered(inst: &Instance) {
    wait_for("/healthz to say ok again", || healthz(inst).0 == 200);
    let job = inst
        .job_where(|j| j["task"] == "backup:orders-db/dump")
        .expect("the job");
    assert_eq!(job["outcome"], "success", "no job record lost: {job}");
    let alerts = inst.json(&["alerts"], 0);
    let alert = alerts
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["rule"] == "store-unavailable")
        .cloned()
        .unwrap_or_else(|| panic!("the outage alert is recorded: {alerts}"));
    assert_eq!(alert["state"], "resolved", "{alert}");
    assert_eq!(alert["severity"], "critical", "{alert}");
    let detail = inst.json(&["alert", "show", &alert["id"].to_string()], 0);
    let deliveries = detail["deliveries"].as_array().expect("deliveries");
    assert!(
        deliveries
            .iter()
            .any(|d| d["channel"] == "log" && d["ok"] == true),
        "its delivery without the store is recorded: {detail}"
    );
}

fn stop(inst: &Instance, server: &mut Child) {
    signal(server, rustix::process::Signal::TERM);
    assert!(
        exited(server).success(),
        "{}",
        log_of(&inst.ws.path("server.log"))
    );
}

/// Hold the database's write lock from another process (python's sqlite3,
/// as another program on the host would) for `seconds`.
fn lock_database(db: &Path, seconds: u32) -> Child {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3, sys, time\n\
             c = sqlite3.connect({db:?}, isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             print('locked', flush=True)\n\
             time.sleep({seconds})\n\
             c.execute('COMMIT')\n",
            db = db.display().to_string()
        ))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("read");
    assert_eq!(line.trim(), "locked", "python holds the lock");
    child
}

#[test]
fn a_database_locked_for_30_s_degrades_the_server_and_loses_no_record() {
    let inst = Instance::new();
    let notified = inst.ws.path("notified.txt");
    write_watch(&inst, &notified);
    let (port, pulses) = heartbeat_monitor(0);
    std::fs::write(
        inst.data.join("haven.toml"),
        format!(
            "listen = \"127.0.0.1:0\"\n[heartbeat]\nurl = \"http://127.0.0.1:{port}/ping\"\nevery = \"1s\"\n"
        ),
    )
    .expect("settings");
    let mut server = inst.start_server("server.log");
    start_the_dump(&inst);

    let mut locker = lock_database(&inst.data.join("haven.db"), 30);
    // The job ends while the database is locked.
    std::fs::write(inst.ws.path("go"), "").expect("go");
    check_degraded(&inst, &notified, "locked");
    // The heartbeat says so too (to a monitor watching from outside).
    let degraded = loop {
        let (_, pulse) = pulses
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a heartbeat");
        if pulse["status"] == "degraded" {
            break pulse;
        }
    };
    assert!(
        degraded["degraded"]
            .as_str()
            .is_some_and(|d| d.contains("locked")),
        "{degraded}"
    );
    assert_eq!(degraded["pending_records"], 1, "{degraded}");
    // Reads go on (another writer does not block readers).
    assert!(
        inst.jobs()
            .iter()
            .any(|j| j["task"] == "backup:orders-db/dump")
    );
    assert!(locker.wait().expect("wait").success());

    check_recovered(&inst);
    stop(&inst, &mut server);
}

#[test]
fn a_full_data_disk_degrades_the_server_and_loses_no_record() {
    assert!(
        crate::helpers::is_root(),
        "this test mounts a 16 MiB tmpfs and must run as root (CI does)"
    );
    let inst = Instance::new();
    // The data dir (database, catalog, settings) on a small disk of its own.
    let disk = SmallFs::mount(inst.ws.path("small"), "16m");
    let on_disk = disk.0.join("data-dir");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&inst.data)
        .arg(&on_disk)
        .status()
        .expect("cp");
    assert!(status.success());
    std::fs::remove_dir_all(&inst.data).expect("rm");
    std::os::unix::fs::symlink(&on_disk, &inst.data).expect("link the data dir");
    let notified = inst.ws.path("notified.txt");
    write_watch(&inst, &notified);
    let mut server = inst.start_server("server.log");
    start_the_dump(&inst);

    let filler = disk.fill();
    std::fs::write(inst.ws.path("go"), "").expect("go");
    check_degraded(&inst, &notified, "full");
    std::fs::remove_file(filler).expect("free the disk");

    check_recovered(&inst);
    stop(&inst, &mut server);
}
