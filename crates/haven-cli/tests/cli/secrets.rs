//! Secrets stay out of the evidence. Regression: a failing dump command
//! such as `PGPASSWORD=… pg_dump --dbname=postgresql://app:PASS@… --password=…`
//! put every secret into the job's message and log, the alert, the
//! notification, the SIEM events, the server log and the API.
//!
//! Secrets are planted in every way they reach Haven (literally on
//! command lines, in a dump's, a hook's and a channel's `env` by `file:`
//! and `env:` reference, echoed back by the commands on stderr); the test
//! then greps every place evidence lands for each of them.

use std::path::Path;

use serde_json::Value;

use crate::server::{Instance, exited, http_get, log_of, signal, wait_for};

/// Written literally on the dump's command line, in each usual shape.
const ON_COMMAND_LINE: [&str; 4] = [
    "Lit3ral-Pw-0451", // PGPASSWORD=…
    "Url-Pw-9923",     // postgresql://app:…@host
    "Flag-Pw-7781",    // --password=…
    "My-Pw-3310",      // mysqldump -p…
];
/// Given by reference in `env`, echoed back by the commands.
const DUMP_FILE_SECRET: &str = "Dump-File-Secret-5521";
const DUMP_ENV_SECRET: &str = "Dump-Env-Secret-6632";
const HOOK_SECRET: &str = "Hook-Secret-8843";
const CHANNEL_TOKEN: &str = "Pager-Token-1177";

fn write_catalog(inst: &Instance, notified: &Path) {
    let [literal, url, flag, mysql] = ON_COMMAND_LINE;
    let secret_file = |name: &str, value: &str| {
        let path = inst.ws.path(name);
        std::fs::write(&path, format!("{value}\n")).expect("write secret");
        path.display().to_string()
    };
    let dump_pw = secret_file("dump.pw", DUMP_FILE_SECRET);
    let hook_pw = secret_file("hook.pw", HOOK_SECRET);
    let catalog = format!(
        r#"
[[service]]
id = "orders"
tier = 1
rpo = "2d"
rto = "1d"
mtd = "3d"
depends_on = ["erp-db"]

[[system]]
id = "erp-db"
kind = "database-postgres"
policy = "daily"

[[system.backup_set]]
name = "literal"
command = "PGPASSWORD={literal} pg_dump_absent -Fc --password={flag} --dbname=postgresql://app:{url}@127.0.0.1:9/erp; echo 'mysqldump -u app -p{mysql} shop: access denied' >&2; exit 3"

[[system.backup_set]]
name = "by-reference"
command = "echo \"login with $DUMP_PW ($DUMP_TOKEN) refused\" >&2; exit 3"
env = {{ DUMP_PW = "file:{dump_pw}", DUMP_TOKEN = "env:HAVEN_TEST_DUMP_TOKEN" }}

[[policy]]
id = "daily"
schedule = "0 3 * * *"
repository = "main"
post_hook = "echo \"cannot resume with $HOOK_PW\" >&2; exit 1"
env = {{ HOOK_PW = "file:{hook_pw}" }}

[[repository]]
id = "main"
url = "{repo}"
password = "env:HAVEN_PASSWORD"

[[channel]]
id = "pager"
type = "command"
run = "cat >> {notified}; echo \"$HAVEN_SUBJECT\" >> {notified}; echo \"token $PAGER_TOKEN rejected\" >&2; exit 1"
retries = 0
env = {{ PAGER_TOKEN = "env:HAVEN_TEST_PAGER_TOKEN" }}

[[channel]]
id = "log"
type = "command"
run = "cat >> {notified}"

[[escalation]]
id = "everything"

[[escalation.step]]
channels = ["pager", "log"]
wait = "1h"
"#,
        repo = inst.ws.repo().display(),
        notified = notified.display(),
    );
    std::fs::write(inst.data.join("catalog/catalog.toml"), catalog).expect("write");
}

/// Every alert's detail, with its deliveries.
fn alert_details(inst: &Instance) -> Vec<Value> {
    inst.json(&["alerts"], 0)
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| inst.json(&["alert", "show", &a["id"].to_string()], 0))
        .collect()
}

#[test]
fn no_secret_reaches_the_database_events_notifications_log_or_api() {
    let inst = Instance::new();
    let notified = inst.ws.path("notified.txt");
    write_catalog(&inst, &notified);
    std::fs::write(
        inst.data.join("haven.toml"),
        "listen = \"127.0.0.1:0\"\n[export]\nfile = \"events.jsonl\"\n",
    )
    .expect("write");
    let mut server = inst.start_server_with(
        "server.log",
        "022",
        &[
            ("HAVEN_TEST_DUMP_TOKEN", DUMP_ENV_SECRET),
            ("HAVEN_TEST_PAGER_TOKEN", CHANNEL_TOKEN),
        ],
    );
    inst.json(&["run", "erp-db"], 0);
    wait_for("both dumps to fail", || {
        inst.jobs()
            .iter()
            .filter(|j| j["kind"] == "backup" && j["outcome"] == "failed")
            .count()
            == 2
    });
    // Each alert goes to the pager (which fails, quoting its token) and
    // then to the log channel.
    wait_for("two alerts delivered after a failed attempt each", || {
        let details = alert_details(&inst);
        details.len() >= 2
            && details.iter().all(|d| {
                let deliveries = d["deliveries"].as_array().map_or(0, Vec::len);
                deliveries >= 2
            })
    });

    // What the evidence still says: the failure, its cause, the mask.
    let jobs = inst.jobs();
    let literal = jobs
        .iter()
        .find(|j| j["backup_set"] == "literal")
        .expect("the literal job");
    let message = literal["message"].as_str().expect("message");
    assert!(
        message.contains("PGPASSWORD=***") && message.contains("exit status: 3"),
        "{message}"
    );
    let by_reference = jobs
        .iter()
        .find(|j| j["backup_set"] == "by-reference")
        .expect("the by-reference job");
    let message = by_reference["message"].as_str().expect("message");
    assert!(
        message.contains("login with *** (***) refused")
            && message.contains("cannot resume with ***"),
        "{message}"
    );
    let pager_error = alert_details(&inst)[0]["deliveries"][0]["error"].clone();
    assert_eq!(pager_error, "the command exited with 1: token *** rejected");

    // Every place evidence lands.
    let token = std::fs::read_to_string(inst.data.join("api-token")).expect("token");
    let address = std::fs::read_to_string(inst.data.join("server.addr")).expect("address");
    let mut places: Vec<(String, String)> = Vec::new();
    for path in ["jobs?limit=1000", "alerts"] {
        let answer = http_get(
            address.trim(),
            &format!("/api/v1/{path}"),
            Some(token.trim()),
        );
        places.push((format!("GET /api/v1/{path}"), answer));
    }
    for job in &jobs {
        let path = format!("/api/v1/jobs/{}", job["id"]);
        places.push((
            format!("GET {path}"),
            http_get(address.trim(), &path, Some(token.trim())),
        ));
    }
    for alert in alert_details(&inst) {
        let path = format!("/api/v1/alerts/{}", alert["id"]);
        places.push((
            format!("GET {path}"),
            http_get(address.trim(), &path, Some(token.trim())),
        ));
    }
    let file = |name: &str| {
        String::from_utf8_lossy(&std::fs::read(inst.data.join(name)).unwrap_or_default())
            .into_owned()
    };
    // The database as it runs (its write-ahead log holds the newest
    // pages) and after the shutdown's checkpoint.
    let wal = file("haven.db-wal");
    places.push(("haven.db (running)".into(), file("haven.db")));
    signal(&server, rustix::process::Signal::TERM);
    assert!(exited(&mut server).success());
    places.push(("haven.db".into(), file("haven.db")));
    places.push(("events.jsonl".into(), file("events.jsonl")));
    places.push(("notifications".into(), log_of(&notified)));
    places.push(("server log".into(), log_of(&inst.ws.path("server.log"))));
    for (place, text) in &places {
        assert!(
            !text.is_empty(),
            "{place} holds nothing: the grep would prove nothing"
        );
    }
    places.push(("haven.db-wal (running)".into(), wal));
    places.push(("haven.db-wal".into(), file("haven.db-wal")));
    assert!(
        places
            .iter()
            .any(|(p, t)| p == "notifications" && t.contains("erp-db")),
        "the notifications were sent"
    );

    let secrets: Vec<&str> = ON_COMMAND_LINE
        .into_iter()
        .chain([
            DUMP_FILE_SECRET,
            DUMP_ENV_SECRET,
            HOOK_SECRET,
            CHANNEL_TOKEN,
        ])
        .collect();
    let hits: Vec<(&str, &str)> = secrets
        .iter()
        .flat_map(|&secret| {
            places
                .iter()
                .filter(move |(_, text)| text.contains(secret))
                .map(move |(place, _)| (secret, place.as_str()))
        })
        .collect();
    eprintln!(
        "redaction: {} secrets planted, {} places searched, {} hits",
        secrets.len(),
        places.len(),
        hits.len()
    );
    assert!(hits.is_empty(), "secrets found: {hits:?}");
}
