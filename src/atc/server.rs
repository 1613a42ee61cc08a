//! Serving the API on an already-bound listener until the shutdown token fires.

use super::api::{router, AppState};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // Connect info gives login throttling the client's address.
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
