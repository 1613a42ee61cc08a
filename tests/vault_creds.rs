//! Vault as the credential manager, against a real OpenBao dev server: the cluster-wide
//! `--vault-*` flags (lookup order, KV v1 and v2, token and AppRole login, cache, a Vault
//! that is down) and the `vault` var_source type. Secrets never show in build output.

mod common;
mod vault_support;

use common::{Backend, Fly, Server};
use serde_json::json;
use vault_support::{Bao, ROOT_TOKEN};

/// A pipeline whose one job runs `script` with `args` (each a `((var))`) as $1, $2, ...
fn pipeline(args: &[&str], script: &str, var_sources: &str) -> String {
    let args: String = args.iter().map(|a| format!("        - {a}\n")).collect();
    format!(
        r#"
{var_sources}
jobs:
- name: j
  plan:
  - task: t
    config:
      platform: linux
      run:
        path: sh
        args:
        - -c
        - |
{script}
        - sh
{args}"#,
        script = script
            .lines()
            .map(|l| format!("          {l}\n"))
            .collect::<String>()
    )
}

struct Cluster {
    server: Server,
    fly: Fly,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start(bao: &Bao, flags: &[&str]) -> Cluster {
        let mut args = vec!["--worker-runtime", "process", "--vault-url", &bao.url];
        args.extend_from_slice(flags);
        let server = Server::quickstart_with(Backend::Embedded, &args);
        let fly = Fly::new();
        fly.login(&server, "qs");
        Cluster {
            server,
            fly,
            _dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn set_pipeline(&self, yaml: &str) {
        let file = self._dir.path().join("pipeline.yml");
        std::fs::write(&file, yaml).expect("write pipeline");
        let file = file.to_string_lossy();
        let fly = &self.fly;
        fly.ok(&["-t", "qs", "set-pipeline", "-n", "-p", "p", "-c", &file]);
        fly.ok(&["-t", "qs", "unpause-pipeline", "-p", "p"]);
    }

    /// Triggers the job and waits for its build: (succeeded, fly's output).
    fn build(&self) -> (bool, String) {
        let out = self
            .fly
            .run(&["-t", "qs", "trigger-job", "-j", "p/j", "-w"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    async fn info_creds(&self) -> serde_json::Value {
        let token = self.server.token(common::USER, "test").await;
        reqwest::Client::new()
            .get(self.server.api("/api/v1/info/creds"))
            .bearer_auth(token)
            .send()
            .await
            .expect("info/creds")
            .json()
            .await
            .expect("info/creds json")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv2_lookup_order_redaction_and_cache() {
    if !vault_support::available("kv2_lookup_order_redaction_and_cache") {
        return;
    }
    let bao = Bao::start().await;
    bao.mount_kv("concourse", 2).await;
    bao.put_v2("concourse", "main/p/foo", json!({"value": "pipeline-foo"}))
        .await;
    bao.put_v2("concourse", "main/foo", json!({"value": "team-foo"}))
        .await;
    bao.put_v2("concourse", "main/bar", json!({"value": "team-bar"}))
        .await;
    bao.put_v2("concourse", "shared/bar", json!({"value": "shared-bar"}))
        .await;
    bao.put_v2("concourse", "shared/baz", json!({"value": "shared-baz"}))
        .await;
    bao.put_v2(
        "concourse",
        "main/p/creds",
        json!({"user": "u-1", "pass": "p-1"}),
    )
    .await;
    let c = Cluster::start(
        &bao,
        &[
            "--vault-client-token",
            ROOT_TOKEN,
            "--vault-shared-path",
            "shared",
            "--secret-cache-enabled",
            "--secret-cache-duration",
            "1h",
        ],
    );
    // The pipeline path wins over the team path, which wins over the shared path.
    let script = r#"test "$1" = pipeline-foo || { echo "wrong foo"; exit 1; }
test "$2" = team-bar || { echo "wrong bar"; exit 1; }
test "$3" = shared-baz || { echo "wrong baz"; exit 1; }
test "$4" = u-1 || { echo "wrong creds.user"; exit 1; }
echo "all vars right"
echo "shown: $1 $4""#;
    c.set_pipeline(&pipeline(
        &["((foo))", "((bar))", "((baz))", "((creds.user))"],
        script,
        "",
    ));
    let (ok, out) = c.build();
    assert!(ok, "{out}");
    assert!(out.contains("all vars right"), "{out}");
    assert!(out.contains("shown: ((redacted)) ((redacted))"), "{out}");
    assert!(
        !out.contains("pipeline-foo") && !out.contains("u-1"),
        "{out}"
    );

    // Cached for an hour: a rotated secret is not read again yet.
    bao.put_v2("concourse", "main/p/foo", json!({"value": "rotated"}))
        .await;
    let (ok, out) = c.build();
    assert!(ok, "the cached value is still used: {out}");

    // info/creds names the manager and its health, never the token.
    let info = c.info_creds().await;
    assert_eq!(info["vault"]["url"], bao.url.as_str(), "{info}");
    assert_eq!(info["vault"]["path_prefix"], "/concourse", "{info}");
    assert_eq!(info["vault"]["shared_path"], "shared", "{info}");
    assert_eq!(
        info["vault"]["health"]["response"]["initialized"], true,
        "{info}"
    );
    assert!(!info.to_string().contains(ROOT_TOKEN), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv1_rotation_and_vault_var_source() {
    if !vault_support::available("kv1_rotation_and_vault_var_source") {
        return;
    }
    let bao = Bao::start().await;
    bao.mount_kv("kv1", 1).await;
    bao.mount_kv("other", 2).await;
    bao.put_v1("kv1", "main/p/foo", json!({"value": "v1-first"}))
        .await;
    bao.put_v2("other", "vs-secret", json!({"field": "from-var-source"}))
        .await;
    // The var source's own token comes from the cluster's manager.
    bao.put_v1("kv1", "main/vs-token", json!({ "value": ROOT_TOKEN }))
        .await;
    let c = Cluster::start(
        &bao,
        &[
            "--vault-client-token",
            ROOT_TOKEN,
            "--vault-path-prefix",
            "/kv1",
            "--disable-redact-secrets",
        ],
    );
    let var_sources = format!(
        r#"var_sources:
- name: v
  type: vault
  config:
    url: {}
    client_token: ((vs-token))
    path_prefix: /other"#,
        bao.url
    );
    c.set_pipeline(&pipeline(
        &["((foo))", "((v:vs-secret.field))"],
        r#"echo "foo=$1 vs=$2""#,
        &var_sources,
    ));
    let (ok, out) = c.build();
    assert!(ok, "{out}");
    assert!(out.contains("foo=v1-first vs=from-var-source"), "{out}");

    // Without the cache the next build reads the rotated secret.
    bao.put_v1("kv1", "main/p/foo", json!({"value": "v1-second"}))
        .await;
    let (ok, out) = c.build();
    assert!(ok, "{out}");
    assert!(out.contains("foo=v1-second"), "{out}");

    // Checks get credentials too: a resource's source from Vault.
    // So does a webhook's token.
    bao.put_v1("kv1", "main/p/hook", json!({"value": "hook-token"}))
        .await;
    c.set_pipeline(
        "resources:\n- name: r\n  type: mock\n  webhook_token: ((hook))\n  source: {initial_version: ((foo))}\njobs:\n- name: j\n  plan: [{get: r}]\n",
    );
    c.fly.ok(&["-t", "qs", "check-resource", "-r", "p/r"]);
    let versions = c.fly.ok(&["-t", "qs", "resource-versions", "-r", "p/r"]);
    assert!(versions.contains("v1-second"), "{versions}");
    let hook = |token: &str| {
        let url = c.server.api(&format!(
            "/api/v1/teams/main/pipelines/p/resources/r/check/webhook?webhook_token={token}"
        ));
        async move {
            let resp = reqwest::Client::new()
                .post(url)
                .send()
                .await
                .expect("webhook");
            resp.status().as_u16()
        }
    };
    assert_eq!(hook("hook-token").await, 201);
    assert_eq!(hook("wrong").await, 401);

    // A var no path holds is undefined, as without a credential manager.
    c.set_pipeline(&pipeline(&["((nowhere))"], "true", ""));
    let (ok, out) = c.build();
    assert!(!ok, "{out}");
    assert!(out.contains("undefined vars: nowhere"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_relogin_and_vault_down() {
    if !vault_support::available("approle_relogin_and_vault_down") {
        return;
    }
    let mut bao = Bao::start().await;
    bao.mount_kv("concourse", 2).await;
    bao.put_v2("concourse", "main/foo", json!({"value": "approle-foo"}))
        .await;
    // Tokens live 16s unless renewed; the manager renews once half of that has passed.
    let (role_id, secret_id) = bao.approle("concourse", "16s").await;
    let param = format!("role_id:{role_id},secret_id:{secret_id}");
    let c = Cluster::start(
        &bao,
        &[
            "--vault-auth-backend",
            "approle",
            "--vault-auth-param",
            &param,
            "--secret-retry-attempts",
            "2",
            "--secret-retry-interval",
            "100ms",
            "--vault-query-timeout",
            "5s",
        ],
    );
    c.set_pipeline(&pipeline(
        &["((foo))"],
        r#"test "$1" = approle-foo && echo "got foo""#,
        "",
    ));
    let (ok, out) = c.build();
    assert!(ok && out.contains("got foo"), "{out}");
    let tokens = bao.approle_tokens().await;
    assert_eq!(tokens.len(), 1, "one login: {tokens:?}");
    let accessor = tokens[0]["accessor"].clone();

    // Well past half its lease (Vault counts whole seconds; the manager's clock started
    // at its login), the next build renews the same token.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while bao.approle_tokens().await[0]["ttl"].as_i64().unwrap_or(0) > 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "the token's ttl never fell"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (ok, out) = c.build();
    assert!(ok && out.contains("got foo"), "{out}");
    let tokens = bao.approle_tokens().await;
    assert_eq!(tokens.len(), 1, "renewed, not a new login: {tokens:?}");
    assert_eq!(tokens[0]["accessor"], accessor, "{tokens:?}");
    assert!(
        tokens[0]["last_renewal_time"].as_i64().unwrap_or(0) > 0,
        "{tokens:?}"
    );

    // Its token revoked, the manager logs in again.
    bao.revoke_approle_tokens().await;
    let (ok, out) = c.build();
    assert!(ok && out.contains("got foo"), "after revocation: {out}");
    let info = c.info_creds().await;
    assert_eq!(info["vault"]["auth_backend"], "approle", "{info}");
    assert!(!info.to_string().contains(&secret_id), "{info}");

    // Vault down: the build errors naming the var rather than hanging.
    bao.stop();
    let (ok, out) = c.build();
    assert!(!ok, "{out}");
    assert!(out.contains("failed to fetch var 'foo'"), "{out}");
    let info = c.info_creds().await;
    assert!(info["vault"]["health"]["error"].is_string(), "{info}");

    // A login that cannot reach Vault is retried only within the login timeout.
    let source = format!(
        "var_sources:\n- name: v\n  type: vault\n  config: {{url: {}, auth_backend: approle, auth_params: {{role_id: {role_id}, secret_id: {secret_id}}}, login_timeout: 2s, auth_retry_initial: 100ms}}",
        bao.url
    );
    c.set_pipeline(&pipeline(&["((v:foo))"], "true", &source));
    let (ok, out) = c.build();
    assert!(!ok, "{out}");
    assert!(
        out.contains("failed to fetch var 'v:foo': vault login"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_ca_cert_and_cert_auth() {
    if !vault_support::available("tls_ca_cert_and_cert_auth") {
        return;
    }
    let bao = Bao::start_with(true).await;
    bao.mount_kv("concourse", 2).await;
    bao.put_v2("concourse", "main/foo", json!({"value": "over-tls"}))
        .await;
    bao.cert_auth("concourse").await;
    let tls = |f: &str| bao.tls_dir().join(f).to_string_lossy().into_owned();
    let (ca, cert, key) = (
        tls("vault-ca.pem"),
        tls("vault-cert.pem"),
        tls("vault-key.pem"),
    );
    let c = Cluster::start(
        &bao,
        &[
            "--vault-ca-cert",
            &ca,
            "--vault-client-cert",
            &cert,
            "--vault-client-key",
            &key,
            "--vault-auth-backend",
            "cert",
            "--disable-redact-secrets",
        ],
    );
    c.set_pipeline(&pipeline(&["((foo))"], r#"echo "foo=$1""#, ""));
    let (ok, out) = c.build();
    assert!(ok && out.contains("foo=over-tls"), "{out}");

    // A var source that does not trust the server's CA fails naming the var, unless it
    // skips verification.
    let source = |extra: &str| {
        format!(
            "var_sources:\n- name: v\n  type: vault\n  config: {{url: {}, client_token: {ROOT_TOKEN}{extra}}}",
            bao.url
        )
    };
    c.set_pipeline(&pipeline(
        &["((v:main/foo))"],
        r#"echo "v=$1""#,
        &source(""),
    ));
    let (ok, out) = c.build();
    assert!(
        !ok && out.contains(r#"failed to fetch var 'v:"main/foo"'"#),
        "{out}"
    );
    c.set_pipeline(&pipeline(
        &["((v:main/foo))"],
        r#"echo "v=$1""#,
        &source(", insecure_skip_verify: true"),
    ));
    let (ok, out) = c.build();
    assert!(ok && out.contains("v=over-tls"), "{out}");
}
