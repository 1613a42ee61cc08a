//! A small W3C WebDriver client for browser tests: Debian's `chromedriver` driving headless
//! `chromium`, both started per test on ephemeral ports and stopped when dropped. Only the
//! commands the UI tests use; every wait polls a condition with a deadline.

use serde_json::{json, Value};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether the browser is installed; without it the tests say so and skip, except in CI
/// where `.ci/run` installs it and a missing browser is a failure.
pub fn available(test: &str) -> bool {
    let ok = std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: chromium and chromium-driver are required in CI"
        );
        eprintln!("{test}: skipped (install Debian's chromium and chromium-driver to run it)");
    }
    ok
}

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    _profile: tempfile::TempDir,
}

#[derive(Clone, Debug)]
pub struct Element(pub String);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Browser {
    pub fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        // The flags a closed network needs (no background fetches) and root needs (no sandbox).
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let resp: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .and_then(|r| r.json())
            .expect("new session");
        let session = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {resp}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp: Value = req
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
        resp["value"].clone()
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.cmd(reqwest::Method::POST, path, Some(body))
    }

    fn get(&self, path: &str) -> Value {
        self.cmd(reqwest::Method::GET, path, None)
    }

    pub fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }));
    }

    pub fn url(&self) -> String {
        self.get("/url").as_str().unwrap_or_default().to_string()
    }

    /// Runs a script in the page (`arguments[i]` are the args) and returns its value.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
    }

    /// Runs an async script: it gets a callback as its last argument.
    pub fn js_async(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({"script": script, "args": args}))
    }

    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.post("/elements", json!({"using": "css selector", "value": css}));
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str())
                    .map(|s| Element(s.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits for an element matching `css` to exist and returns the first.
    pub fn find(&self, css: &str) -> Element {
        self.wait(&format!("element {css}"), || {
            self.find_all(css).into_iter().next()
        })
    }

    /// Polls `f` until it returns Some, failing after 30 s with what was awaited.
    pub fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                let text = self.js(
                    "return document.body ? document.body.innerText : ''",
                    json!([]),
                );
                panic!(
                    "timed out waiting for {what} at {}\npage text:\n{}",
                    self.url(),
                    text.as_str().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the page's visible text contains `text`.
    pub fn wait_text(&self, text: &str) {
        self.wait(&format!("text {text:?}"), || {
            let body = self.js(
                "return document.body ? document.body.innerText : ''",
                json!([]),
            );
            body.as_str()
                .is_some_and(|b| b.contains(text))
                .then_some(())
        })
    }

    pub fn click(&self, e: &Element) {
        let r = self.post(&format!("/element/{}/click", e.0), json!({}));
        assert!(r.is_null(), "click failed: {r}");
    }

    /// Clicks the element matching `css`, found afresh if the page re-rendered it between
    /// the lookup and the click (pages refresh themselves while builds run).
    pub fn click_css(&self, css: &str) {
        self.wait(&format!("a clickable {css:?}"), || {
            let e = self.find(css);
            let r = self.post(&format!("/element/{}/click", e.0), json!({}));
            match r["error"].as_str() {
                None => Some(()),
                Some("stale element reference") => None,
                Some(_) => panic!("click failed: {r}"),
            }
        })
    }

    pub fn type_into(&self, e: &Element, text: &str) {
        let r = self.post(&format!("/element/{}/value", e.0), json!({ "text": text }));
        assert!(r.is_null(), "typing failed: {r}");
    }

    pub fn clear(&self, e: &Element) {
        self.post(&format!("/element/{}/clear", e.0), json!({}));
    }

    pub fn text(&self, e: &Element) -> String {
        self.get(&format!("/element/{}/text", e.0))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn attr(&self, e: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", e.0))
            .as_str()
            .map(String::from)
    }

    /// Whether the first element matching `css` is disabled, looked up afresh (pages
    /// redraw, so a held element can go stale); None when there is none.
    pub fn disabled(&self, css: &str) -> Option<bool> {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.disabled : null",
            json!([css]),
        )
        .as_bool()
    }

    /// Sends keys to whatever has focus (page shortcuts).
    pub fn keys(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                [
                    json!({"type": "keyDown", "value": c.to_string()}),
                    json!({"type": "keyUp", "value": c.to_string()}),
                ]
            })
            .collect();
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        );
    }

    /// The page as PNG bytes.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.get("/screenshot");
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("png")
    }

    /// Logs in through the login form as a user would, landing on `then`.
    pub fn login(&self, server_url: &str, user: &str, pass: &str) {
        self.goto(&format!("{server_url}/sky/login"));
        let login = self.find("input[name=login]");
        self.type_into(&login, user);
        let password = self.find("input[name=password]");
        self.type_into(&password, pass);
        self.click_css("button[type=submit]");
        self.wait("the dashboard after login", || {
            self.find_all(".user-id").into_iter().next()
        });
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
