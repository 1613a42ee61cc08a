//! LDAP login against a real `slapd` (tests/common/slapd.rs): fly's password grant through
//! `--password-connector ldap`, groups mapped to teams by `--main-team-ldap-group` and
//! `fly set-team --ldap-user`, and the browser flow through Dex's connector chooser.

mod common;

use common::slapd::{self, Slapd};
use common::{stderr, Backend, Fly, Server};
use reqwest::Client;

/// Flags for LDAP as fly's password connector: no local users then, as upstream insists.
const LDAP_PASSWORDS: [&str; 3] = ["--password-connector", "ldap", "--add-local-user="];

fn web(dir: &Slapd, extra: &[&str]) -> Server {
    let mut flags = dir.web_flags();
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start_with(Backend::Embedded, &flags)
}

fn login(fly: &Fly, s: &Server, target: &str, team: &str, user: &str, pass: &str) -> String {
    let out = fly.run(&[
        "-t", target, "login", "-c", &s.url, "-n", team, "-u", user, "-p", pass,
    ]);
    if out.status.success() {
        String::new()
    } else {
        let err = stderr(&out);
        assert!(!err.is_empty(), "fly login failed without a message");
        err
    }
}

#[test]
fn fly_password_login_through_ldap_maps_groups_to_teams() {
    if !slapd::available() {
        return;
    }
    let dir = Slapd::start();
    let s = web(
        &dir,
        &[&LDAP_PASSWORDS[..], &["--main-team-ldap-group", "devs"]].concat(),
    );
    let fly = Fly::new();

    // alice is in devs, which owns main: she is an admin.
    assert_eq!(login(&fly, &s, "alice", "main", "alice", "alicepw"), "");
    let info = fly.ok(&["-t", "alice", "userinfo", "--json"]);
    let info: serde_json::Value = serde_json::from_str(&info).expect("userinfo json");
    assert_eq!(info["user_name"], "alice", "{info}");
    assert_eq!(info["is_admin"], true, "{info}");
    assert_eq!(
        info["teams"]["main"],
        serde_json::json!(["owner"]),
        "{info}"
    );

    // bob authenticates but is in ops, not devs: no role on main.
    let err = login(&fly, &s, "bob", "main", "bob", "bobpw");
    assert!(err.contains("not a member of 'main'"), "{err}");
    // LDAP is the only connector here: the browser skips the chooser, as Dex does.
    let r = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(s.api("/sky/issuer/auth?client_id=concourse-web"))
        .send()
        .expect("issuer");
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        "/sky/issuer/auth/ldap?client_id=concourse-web"
    );

    let err = login(&fly, &s, "x", "main", "alice", "wrong");
    assert!(err.contains("Invalid username or password"), "{err}");
    // A filter metacharacter in the username matches nobody rather than everybody.
    let err = login(&fly, &s, "x", "main", "*", "alicepw");
    assert!(!err.is_empty(), "'*' logged in");

    // An LDAP user given a team by name gets that team and nothing else.
    fly.ok(&[
        "-t",
        "alice",
        "set-team",
        "-n",
        "other",
        "--ldap-user",
        "bob",
        "--non-interactive",
    ]);
    assert_eq!(login(&fly, &s, "bob", "other", "bob", "bobpw"), "");
    let teams = fly.ok(&["-t", "bob", "teams"]);
    assert_eq!(teams.split_whitespace().collect::<Vec<_>>(), ["other"]);
    let out = fly.run(&["-t", "bob", "pipelines", "--team", "main"]);
    assert!(!out.status.success(), "bob read main's pipelines");

    // A team config file with upstream's `ldap:` section: the group ops as viewers.
    let file = s.dir.path().join("team.yml");
    std::fs::write(
        &file,
        "roles:\n- name: viewer\n  ldap:\n    groups: [ops]\n    users: []\n",
    )
    .expect("team file");
    fly.ok(&[
        "-t",
        "alice",
        "set-team",
        "-n",
        "viewers",
        "-c",
        file.to_str().expect("utf-8 path"),
        "--non-interactive",
    ]);
    assert_eq!(login(&fly, &s, "bob", "viewers", "bob", "bobpw"), "");
    let info = fly.ok(&["-t", "bob", "userinfo", "--json"]);
    let info: serde_json::Value = serde_json::from_str(&info).expect("userinfo json");
    assert_eq!(info["teams"]["viewers"], serde_json::json!(["viewer"]));
    assert!(info["teams"].get("main").is_none(), "{info}");
}

#[test]
fn ldap_over_starttls_and_ldaps_verifies_the_server_certificate() {
    if !slapd::available() {
        return;
    }
    let dir = Slapd::start_tls();
    let ca = dir.ca_cert();
    let ca = ca.to_str().expect("utf-8 path");
    let ldaps = format!("127.0.0.1:{}", dir.tls_port.expect("ldaps port"));
    let fly = Fly::new();
    let start = |host: String, transport: &[&str]| {
        let mut flags = Slapd::flags_for_host(&host);
        flags.extend(LDAP_PASSWORDS.map(String::from));
        flags.extend(["--main-team-ldap-group", "devs"].map(String::from));
        flags.extend(transport.iter().map(|s| s.to_string()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Server::start_with(Backend::Embedded, &flags)
    };
    for (host, transport) in [
        (dir.host(), &["--ldap-start-tls", "--ldap-ca-cert", ca][..]),
        (ldaps.clone(), &["--ldap-ca-cert", ca][..]),
        (ldaps.clone(), &["--ldap-insecure-skip-verify"][..]),
    ] {
        let s = start(host, transport);
        let err = login(&fly, &s, "alice", "main", "alice", "alicepw");
        assert_eq!(err, "", "{transport:?}");
    }
    // The test CA is not among the system's roots: the certificate is refused.
    let s = start(ldaps, &[]);
    let err = login(&fly, &s, "alice", "main", "alice", "alicepw");
    assert!(err.contains("identity provider"), "{err}");
}

#[test]
fn an_unreachable_directory_fails_the_login_with_a_server_error() {
    if !slapd::available() {
        return;
    }
    // Start and stop a directory: its port then refuses connections.
    let dir = Slapd::start();
    let s = web(
        &dir,
        &[&LDAP_PASSWORDS[..], &["--main-team-ldap-group", "devs"]].concat(),
    );
    drop(dir);
    let fly = Fly::new();
    // More tries than the login throttle allows a user: an outage is not a failed login.
    for _ in 0..7 {
        let err = login(&fly, &s, "a", "main", "alice", "alicepw");
        assert!(err.contains("identity provider"), "{err}");
    }
}

/// `concourse web` with `args` on loopback ports and a data dir of its own: it must exit.
fn web_refused(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new(common::bin())
        .args(["web", "--bind-ip", "127.0.0.1", "--bind-port", "0"])
        .args(["--tsa-bind-ip", "127.0.0.1", "--tsa-bind-port", "0"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(args)
        .output()
        .expect("concourse web");
    assert!(!out.status.success(), "web started with {args:?}");
    stderr(&out)
}

#[test]
fn invalid_ldap_flags_stop_web_with_the_flags_named() {
    let err = web_refused(&[
        "--ldap-host",
        "ldap.example.org",
        "--ldap-user-search-scope",
        "everything",
    ]);
    for named in [
        "--ldap-bind-dn is required",
        "--ldap-user-search-base-dn is required",
        "--ldap-user-search-scope must be 'sub' or 'one'",
    ] {
        assert!(err.contains(named), "{named} in: {err}");
    }
    let err = web_refused(&["--password-connector", "ldap"]);
    assert!(
        err.contains("--password-connector ldap needs LDAP configured"),
        "{err}"
    );
    // Upstream's rule: local users only with the local password connector.
    let flags = Slapd::flags_for_host("127.0.0.1:1");
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend(["--password-connector", "ldap", "--add-local-user", "a:b"]);
    let err = web_refused(&args);
    assert!(
        err.contains("can only set --add-local-user with --password-connector=local"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_login_offers_both_connectors_and_logs_in_through_ldap() {
    if !slapd::available() {
        return;
    }
    let dir = Slapd::start();
    let s = web(&dir, &["--main-team-ldap-group", "devs"]);
    let c = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let location = |r: &reqwest::Response| {
        r.headers()["location"]
            .to_str()
            .expect("location")
            .to_string()
    };
    let r = c
        .get(s.api("/sky/login?redirect_uri=/fly_success?fly_port=1234"))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 307);
    let r = c.get(s.api(&location(&r))).send().await.expect("issuer");
    assert_eq!(r.status(), 200, "the chooser");
    let html = r.text().await.expect("html");
    assert!(html.contains("Log in with Username/Password"), "{html}");
    assert!(html.contains("Log in with Example Directory"), "{html}");
    assert!(!html.contains("<script"), "no scripts: {html}");
    let links: Vec<String> = html
        .split("href=\"")
        .skip(1)
        .filter_map(|h| h.split('"').next())
        .filter(|h| h.starts_with("/sky/issuer/auth/"))
        .map(|h| h.replace("&amp;", "&"))
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(links[0].starts_with("/sky/issuer/auth/local?"), "{links:?}");
    let ldap = &links[1];
    assert!(ldap.starts_with("/sky/issuer/auth/ldap?"), "{ldap}");

    let r = c.get(s.api(ldap)).send().await.expect("connector");
    assert_eq!(r.status(), 302);
    let form_url = location(&r);
    assert!(
        form_url.starts_with("/sky/issuer/auth/ldap/login?state="),
        "{form_url}"
    );
    let html = c
        .get(s.api(&form_url))
        .send()
        .await
        .expect("form")
        .text()
        .await
        .expect("html");
    assert!(html.contains("Example uid"), "the username prompt: {html}");
    assert!(html.contains("Example Directory"), "{html}");

    let post = |user: &'static str, password: &'static str| {
        c.post(s.api(&form_url))
            .form(&[("login", user), ("password", password)])
            .send()
    };
    let r = post("alice", "wrong").await.expect("wrong password");
    assert_eq!(r.status(), 200, "Dex re-renders the form");
    assert!(r
        .text()
        .await
        .expect("html")
        .contains("invalid username and password"));
    // An empty password would be an anonymous bind, which the server accepts.
    let r = post("alice", "").await.expect("empty password");
    assert_eq!(r.status(), 200);
    // The local user's password is no good on the LDAP form.
    let r = post("test", "test").await.expect("local user");
    assert_eq!(r.status(), 200);

    let r = post("alice", "alicepw").await.expect("login");
    assert_eq!(r.status(), 303);
    let r = c.get(location(&r)).send().await.expect("callback");
    assert_eq!(r.status(), 307);
    assert!(
        location(&r).starts_with("/fly_success?fly_port=1234&csrf_token="),
        "{}",
        location(&r)
    );
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let v = v.to_str().expect("ascii");
            v.split(';').next().unwrap_or_default().to_string()
        })
        .collect::<Vec<_>>()
        .join("; ");
    let user: serde_json::Value = c
        .get(s.api("/api/v1/user"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("user")
        .json()
        .await
        .expect("json");
    assert_eq!(user["user_name"], "alice", "{user}");
    assert_eq!(user["connector"], "ldap", "{user}");
    assert_eq!(user["email"], "alice@example.org", "{user}");
    assert_eq!(
        user["teams"]["main"],
        serde_json::json!(["owner"]),
        "{user}"
    );
    // fly's browser hand-off page gets the same token as for local users.
    let html = c
        .get(s.api("/fly_success?fly_port=1234"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("fly_success")
        .text()
        .await
        .expect("html");
    assert!(html.contains("name=\"auth-token\" content=\"bearer "));

    let r = c
        .get(s.api("/sky/issuer/auth/github?state=x"))
        .send()
        .await
        .expect("unknown connector");
    assert_eq!(r.status(), 404);
}
