//! Serving the API on an already-bound listener until the shutdown token fires.

use super::api::{router, AppState};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long open requests (event streams, log tails) may run on after shutdown: a client
/// holding a stream open must not keep the node from stopping and destroying containers.
const DRAIN: Duration = Duration::from_secs(3);

pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // Connect info gives login throttling the client's address.
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // An event stream's small frames must not wait on Nagle for the previous one's ACK.
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let stopping = shutdown.clone();
    let serve = async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stopping.cancelled().await })
            .await
    };
    tokio::select! {
        served = serve => served,
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(DRAIN).await;
        } => {
            tracing::info!("requests still open after shutdown; closing them");
            Ok(())
        }
    }
}
