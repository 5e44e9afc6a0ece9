//! Embedding regstack in a host axum app: nest the API, protect the host's own routes with the
//! extractors, and react to events.
//!
//! Run with `cargo run -p regstack --example embed`, then:
//! `curl -XPOST localhost:3000/api/auth/register -H 'content-type: application/json' -d '{"email":"me@example.com","password":"password123"}'`

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Extension, Router};
use regstack::{Admin, CurrentUser, OptionalUser, RegStack};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();

    // regstack.toml, ./regstack.secrets.env and REGSTACK_* variables, as `regstack serve` reads them.
    let config = regstack::settings::load(None, &[("email.log_bodies".into(), true.into())])?.config;
    let rs = RegStack::new(config).await?;
    rs.on("user_registered", |event| async move {
        if let Some(user) = event.user() {
            tracing::info!("welcome aboard, {}", user.email);
        }
    });

    let app = Router::new()
        .route(
            "/",
            get(|OptionalUser(user): OptionalUser| async move {
                match user {
                    Some(u) => format!("Hello, {}!", u.full_name.unwrap_or(u.email)),
                    None => "Hello, stranger. POST /api/auth/login to sign in.".to_string(),
                }
            }),
        )
        .route(
            "/orders",
            get(|CurrentUser(user): CurrentUser| async move { format!("orders of {}", user.id) }),
        )
        .route(
            "/ops",
            get(|Admin(admin): Admin| async move { format!("ops console for {}", admin.email) }),
        )
        .nest(&rs.config().api_prefix.clone(), rs.router())
        .layer(Extension(rs.clone()));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
