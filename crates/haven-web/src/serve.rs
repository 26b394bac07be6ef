//! Serving the API: HTTP/1.1 on a bound listener, with the limit axum's
//! own `serve` does not set: a connection that takes longer than
//! [`IDLE_TIMEOUT`] to send its request headers is closed, and so is a
//! keep-alive connection idle that long (waiting for the next request is
//! waiting for headers). Bodies are bounded by the router (size) and the
//! extractors (time).

use std::future::Future;
use std::time::Duration;

use axum::extract::ConnectInfo;
use haven_ops::api::Audited;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

/// How long a connection may be idle, or take to send request headers.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests in flight may take to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    instance: Audited,
    token: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = crate::router(instance, token);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, or a connection reset before
                        // it was accepted: the listener itself is fine.
                        tracing::warn!("cannot accept an API connection: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(IDLE_TIMEOUT);
                // Each request knows where it came from (the audit log's
                // origin).
                let app = app.clone().map_request(move |mut request: axum::extract::Request<_>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
                let connection = builder.serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(app),
                );
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!("API connection ended: {e}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("API requests still running at shutdown were cut off");
        }
    }
    Ok(())
}
