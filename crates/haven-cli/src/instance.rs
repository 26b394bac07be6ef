//! A Haven instance from the command line: its settings, and the way to
//! reach it (the running server's API, or the data dir directly).

use std::sync::Arc;

use anyhow::{Context, Result};
use haven_model::actor::Actor;
use haven_ops::api::{Caller, Instance};
use haven_ops::datadir::DataDir;
use haven_ops::instance::data_dir_in_use;
use haven_ops::instance::load_catalog;
use haven_ops::instance::{Overrides, Settings, read_token, server_address_file, token_file};
use haven_web::client::Remote;

use crate::cli::{GlobalArgs, InstanceArgs};

/// The instance's settings: haven.toml, then `HAVEN_*`, then flags.
pub fn settings(
    global: &GlobalArgs,
    instance: Option<&InstanceArgs>,
    listen: Option<&str>,
) -> Result<Settings> {
    let overrides = Overrides {
        catalog: instance.and_then(|i| i.catalog.clone()),
        database: instance.and_then(|i| i.database_url.clone()),
        listen: listen.map(str::to_string),
    };
    Ok(Settings::load(&global.data_dir, &overrides)?)
}

/// One async runtime per command that needs it.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// How this command reaches its instance and acts on it (the global
/// flags, and `HAVEN_TOKEN`).
#[derive(Clone, Debug, Default)]
struct Reach {
    server: Option<String>,
    break_glass: Option<String>,
}

static REACH: std::sync::OnceLock<Reach> = std::sync::OnceLock::new();

/// Remember how this command reaches its instance (called once, first).
pub fn reach_as(global: &GlobalArgs) {
    let _ = REACH.set(Reach {
        server: global.server.clone(),
        break_glass: global.break_glass.clone(),
    });
}

/// A user's or automation's token to act with (`HAVEN_TOKEN`; never a
/// flag: command lines are visible to every user of the host).
fn user_token() -> Option<String> {
    std::env::var("HAVEN_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Reach the instance: the server `--server` names, or the server that
/// holds the data dir, through its API; else the data dir directly.
/// With `HAVEN_TOKEN` the command acts as that token's user (checked by
/// the server, or here against the data dir's users). Commands call the
/// one interface and do not know which.
pub async fn connect(settings: &Settings) -> Result<Box<dyn Instance>> {
    let reach = REACH.get().cloned().unwrap_or_default();
    if let Some(address) = &reach.server {
        let token = match user_token() {
            Some(token) => token,
            None => read_token(&settings.data_dir).with_context(|| {
                format!("--server {address} needs a token: set HAVEN_TOKEN to one of yours (`haven token create`)")
            })?,
        };
        return Ok(Box::new(
            Remote::new(address, token).break_glass(reach.break_glass),
        ));
    }
    if !settings.data_dir.is_dir() || !data_dir_in_use(&settings.data_dir) {
        return local(settings, reach.break_glass).await;
    }
    let address_file = server_address_file(&settings.data_dir);
    let address = std::fs::read_to_string(&address_file)
        .with_context(|| {
            format!(
                "a server holds {} but its address file {} cannot be read",
                settings.data_dir.display(),
                address_file.display()
            )
        })?
        .trim()
        .to_string();
    let token = match user_token() {
        Some(token) => token,
        None => read_token(&settings.data_dir).with_context(|| {
            format!(
                "cannot read the API token in {}",
                token_file(&settings.data_dir).display()
            )
        })?,
    };
    // A server speaking TLS with its own (or a private CA's) certificate:
    // trust the certificate its settings name.
    let ca = settings
        .tls
        .as_ref()
        .and_then(|t| std::fs::read(&t.cert).ok());
    Ok(Box::new(
        Remote::trusting(&address, token, ca.as_deref()).break_glass(reach.break_glass),
    ))
}

/// The data dir itself, acting as its owner (this account holds its
/// keys), or as `HAVEN_TOKEN`'s user.
async fn local(settings: &Settings, break_glass: Option<String>) -> Result<Box<dyn Instance>> {
    let audited = DataDir::open(settings.clone()).await?.audited().await?;
    let mut caller = match user_token() {
        Some(secret) => {
            let identity = audited.authenticate(&secret).await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "HAVEN_TOKEN is not a live token of this instance (expired, revoked, or its user disabled)"
                )
            })?;
            Caller::identified(&identity, "cli")
        }
        None => Caller::owner(format!("local:{}", haven_engine::host::username()), "cli"),
    };
    caller.break_glass = break_glass;
    Ok(Box::new(audited.acting(caller)))
}

/// Who acts through the CLI: the local account (it can reach the data
/// dir), with `--by` as a declared name. A server records its token as
/// who acted and keeps the declared name (`--by`, else `$USER`) beside.
pub fn actor(by: Option<&String>) -> Actor {
    Actor::new(
        format!("local:{}", haven_engine::host::username()),
        by.map(String::as_str),
    )
}

/// The catalog, checked (errors refuse it).
pub fn catalog(settings: &Settings) -> Result<Arc<haven_model::catalog::Catalog>> {
    Ok(load_catalog(&settings.catalog, jiff::Timestamp::now())?)
}
