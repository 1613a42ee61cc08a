//! Garden over HTTP with the process backend: a real server on an ephemeral port, every
//! route driven through the client, including the hijacked run/attach protocol.

mod worker_support;

use bytes::Bytes;
use concourse::garden::backend::ProcessBackend;
use concourse::garden::{Containers, GardenConfig};
use concourse::proto::garden::*;
use concourse::proto::stream::{byte_stream_from, collect_bytes};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use worker_support::garden::*;
use worker_support::*;

#[tokio::test]
async fn containers_are_created_listed_inspected_and_destroyed() {
    let g = start().await;
    g.client.ping().await.expect("ping");
    assert!(g.client.capacity().await.expect("capacity").memory_in_bytes > 0);
    let spec = ContainerSpec {
        handle: "c1".into(),
        properties: [("team".to_string(), "main".to_string())].into(),
        limits: Limits {
            memory_limits: MemoryLimits {
                limit_in_bytes: 1 << 30,
            },
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(g.client.create(spec).await.expect("create"), "c1");
    let generated = g
        .client
        .create(ContainerSpec::default())
        .await
        .expect("create");
    assert_eq!(generated.len(), 36);
    let err = g
        .client
        .create(ContainerSpec {
            handle: "c1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err, GardenError::Other("handle already exists: c1".into()));

    let filter = [("team".to_string(), "main".to_string())].into();
    assert_eq!(g.client.list(filter).await.expect("list"), ["c1"]);
    assert_eq!(
        g.client.list(Properties::new()).await.expect("list").len(),
        2
    );

    g.client
        .set_property("c1", "concourse:exit-status", "0")
        .await
        .expect("set");
    assert_eq!(
        g.client
            .property("c1", "concourse:exit-status")
            .await
            .expect("get"),
        "0"
    );
    assert_eq!(g.client.properties("c1").await.expect("all").len(), 2);
    g.client
        .remove_property("c1", "concourse:exit-status")
        .await
        .expect("remove");
    assert!(g
        .client
        .property("c1", "concourse:exit-status")
        .await
        .is_err());

    assert_eq!(
        g.client
            .memory_limits("c1")
            .await
            .expect("limits")
            .limit_in_bytes,
        1 << 30
    );
    assert_eq!(
        g.client.cpu_limits("c1").await.expect("limits"),
        CpuLimits::default()
    );
    g.client.bandwidth_limits("c1").await.expect("limits");
    g.client.disk_limits("c1").await.expect("limits");
    assert_eq!(
        g.client.net_in("c1", 0, 8080).await.expect("net in"),
        (8080, 8080)
    );
    g.client
        .net_out("c1", vec![NetOutRule::default()])
        .await
        .expect("net out");
    g.client
        .set_grace_time("c1", Duration::from_secs(3600))
        .await
        .expect("grace");

    let info = g.client.info("c1").await.expect("info");
    assert_eq!(info.state, ContainerState::Active);
    assert_eq!(info.properties["team"], "main");
    assert_eq!(
        info.mapped_ports,
        [PortMapping {
            host_port: 8080,
            container_port: 8080
        }]
    );
    let bulk = g
        .client
        .bulk_info(&["c1".into(), "ghost".into()])
        .await
        .expect("bulk");
    assert!(bulk["c1"].err.is_none());
    assert_eq!(
        bulk["ghost"].err.as_ref().map(|e| e.type_.as_str()),
        Some("ContainerNotFoundError")
    );
    let metrics = g
        .client
        .bulk_metrics(&["c1".into()])
        .await
        .expect("bulk metrics");
    assert!(metrics["c1"].metrics.age > 0);
    g.client.metrics("c1").await.expect("metrics");

    g.client.stop("c1", true).await.expect("stop");
    assert_eq!(
        g.client.info("c1").await.expect("info").state,
        ContainerState::Stopped
    );
    g.client.destroy("c1").await.expect("destroy");
    assert_eq!(
        g.client.destroy("c1").await.unwrap_err(),
        GardenError::ContainerNotFound("c1".into())
    );
    assert_eq!(
        g.client.info("c1").await.unwrap_err(),
        GardenError::ContainerNotFound("c1".into())
    );
    assert!(!g.dir.path().join("containers/c1").exists());
}

#[tokio::test]
async fn the_wire_format_matches_upstream_and_bad_bodies_get_400() {
    let g = start().await;
    container(&g, "w").await;
    let http = reqwest::Client::new();
    let body = http
        .get(format!("{}/containers", g.url))
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "{\"Handles\":[\"w\"]}\n");
    let r = http
        .post(format!("{}/containers", g.url))
        .body("{nope")
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 400);
    let r = http
        .get(format!("{}/containers/ghost/info", g.url))
        .send()
        .await
        .expect("info");
    assert_eq!(r.status(), 404);
    let e: WireError = serde_json::from_str(&r.text().await.expect("body")).expect("error body");
    assert_eq!(
        (e.type_.as_str(), e.message.as_str(), e.handle.as_str()),
        ("ContainerNotFoundError", "unknown handle: ghost", "ghost")
    );
    let r = http
        .put(format!("{}/containers/w/grace_time", g.url))
        .body("\"soon\"")
        .send()
        .await
        .expect("grace");
    assert_eq!(r.status(), 400);
    assert_eq!(
        g.client.list(Properties::new()).await.expect("list"),
        ["w"],
        "nothing created by bad requests"
    );
}

#[tokio::test]
async fn a_process_streams_stdout_and_stderr_and_reports_its_exit_status() {
    let g = start().await;
    container(&g, "p").await;
    let (io, out) = capture();
    let p = g
        .client
        .run("p", sh("echo out; echo err >&2; exit 3"), io)
        .await
        .expect("run");
    assert_eq!(p.wait().await.expect("wait"), 3);
    assert_eq!(out.stdout.await.expect("stdout"), "out\n");
    assert_eq!(out.stderr.await.expect("stderr"), "err\n");
    let err = g
        .client
        .run(
            "p",
            ProcessSpec {
                path: "/no/such/binary".into(),
                ..Default::default()
            },
            ProcessIo::default(),
        )
        .await;
    assert!(matches!(
        err.err(),
        Some(GardenError::ExecutableNotFound { .. })
    ));
    let err = g
        .client
        .run("ghost", sh("true"), ProcessIo::default())
        .await;
    assert_eq!(
        err.err(),
        Some(GardenError::ContainerNotFound("ghost".into()))
    );
}

#[tokio::test]
async fn stdin_reaches_the_process_and_closing_it_ends_cat() {
    let g = start().await;
    container(&g, "s").await;
    let (mut io, out) = capture();
    let (tx, rx) = mpsc::channel(4);
    io.stdin = Some(rx);
    let spec = ProcessSpec {
        path: "cat".into(),
        env: vec!["X=1".into()],
        ..Default::default()
    };
    let p = g.client.run("s", spec, io).await.expect("run");
    tx.send(Bytes::from_static(b"hello ")).await.expect("stdin");
    tx.send(Bytes::from_static(b"world")).await.expect("stdin");
    drop(tx);
    assert_eq!(p.wait().await.expect("wait"), 0);
    assert_eq!(out.stdout.await.expect("stdout"), "hello world");
}

#[tokio::test]
async fn a_process_outlives_its_client_and_a_reattach_replays_everything() {
    let g = start().await;
    container(&g, "r").await;
    let (io, out) = capture();
    let spec = ProcessSpec {
        id: "task".into(),
        ..sh("echo one; while [ ! -f go ]; do sleep 0.02; done; echo two; exit 7")
    };
    let p = g.client.run("r", spec, io).await.expect("run");
    assert_eq!(p.id(), "task");
    drop(p); // the client goes away; the process keeps running
    drop(out);
    // Let it continue: stream a file named `go` into its working directory.
    g.client
        .stream_in("r", "root", "/", byte_stream_from(tar_of(&[("go", b"")])))
        .await
        .expect("stream in");
    let (io, out) = capture();
    let p = g.client.attach("r", "task", io).await.expect("attach");
    assert_eq!(p.wait().await.expect("wait"), 7);
    assert_eq!(out.stdout.await.expect("stdout"), "one\ntwo\n");
    // After the exit, attaching still gives the output and the status.
    let (io, out) = capture();
    let p = g
        .client
        .attach("r", "task", io)
        .await
        .expect("attach after exit");
    assert_eq!(p.wait().await.expect("wait"), 7);
    assert_eq!(out.stdout.await.expect("stdout"), "one\ntwo\n");
    let err = g
        .client
        .attach("r", "nope", ProcessIo::default())
        .await
        .err();
    assert_eq!(err, Some(GardenError::ProcessNotFound("nope".into())));
}

#[tokio::test]
async fn signals_terminate_or_kill_a_process() {
    let g = start().await;
    container(&g, "k").await;
    for (signal, status) in [(Signal::Terminate, 143), (Signal::Kill, 137)] {
        let (io, out) = capture();
        let p = g
            .client
            .run("k", sh("echo ready; exec sleep 100"), io)
            .await
            .expect("run");
        eventually(Duration::from_secs(10), "process started", || async {
            g.client
                .info("k")
                .await
                .ok()
                .filter(|i| !i.process_ids.is_empty())
        })
        .await;
        // The process announces itself before it can be signalled meaningfully.
        let _ = &out;
        p.signal(signal).await.expect("signal");
        assert_eq!(p.wait().await.expect("wait"), status);
    }
}

#[tokio::test]
async fn a_tty_process_gets_a_terminal_of_the_requested_size_and_resizes() {
    let g = start().await;
    container(&g, "t").await;
    let (otx, mut orx) = mpsc::channel(16);
    let (tx, rx) = mpsc::channel(4);
    let io = ProcessIo {
        stdin: Some(rx),
        stdout: Some(otx),
        stderr: None,
        ..Default::default()
    };
    let spec = ProcessSpec {
        tty: Some(TtySpec {
            window_size: Some(WindowSize {
                columns: 100,
                rows: 30,
            }),
        }),
        ..sh("stty size; read line; stty size; echo bye $line >&2")
    };
    let p = g.client.run("t", spec, io).await.expect("run");
    let mut seen = String::new();
    while !seen.contains("30 100") {
        let chunk = orx.recv().await.expect("output before the first size");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    p.set_tty(TtySpec {
        window_size: Some(WindowSize {
            columns: 50,
            rows: 20,
        }),
    })
    .await
    .expect("resize");
    tx.send(Bytes::from_static(b"now\n")).await.expect("stdin");
    assert_eq!(p.wait().await.expect("wait"), 0);
    seen.push_str(&drain(orx).await);
    assert!(seen.contains("20 50"), "{seen:?}");
    assert!(
        seen.contains("bye now"),
        "stderr is merged into the tty: {seen:?}"
    );
}

#[tokio::test]
async fn files_stream_in_and_out_including_through_bind_mounted_volumes() {
    let g = start().await;
    let volume = tempfile::tempdir().expect("volume");
    let spec = ContainerSpec {
        handle: "f".into(),
        bind_mounts: vec![BindMount {
            src_path: volume.path().display().to_string(),
            dst_path: "/tmp/build/input".into(),
            mode: BindMountMode::ReadWrite,
            origin: 0,
        }],
        ..Default::default()
    };
    g.client.create(spec).await.expect("create");
    g.client
        .stream_in(
            "f",
            "root",
            "/data",
            byte_stream_from(tar_of(&[("a/b.txt", b"bee")])),
        )
        .await
        .expect("in");
    let out = collect_bytes(
        g.client
            .stream_out("f", "root", "/data")
            .await
            .expect("out"),
    )
    .await
    .expect("read");
    assert_eq!(
        tar_entries(&out),
        [("a/b.txt".to_string(), b"bee".to_vec())]
    );
    g.client
        .stream_in(
            "f",
            "root",
            "/tmp/build/input/sub",
            byte_stream_from(tar_of(&[("v", b"vol")])),
        )
        .await
        .expect("in");
    assert_eq!(
        std::fs::read(volume.path().join("sub/v")).expect("in the volume"),
        b"vol"
    );
    // The process sees the volume at its path (relative to the container directory here).
    let (io, out) = capture();
    let p = g
        .client
        .run(
            "f",
            ProcessSpec {
                dir: "/tmp/build/input".into(),
                ..sh("cat sub/v")
            },
            io,
        )
        .await
        .expect("run");
    assert_eq!(p.wait().await.expect("wait"), 0);
    assert_eq!(out.stdout.await.expect("stdout"), "vol");
    // Hostile archives are refused and change nothing outside the container.
    let outside = tempfile::tempdir().expect("outside");
    let hostile = hostile_tar("../../../../../escape", tar::EntryType::Regular, None);
    let err = g
        .client
        .stream_in("f", "root", "/", byte_stream_from(hostile))
        .await
        .unwrap_err();
    assert!(matches!(err, GardenError::BadRequest(_)), "{err:?}");
    let link = hostile_tar(
        "l",
        tar::EntryType::Symlink,
        Some(outside.path().to_str().expect("utf8")),
    );
    g.client
        .stream_in("f", "root", "/", byte_stream_from(link))
        .await
        .expect("an absolute symlink is fine on its own");
    let through = tar_of(&[("l/owned", b"x")]);
    let err = g
        .client
        .stream_in("f", "root", "/", byte_stream_from(through))
        .await
        .unwrap_err();
    assert!(matches!(err, GardenError::BadRequest(_)), "{err:?}");
    assert!(std::fs::read_dir(outside.path())
        .expect("dir")
        .next()
        .is_none());
    let err = g.client.stream_out("f", "root", "/missing").await.err();
    assert!(matches!(err, Some(GardenError::BadRequest(_))), "{err:?}");
}

#[tokio::test]
async fn containers_past_their_grace_time_are_destroyed() {
    let g = start().await;
    let spec = ContainerSpec {
        handle: "short".into(),
        grace_time: 50_000_000,
        ..Default::default()
    };
    g.client.create(spec).await.expect("create");
    container(&g, "long").await;
    eventually(Duration::from_secs(10), "reaped container", || async {
        let l = g.client.list(Properties::new()).await.expect("list");
        (!l.contains(&"short".to_string())).then_some(())
    })
    .await;
    assert_eq!(
        g.client.list(Properties::new()).await.expect("list"),
        ["long"]
    );
    g.client
        .set_grace_time("long", Duration::from_millis(50))
        .await
        .expect("grace");
    eventually(
        Duration::from_secs(10),
        "reaped after set_grace_time",
        || async {
            g.client
                .list(Properties::new())
                .await
                .expect("list")
                .is_empty()
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn destroy_kills_running_processes() {
    let g = start().await;
    container(&g, "d").await;
    let (io, _out) = capture();
    let p = g
        .client
        .run("d", sh("exec sleep 100"), io)
        .await
        .expect("run");
    g.client.destroy("d").await.expect("destroy");
    assert_eq!(p.wait().await.expect("wait"), 143);
}

/// The worker's Garden as quickstart holds it (process runtime), capped at `max`.
fn in_process(dir: &std::path::Path, max: usize) -> Arc<dyn Garden> {
    let config = GardenConfig {
        dir: dir.to_path_buf(),
        default_grace_time: Duration::ZERO,
        max_containers: max,
    };
    Arc::new(Containers::new(Arc::new(ProcessBackend), config).expect("containers"))
}

#[tokio::test]
async fn the_in_process_garden_runs_processes_like_the_server() {
    let dir = tempfile::tempdir().expect("tmp");
    let local = in_process(dir.path(), 1);
    local
        .create(ContainerSpec {
            handle: "x".into(),
            env: vec!["GREETING=hi".into()],
            ..Default::default()
        })
        .await
        .expect("create");
    let err = local
        .create(ContainerSpec {
            handle: "y".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err, GardenError::Other("max containers reached".into()));
    let (io, out) = capture();
    let p = local
        .run("x", sh("echo $GREETING $USER"), ProcessIo { ..io })
        .await
        .expect("run");
    assert_eq!(p.wait().await.expect("wait"), 0);
    assert_eq!(out.stdout.await.expect("stdout"), "hi\n");
}

/// Creations racing each other count against the cap before any of them is in the table.
#[tokio::test]
async fn racing_creations_stop_at_the_container_cap() {
    let dir = tempfile::tempdir().expect("tmp");
    let local = in_process(dir.path(), 3);
    let made = futures::future::join_all((0..10).map(|i| {
        local.create(ContainerSpec {
            handle: format!("c{i}"),
            ..Default::default()
        })
    }))
    .await;
    let (ok, refused): (Vec<_>, Vec<_>) = made.into_iter().partition(|r| r.is_ok());
    assert_eq!(ok.len(), 3, "{refused:?}");
    for e in refused {
        assert_eq!(
            e.unwrap_err(),
            GardenError::Other("max containers reached".into())
        );
    }
    let handles = local.list(Default::default()).await.expect("list");
    assert_eq!(handles.len(), 3);
    // Refused creations gave their places back: one destroyed makes room for one more.
    local.destroy(&handles[0]).await.expect("destroy");
    let again = |h: &str| {
        local.create(ContainerSpec {
            handle: h.into(),
            ..Default::default()
        })
    };
    again("again").await.expect("room after a destroy");
    assert!(again("over").await.is_err(), "past the cap");
}

#[tokio::test]
async fn an_in_process_reattach_without_stdin_leaves_the_process_stdin_open() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = GardenConfig {
        dir: dir.path().to_path_buf(),
        default_grace_time: Duration::ZERO,
        max_containers: 0,
    };
    let local: Arc<dyn Garden> =
        Arc::new(Containers::new(Arc::new(ProcessBackend), config).expect("containers"));
    local
        .create(ContainerSpec {
            handle: "x".into(),
            ..Default::default()
        })
        .await
        .expect("create");
    let (tx, rx) = mpsc::channel(4);
    let spec = ProcessSpec {
        id: "reader".into(),
        ..sh("read x; echo got $x")
    };
    let first = local
        .run(
            "x",
            spec,
            ProcessIo {
                stdin: Some(rx),
                ..Default::default()
            },
        )
        .await
        .expect("run");
    let (io, out) = capture();
    let second = local.attach("x", "reader", io).await.expect("attach");
    tx.send(Bytes::from_static(b"hi\n"))
        .await
        .expect("stdin still open");
    drop(tx);
    assert_eq!(second.wait().await.expect("wait"), 0);
    assert_eq!(first.wait().await.expect("wait"), 0);
    assert_eq!(out.stdout.await.expect("stdout"), "got hi\n");
}

/// A container whose creation races the worker's stop is destroyed too (or refused): once
/// `close` returns, nothing it was asked to create is left, in the table or on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn containers_created_while_the_worker_stops_do_not_outlive_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = GardenConfig {
        dir: dir.path().to_path_buf(),
        default_grace_time: Duration::ZERO,
        max_containers: 0,
    };
    let containers =
        Arc::new(Containers::new(Arc::new(ProcessBackend), config).expect("containers"));
    let creating: Vec<_> = (0..64)
        .map(|i| {
            let c: Arc<dyn Garden> = containers.clone();
            tokio::spawn(async move {
                c.create(ContainerSpec {
                    handle: format!("c{i}"),
                    ..Default::default()
                })
                .await
            })
        })
        .collect();
    // Let some creations begin, then stop while others are still under way.
    while containers
        .list(Default::default())
        .await
        .expect("list")
        .is_empty()
    {
        tokio::task::yield_now().await;
    }
    containers.close().await;
    for c in creating {
        match c.await.expect("task") {
            Ok(_) => {}
            Err(e) => assert_eq!(e, GardenError::Other("the worker is stopping".into())),
        }
    }
    assert_eq!(
        containers.list(Default::default()).await.expect("list"),
        Vec::<String>::new()
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "container directories left: {left:?}");
}
