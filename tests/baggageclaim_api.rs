//! Baggageclaim over HTTP: a real server on an ephemeral port, driven through the client.

mod worker_support;

use concourse::baggageclaim::{server, BaggageclaimClient, DriverKind, Volumes, VolumesConfig};
use concourse::proto::baggageclaim::{
    AsyncVolume, Baggageclaim, BaggageclaimError, Encoding, Strategy, VolumeRequest,
};
use concourse::proto::stream::{byte_stream_from, collect_bytes};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worker_support::*;

struct Bc {
    client: BaggageclaimClient,
    url: String,
    volumes: Arc<Volumes>,
    work: tempfile::TempDir,
    _stop: StopOnDrop,
}

async fn start_in(work: tempfile::TempDir, driver: DriverKind) -> Bc {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut config = VolumesConfig::under(work.path());
    config.driver = Some(driver);
    config.bind_port = port;
    config.p2p_url = Some(format!("http://127.0.0.1:{port}"));
    let volumes = Volumes::open(config).expect("open volumes");
    let token = CancellationToken::new();
    tokio::spawn(server::run(
        listener,
        Arc::new(volumes.clone()),
        token.clone(),
    ));
    let url = format!("http://127.0.0.1:{port}");
    Bc {
        client: BaggageclaimClient::new(&url),
        url,
        volumes,
        work,
        _stop: StopOnDrop(token),
    }
}

async fn start(driver: DriverKind) -> Bc {
    start_in(tempfile::tempdir().expect("tmp"), driver).await
}

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn put_files(bc: &Bc, handle: &str, files: &[(&str, &[u8])]) {
    bc.client
        .stream_in(
            handle,
            ".",
            Encoding::Raw,
            None,
            byte_stream_from(tar_of(files)),
        )
        .await
        .expect("stream in");
}

async fn files_of(bc: &Bc, handle: &str, path: &str) -> Vec<(String, Vec<u8>)> {
    let s = bc
        .client
        .stream_out(handle, path, Encoding::Raw)
        .await
        .expect("stream out");
    tar_entries(&collect_bytes(s).await.expect("read"))
}

#[tokio::test]
async fn volumes_are_created_listed_by_property_looked_up_and_destroyed() {
    let bc = start(DriverKind::Naive).await;
    let mut req = VolumeRequest::new("v1", Strategy::Empty);
    req.properties = props(&[("kind", "scratch"), ("team", "main")]);
    let v = bc.client.create_volume(req).await.expect("create");
    assert_eq!(v.handle, "v1");
    assert!(
        std::path::Path::new(&v.path).is_dir(),
        "path {} is a directory on the host",
        v.path
    );
    let generated = bc
        .client
        .create_volume(VolumeRequest::new("", Strategy::Empty))
        .await
        .expect("create");
    assert_eq!(generated.handle.len(), 36);

    let listed = bc
        .client
        .list_volumes(props(&[("kind", "scratch")]))
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|v| v.handle.as_str()).collect::<Vec<_>>(),
        ["v1"]
    );
    assert_eq!(
        bc.client
            .list_volumes(BTreeMap::new())
            .await
            .expect("list")
            .len(),
        2
    );

    bc.client
        .set_property("v1", "kind", "cache")
        .await
        .expect("set property");
    assert_eq!(
        bc.client.lookup_volume("v1").await.expect("get").properties["kind"],
        "cache"
    );
    assert!(!bc.client.privileged("v1").await.expect("privileged"));
    bc.client
        .set_privileged("v1", true)
        .await
        .expect("set privileged");
    assert!(bc.client.privileged("v1").await.expect("privileged"));

    bc.client.destroy_volume("v1").await.expect("destroy");
    assert!(!std::path::Path::new(&v.path).exists());
    assert!(matches!(
        bc.client.lookup_volume("v1").await,
        Err(BaggageclaimError::NotFound(_))
    ));
    assert!(matches!(
        bc.client.destroy_volume("v1").await,
        Err(BaggageclaimError::NotFound(_))
    ));
    bc.client
        .destroy_volumes(&[generated.handle.clone(), "never-existed".into()])
        .await
        .expect("destroy many");
    assert!(bc
        .client
        .list_volumes(BTreeMap::new())
        .await
        .expect("list")
        .is_empty());
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_create_nothing() {
    let bc = start(DriverKind::Naive).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/volumes", bc.url))
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let r = http
        .post(format!("{}/volumes", bc.url))
        .body(r#"{"handle":"x","strategy":{"type":"zfs"}}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.text().await.expect("body"),
        r#"{"error":"unknown strategy: zfs"}"#
    );
    let err = bc
        .client
        .create_volume(VolumeRequest::new(
            "c",
            Strategy::Cow {
                volume: "missing".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        BaggageclaimError::Unprocessable("parent volume not found: missing".into())
    );
    let r = http
        .get(format!("{}/volumes?a=1&a=2", bc.url))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 422);
    let err = bc
        .client
        .create_volume(VolumeRequest::new("../../etc", Strategy::Empty))
        .await
        .unwrap_err();
    assert!(matches!(err, BaggageclaimError::BadRequest(_)), "{err:?}");
    let r = http
        .delete(format!("{}/volumes/destroy", bc.url))
        .body("nope")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    assert!(bc
        .client
        .list_volumes(BTreeMap::new())
        .await
        .expect("list")
        .is_empty());
    assert!(std::fs::read_dir(bc.work.path().join("volumes/live"))
        .expect("dir")
        .next()
        .is_none());
}

#[tokio::test]
async fn streaming_round_trips_with_every_encoding_and_single_files() {
    let bc = start(DriverKind::Naive).await;
    bc.client
        .create_volume(VolumeRequest::new("src", Strategy::Empty))
        .await
        .expect("create");
    bc.client
        .create_volume(VolumeRequest::new("dst", Strategy::Empty))
        .await
        .expect("create");
    put_files(
        &bc,
        "src",
        &[
            ("a.txt", b"alpha"),
            ("dir/b.txt", b"beta"),
            ("metadata.json", b"{}"),
        ],
    )
    .await;
    for enc in [Encoding::Raw, Encoding::Gzip, Encoding::Zstd] {
        let out = bc.client.stream_out("src", ".", enc).await.expect("out");
        bc.client
            .stream_in("dst", &format!("copy-{}", enc.as_str()), enc, None, out)
            .await
            .expect("in");
        let files = files_of(&bc, "dst", &format!("copy-{}", enc.as_str())).await;
        assert!(
            files.contains(&("dir/b.txt".into(), b"beta".to_vec())),
            "{enc:?}: {files:?}"
        );
    }
    // A single file streams out as a tar holding just that file.
    assert_eq!(
        files_of(&bc, "src", "dir/b.txt").await,
        vec![("b.txt".to_string(), b"beta".to_vec())]
    );
    let err = bc
        .client
        .stream_out("src", "nope", Encoding::Raw)
        .await
        .err()
        .expect("missing path fails");
    assert_eq!(
        err,
        BaggageclaimError::NotFound("no such file or directory".into())
    );
    let err = bc
        .client
        .stream_out("src", "../../..", Encoding::Raw)
        .await
        .err()
        .expect("escaping path fails");
    assert!(matches!(err, BaggageclaimError::BadRequest(_)), "{err:?}");
    let err = bc
        .client
        .stream_out("src", ".", Encoding::S2)
        .await
        .err()
        .expect("s2 unsupported");
    assert!(matches!(err, BaggageclaimError::BadRequest(_)), "{err:?}");
    let err = bc
        .client
        .stream_out("ghost", ".", Encoding::Raw)
        .await
        .err()
        .expect("unknown volume");
    assert!(matches!(err, BaggageclaimError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn hostile_archives_are_refused_with_400_and_touch_nothing_outside() {
    let bc = start(DriverKind::Naive).await;
    let v = bc
        .client
        .create_volume(VolumeRequest::new("v", Strategy::Empty))
        .await
        .expect("create");
    let outside = tempfile::tempdir().expect("tmp");
    let out_path = outside.path().to_str().expect("utf8").to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "parent path",
            hostile_tar("../../../../escaped", tar::EntryType::Regular, None),
        ),
        (
            "absolute path",
            hostile_tar(&format!("{out_path}/abs"), tar::EntryType::Regular, None),
        ),
        (
            "symlink out",
            hostile_tar("up", tar::EntryType::Symlink, Some("../../../../")),
        ),
        (
            "hard link out",
            hostile_tar("hl", tar::EntryType::Link, Some("../../../../etc/passwd")),
        ),
        ("device", hostile_tar("null", tar::EntryType::Char, None)),
        (
            "garbage",
            b"this is not a tar archive at all, not even close.........".repeat(20),
        ),
    ];
    for (what, data) in cases {
        let err = bc
            .client
            .stream_in("v", ".", Encoding::Raw, None, byte_stream_from(data))
            .await
            .unwrap_err();
        assert!(
            matches!(err, BaggageclaimError::BadRequest(_)),
            "{what}: {err:?}"
        );
    }
    // A symlink planted first, then written through, is refused too.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Symlink, 0);
    h.set_link_name(&out_path).expect("link");
    b.append_data(&mut h, "trap", std::io::empty())
        .expect("append");
    let mut h = header(tar::EntryType::Regular, 3);
    b.append_data(&mut h, "trap/owned", &b"bad"[..])
        .expect("append");
    let data = b.into_inner().expect("tar");
    let err = bc
        .client
        .stream_in("v", ".", Encoding::Raw, None, byte_stream_from(data))
        .await
        .unwrap_err();
    assert!(matches!(err, BaggageclaimError::BadRequest(_)), "{err:?}");
    assert!(
        std::fs::read_dir(outside.path())
            .expect("dir")
            .next()
            .is_none(),
        "nothing written outside"
    );
    assert!(!std::path::Path::new(&v.path)
        .parent()
        .expect("parent")
        .join("escaped")
        .exists());
    // The size limit counts the compressed body.
    let big = tar_of(&[("big", &vec![7u8; 2 * 1024 * 1024][..])]);
    let err = bc
        .client
        .stream_in("v", ".", Encoding::Raw, Some(1.0), byte_stream_from(big))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        BaggageclaimError::Forbidden("exceeded volume streaming limit of 1MB".into())
    );
}

#[tokio::test]
async fn cow_children_copy_their_parent_and_their_writes_stay_theirs() {
    let bc = start(DriverKind::Naive).await;
    cow_semantics(&bc).await;
}

#[tokio::test]
async fn overlay_cow_children_see_the_parent_and_keep_writes_to_themselves() {
    if !root_or_skip("overlay_cow_children_see_the_parent_and_keep_writes_to_themselves") {
        return;
    }
    let bc = start(DriverKind::Overlay).await;
    cow_semantics(&bc).await;
    // A parent with live overlay children is hidden on destroy but kept for them.
    bc.client
        .create_volume(VolumeRequest::new("base", Strategy::Empty))
        .await
        .expect("create");
    put_files(&bc, "base", &[("f", b"base")]).await;
    let child = bc
        .client
        .create_volume(VolumeRequest::new(
            "kid",
            Strategy::Cow {
                volume: "base".into(),
            },
        ))
        .await
        .expect("cow");
    bc.client
        .destroy_volume("base")
        .await
        .expect("destroy parent");
    assert!(matches!(
        bc.client.lookup_volume("base").await,
        Err(BaggageclaimError::NotFound(_))
    ));
    assert_eq!(
        std::fs::read(format!("{}/f", child.path)).expect("read through child"),
        b"base"
    );
    bc.client
        .destroy_volume("kid")
        .await
        .expect("destroy child");
    assert!(
        !bc.work.path().join("volumes/live/base").exists(),
        "parent removed with its last child"
    );
}

async fn cow_semantics(bc: &Bc) {
    bc.client
        .create_volume(VolumeRequest::new("parent", Strategy::Empty))
        .await
        .expect("create");
    put_files(bc, "parent", &[("shared.txt", b"from parent")]).await;
    let child = bc
        .client
        .create_volume(VolumeRequest::new(
            "child",
            Strategy::Cow {
                volume: "parent".into(),
            },
        ))
        .await
        .expect("cow");
    assert_eq!(
        std::fs::read(format!("{}/shared.txt", child.path)).expect("read"),
        b"from parent"
    );
    std::fs::write(format!("{}/child-only.txt", child.path), b"mine").expect("write in child");
    std::fs::write(format!("{}/shared.txt", child.path), b"changed").expect("overwrite in child");
    let parent_files = files_of(bc, "parent", ".").await;
    assert_eq!(
        parent_files,
        vec![("shared.txt".to_string(), b"from parent".to_vec())],
        "child writes invisible in parent"
    );
    // Chains of COW volumes (deeper than overlayfs' own stacking limit) see their ancestors.
    bc.client
        .create_volume(VolumeRequest::new(
            "grandchild",
            Strategy::Cow {
                volume: "child".into(),
            },
        ))
        .await
        .expect("cow of cow");
    let great = bc
        .client
        .create_volume(VolumeRequest::new(
            "great",
            Strategy::Cow {
                volume: "grandchild".into(),
            },
        ))
        .await
        .expect("cow³");
    assert_eq!(
        std::fs::read(format!("{}/shared.txt", great.path)).expect("read"),
        b"changed"
    );
    std::fs::remove_file(format!("{}/child-only.txt", great.path))
        .expect("delete in great-grandchild");
    assert!(
        std::path::Path::new(&format!("{}/child-only.txt", child.path)).exists(),
        "deletes stay in the child too"
    );
    for h in ["great", "grandchild", "child", "parent"] {
        bc.client.destroy_volume(h).await.expect("destroy");
    }
}

#[tokio::test]
async fn import_copies_a_directory_or_unpacks_a_tarball() {
    let bc = start(DriverKind::Naive).await;
    let src = tempfile::tempdir().expect("tmp");
    std::fs::write(src.path().join("x"), b"dir import").expect("write");
    let req = VolumeRequest::new(
        "imp",
        Strategy::Import {
            path: src.path().display().to_string(),
            follow_symlinks: false,
        },
    );
    let v = bc.client.create_volume(req).await.expect("import dir");
    assert_eq!(
        std::fs::read(format!("{}/x", v.path)).expect("read"),
        b"dir import"
    );

    let tgz = src.path().join("rootfs.tgz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar_of(&[("etc/hostname", b"box")])).expect("gzip");
    std::fs::write(&tgz, gz.finish().expect("gzip")).expect("write tgz");
    let req = VolumeRequest::new(
        "tgz",
        Strategy::Import {
            path: tgz.display().to_string(),
            follow_symlinks: false,
        },
    );
    let v = bc.client.create_volume(req).await.expect("import tgz");
    assert_eq!(
        std::fs::read(format!("{}/etc/hostname", v.path)).expect("read"),
        b"box"
    );
}

#[tokio::test]
async fn async_creation_is_polled_until_done_and_can_be_forgotten() {
    let bc = start(DriverKind::Naive).await;
    let handle = bc
        .client
        .create_volume_async(VolumeRequest::new("later", Strategy::Empty))
        .await
        .expect("async");
    let v = eventually(Duration::from_secs(10), "async volume", || async {
        match bc
            .client
            .create_volume_async_result(&handle)
            .await
            .expect("poll")
        {
            AsyncVolume::Pending => None,
            AsyncVolume::Done(v) => Some(v),
        }
    })
    .await;
    assert_eq!(v.handle, "later");
    bc.client
        .forget_volume_async(&handle)
        .await
        .expect("forget");
    assert!(matches!(
        bc.client.create_volume_async_result(&handle).await,
        Err(BaggageclaimError::NotFound(_))
    ));
    let failing = bc
        .client
        .create_volume_async(VolumeRequest::new(
            "bad",
            Strategy::Cow {
                volume: "nope".into(),
            },
        ))
        .await
        .expect("async");
    let err = eventually(Duration::from_secs(10), "async failure", || async {
        bc.client.create_volume_async_result(&failing).await.err()
    })
    .await;
    assert!(
        matches!(err, BaggageclaimError::Unprocessable(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_restarted_baggageclaim_finds_its_volumes_and_cleans_orphans() {
    let work = tempfile::tempdir().expect("tmp");
    let path = work.path().to_path_buf();
    let bc = start_in(work, DriverKind::Naive).await;
    let mut req = VolumeRequest::new("keep", Strategy::Empty);
    req.properties = props(&[("k", "v")]);
    bc.client.create_volume(req).await.expect("create");
    put_files(&bc, "keep", &[("data", b"survives")]).await;
    std::fs::create_dir_all(path.join("volumes/init/half-made/volume")).expect("leftover");
    let Bc { work, _stop, .. } = bc;
    drop(_stop);
    let bc = start_in(work, DriverKind::Naive).await;
    let v = bc.client.lookup_volume("keep").await.expect("found again");
    assert_eq!(v.properties["k"], "v");
    assert_eq!(files_of(&bc, "keep", "data").await[0].1, b"survives");
    bc.client.cleanup_orphans().await.expect("cleanup");
    assert!(std::fs::read_dir(path.join("volumes/dead"))
        .expect("dir")
        .next()
        .is_none());
    assert!(!path.join("volumes/init/half-made").exists());
    assert_eq!(bc.volumes.driver_kind(), DriverKind::Naive);
}

#[tokio::test]
async fn p2p_streaming_sends_a_volume_straight_to_another_baggageclaim() {
    let a = start(DriverKind::Naive).await;
    let b = start(DriverKind::Naive).await;
    a.client
        .create_volume(VolumeRequest::new("src", Strategy::Empty))
        .await
        .expect("create");
    put_files(&a, "src", &[("payload", b"over the wire")]).await;
    b.client
        .create_volume(VolumeRequest::new("dst", Strategy::Empty))
        .await
        .expect("create");
    let base = b.client.p2p_url().await.expect("p2p url");
    assert_eq!(base, b.url);
    let url = format!("{base}/volumes/dst/stream-in?path=.");
    a.client
        .stream_p2p_out("src", ".", Encoding::Zstd, &url)
        .await
        .expect("p2p");
    assert_eq!(files_of(&b, "dst", "payload").await[0].1, b"over the wire");
    let err = a
        .client
        .stream_p2p_out(
            "src",
            ".",
            Encoding::Gzip,
            &format!("{base}/volumes/ghost/stream-in"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn the_in_process_store_answers_like_the_server() {
    let work = tempfile::tempdir().expect("tmp");
    let mut config = VolumesConfig::under(work.path());
    config.driver = Some(DriverKind::Naive);
    let local: Arc<dyn Baggageclaim> = Arc::new(Volumes::open(config).expect("open"));
    let v = local
        .create_volume(VolumeRequest::new("x", Strategy::Empty))
        .await
        .expect("create");
    local
        .stream_in("x", "sub", Encoding::Gzip, None, {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, &tar_of(&[("f", b"1")])).expect("gzip");
            byte_stream_from(gz.finish().expect("gzip"))
        })
        .await
        .expect("stream in");
    assert_eq!(
        std::fs::read(format!("{}/sub/f", v.path)).expect("read"),
        b"1"
    );
    assert!(matches!(
        local.lookup_volume("nope").await,
        Err(BaggageclaimError::NotFound(_))
    ));
}

#[tokio::test]
async fn overlay_volumes_are_remounted_when_the_worker_comes_back_after_a_reboot() {
    if !root_or_skip("overlay_volumes_are_remounted_when_the_worker_comes_back_after_a_reboot") {
        return;
    }
    let work = tempfile::tempdir().expect("tmp");
    let path = work.path().to_path_buf();
    let bc = start_in(work, DriverKind::Overlay).await;
    bc.client
        .create_volume(VolumeRequest::new("base", Strategy::Empty))
        .await
        .expect("create");
    put_files(&bc, "base", &[("from-base", b"1")]).await;
    let child = bc
        .client
        .create_volume(VolumeRequest::new(
            "kid",
            Strategy::Cow {
                volume: "base".into(),
            },
        ))
        .await
        .expect("cow");
    std::fs::write(format!("{}/from-kid", child.path), b"2").expect("write");
    let Bc { work, _stop, .. } = bc;
    drop(_stop);
    // A reboot loses the mounts but keeps the disk.
    let status = std::process::Command::new("umount")
        .arg(&child.path)
        .status()
        .expect("umount");
    assert!(status.success());
    assert!(!std::path::Path::new(&format!("{}/from-base", child.path)).exists());
    let bc = start_in(work, DriverKind::Overlay).await;
    let files = files_of(&bc, "kid", ".").await;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.contains(&"from-base") && names.contains(&"from-kid"),
        "{names:?}"
    );
    bc.client
        .destroy_volumes(&["kid".into(), "base".into()])
        .await
        .expect("destroy");
    assert!(path
        .join("volumes/live")
        .read_dir()
        .expect("dir")
        .next()
        .is_none());
}
