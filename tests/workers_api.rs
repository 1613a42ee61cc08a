//! The worker routes (atc-api.md §3.8) over real HTTP. System tokens only exist inside the
//! TSA, so workers are registered the real way: a beacon through the TSA.

mod common;
#[path = "common/tsa.rs"]
mod tsa_support;

use common::Backend;
use concourse::proto::worker::WorkerState;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tsa_support::{Gateway, RunningBeacon, StandIn};

/// Fast heartbeats; no collection during a test, so `landing` stays `landing`.
const FAST: &[&str] = &["--tsa-heartbeat-interval", "1s", "--gc-interval", "1h"];

async fn call(
    gateway: &Gateway,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut req = Client::new().request(method, gateway.server.api(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    (status, resp.text().await.expect("body"))
}

/// A directly reachable worker registered with `register-worker`.
async fn direct_worker(gateway: &Gateway, local: &StandIn, name: &str) -> RunningBeacon {
    let mut config = gateway.beacon(name, local);
    config.direct = true;
    config.worker.garden_addr = local.addr.clone();
    config.worker.baggageclaim_url = format!("http://{}", local.addr);
    RunningBeacon::start(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directly_reachable_worker_keeps_its_own_addresses() {
    let gateway = Gateway::start(Backend::Embedded, FAST);
    let local = StandIn::start().await;
    let token = gateway.admin_token().await;
    let beacon = direct_worker(&gateway, &local, "direct").await;
    let worker = gateway
        .wait_for_state(&token, "direct", WorkerState::Running)
        .await;
    assert_eq!(worker["addr"], local.addr.as_str());
    assert_eq!(worker["baggageclaim_url"], format!("http://{}", local.addr));
    assert_eq!(worker["active_containers"], 2);
    assert_eq!(worker["team"], "");
    assert_eq!(worker["version"], "3.0");
    beacon.stop().await.expect("clean stop");
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_routes_refuse_users_and_change_nothing() {
    let gateway = Gateway::start(Backend::Embedded, FAST);
    let local = StandIn::start().await;
    let admin = gateway.admin_token().await;
    let beacon = direct_worker(&gateway, &local, "w").await;
    gateway
        .wait_for_state(&admin, "w", WorkerState::Running)
        .await;

    let payload = json!({"addr": "1.2.3.4:7777", "name": "sneaky", "version": "3.0"});
    let (status, _) = call(
        &gateway,
        Method::POST,
        "/api/v1/workers?ttl=30s",
        None,
        Some(payload.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &gateway,
        Method::POST,
        "/api/v1/workers?ttl=30s",
        Some(&admin),
        Some(payload),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "admins are not the system");
    let (status, _) = call(
        &gateway,
        Method::PUT,
        "/api/v1/workers/w/heartbeat?ttl=30s",
        Some(&admin),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &gateway,
        Method::DELETE,
        "/api/v1/workers/w",
        Some(&admin),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(gateway.worker(&admin, "sneaky").await.is_none());
    assert!(gateway.worker(&admin, "w").await.is_some());

    // Listing needs a token, and a team (or admin).
    let (status, _) = call(&gateway, Method::GET, "/api/v1/workers", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let dev = gateway.server.token("dev", "dev").await;
    let (status, _) = call(&gateway, Method::GET, "/api/v1/workers", Some(&dev), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    beacon.stop().await.expect("clean stop");
    local.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn land_and_prune_follow_upstreams_rules() {
    let gateway = Gateway::start(Backend::Embedded, FAST);
    let local = StandIn::start().await;
    let admin = gateway.admin_token().await;
    let beacon = direct_worker(&gateway, &local, "w").await;
    gateway
        .wait_for_state(&admin, "w", WorkerState::Running)
        .await;

    let (status, body) = call(
        &gateway,
        Method::PUT,
        "/api/v1/workers/w/prune",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON"),
        json!({"stderr": "cannot prune running worker"})
    );
    assert!(
        gateway.worker(&admin, "w").await.is_some(),
        "still registered"
    );

    // A user on no team cannot touch a global worker.
    let dev = gateway.server.token("dev", "dev").await;
    let (status, _) = call(
        &gateway,
        Method::PUT,
        "/api/v1/workers/w/land",
        Some(&dev),
        Some(json!({"team": ""})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The body's team must be the worker's.
    let (status, _) = call(
        &gateway,
        Method::PUT,
        "/api/v1/workers/w/land",
        Some(&admin),
        Some(json!({"team": "main"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        gateway.worker(&admin, "w").await.expect("listed")["state"],
        "running"
    );

    let (status, _) = call(
        &gateway,
        Method::PUT,
        "/api/v1/workers/w/land",
        Some(&admin),
        Some(json!({"team": ""})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    gateway
        .wait_for_state(&admin, "w", WorkerState::Landing)
        .await;
    let (status, _) = call(
        &gateway,
        Method::PUT,
        "/api/v1/workers/w/prune",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(gateway.worker(&admin, "w").await.is_none());

    // The next heartbeat finds it gone: the registration ends (exit 0), no re-registration.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), beacon.task)
        .await
        .expect("registration ended within 30s")
        .expect("beacon task");
    assert_eq!(
        ended.expect("clean end"),
        concourse::beacon::Ended::Finished
    );
    assert!(gateway.worker(&admin, "w").await.is_none());

    for route in ["land", "retire", "prune"] {
        let (status, _) = call(
            &gateway,
            Method::PUT,
            &format!("/api/v1/workers/missing/{route}"),
            Some(&admin),
            Some(json!({})),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{route}");
    }
    local.stop().await;
}
