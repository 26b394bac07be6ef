//! S3 repositories against a real S3-protocol server (moto) on loopback.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{Workspace, noise, parse_json};

/// A moto S3 server on a free loopback port, stopped on drop.
struct Moto {
    child: Child,
    addr: SocketAddr,
}

impl Moto {
    fn start() -> Moto {
        // A free port can be taken by another test between asking for it
        // and moto binding it: moto then exits, and it starts again on
        // another port.
        for _ in 0..5 {
            if let Some(moto) = Moto::try_start() {
                return moto;
            }
        }
        panic!("moto could not bind a free port five times in a row");
    }

    fn try_start() -> Option<Moto> {
        let bin = std::env::var("HAVEN_TEST_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} ({e}): scripts/test.sh installs moto[server]; or set HAVEN_TEST_MOTO_SERVER"));
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return None;
            }
            // Listening, and it is moto that answers (not whoever took
            // the port): it still runs.
            if TcpStream::connect(addr).is_ok() && matches!(child.try_wait(), Ok(None)) {
                return Some(Moto { child, addr });
            }
            assert!(
                Instant::now() < deadline,
                "moto did not start listening on {addr}"
            );
            std::thread::yield_now();
        }
    }

    fn create_bucket(&self, name: &str) {
        let response = self.raw("PUT", &format!("/{name}"), "");
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "create bucket: {response}"
        );
    }

    /// A bucket with Object Lock enabled (and so versioning).
    fn create_locked_bucket(&self, name: &str) {
        let response = self.raw(
            "PUT",
            &format!("/{name}"),
            "x-amz-bucket-object-lock-enabled: true\r\n",
        );
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "create bucket: {response}"
        );
    }

    /// One request with a dummy signature (moto does not check
    /// signatures, but treats requests without one as anonymous).
    fn raw(&self, method: &str, path: &str, headers: &str) -> String {
        let mut s = TcpStream::connect(self.addr).expect("connect");
        let auth = "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\n";
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}{headers}Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .expect("request");
        let mut response = String::new();
        s.read_to_string(&mut response).expect("response");
        response
    }

    /// Keys under `prefix` in `bucket`.
    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let listing = self.raw("GET", &format!("/{bucket}?list-type=2&prefix={prefix}"), "");
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }

    fn url(&self, bucket: &str, prefix: &str) -> String {
        format!("s3:http://{}/{bucket}/{prefix}", self.addr)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s3_haven(ws: &Workspace, url: &str) -> assert_cmd::Command {
    let mut cmd = ws.haven();
    cmd.env("HAVEN_REPO", url)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1");
    cmd
}

#[test]
fn an_s3_repository_works_like_a_local_one() {
    let moto = Moto::start();
    moto.create_bucket("backups");
    let ws = Workspace::new();
    let url = moto.url("backups", "site-a/files");
    let data = ws.path("data");
    std::fs::create_dir_all(data.join("sub")).expect("mkdir");
    std::fs::write(data.join("sub/big.bin"), noise(6_000_000, 3)).expect("write");
    std::fs::write(data.join("notes.txt"), "notes\n".repeat(500)).expect("write");

    s3_haven(&ws, &url)
        .args(["repo", "init", "--pack-size-mib", "4"])
        .assert()
        .success();
    let out = s3_haven(&ws, &url)
        .args(["--json", "backup"])
        .arg(&data)
        .output()
        .expect("backup");
    assert_eq!(parse_json(&out, 0)["files_new"], 2);
    let out = s3_haven(&ws, &url)
        .args(["--json", "backup"])
        .arg(&data)
        .output()
        .expect("backup");
    assert_eq!(parse_json(&out, 0)["files_unmodified"], 2);
    let target = ws.path("restored");
    s3_haven(&ws, &url)
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .assert()
        .success();
    assert_eq!(
        crate::helpers::read_tree(&data),
        crate::helpers::read_tree(&crate::helpers::restored(&target, &data))
    );
    let out = s3_haven(&ws, &url)
        .args(["--json", "repo", "check", "--read-data"])
        .output()
        .expect("check");
    assert_eq!(
        parse_json(&out, 0)["problems"]
            .as_array()
            .expect("problems")
            .len(),
        0
    );
    s3_haven(&ws, &url)
        .args(["forget", "--keep-last", "1"])
        .assert()
        .success();

    // A second repository under another prefix of the same bucket is separate.
    let other = moto.url("backups", "site-b");
    let out = s3_haven(&ws, &other)
        .arg("snapshots")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not initialised"));
}

#[test]
fn locked_snapshots_get_object_lock_retention_where_the_bucket_has_it() {
    let moto = Moto::start();
    moto.create_locked_bucket("vault");
    let ws = Workspace::new();
    let url = moto.url("vault", "acme");
    let data = ws.path("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(data.join("ledger.db"), noise(3_000_000, 8)).expect("write");
    s3_haven(&ws, &url)
        .args(["repo", "init", "--pack-size-mib", "4"])
        .assert()
        .success();

    let out = s3_haven(&ws, &url)
        .args([
            "--json",
            "backup",
            "--lock-until",
            "2099-01-01",
            "--object-lock-mode",
            "compliance",
        ])
        .arg(&data)
        .output()
        .expect("backup");
    let report = parse_json(&out, 0);
    let lock = &report["object_lock"];
    assert_eq!(lock["mode"], "COMPLIANCE", "{report}");
    assert!(lock["error"].is_null(), "{report}");
    let objects = lock["objects"].as_u64().expect("objects");
    assert!(objects >= 4, "config, key, snapshot and packs: {report}");
    assert_eq!(lock["extended"].as_u64(), Some(objects));

    // The store itself holds every pack until the lock's date.
    let packs: Vec<String> = moto.keys("vault", "acme/data/").into_iter().collect();
    assert!(!packs.is_empty());
    for pack in &packs {
        let head = moto
            .raw("HEAD", &format!("/vault/{pack}"), "")
            .to_ascii_lowercase();
        assert!(
            head.contains("x-amz-object-lock-mode: compliance")
                && head.contains("x-amz-object-lock-retain-until-date: 2099-01-01"),
            "{pack}: {head}"
        );
    }

    // A later lock on the same (deduplicated) data extends the retention
    // of the packs it reuses.
    let out = s3_haven(&ws, &url)
        .args([
            "--json",
            "backup",
            "--force",
            "--lock-until",
            "2100-06-30",
            "--object-lock-mode",
            "compliance",
        ])
        .arg(&data)
        .output()
        .expect("backup");
    let report = parse_json(&out, 0);
    assert!(
        report["object_lock"]["extended"]
            .as_u64()
            .expect("extended")
            >= packs.len() as u64,
        "{report}"
    );
    let head = moto.raw("HEAD", &format!("/vault/{}", packs[0]), "");
    assert!(head.contains("2100-06-30"), "{head}");
    // Retention already long enough is read back and left alone.
    let out = s3_haven(&ws, &url)
        .args(["--json", "backup", "--lock-until", "2100-06-30"])
        .arg(&data)
        .output()
        .expect("backup");
    let report = parse_json(&out, 0);
    let lock = &report["object_lock"];
    assert!(
        lock["extended"].as_u64().expect("extended") < lock["objects"].as_u64().expect("objects"),
        "{report}"
    );

    // Without Object Lock on the bucket, the lock is Haven's alone.
    moto.create_bucket("plain");
    let plain = moto.url("plain", "acme");
    s3_haven(&ws, &plain)
        .args(["repo", "init", "--pack-size-mib", "4"])
        .assert()
        .success();
    let out = s3_haven(&ws, &plain)
        .args(["--json", "backup", "--lock-until", "2099-01-01"])
        .arg(&data)
        .output()
        .expect("backup");
    assert!(parse_json(&out, 0)["object_lock"].is_null());
}

#[test]
fn copy_and_prune_work_on_s3() {
    let moto = Moto::start();
    moto.create_bucket("offsite");
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(data.join("a.bin"), noise(2_000_000, 1)).expect("write");
    ws.haven().arg("backup").arg(&data).assert().success();
    std::fs::write(data.join("a.bin"), noise(2_000_000, 2)).expect("write");
    ws.haven().arg("backup").arg(&data).assert().success();

    let url = moto.url("offsite", "copy");
    s3_haven(&ws, &url)
        .env("HAVEN_PASSWORD", "offsite password")
        .args(["repo", "init", "--pack-size-mib", "4"])
        .assert()
        .success();
    let out = ws
        .haven()
        .env("HAVEN_PASSWORD2", "offsite password")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .args(["--json", "copy", "--verify", "--to", &url])
        .output()
        .expect("copy");
    let report = parse_json(&out, 0);
    assert_eq!(report["copied"], 2, "{report}");

    let offsite = |args: &[&str]| {
        let out = s3_haven(&ws, &url)
            .env("HAVEN_PASSWORD", "offsite password")
            .arg("--json")
            .args(args)
            .output()
            .expect("run");
        parse_json(&out, 0)
    };
    let report = offsite(&[
        "forget",
        "--keep-last",
        "1",
        "--prune",
        "--grace",
        "0s",
        "--i-know-backups-are-stopped",
    ]);
    let prune = &report["prune"];
    assert!(
        prune["after"]["bytes"].as_u64() < prune["before"]["bytes"].as_u64(),
        "{report}"
    );
    let check = offsite(&["repo", "check", "--read-data"]);
    assert_eq!(
        check["problems"].as_array().expect("problems").len(),
        0,
        "{check}"
    );
    let target = ws.path("restored");
    s3_haven(&ws, &url)
        .env("HAVEN_PASSWORD", "offsite password")
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .assert()
        .success();
    assert_eq!(
        crate::helpers::read_tree(&data),
        crate::helpers::read_tree(&crate::helpers::restored(&target, &data))
    );
}

#[test]
fn a_missing_bucket_or_a_malformed_url_is_explained() {
    let moto = Moto::start();
    let ws = Workspace::new();
    let out = s3_haven(&ws, &moto.url("no-such-bucket", "x"))
        .args(["repo", "init"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bucket \"no-such-bucket\" does not exist"),
        "{stderr}"
    );
    for bad in ["s3:127.0.0.1/bucket", "s3:http://127.0.0.1:1/Bad_Bucket/x"] {
        let out = s3_haven(&ws, bad).arg("snapshots").output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("invalid repository location"));
    }
}

/// A TCP proxy in front of the S3 server that goes down for good once
/// `packs` data packs were stored through it (their PUT answered 2xx): the
/// endpoint dies mid-backup, after some packs are safely stored — by
/// count, not by bytes, so how many uploads run side by side does not
/// decide what was stored.
fn failing_proxy(upstream: SocketAddr, packs: u64) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stored = Arc::new(AtomicU64::new(0));
    let down = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            if down.load(Ordering::SeqCst) {
                break; // dropping the listener: later connections are refused
            }
            let Ok(server) = TcpStream::connect(upstream) else {
                continue;
            };
            // Per connection, the requests in flight: is each a pack PUT?
            let pending = Arc::new(Mutex::new(VecDeque::new()));
            let requests = Relay {
                from: client.try_clone().expect("clone"),
                to: server.try_clone().expect("clone"),
                down: down.clone(),
            };
            let answers = Relay {
                from: server,
                to: client,
                down: down.clone(),
            };
            let (asked, answered) = (pending.clone(), pending);
            std::thread::spawn(move || {
                requests.run(|line| {
                    let pack = line.starts_with(b"PUT ") && contains(line, b"/data/");
                    asked.lock().expect("lock").push_back(pack);
                    false
                });
            });
            let stored = stored.clone();
            std::thread::spawn(move || {
                answers.run(|line| {
                    let pack = answered.lock().expect("lock").pop_front() == Some(true);
                    let ok = line.get(9) == Some(&b'2');
                    pack && ok && stored.fetch_add(1, Ordering::SeqCst) + 1 >= packs
                });
            });
        }
    });
    addr
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// One direction of a proxied connection.
struct Relay {
    from: TcpStream,
    to: TcpStream,
    down: Arc<AtomicBool>,
}

impl Relay {
    /// Forward bytes until either side closes or the proxy is down. Each
    /// HTTP request or status line seen (`… HTTP/1.1\r\n` or
    /// `HTTP/1.1 …\r\n`) goes to `line`; when it answers true, the proxy
    /// goes down once this chunk is forwarded.
    fn run(mut self, mut line: impl FnMut(&[u8]) -> bool) {
        let mut buf = [0u8; 65536];
        // The tail of the previous chunk: a line split between reads.
        let mut carry: Vec<u8> = Vec::new();
        while let Ok(n) = self.from.read(&mut buf) {
            if n == 0 || self.down.load(Ordering::SeqCst) {
                break;
            }
            let mut window = std::mem::take(&mut carry);
            let old = window.len();
            window.extend_from_slice(&buf[..n]);
            let mut last = false;
            let mut start = 0;
            for end in (0..window.len().saturating_sub(1)).filter(|&i| &window[i..i + 2] == b"\r\n")
            {
                let text = &window[start..end];
                let is_line = text.starts_with(b"HTTP/1.1 ") || text.ends_with(b" HTTP/1.1");
                if is_line && end + 2 > old {
                    last |= line(text);
                }
                start = end + 2;
            }
            carry = window[window.len().saturating_sub(512)..].to_vec();
            if self.to.write_all(&buf[..n]).is_err() {
                break;
            }
            if last {
                self.down.store(true, Ordering::SeqCst);
                break;
            }
        }
        let _ = self.from.shutdown(std::net::Shutdown::Both);
        let _ = self.to.shutdown(std::net::Shutdown::Both);
    }
}

#[test]
fn an_endpoint_that_dies_mid_backup_fails_cleanly_after_retries() {
    let moto = Moto::start();
    moto.create_bucket("flaky");
    let ws = Workspace::new();
    let direct = moto.url("flaky", "repo");
    s3_haven(&ws, &direct)
        .args(["repo", "init", "--pack-size-mib", "4"])
        .assert()
        .success();
    let data = ws.path("data");
    std::fs::create_dir(&data).expect("mkdir");
    for i in 0..6 {
        std::fs::write(data.join(format!("f{i}")), noise(4_000_000, i)).expect("write");
    }
    // Through the proxy: it dies once two packs are stored.
    let proxy = failing_proxy(moto.addr, 2);
    let via_proxy = format!("s3:http://{proxy}/flaky/repo");
    let started = Instant::now();
    let out = s3_haven(&ws, &via_proxy)
        .args(["backup"])
        .arg(&data)
        .output()
        .expect("backup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("storage error"), "{stderr}");
    assert!(
        started.elapsed() > Duration::from_millis(300),
        "transient errors are retried with backoff"
    );

    // Nothing half-committed: no snapshot, and the repository checks clean.
    let out = s3_haven(&ws, &direct)
        .args(["--json", "snapshots"])
        .output()
        .expect("list");
    assert_eq!(parse_json(&out, 0).as_array().expect("array").len(), 0);
    let out = s3_haven(&ws, &direct)
        .args(["--json", "repo", "check", "--read-data"])
        .output()
        .expect("check");
    assert_eq!(
        parse_json(&out, 0)["problems"]
            .as_array()
            .expect("problems")
            .len(),
        0
    );
    // The next backup (endpoint back) succeeds and reuses the stored packs.
    let out = s3_haven(&ws, &direct)
        .args(["--json", "backup"])
        .arg(&data)
        .output()
        .expect("backup");
    let added = parse_json(&out, 0)["bytes_added"].as_u64().expect("bytes");
    // 24 MB of data; the two 4 MiB packs stored before the endpoint died
    // are not sent again.
    assert!(
        added < 24_000_000 - 2 * 4 * 1024 * 1024 + 500_000,
        "packs stored before the failure are reused ({added} bytes added)"
    );
}

/// The audit log's checkpoints anchored in a bucket with Object Lock are
/// retained by the store itself (GOVERNANCE, 400 days), so the anchors
/// `haven audit verify --against` relies on outlive an intruder with the
/// repository's password.
#[test]
fn anchored_audit_checkpoints_are_retained_by_object_lock() {
    let moto = Moto::start();
    moto.create_locked_bucket("vault");
    let ws = Workspace::new();
    let url = moto.url("vault", "acme");
    s3_haven(&ws, &url)
        .args(["repo", "init"])
        .assert()
        .success();
    let data = ws.path("data-dir");
    std::fs::create_dir_all(data.join("catalog")).expect("mkdir");
    std::fs::write(
        data.join("catalog/catalog.toml"),
        format!(
            r#"
[[system]]
id = "files"
kind = "file-server"
policy = "daily"

[[system.backup_set]]
paths = ["{files}"]

[[policy]]
id = "daily"
schedule = "0 3 * * *"
repository = "vault"

[[repository]]
id = "vault"
url = "{url}"
password = "env:HAVEN_PASSWORD"
"#,
            files = ws.path("files").display(),
        ),
    )
    .expect("catalog");
    let haven = |args: &[&str], stdin: &str| {
        let mut cmd = s3_haven(&ws, &url);
        cmd.arg("--data-dir")
            .arg(&data)
            .args(args)
            .write_stdin(stdin.to_string());
        cmd.output().expect("haven")
    };
    // Something in the log to anchor.
    let added = haven(
        &[
            "user",
            "add",
            "ana",
            "--role",
            "auditor",
            "--password-stdin",
        ],
        "a long enough passphrase\n",
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let anchored = parse_json(&haven(&["--json", "audit", "anchor"], ""), 0);
    let vault = &anchored[0];
    assert_eq!(vault["repository"], "vault", "{anchored}");
    assert!(vault["error"].is_null(), "{anchored}");
    let until: jiff::Timestamp = vault["retained_until"]
        .as_str()
        .expect("retained")
        .parse()
        .expect("a time");
    let days = until.duration_since(jiff::Timestamp::now()).as_hours() / 24;
    assert!((399..=400).contains(&days), "{days} days");
    let anchors = moto.keys("vault", "acme/anchors/");
    assert_eq!(anchors.len(), 1, "{anchors:?}");
    let head = moto
        .raw("HEAD", &format!("/vault/{}", anchors[0]), "")
        .to_ascii_lowercase();
    assert!(
        head.contains("x-amz-object-lock-mode: governance"),
        "{head}"
    );
    let verified = parse_json(
        &haven(&["--json", "audit", "verify", "--against", "vault"], ""),
        0,
    );
    assert_eq!(verified["problems"], serde_json::json!([]), "{verified}");
}
