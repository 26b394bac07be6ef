//! Users and tokens in SQLite.

use haven_model::access::{Session, Token, User};
use jiff::Timestamp;
use sqlx::Row;

use super::{SqliteStore, from_json, json_text, ms, record_of};
use crate::Result;

impl SqliteStore {
    pub(crate) async fn put_user_impl(&self, user: &User) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (name, record) VALUES (?, ?) \
             ON CONFLICT (name) DO UPDATE SET record = excluded.record",
        )
        .bind(&user.name)
        .bind(json_text(user)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn users_impl(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT record FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| from_json(&r.try_get::<String, _>("record")?, "user"))
            .collect()
    }

    pub(crate) async fn put_token_impl(&self, token: &Token) -> Result<()> {
        self.put_keyed("tokens", &token.id, &token.secret_hash, &json_text(token)?)
            .await
    }

    pub(crate) async fn tokens_impl(&self) -> Result<Vec<Token>> {
        let rows = sqlx::query("SELECT record FROM tokens ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| from_json(&r.try_get::<String, _>("record")?, "token"))
            .collect()
    }

    pub(crate) async fn token_by_secret_impl(&self, secret_hash: &str) -> Result<Option<Token>> {
        self.by_secret("tokens", secret_hash, "token").await
    }

    /// Store `record` in `table` (tokens, sessions: an id, the hash of
    /// the secret that proves it, the record), replacing its last version.
    async fn put_keyed(
        &self,
        table: &'static str,
        id: &str,
        secret_hash: &str,
        record: &str,
    ) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO {table} (id, secret_hash, record) VALUES (?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET record = excluded.record"
        ))
        .bind(id)
        .bind(secret_hash)
        .bind(record)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The record of `table` whose secret hashes to `secret_hash`.
    async fn by_secret<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        secret_hash: &str,
        what: &str,
    ) -> Result<Option<T>> {
        let row = sqlx::query(&format!("SELECT record FROM {table} WHERE secret_hash = ?"))
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await?;
        record_of(row, what)
    }
}

impl SqliteStore {
    pub(crate) async fn put_session_impl(&self, session: &Session) -> Result<()> {
        let record = json_text(session)?;
        self.put_keyed("sessions", &session.id, &session.secret_hash, &record)
            .await
    }

    pub(crate) async fn session_by_secret_impl(
        &self,
        secret_hash: &str,
    ) -> Result<Option<Session>> {
        self.by_secret("sessions", secret_hash, "session").await
    }

    pub(crate) async fn delete_session_impl(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn add_login_failure_impl(
        &self,
        at: Timestamp,
        account: &str,
        origin: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO login_failures (at, account, origin) VALUES (?, ?, ?)")
            .bind(ms(at))
            .bind(account)
            .bind(origin)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn login_failures_since_impl(&self, since: Timestamp) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM login_failures WHERE at >= ?")
            .bind(ms(since))
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
    }
}
