//! Serving the API: HTTP/1.1 on a bound listener, with the limit axum's
//! own `serve` does not set: a connection that takes longer than
//! [`IDLE_TIMEOUT`] to send its request headers is closed, and so is a
//! keep-alive connection idle that long (waiting for the next request is
//! waiting for headers). Bodies are bounded by the router (size) and the
//! extractors (time).

use std::future::Future;
use std::time::Duration;

use std::sync::Arc;

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

/// Serve the API on `listener` until `shutdown` resolves; over TLS when
/// `tls` is given (the handshake bounded like request headers).
pub async fn serve(
    listener: tokio::net::TcpListener,
    instance: Audited,
    token: String,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = crate::router(instance, token);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
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
                let app = app.clone();
                let watcher = graceful.watcher();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        None => connection(stream, peer, app, false, watcher).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(IDLE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => connection(tls, peer, app, true, watcher).await,
                                Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}"),
                                Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                            }
                        }
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

/// Serve one connection (plain or TLS) until it ends or the server
/// stops. Each request knows where it came from (the audit log's
/// origin) and whether it came over TLS.
async fn connection<I>(
    io: I,
    peer: std::net::SocketAddr,
    app: axum::Router,
    over_tls: bool,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let app = app.map_request(move |mut request: axum::extract::Request<_>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.headers_mut().remove(crate::session::TLS_MARK);
        if over_tls {
            request.extensions_mut().insert(crate::tls::OverTls);
            request.headers_mut().insert(
                crate::session::TLS_MARK,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        request
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(IDLE_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!("API connection ended: {e}");
    }
}
