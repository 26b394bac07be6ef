//! A Haven instance from the command line: its settings, and the way to
//! reach it (the running server's API, or the data dir directly).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use haven_ops::instance::catalog::load_catalog;
use haven_ops::instance::lock::data_dir_in_use;
use haven_ops::instance::settings::{
    Overrides, Settings, read_token, server_address_file, token_file,
};
use haven_store::Store;
use haven_web::client::Client;

use crate::cli::{GlobalArgs, InstanceArgs};
use crate::context::UsageError;

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

/// How a command reaches the instance.
pub enum Access {
    /// A server runs on the data dir: ask it.
    Server(Client),
    /// No server: read the data dir's database and catalog.
    Direct {
        /// The store.
        store: Arc<dyn Store>,
    },
}

fn require_data_dir(data_dir: &Path) -> Result<()> {
    if !data_dir.is_dir() {
        bail!(UsageError(format!(
            "no Haven data dir at {}: pass --data-dir (or HAVEN_DATA_DIR), or create one with `haven server` or `haven demo`",
            data_dir.display()
        )));
    }
    Ok(())
}

/// Reach the instance: through its server when one holds the data dir.
pub async fn connect(settings: &Settings) -> Result<Access> {
    require_data_dir(&settings.data_dir)?;
    if data_dir_in_use(&settings.data_dir) {
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
        return Ok(Access::Server(Client::new(&address, token)));
    }
    let store = haven_store::open(&settings.database)
        .await
        .with_context(|| {
            format!(
                "cannot open the database of {}",
                settings.data_dir.display()
            )
        })?;
    Ok(Access::Direct {
        store: Arc::from(store),
    })
}

/// The catalog, checked (errors refuse it).
pub fn catalog(settings: &Settings) -> Result<Arc<haven_model::catalog::Catalog>> {
    Ok(load_catalog(&settings.catalog, jiff::Timestamp::now())?)
}
