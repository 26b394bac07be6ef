//! A Haven instance from the command line: its settings, and the way to
//! reach it (the running server's API, or the data dir directly).

use std::sync::Arc;

use anyhow::{Context, Result};
use haven_model::actor::Actor;
use haven_ops::api::Instance;
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

/// Reach the instance: through its server's API when one holds the data
/// dir, else on the data dir directly. Commands call the one interface
/// and do not know which.
pub async fn connect(settings: &Settings) -> Result<Box<dyn Instance>> {
    if !settings.data_dir.is_dir() || !data_dir_in_use(&settings.data_dir) {
        return Ok(Box::new(
            DataDir::open(settings.clone()).await?.audited().await?,
        ));
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
    let token = read_token(&settings.data_dir).with_context(|| {
        format!(
            "cannot read the API token in {}",
            token_file(&settings.data_dir).display()
        )
    })?;
    Ok(Box::new(Remote::new(&address, token)))
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
