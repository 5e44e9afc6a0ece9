//! `regstack serve`: the API under `api_prefix`, health probes at the root, access logs, and
//! graceful shutdown on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Extension, Router};
use tower_http::timeout::TimeoutLayer;

use crate::RegStack;

/// The whole server app for one instance.
pub fn app(rs: &RegStack) -> Router {
    regstack_core::http::probes(rs.engine().clone())
        .nest(&rs.config().api_prefix, rs.router())
        .merge(rs.pages())
        .fallback(|| async { regstack_core::http::ApiError::not_found() })
        .layer(Extension(rs.clone()))
        .layer(crate::panic_guard())
        .layer(middleware::from_fn(access_log))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
}

/// One INFO line per request: method, path (never the query), status, duration.
async fn access_log(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let started = Instant::now();
    let resp = next.run(req).await;
    tracing::info!(
        target: "regstack.http",
        "{method} {path} {} {:.1}ms",
        resp.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    resp
}

/// Binds and serves until SIGTERM or SIGINT, then drains in-flight requests.
pub async fn run(rs: RegStack, host: &str, port: u16) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {host}:{port}: {e}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(target: "regstack", "regstack serving {} on http://{addr}{}", rs.config().app_name, rs.config().api_prefix);
    let sweeper = spawn_sweeper(rs.clone());
    axum::serve(listener, app(&rs).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown())
        .await?;
    if let Some(task) = sweeper {
        task.abort();
    }
    tracing::info!(target: "regstack", "regstack stopped");
    Ok(())
}

/// Sweeps expired rows every `purge_interval_seconds` (first one interval after start); a
/// failed sweep is logged and the next one tries again.
fn spawn_sweeper(rs: RegStack) -> Option<tokio::task::JoinHandle<()>> {
    let every = rs.config().purge_interval_seconds;
    if every == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let period = Duration::from_secs(every);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = rs.purge_expired().await {
                tracing::warn!(target: "regstack.housekeeping", error = %e, "sweeping expired rows failed");
            }
        }
    }))
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!(target: "regstack", "shutting down");
}
