//! Serving the API on an already-bound listener until the shutdown token fires.

use super::api::{router, AppState};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
