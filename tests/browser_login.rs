//! Browser login as browsers and scripted clients walk it: upstream's Dex-shaped redirects
//! (`/sky/login` → issuer → connector → form → callback), the cookies it ends with and
//! their CSRF rule, and concoursepy's password login against a real server.

mod common;

use common::{Backend, Server};
use reqwest::Client;
use std::path::Path;

/// Runs a client script with the server's URL as its argument; its output lines.
fn python_lines(python: &Path, script: &str, url: &str) -> Vec<String> {
    let out = std::process::Command::new(python)
        .args(["-c", script, url])
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(String::from).collect()
}

/// A pipeline to write with the browser's cookies.
const PIPELINE: &str = r#"
jobs:
- name: j
  plan:
  - task: t
    config:
      platform: linux
      image_resource: {type: mock, source: {mirror_self: true}}
      run: {path: "true"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_login_sets_cookies_that_authenticate_with_csrf() {
    let s = Server::start(Backend::Embedded);
    let c = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = c
        .get(s.api("/login?fly_port=1234"))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        "/sky/login?redirect_uri=%2Ffly_success%3Ffly_port%3D1234"
    );
    // Upstream's Dex-shaped flow, redirect by redirect, as scripted clients walk it.
    let location = |r: &reqwest::Response| {
        r.headers()["location"]
            .to_str()
            .expect("location")
            .to_string()
    };
    let absolute = |l: &str| {
        if l.starts_with('/') {
            s.api(l)
        } else {
            l.to_string()
        }
    };
    let r = c
        .get(s.api("/sky/login?redirect_uri=/fly_success?fly_port=1234"))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 307);
    let auth = location(&r);
    assert!(auth.starts_with("/sky/issuer/auth?"), "{auth}");
    assert!(auth.contains("client_id=concourse-web") && auth.contains("response_type=code"));
    assert!(auth.contains("%2Fsky%2Fcallback"), "{auth}");
    let r = c.get(s.api(&auth)).send().await.expect("issuer");
    assert_eq!(r.status(), 302);
    let connector = location(&r);
    assert!(
        connector.starts_with("/sky/issuer/auth/local?"),
        "{connector}"
    );
    let r = c.get(s.api(&connector)).send().await.expect("connector");
    assert_eq!(r.status(), 302);
    let form_url = location(&r);
    assert!(
        form_url.starts_with("/sky/issuer/auth/local/login?state="),
        "{form_url}"
    );
    let r = c.get(s.api(&form_url)).send().await.expect("form");
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("html");
    assert!(html.contains("name=\"password\""));
    assert!(html.contains(&format!("action=\"{form_url}\"")), "{html}");
    let post = |password: &'static str| {
        c.post(s.api(&form_url))
            .form(&[("login", "test"), ("password", password)])
            .send()
    };
    let r = post("wrong").await.expect("wrong password");
    assert_eq!(r.status(), 200, "Dex re-renders the form");
    assert!(r
        .text()
        .await
        .expect("html")
        .contains("invalid username and password"));
    let r = post("test").await.expect("login");
    assert_eq!(r.status(), 303);
    let callback = location(&r);
    assert!(callback.contains("/sky/callback?code="), "{callback}");
    let r = c.get(absolute(&callback)).send().await.expect("callback");
    assert_eq!(r.status(), 307);
    assert!(
        location(&r).starts_with("/fly_success?fly_port=1234&csrf_token="),
        "{}",
        location(&r)
    );
    assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
    let r = c.get(absolute(&callback)).send().await.expect("replay");
    assert_eq!(r.status(), 401, "a code is good once");

    let r = c
        .post(s.api("/sky/login"))
        .form(&[
            ("login", "test"),
            ("password", "wrong"),
            ("redirect_uri", "/"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    let r = c
        .post(s.api("/sky/login"))
        .form(&[
            ("login", "test"),
            ("password", "test"),
            ("redirect_uri", "https://evil.example/"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(
        location.starts_with("/?csrf_token="),
        "no open redirect: {location}"
    );
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            v.to_str()
                .expect("ascii")
                .split(';')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let cookie_header = cookies.join("; ");
    let csrf = location.trim_start_matches("/?csrf_token=").to_string();

    let r = c
        .get(s.api("/api/v1/user"))
        .header("Cookie", &cookie_header)
        .send()
        .await
        .expect("user");
    assert_eq!(r.status(), 200);
    let put = |csrf: Option<&str>| {
        let mut b = c
            .put(s.api("/api/v1/teams/main/pipelines/p/config"))
            .header("Cookie", &cookie_header)
            .header("Content-Type", "application/x-yaml")
            .body(PIPELINE);
        if let Some(t) = csrf {
            b = b.header("X-Csrf-Token", t);
        }
        b.send()
    };
    assert_eq!(
        put(None).await.expect("put").status(),
        401,
        "writes need the CSRF token"
    );
    assert_eq!(put(Some(&csrf)).await.expect("put").status(), 201);

    let r = c
        .get(s.api("/fly_success?fly_port=1234"))
        .header("Cookie", &cookie_header)
        .send()
        .await
        .expect("fly_success");
    assert_eq!(r.status(), 200);
    // The page hands the token to fly from its `auth-token` meta tag.
    let html = r.text().await.expect("html");
    assert!(
        html.contains("name=\"auth-token\" content=\"bearer "),
        "{html}"
    );

    let r = c
        .get(s.api("/sky/logout"))
        .header("Cookie", &cookie_header)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 200);
    let r = c
        .get(s.api("/api/v1/user"))
        .header("Cookie", &cookie_header)
        .send()
        .await
        .expect("user");
    assert_eq!(r.status(), 401, "the token was revoked");
}

/// concoursepy (PyPI), the client the parity issue names: its password login walks the
/// browser flow and reads the token from the cookie; its token login uses it as given.
#[test]
fn concoursepy_logs_in_with_a_password_and_with_a_token() {
    let have = std::process::Command::new("python3")
        .args(["-c", "import concoursepy"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs concoursepy (pip install concoursepy)"
        );
        eprintln!("skipping: pip install concoursepy");
        return;
    }
    let s = Server::start(Backend::Embedded);
    // Python 3.10 moved Mapping to collections.abc; concoursepy still looks in collections.
    let script = r#"
import collections, collections.abc, sys
collections.Mapping = collections.abc.Mapping
from concoursepy.api import Api
url = sys.argv[1]
api = Api(url, username="test", password="test")
assert api.ATC_AUTH, "no token from the password login"
print("teams:", ",".join(t["name"] for t in api.list_teams()))
try:
    Api(url, username="test", password="wrong")
    print("wrong password accepted")
except ValueError as e:
    print("refused:", e)
print("token:", ",".join(t["name"] for t in Api(url, token=api.ATC_AUTH).list_teams()))
"#;
    assert_eq!(
        python_lines(Path::new("python3"), script, &s.url),
        [
            "teams: main",
            "refused: Invalid username and password",
            "token: main"
        ]
    );
}

/// ol-concoursepy (PyPI; a maintained fork shipping the same module name, so in a venv of
/// its own): password login, then the API with the token.
#[test]
fn ol_concoursepy_logs_in_and_reads_the_api() {
    let dir = tempfile::tempdir().expect("temp");
    let Some(python) = common::python::venv_with(dir.path(), "ol-concoursepy") else {
        return;
    };
    let s = Server::start(Backend::Embedded);
    let script = r#"
import collections, collections.abc, sys
if not hasattr(collections, "Mapping"):
    collections.Mapping = collections.abc.Mapping
from concoursepy.api import Api
api = Api(sys.argv[1], username="test", password="test")
assert api.ATC_AUTH, "no token from the password login"
print("teams:", ",".join(t["name"] for t in api.list_teams()))
print("pipelines:", len(api.list_pipelines("main")))
"#;
    assert_eq!(
        python_lines(&python, script, &s.url),
        ["teams: main", "pipelines: 0"]
    );
}
