//! Browser-facing defences over real HTTP against a real `concourse web`: the login
//! redirect, the session cookies (`--cookie-secure`, clearing on 401), failed-login
//! limits, webhook tokens (literal and from vars) and the origin of intercept's WebSocket.

mod common;

use common::{Backend, Server};
use reqwest::{Client, Response, StatusCode};

fn no_redirects() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn set_cookies(r: &Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect()
}

async fn form_login(c: &Client, s: &Server, user: &str, pass: &str, redirect: &str) -> Response {
    c.post(s.api("/sky/login"))
        .form(&[
            ("login", user),
            ("password", pass),
            ("redirect_uri", redirect),
        ])
        .send()
        .await
        .expect("POST /sky/login")
}

async fn password_grant(s: &Server, user: &str, pass: &str) -> Response {
    Client::new()
        .post(s.api("/sky/issuer/token"))
        .basic_auth("fly", Some("Zmx5"))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", pass),
            ("scope", "openid"),
        ])
        .send()
        .await
        .expect("POST /sky/issuer/token")
}

/// The `Cookie` header a browser would send after this login response.
fn cookie_header(login: &Response) -> String {
    set_cookies(login)
        .iter()
        .filter_map(|c| c.split(';').next().map(str::to_string))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_redirects_only_to_same_origin_paths() {
    let s = Server::start(Backend::Embedded);
    let c = no_redirects();
    // Browsers drop the tab: `/\t/evil.example` is `//evil.example`, another site.
    for evil in [
        "/%09/evil.example",
        "/%0d%0a/evil.example",
        "/%5Cevil.example",
    ] {
        let r = c
            .get(s.api(&format!("/sky/login?redirect_uri={evil}")))
            .send()
            .await
            .expect("GET /sky/login");
        // Into the Dex-shaped flow: the page to return to rides in the state, sanitised.
        assert_eq!(r.status(), 307);
        let location = r.headers()["location"].to_str().expect("location");
        let url = url::Url::parse(&s.api(location)).expect("url");
        let state = url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .expect("state");
        use base64::Engine;
        let state = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(state)
            .expect("base64");
        let state: serde_json::Value = serde_json::from_slice(&state).expect("json");
        assert_eq!(state["redirect_uri"], "/", "{evil} kept in the state");
    }

    let r = form_login(&c, &s, "test", "test", "/\t/evil.example").await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().expect("location");
    assert!(location.starts_with("/?csrf_token="), "{location}");
    let cookies = cookie_header(&r);

    // Logged in, the GET form redirects straight away: still only same-origin.
    let r = c
        .get(s.api("/sky/login?redirect_uri=/%09/evil.example"))
        .header("Cookie", &cookies)
        .send()
        .await
        .expect("GET /sky/login");
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/");
    let r = c
        .get(s.api("/sky/login?redirect_uri=/teams/main/pipelines/p%3Fx%3D1"))
        .header("Cookie", &cookies)
        .send()
        .await
        .expect("GET /sky/login");
    assert_eq!(r.headers()["location"], "/teams/main/pipelines/p?x=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_secure_marks_every_session_cookie_secure() {
    let s = Server::start_with(Backend::Embedded, &["--cookie-secure"]);
    let c = no_redirects();
    let login = form_login(&c, &s, "test", "test", "/").await;
    assert_eq!(login.status(), 302);
    let set = set_cookies(&login);
    assert_eq!(set.len(), 2, "{set:?}");
    assert!(set[0].starts_with("skymarshal_auth=\"bearer "), "{set:?}");
    assert!(set[1].starts_with("skymarshal_csrf="), "{set:?}");
    assert!(set.iter().all(|c| c.ends_with("; Secure")), "{set:?}");
    assert!(set.iter().all(|c| c.contains("; HttpOnly")), "{set:?}");
    let cookies = cookie_header(&login);

    let r = c
        .get(s.api("/sky/logout"))
        .header("Cookie", &cookies)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 200);
    assert_eq!(
        set_cookies(&r),
        [
            "skymarshal_auth=; Path=/; Max-Age=0; HttpOnly; Secure",
            "skymarshal_csrf=; Path=/; Max-Age=0; Secure"
        ]
    );
    let r = c
        .get(s.api("/api/v1/user"))
        .header("Cookie", &cookies)
        .send()
        .await
        .expect("user");
    assert_eq!(r.status(), 401);
    assert!(
        set_cookies(&r).iter().all(|c| c.ends_with("; Secure")),
        "{:?}",
        set_cookies(&r)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_to_a_request_with_the_auth_cookie_clears_both_cookies() {
    let s = Server::start(Backend::Embedded);
    let c = no_redirects();
    let cleared = [
        "skymarshal_auth=; Path=/; Max-Age=0; HttpOnly",
        "skymarshal_csrf=; Path=/; Max-Age=0",
    ];

    let r = c
        .get(s.api("/api/v1/teams/main/pipelines"))
        .header(
            "Cookie",
            "skymarshal_auth=\"bearer dead\"; skymarshal_csrf=abc",
        )
        .send()
        .await
        .expect("pipelines");
    assert_eq!(r.status(), 401);
    assert_eq!(set_cookies(&r), cleared);

    // A live session without its CSRF token is refused the same way.
    let login = form_login(&c, &s, "test", "test", "/").await;
    let r = c
        .put(s.api("/api/v1/teams/main/pipelines/p/pause"))
        .header("Cookie", cookie_header(&login))
        .send()
        .await
        .expect("pause");
    assert_eq!(r.status(), 401);
    assert_eq!(set_cookies(&r), cleared);

    // Without the cookie there is nothing to clear; other statuses clear nothing.
    let r = c
        .get(s.api("/api/v1/teams/main/pipelines"))
        .bearer_auth("dead")
        .send()
        .await
        .expect("pipelines");
    assert_eq!(r.status(), 401);
    assert!(set_cookies(&r).is_empty());
    let r = c
        .get(s.api("/api/v1/user"))
        .header("Cookie", cookie_header(&login))
        .send()
        .await
        .expect("user");
    assert_eq!(r.status(), 200);
    assert!(set_cookies(&r).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_browser_logins_lock_the_user_out_for_a_minute() {
    let s = Server::start(Backend::Embedded);
    let c = no_redirects();
    for _ in 0..5 {
        let r = form_login(&c, &s, "test", "wrong", "/").await;
        assert_eq!(r.status(), 401);
    }
    // Even the right password (in any case of the name) waits out the window.
    let r = form_login(&c, &s, "TEST", "test", "/").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    assert!(set_cookies(&r).is_empty());
    let html = r.text().await.expect("html");
    assert!(html.contains("too many failed logins"), "{html}");

    let r = form_login(&c, &s, "dev", "dev", "/").await;
    assert_eq!(r.status(), 302, "another user is not locked out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_password_grants_lock_the_user_out_for_a_minute() {
    let s = Server::start(Backend::Embedded);
    // Successful logins do not count.
    for _ in 0..6 {
        assert_eq!(password_grant(&s, "dev", "dev").await.status(), 200);
    }
    for _ in 0..5 {
        assert_eq!(password_grant(&s, "dev", "nope").await.status(), 401);
    }
    let r = password_grant(&s, "dev", "dev").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "access_denied");
    assert_eq!(
        body["error_description"],
        "Too many failed logins; try again later"
    );
    assert_eq!(password_grant(&s, "test", "test").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_from_one_address_lock_it_out_whatever_the_user() {
    let s = Server::start(Backend::Embedded);
    let c = no_redirects();
    // Unknown users, fewer than five tries each: only the address budget runs out.
    for i in 0..20 {
        let user = format!("guess{}", i % 5);
        let status = if i % 2 == 0 {
            password_grant(&s, &user, "x").await.status()
        } else {
            form_login(&c, &s, &user, "x", "/").await.status()
        };
        assert_eq!(status, 401, "attempt {i}");
    }
    let r = password_grant(&s, "test", "test").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = form_login(&c, &s, "dev", "dev", "/").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

const WEBHOOK_PIPELINE: &str = "
resources:
- name: repo
  type: mock
  webhook_token: s3cret
  source: {}
jobs:
- name: j
  plan:
  - get: repo
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_need_the_exact_token() {
    let s = Server::start(Backend::Embedded);
    let token = s.token("test", "test").await;
    let c = Client::new();
    let r = c
        .put(s.api("/api/v1/teams/main/pipelines/p/config"))
        .bearer_auth(&token)
        .header("Content-Type", "application/x-yaml")
        .body(WEBHOOK_PIPELINE)
        .send()
        .await
        .expect("PUT config");
    assert_eq!(r.status(), 201);
    let hook = |t: &str| {
        c.post(s.api(&format!(
            "/api/v1/teams/main/pipelines/p/resources/repo/check/webhook?webhook_token={t}"
        )))
        .send()
    };
    for wrong in ["s3cre", "s3cret1", "S3cret", "((s3cret))"] {
        assert_eq!(hook(wrong).await.expect("webhook").status(), 401, "{wrong}");
    }
    // An empty token is a missing one, as upstream (`Query().Get` gives "").
    assert_eq!(hook("").await.expect("webhook").status(), 400);
    assert_eq!(hook("s3cret").await.expect("webhook").status(), 201);
}

/// `webhook_token`s written as vars: `((vs:tok))` from a `dummy` var source, `((tok))`
/// from the cluster credential manager (none here, so undefined), `((vs:nope))` undefined.
const VAR_WEBHOOK_PIPELINE: &str = "
var_sources:
- name: vs
  type: dummy
  config:
    vars: {tok: from-var-source}
resources:
- name: repo
  type: mock
  webhook_token: ((vs:tok))
  check_every: never
  source: {}
- name: cluster
  type: mock
  webhook_token: ((tok))
  check_every: never
  source: {}
- name: undefined
  type: mock
  webhook_token: ((vs:nope))
  check_every: never
  source: {}
jobs:
- name: j
  plan:
  - get: repo
  - get: cluster
  - get: undefined
";

/// Every build the admin can see (check builds included).
async fn build_count(c: &Client, s: &Server, token: &str) -> usize {
    let r = c
        .get(s.api("/api/v1/builds?limit=1000"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET builds");
    assert_eq!(r.status(), 200);
    let builds: Vec<serde_json::Value> = r.json().await.expect("builds");
    builds.len()
}

async fn put_pipeline(c: &Client, s: &Server, token: &str, path: &str, yaml: &str) {
    let r = c
        .put(s.api(&format!("/api/v1/teams/main/pipelines/{path}")))
        .bearer_auth(token)
        .header("Content-Type", "application/x-yaml")
        .body(yaml.to_string())
        .send()
        .await
        .expect("PUT config");
    assert_eq!(r.status(), 201, "{path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_tokens_are_interpolated_from_var_sources() {
    let s = Server::start(Backend::Embedded);
    let token = s.token("test", "test").await;
    let c = Client::new();
    put_pipeline(&c, &s, &token, "p/config", VAR_WEBHOOK_PIPELINE).await;
    let hook = |resource: &str, t: &str| {
        c.post(s.api(&format!(
            "/api/v1/teams/main/pipelines/p/resources/{resource}/check/webhook?webhook_token={t}"
        )))
        .send()
    };
    let before = build_count(&c, &s, &token).await;
    for (resource, wrong) in [
        ("repo", "((vs:tok))"),
        ("repo", "%28%28vs%3Atok%29%29"),
        ("repo", "from-var-sourc"),
        ("repo", "wrong"),
        // `((tok))` names the cluster credential manager, which has no such var.
        ("cluster", "((tok))"),
        ("cluster", "%28%28tok%29%29"),
        ("cluster", "from-var-source"),
        ("undefined", "((vs:nope))"),
        ("undefined", "%28%28vs%3Anope%29%29"),
        ("undefined", ""),
    ] {
        let r = hook(resource, wrong).await.expect("webhook");
        let expected = if wrong.is_empty() { 400 } else { 401 };
        assert_eq!(r.status(), expected, "{resource} {wrong}");
        // Why the token did not evaluate stays in the server's log.
        let body = r.text().await.expect("body");
        assert!(!body.contains("undefined"), "{resource}: {body}");
    }
    assert_eq!(build_count(&c, &s, &token).await, before, "no check builds");
    let r = hook("repo", "from-var-source").await.expect("webhook");
    assert_eq!(r.status(), 201);
    let build: serde_json::Value = r.json().await.expect("build");
    assert!(build["id"].as_i64().is_some(), "{build}");
    assert_eq!(build_count(&c, &s, &token).await, before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_of_instanced_pipelines_use_that_instances_token() {
    let s = Server::start(Backend::Embedded);
    let token = s.token("test", "test").await;
    let c = Client::new();
    // fly set-pipeline substitutes instance vars into the config it sends, so each
    // instance's stored token is already the rendered one.
    for env in ["a", "b"] {
        let yaml = WEBHOOK_PIPELINE.replace("s3cret", &format!("tok-{env}"));
        let path = format!("p/config?vars=%7B%22env%22%3A%22{env}%22%7D");
        put_pipeline(&c, &s, &token, &path, &yaml).await;
    }
    let hook = |env: &str, t: &str| {
        c.post(s.api(&format!(
            "/api/v1/teams/main/pipelines/p/resources/repo/check/webhook?vars.env=%22{env}%22&webhook_token={t}"
        )))
        .send()
    };
    assert_eq!(hook("a", "tok-b").await.expect("webhook").status(), 401);
    assert_eq!(hook("b", "tok-a").await.expect("webhook").status(), 401);
    assert_eq!(hook("c", "tok-a").await.expect("webhook").status(), 404);
    assert_eq!(hook("a", "tok-a").await.expect("webhook").status(), 201);
    assert_eq!(hook("b", "tok-b").await.expect("webhook").status(), 201);
}

/// A WebSocket handshake for a container's hijack route.
fn upgrade(c: &Client, s: &Server, handle: &str) -> reqwest::RequestBuilder {
    c.get(s.api(&format!("/api/v1/teams/main/containers/{handle}/hijack")))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intercept_refuses_websockets_opened_by_other_sites() {
    let s = Server::start(Backend::Embedded);
    let c = no_redirects();
    let login = form_login(&c, &s, "test", "test", "/").await;
    let cookies = cookie_header(&login);
    let token = s.token("test", "test").await;

    for evil in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let r = upgrade(&c, &s, "missing")
            .header("Cookie", &cookies)
            .header("Origin", evil)
            .send()
            .await
            .expect("upgrade");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "Origin: {evil}");
        let r = upgrade(&c, &s, "missing")
            .bearer_auth(&token)
            .header("Origin", evil)
            .send()
            .await
            .expect("upgrade");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "Origin: {evil}");
    }
    // This server's own pages, and clients that send no Origin (fly), get through to
    // the container lookup.
    let r = upgrade(&c, &s, "missing")
        .header("Cookie", &cookies)
        .header("Origin", &s.url)
        .send()
        .await
        .expect("upgrade");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = upgrade(&c, &s, "missing")
        .bearer_auth(&token)
        .send()
        .await
        .expect("upgrade");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
