//! The `concourse` binary's command line: subcommands, help, env vars, key generation,
//! and dispatch to fly through a link named `fly`.

mod common;

use std::process::Command;

fn concourse(args: &[&str]) -> std::process::Output {
    Command::new(common::bin())
        .args(args)
        .output()
        .expect("running concourse")
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "web",
        "worker",
        "quickstart",
        "migrate",
        "generate-key",
        "land-worker",
        "retire-worker",
    ] {
        let out = concourse(&[sub, "--help"]);
        assert!(
            out.status.success(),
            "{sub} --help failed: {}",
            common::stderr(&out)
        );
        assert!(common::stdout(&out).contains("Usage:"), "{sub}");
    }
    let out = concourse(&["web", "--help"]);
    let help = common::stdout(&out);
    for flag in [
        "--postgres-host",
        "--add-local-user",
        "--main-team-local-user",
        "--bind-port",
        "CONCOURSE_POSTGRES_HOST",
    ] {
        assert!(help.contains(flag), "web --help lacks {flag}");
    }
}

#[test]
fn generate_key_writes_keys_in_upstream_formats() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ssh = dir.path().join("tsa_host_key");
    let out = concourse(&[
        "generate-key",
        "-t",
        "ssh",
        "-f",
        ssh.to_str().expect("utf8"),
        "-b",
        "2048",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let private = ssh_key::PrivateKey::read_openssh_file(&ssh).expect("an OpenSSH private key");
    let public = ssh_key::PublicKey::read_openssh_file(&dir.path().join("tsa_host_key.pub"))
        .expect("an OpenSSH public key");
    assert_eq!(private.public_key().key_data(), public.key_data());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&ssh).expect("meta").permissions().mode() & 0o777,
        0o600
    );

    let rsa_path = dir.path().join("session_signing_key");
    let out = concourse(&[
        "generate-key",
        "-t",
        "rsa",
        "-f",
        rsa_path.to_str().expect("utf8"),
        "-b",
        "2048",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let pem = std::fs::read_to_string(&rsa_path).expect("key file");
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    use rsa::pkcs1::DecodeRsaPrivateKey;
    rsa::RsaPrivateKey::from_pkcs1_pem(&pem).expect("a PKCS#1 key");

    let out = concourse(&[
        "generate-key",
        "-t",
        "rsa",
        "-f",
        rsa_path.to_str().expect("utf8"),
        "-b",
        "512",
    ]);
    assert!(!out.status.success());
    assert!(common::stderr(&out).contains("at least 1024 bits"));
}

#[test]
fn flags_can_come_from_concourse_env_vars() {
    // An invalid duration from the environment must be reported as coming from the flag.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(common::bin())
        .args([
            "web",
            "--bind-ip",
            "127.0.0.1",
            "--bind-port",
            "0",
            "--add-local-user",
            "a:b",
            "--main-team-local-user",
            "a",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env("CONCOURSE_AUTH_DURATION", "forever")
        .output()
        .expect("running web");
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("invalid --auth-duration 'forever'"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn web_refuses_to_start_without_main_team_auth() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(common::bin())
        .args(["web", "--bind-ip", "127.0.0.1", "--bind-port", "0"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("running web");
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("default team auth not configured: auth config for the team does not have users and groups configured"),
        "{}",
        common::stderr(&out)
    );
}

/// A PostgreSQL that cannot be reached or refuses the login stops `web` with an error
/// naming where it tried and why, once (not the driver's bare "db error").
#[test]
fn web_says_why_postgres_is_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port().to_string();
    drop(closed);
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(common::bin())
        .args([
            "web",
            "--bind-ip",
            "127.0.0.1",
            "--bind-port",
            "0",
            "--tsa-bind-port",
            "0",
        ])
        .args(["--add-local-user", "a:b", "--main-team-local-user", "a"])
        .args(["--postgres-host", "127.0.0.1", "--postgres-port", &port])
        .args(["--postgres-user", "x", "--postgres-database", "x"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("running web");
    assert!(!out.status.success());
    let err = common::stderr(&out);
    let at = format!("127.0.0.1:{port}");
    assert!(err.contains(&at), "names the address: {err}");
    assert!(err.contains("Connection refused"), "says why: {err}");
    assert_eq!(err.matches("connecting to postgres at").count(), 1, "{err}");
}

#[test]
fn a_link_named_fly_is_fly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let link = dir.path().join("fly");
    std::os::unix::fs::symlink(common::bin(), &link).expect("symlink");
    let out = Command::new(&link)
        .arg("--version")
        .env("HOME", dir.path())
        .output()
        .expect("running fly");
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(common::stdout(&out).trim(), "8.2.5");
    let out = concourse(&["fly", "--version"]);
    assert_eq!(common::stdout(&out).trim(), "8.2.5");
}

/// quickstart's zero-setup user test:test is offered only on loopback (its default
/// `--bind-ip`); bound elsewhere it needs explicit users.
#[test]
fn quickstart_offers_test_test_only_on_loopback() {
    let dir = tempfile::tempdir().expect("temp dir");
    let quickstart = |extra: &[&str]| {
        Command::new(common::bin())
            .args(["quickstart", "--bind-port", "0", "--tsa-bind-port", "0"])
            .args(["--tsa-bind-ip", "127.0.0.1", "--worker-runtime", "process"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--worker-work-dir")
            .arg(dir.path().join("work"))
            .args(extra)
            .env_remove("CONCOURSE_ADD_LOCAL_USER")
            .env_remove("CONCOURSE_MAIN_TEAM_LOCAL_USER")
            .env_remove("CONCOURSE_BIND_IP")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("quickstart")
    };
    let out = quickstart(&["--bind-ip", "0.0.0.0"])
        .wait_with_output()
        .expect("run");
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("quickstart on 0.0.0.0 needs users") && err.contains("--add-local-user"),
        "{err}"
    );

    // By default it listens on 127.0.0.1 and says test:test is the user.
    let mut child = quickstart(&[]);
    let stderr = child.stderr.take().expect("stderr");
    let mut warned = false;
    let mut addr = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
        warned |= line.contains("adding local user test:test");
        if let Some(a) = line.strip_prefix("concourse web listening on ") {
            addr = a.trim().to_string();
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(warned, "says which user it added");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
}
