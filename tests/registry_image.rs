//! The `registry-image` base type against a real registry on loopback: Debian's
//! `docker-registry` (the reference registry). We build an image holding Debian's
//! `busybox-static`, push it with our `out`, find it with `check`, pull it with `in`.

mod common;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REGISTRY: &str = "/usr/bin/docker-registry";
const BUSYBOX: &str = "/bin/busybox";

/// The registry and busybox, or None with the reason printed (CI installs both and must
/// never skip).
fn prerequisites() -> bool {
    let missing: Vec<&str> = [REGISTRY, BUSYBOX]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{missing:?} missing in CI: .ci/run installs docker-registry and busybox-static");
    }
    eprintln!(
        "skipping: {missing:?} not installed (apt-get install docker-registry busybox-static)"
    );
    false
}

struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry() -> Registry {
    let dir = tempfile::tempdir().expect("temp");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n", dir.path().join("data").display()),
    )
    .expect("config");
    let child = Command::new(REGISTRY)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start registry");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if reqwest::blocking::get(format!("http://{addr}/v2/"))
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "registry did not answer on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Registry {
        child,
        addr,
        _dir: dir,
    }
}

/// A `docker save`-style tarball: one layer with busybox as /bin/busybox and /bin/sh.
fn image_tarball(dir: &Path) -> PathBuf {
    let busybox = std::fs::read(BUSYBOX).expect("busybox");
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(busybox.len() as u64);
    h.set_mode(0o755);
    h.set_cksum();
    layer
        .append_data(&mut h, "bin/busybox", &busybox[..])
        .expect("append");
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    layer
        .append_link(&mut link, "bin/sh", "busybox")
        .expect("link");
    let layer = layer.into_inner().expect("layer");
    let config = json!({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin", "GREETING=hi"], "Cmd": ["/bin/sh"], "User": "root"},
                        "rootfs": {"type": "layers", "diff_ids": []}});
    let manifest = json!([{"Config": "config.json", "RepoTags": ["busybox:test"], "Layers": ["layer/layer.tar"]}]);
    let mut outer = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("config.json", config.to_string().into_bytes()),
        ("layer/layer.tar", layer),
        ("manifest.json", manifest.to_string().into_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        outer.append_data(&mut h, name, &data[..]).expect("append");
    }
    let path = dir.join("image.tar");
    std::fs::write(&path, outer.into_inner().expect("tar")).expect("write");
    path
}

fn registry_image(action: &str, dir: Option<&Path>, req: &Value) -> Result<Value, String> {
    common::resource("registry-image", action, dir, req)
}

#[test]
fn push_check_and_pull_an_image_through_a_real_registry() {
    if !prerequisites() {
        return;
    }
    let reg = start_registry();
    let work = tempfile::tempdir().expect("temp");
    let put_dir = work.path().join("put");
    std::fs::create_dir(&put_dir).expect("mkdir");
    image_tarball(&put_dir);
    let repo = format!("{}/test/busybox", reg.addr);
    let source = json!({"repository": repo, "insecure": true});

    let pushed = registry_image(
        "out",
        Some(&put_dir),
        &json!({"source": source, "params": {"image": "image.tar", "version": "1.0.0"}}),
    )
    .expect("out");
    let digest = pushed["version"]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    assert!(digest.starts_with("sha256:"));
    assert_eq!(pushed["version"]["tag"], "1.0.0");

    let by_tag = registry_image(
        "check",
        None,
        &json!({"source": {"repository": repo, "insecure": true, "tag": "1.0.0"}}),
    )
    .expect("check");
    assert_eq!(by_tag, json!([{"tag": "1.0.0", "digest": digest}]));
    let semver = registry_image("check", None, &json!({"source": source})).expect("check");
    assert_eq!(semver, json!([{"tag": "1.0.0", "digest": digest}]));
    let missing = registry_image(
        "check",
        None,
        &json!({"source": {"repository": repo, "insecure": true, "tag": "nope"}}),
    )
    .expect("check");
    assert_eq!(missing, json!([]));

    let get_dir = work.path().join("get");
    std::fs::create_dir(&get_dir).expect("mkdir");
    let got = registry_image(
        "in",
        Some(&get_dir),
        &json!({"source": source, "version": {"tag": "1.0.0", "digest": digest}}),
    )
    .expect("in");
    assert_eq!(got["version"]["digest"], digest.as_str());
    assert_eq!(
        std::fs::read_to_string(get_dir.join("digest")).expect("digest file"),
        digest
    );
    let meta: Value =
        serde_json::from_slice(&std::fs::read(get_dir.join("metadata.json")).expect("metadata"))
            .expect("json");
    assert_eq!(meta["env"], json!(["PATH=/bin", "GREETING=hi"]));
    assert_eq!(meta["cmd"], json!(["/bin/sh"]));
    // The unpacked busybox is the real, runnable binary.
    let out = Command::new(get_dir.join("rootfs/bin/busybox"))
        .args(["echo", "from the image"])
        .output()
        .expect("run busybox");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "from the image"
    );
    assert_eq!(
        std::fs::read_link(get_dir.join("rootfs/bin/sh")).expect("symlink"),
        Path::new("busybox")
    );

    let err = registry_image("in", Some(&get_dir), &json!({"source": source, "version": {"tag": "x", "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000"}})).expect_err("unknown digest");
    assert!(err.contains("not found"), "{err}");
}
