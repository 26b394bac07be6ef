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
        sqlx::query(
            "INSERT INTO tokens (id, secret_hash, record) VALUES (?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET record = excluded.record",
        )
        .bind(&token.id)
        .bind(&token.secret_hash)
        .bind(json_text(token)?)
        .execute(&self.pool)
        .await?;
        Ok(())
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
        let row = sqlx::query("SELECT record FROM tokens WHERE secret_hash = ?")
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await?;
        record_of(row, "token")
    }
}

impl SqliteStore {
    pub(crate) async fn put_session_impl(&self, session: &Session) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id, secret_hash, record) VALUES (?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET record = excluded.record",
        )
        .bind(&session.id)
        .bind(&session.secret_hash)
        .bind(json_text(session)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn session_by_secret_impl(
        &self,
        secret_hash: &str,
    ) -> Result<Option<Session>> {
        let row = sqlx::query("SELECT record FROM sessions WHERE secret_hash = ?")
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await?;
        record_of(row, "session")
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
