//! The conformance suite on the embedded SQLite store, plus what only
//! SQLite has (a file in WAL mode that survives reopening).

mod conformance;

use haven_store::{SqliteStore, Store};
use tempfile::TempDir;

async fn fresh() -> (Box<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("haven.db").display());
    (Box::new(SqliteStore::open(&url).await.expect("open")), dir)
}

conformance_tests!(fresh());

#[tokio::test]
async fn a_reopened_database_keeps_its_records_and_migrates_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("haven.db");
    let url = format!("sqlite://{}", path.display());
    {
        let store = SqliteStore::open(&url).await.expect("open");
        store
            .set_schedule_mark("backup:a/set", jiff::Timestamp::UNIX_EPOCH)
            .await
            .expect("mark");
    }
    let store = haven_store::open(&url).await.expect("reopen");
    assert_eq!(store.schedule_marks().await.expect("marks").len(), 1);
    let mode: String = {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("connect");
        sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .expect("pragma")
    };
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn an_unsupported_url_is_refused_without_echoing_credentials() {
    let err = haven_store::open("mysql://admin:s3cret@db/haven")
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(text.contains("\"mysql\""), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}
