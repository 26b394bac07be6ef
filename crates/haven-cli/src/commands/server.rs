//! `haven server`: the scheduler, job runner, compliance evaluator and
//! API, in the foreground until SIGTERM or Ctrl-C.

use std::sync::Arc;

use anyhow::{Context, Result};
use haven_ops::clock::SystemClock;
use haven_ops::instance::lock_data_dir;
use haven_ops::instance::{Settings, ensure_token, server_address_file};
use haven_ops::jobs::EngineRunner;
use haven_ops::server::{self, Handle};
use tokio::sync::watch;

use crate::cli::{GlobalArgs, ServerArgs};
use crate::{exit, instance};

pub fn run(global: &GlobalArgs, args: &ServerArgs) -> Result<u8> {
    let settings = instance::settings(global, Some(&args.instance), args.listen.as_deref())?;
    serve(settings, |_, _| {})
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the server could not stop cleanly; the
        // default disposition (terminate) still applies.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// Run a server on `settings`; `on_ready` gets its handle and API
/// address once it runs (the demo queues its first backups there).
pub fn serve(
    settings: Settings,
    on_ready: impl FnOnce(Handle, std::net::SocketAddr) + Send + 'static,
) -> Result<u8> {
    let _lock = lock_data_dir(&settings.data_dir)?;
    let catalog = instance::catalog(&settings)?;
    let rt = instance::runtime()?;
    let result = rt.block_on(async move {
        let store: Arc<dyn haven_store::Store> = Arc::from(
            haven_store::open(&settings.database)
                .await
                .context("cannot open the database")?,
        );
        // A certificate that does not read stops the server before it
        // listens, saying which file and why.
        let tls = match &settings.tls {
            Some(t) => Some(
                haven_web::tls::server_config(&t.cert, &t.key)
                    .map_err(|e| anyhow::anyhow!("[tls] in haven.toml: {e}"))?,
            ),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let token = ensure_token(&settings.data_dir).with_context(|| {
            format!(
                "cannot create the API token in {}",
                settings.data_dir.display()
            )
        })?;
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (in use? pass --listen or set `listen` in haven.toml)",
                    settings.listen
                )
            })?;
        let address = listener.local_addr()?;
        // Reports without the server read the catalog it read.
        let catalog_file = haven_ops::instance::server_catalog_file(&settings.data_dir);
        let catalog_dir = std::path::absolute(&settings.catalog)?;
        haven_ops::instance::write_private(
            &catalog_file,
            format!("{}\n", catalog_dir.display()).as_bytes(),
        )
        .with_context(|| format!("cannot write {}", catalog_file.display()))?;
        let address_file = server_address_file(&settings.data_dir);
        let url = format!("{scheme}://{address}");
        // Plain HTTP as `HOST:PORT` (what clients have always read); TLS
        // as a URL, so they know to speak it.
        let written = if tls.is_some() {
            url.clone()
        } else {
            address.to_string()
        };
        haven_ops::instance::write_private(&address_file, format!("{written}\n").as_bytes())
            .with_context(|| format!("cannot write {}", address_file.display()))?;
        eprintln!(
            "haven server: data dir {}, catalog {} ({} services, {} systems), database {}",
            settings.data_dir.display(),
            settings.catalog.display(),
            catalog.services.len(),
            catalog.systems.len(),
            redact(&settings.database)
        );
        eprintln!(
            "API on {url} (token in {})",
            settings.token_file().display()
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut api_stop = stop_rx.clone();
        let api_listener = listener;
        let api_token = token.clone();
        let (handle_tx, handle_rx) = tokio::sync::oneshot::channel::<Handle>();
        let api = tokio::spawn(async move {
            let Ok(handle) = handle_rx.await else {
                return Ok(());
            };
            haven_web::serve(api_listener, handle.audited(), api_token, tls, async move {
                let _ = api_stop.wait_for(|stop| *stop).await;
            })
            .await
        });
        let shutdown = async move {
            stop_signal().await;
            let _ = stop_tx.send(true);
        };
        let result = server::run(
            settings.clone(),
            store,
            Arc::new(SystemClock),
            Arc::new(EngineRunner),
            catalog,
            shutdown,
            move |handle| {
                on_ready(handle.clone(), address);
                let _ = handle_tx.send(handle);
            },
        )
        .await;
        drop(stop_rx);
        let _ = std::fs::remove_file(&address_file);
        api.await
            .context("the API task failed")?
            .context("the API failed")?;
        result?;
        Ok(exit::SUCCESS)
    });
    // Jobs still running after the shutdown timeout are recorded as
    // interrupted; do not wait for their threads.
    rt.shutdown_background();
    result
}

/// A database URL without its password, for the banner.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}
