//! The audit log against tampering: rows edited, deleted, inserted and
//! reordered directly in SQLite (its append-only triggers dropped first),
//! and the whole log truncated and rebuilt; each is found by verification
//! against the signed checkpoints, naming the first bad entry.

use std::path::Path;
use std::sync::Arc;

use haven_model::audit::{Anchored, Entry};
use haven_ops::audit::{Action, AuditLog};
use haven_store::{SqliteStore, Store};
use sqlx::SqlitePool;

fn action(n: u64) -> Action {
    Action {
        actor: format!("local:user{}", n % 3),
        role: Some("operator".into()),
        action: "alert.acknowledge".into(),
        target: format!("alert:{n}"),
        origin: "cli".into(),
        outcome: "success".into(),
        digest: None,
    }
}

/// A data dir whose log holds 130 entries, each with its checkpoint; the
/// notes of those checkpoints.
async fn written(dir: &Path) -> Vec<String> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url(dir)).await.expect("store"));
    let log = AuditLog::open(dir, Arc::clone(&store), None)
        .await
        .expect("log");
    for n in 0..130 {
        assert_eq!(log.record(action(n)).await.expect("record"), n);
    }
    assert_eq!(log.checkpoint().await.expect("checkpoint"), None, "covered");
    let notes: Vec<(u64, String)> = store.audit_checkpoints().await.expect("checkpoints");
    let sizes: Vec<u64> = notes.iter().map(|(s, _)| *s).collect();
    assert_eq!(sizes, (1..=130).collect::<Vec<u64>>());
    notes.into_iter().map(|(_, n)| n).collect()
}

fn url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("haven.db").display())
}

/// A copy of the data dir, to tamper with.
fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("audit")).expect("mkdir");
    for file in ["haven.db", "audit/log.key", "audit/log.pub"] {
        std::fs::copy(from.join(file), to.join(file)).expect("copy");
    }
}

/// Run SQL on the copy as someone with the database file would: the
/// triggers go first.
async fn tamper(dir: &Path, sql: &[&str]) {
    let pool = SqlitePool::connect(&url(dir)).await.expect("connect");
    for trigger in [
        "audit_entries_no_update",
        "audit_entries_no_delete",
        "audit_checkpoints_no_update",
        "audit_checkpoints_no_delete",
    ] {
        sqlx::query(&format!("DROP TRIGGER {trigger}"))
            .execute(&pool)
            .await
            .expect("drop trigger");
    }
    for statement in sql {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect(statement);
    }
    pool.close().await;
}

async fn verify_copy(dir: &Path, outside: Vec<Anchored>) -> haven_model::audit::Verification {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url(dir)).await.expect("store"));
    let log = AuditLog::open(dir, store, None).await.expect("log");
    log.verify(outside).await.expect("verify")
}

/// The leaf column as it would be for `entry` (a careful tamperer).
fn leaf_hex(entry: &Entry) -> String {
    entry.leaf().0.iter().map(|b| format!("{b:02X}")).collect()
}

fn record_json(entry: &Entry) -> String {
    serde_json::to_string(entry)
        .expect("json")
        .replace('\'', "''")
}

#[tokio::test]
async fn every_kind_of_tampering_is_found_and_the_first_bad_entry_named() {
    let root = tempfile::tempdir().expect("tempdir");
    let original = root.path().join("original");
    std::fs::create_dir_all(&original).expect("mkdir");
    let notes = written(&original).await;

    // Intact: every checkpoint holds.
    let intact = verify_copy(&original, Vec::new()).await;
    assert!(intact.problems.is_empty(), "{intact:#?}");
    assert_eq!(
        (intact.entries, intact.checkpoints_ok, intact.covered),
        (130, 130, 130)
    );

    // The store itself refuses to change or remove an entry.
    let pool = SqlitePool::connect(&url(&original)).await.expect("connect");
    let refused = sqlx::query("UPDATE audit_entries SET record = '{}' WHERE seq = 3")
        .execute(&pool)
        .await
        .expect_err("append-only");
    assert!(refused.to_string().contains("append-only"), "{refused}");
    assert!(
        sqlx::query("DELETE FROM audit_checkpoints")
            .execute(&pool)
            .await
            .is_err()
    );
    pool.close().await;

    let forged = |seq: u64| Entry {
        seq,
        at: "2026-11-29T00:00:00Z".parse().expect("time"),
        actor: "local:mallory".into(),
        role: None,
        action: "alert.acknowledge".into(),
        target: "alert:999".into(),
        origin: "cli".into(),
        outcome: "success".into(),
        digest: None,
    };
    let cases: Vec<(&str, Vec<String>, u64)> = vec![
        (
            "a row edited",
            vec!["UPDATE audit_entries SET record = replace(record, 'user1', 'mallory') WHERE seq = 70".into()],
            70,
        ),
        (
            "a row edited with its leaf recomputed",
            vec![format!(
                "UPDATE audit_entries SET record = '{}', leaf = X'{}' WHERE seq = 70",
                record_json(&forged(70)),
                leaf_hex(&forged(70))
            )],
            70,
        ),
        ("a row deleted", vec!["DELETE FROM audit_entries WHERE seq = 70".into()], 70),
        (
            "two rows swapped",
            vec![
                "UPDATE audit_entries SET seq = -1 WHERE seq = 70".into(),
                "UPDATE audit_entries SET seq = 70 WHERE seq = 71".into(),
                "UPDATE audit_entries SET seq = 71 WHERE seq = -1".into(),
            ],
            70,
        ),
        (
            "a row inserted, the rest renumbered",
            vec![
                "UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 70".into(),
                "UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1000".into(),
                format!(
                    "INSERT INTO audit_entries (seq, leaf, record) VALUES (70, X'{}', '{}')",
                    leaf_hex(&forged(70)),
                    record_json(&forged(70))
                ),
            ],
            70,
        ),
        (
            "the newest checkpoints removed to hide an edit",
            vec![
                "UPDATE audit_entries SET record = replace(record, 'user1', 'mallory') WHERE seq = 121".into(),
                "DELETE FROM audit_checkpoints WHERE size > 121".into(),
            ],
            121,
        ),
    ];
    for (n, (what, sql, first_bad)) in cases.into_iter().enumerate() {
        let copy_dir = root.path().join(format!("case{n}"));
        copy(&original, &copy_dir);
        let sql: Vec<&str> = sql.iter().map(String::as_str).collect();
        tamper(&copy_dir, &sql).await;
        let found = verify_copy(&copy_dir, Vec::new()).await;
        assert_eq!(found.first_bad(), Some(first_bad), "{what}: {found:#?}");
    }

    // Truncated and rebuilt: the log and its checkpoints in the database
    // replaced by 10 new entries (signed with the log's own key, as
    // someone holding the data dir could). The checkpoints kept outside
    // the database show it.
    let copy_dir = root.path().join("rebuilt");
    copy(&original, &copy_dir);
    tamper(
        &copy_dir,
        &["DELETE FROM audit_entries", "DELETE FROM audit_checkpoints"],
    )
    .await;
    {
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&url(&copy_dir)).await.expect("store"));
        let log = AuditLog::open(&copy_dir, store, None).await.expect("log");
        for n in 0..10 {
            log.record(action(n)).await.expect("record");
        }
        log.checkpoint().await.expect("checkpoint");
    }
    let inside_only = verify_copy(&copy_dir, Vec::new()).await;
    assert!(
        inside_only.problems.is_empty(),
        "rebuilt consistently: {inside_only:#?}"
    );
    let outside: Vec<Anchored> = notes
        .iter()
        .map(|note| Anchored {
            place: "the SIEM export".into(),
            note: note.clone(),
        })
        .collect();
    let found = verify_copy(&copy_dir, outside).await;
    assert!(
        found
            .problems
            .iter()
            .any(|p| p.detail.contains("truncated")),
        "{found:#?}"
    );
    // Its first entry already disagrees with the outside checkpoint for
    // one entry.
    assert_eq!(found.first_bad(), Some(0), "{found:#?}");

    // A checkpoint signed with another key is not the log's.
    let stranger = root.path().join("stranger");
    std::fs::create_dir_all(&stranger).expect("mkdir");
    let other = written(&stranger).await;
    let found = verify_copy(
        &original,
        vec![Anchored {
            place: "a forged copy".into(),
            note: other[0].clone(),
        }],
    )
    .await;
    assert!(
        found
            .problems
            .iter()
            .any(|p| p.detail.contains("a forged copy")),
        "{found:#?}"
    );
}

/// The log is searched by who, what, on what and how it ended: the
/// newest matches first, or the first from an entry on; pages of the
/// log are crossed.
#[tokio::test]
async fn the_log_is_searched_by_actor_action_target_and_outcome() {
    use haven_ops::audit::AuditFilter;
    let root = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&url(root.path())).await.expect("store"));
    let log = AuditLog::open(root.path(), store, None).await.expect("log");
    // 2,500 entries (three pages): every 100th a refused recovery by ana.
    for n in 0..2500u64 {
        let mut a = action(n);
        if n % 100 == 0 {
            a.actor = "user:ana (ses_1)".into();
            a.action = "recovery.start".into();
            a.target = format!("services:payments,{n}");
            a.outcome = "refused".into();
        }
        log.record(a).await.expect("record");
    }
    let ana = AuditFilter {
        actor: Some("ANA".into()),
        action: Some("recovery.".into()),
        ..AuditFilter::default()
    };
    let newest = log.search(&ana, 3).await.expect("search");
    let seqs: Vec<u64> = newest.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![2400, 2300, 2200], "newest first, across pages");
    let all = log.search(&ana, 1000).await.expect("search");
    assert_eq!(all.len(), 25);
    let from = log.search_from(&ana, 1050, 2).await.expect("search");
    let seqs: Vec<u64> = from.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1100, 1200], "oldest first from an entry on");
    let refused_elsewhere = AuditFilter {
        outcome: Some("refused".into()),
        target: Some("ledger".into()),
        ..AuditFilter::default()
    };
    assert!(
        log.search(&refused_elsewhere, 10)
            .await
            .expect("search")
            .is_empty()
    );
    let user1 = AuditFilter {
        actor: Some("local:user1".into()),
        outcome: Some("success".into()),
        ..AuditFilter::default()
    };
    let found = log.search(&user1, 5000).await.expect("search");
    assert!(found.iter().all(|e| e.actor == "local:user1"));
    assert_eq!(
        found.len(),
        (0..2500u64).filter(|n| n % 3 == 1 && n % 100 != 0).count()
    );
}
