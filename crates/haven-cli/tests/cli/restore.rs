//! `haven restore SYSTEM[:SET]`: repository, password and snapshot from
//! the catalog; in a repository shared by several systems, `latest` is
//! this system's; a target holding files is refused unless --overwrite; a
//! dump lands as `<system>-<set>.dump` or goes into a command.

use std::path::Path;

use crate::helpers::{PASSWORD, Workspace, parse_json};

fn catalog(ws: &Workspace) -> String {
    format!(
        r#"
[[system]]
id = "orders-db"
kind = "database-postgres"
policy = "nightly"

[[system.backup_set]]
command = "echo orders-data"

[[system]]
id = "crm-db"
kind = "database-postgres"
policy = "nightly"

[[system.backup_set]]
command = "echo crm-data"

[[system]]
id = "files"
kind = "file-server"
policy = "nightly"

[[system.backup_set]]
name = "docs"
paths = ["{files}"]

[[policy]]
id = "nightly"
schedule = "0 2 * * *"
repository = "shared"

[[repository]]
id = "shared"
url = "{repo}"
password = "env:HAVEN_PASSWORD"
"#,
        files = ws.path("files").display(),
        repo = ws.repo().display(),
    )
}

fn haven(ws: &Workspace, data: &Path) -> assert_cmd::Command {
    let mut cmd = ws.haven();
    cmd.arg("--data-dir")
        .arg(data)
        .env("HAVEN_PASSWORD", PASSWORD);
    cmd
}

#[test]
fn a_system_is_restored_from_its_own_snapshots_by_name() {
    let ws = Workspace::new();
    ws.init();
    let data = ws.path("data");
    std::fs::create_dir_all(data.join("catalog")).expect("mkdir");
    std::fs::create_dir_all(ws.path("files")).expect("mkdir");
    std::fs::write(ws.path("files/a.txt"), "a document\n").expect("write");
    std::fs::write(data.join("catalog/catalog.toml"), catalog(&ws)).expect("catalog");
    // orders first, then crm: the repository's newest snapshot is crm's.
    for system in ["orders-db", "crm-db", "files"] {
        haven(&ws, &data).args(["run", system]).assert().success();
    }

    let out = ws.path("out");
    let restored = parse_json(
        &haven(&ws, &data)
            .args(["--json", "restore", "orders-db", "--target"])
            .arg(&out)
            .output()
            .expect("run"),
        0,
    );
    assert_eq!(restored["system"], "orders-db");
    assert_eq!(restored["backup_set"], "default");
    let dump = std::fs::read_to_string(out.join("orders-db-default.dump")).expect("dump");
    assert_eq!(
        dump, "orders-data\n",
        "this system's latest, not the repository's"
    );
    let names: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["orders-db-default.dump"],
        "nothing else left in the target"
    );

    // The target holds files now: refused, unless --overwrite.
    let again = haven(&ws, &data)
        .args(["--json", "restore", "orders-db", "--target"])
        .arg(&out)
        .output()
        .expect("run");
    let refused = parse_json(&again, 1);
    assert_eq!(refused["error"]["code"], "target-not-empty");
    haven(&ws, &data)
        .args(["restore", "orders-db", "--overwrite", "--target"])
        .arg(&out)
        .assert()
        .success();

    // A file set by SYSTEM:SET, into its own directory.
    let docs = ws.path("docs-out");
    haven(&ws, &data)
        .args(["restore", "files:docs", "--target"])
        .arg(&docs)
        .assert()
        .success();
    let restored_doc = docs.join(ws.path("files/a.txt").strip_prefix("/").expect("absolute"));
    assert_eq!(
        std::fs::read_to_string(restored_doc).expect("doc"),
        "a document\n"
    );

    // --at before the first backup: nothing, said plainly.
    let early = parse_json(
        &haven(&ws, &data)
            .args([
                "--json",
                "restore",
                "crm-db",
                "--at",
                "2000-01-01",
                "--target",
            ])
            .arg(ws.path("early"))
            .output()
            .expect("run"),
        1,
    );
    assert_eq!(early["error"]["code"], "no-such-snapshot");
    assert!(
        early["error"]["message"]
            .as_str()
            .expect("message")
            .contains("crm-db")
    );

    // Into a command: the dump on its standard input.
    let piped = ws.path("piped.sql");
    haven(&ws, &data)
        .args(["restore", "crm-db", "--to-command"])
        .arg(format!("cat > {}", piped.display()))
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(&piped).expect("piped"),
        "crm-data\n"
    );

    // A snapshot of --repo still restores as before.
    let plain = ws.path("plain");
    haven(&ws, &data)
        .args(["restore", "latest", "--target"])
        .arg(&plain)
        .assert()
        .success();
}
