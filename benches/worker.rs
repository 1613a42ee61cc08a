//! Worker benchmarks: container create + run `true` + destroy per backend (in-process and
//! over HTTP), COW volume creation per driver, and streaming 100 MB between two
//! Baggageclaims (through a client, and peer to peer). Run: `cargo bench --bench worker`
//! (as root for the linux backend and the overlay driver; needs /bin/busybox for linux).

use concourse::baggageclaim::{
    server as bc_server, BaggageclaimClient, DriverKind, Volumes, VolumesConfig,
};
use concourse::garden::backend::{Backend, ProcessBackend};
use concourse::garden::linux::LinuxBackend;
use concourse::garden::{server as garden_server, Containers, GardenClient, GardenConfig};
use concourse::proto::baggageclaim::{Baggageclaim, Encoding, Strategy, VolumeRequest};
use concourse::proto::garden::{ContainerSpec, Garden, ProcessIo, ProcessSpec};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    format!(
        "median {:.2} ms, p90 {:.2} ms, min {:.2} ms (n={})",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.9).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples.len()
    )
}

async fn container_cycle(garden: &dyn Garden, rootfs: &str, i: usize) -> Duration {
    let start = Instant::now();
    let handle = format!("bench-{i}");
    garden
        .create(ContainerSpec {
            handle: handle.clone(),
            rootfs: rootfs.into(),
            ..Default::default()
        })
        .await
        .expect("create");
    let spec = ProcessSpec {
        path: "true".into(),
        ..Default::default()
    };
    let p = garden
        .run(&handle, spec, ProcessIo::default())
        .await
        .expect("run");
    assert_eq!(p.wait().await.expect("wait"), 0);
    garden.destroy(&handle).await.expect("destroy");
    start.elapsed()
}

async fn bench_backend(name: &str, backend: Arc<dyn Backend>, rootfs: &str, dir: &Path) {
    let containers = Containers::new(
        backend,
        GardenConfig {
            dir: dir.join(format!("containers-{name}")),
            default_grace_time: Duration::ZERO,
            max_containers: 0,
        },
    )
    .expect("containers");
    let local: Arc<dyn Garden> = Arc::new(containers);
    for i in 0..5 {
        container_cycle(local.as_ref(), rootfs, i).await; // warm-up
    }
    let mut samples = Vec::new();
    for i in 0..50 {
        samples.push(container_cycle(local.as_ref(), rootfs, i).await);
    }
    println!(
        "container create+run true+destroy, {name}, in-process: {}",
        summary(samples)
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let token = CancellationToken::new();
    let server = tokio::spawn(garden_server::run(listener, local, token.clone()));
    let client = GardenClient::new(url);
    let mut samples = Vec::new();
    for i in 0..50 {
        samples.push(container_cycle(&client, rootfs, 100 + i).await);
    }
    println!(
        "container create+run true+destroy, {name}, over HTTP: {}",
        summary(samples)
    );
    token.cancel();
    let _ = server.await;
}

async fn bench_cow(driver: DriverKind, dir: &Path) {
    let mut config = VolumesConfig::under(&dir.join(format!("cow-{driver:?}")));
    config.driver = Some(driver);
    let volumes = Volumes::open(config).expect("volumes");
    let parent = volumes
        .create_volume(VolumeRequest::new("parent", Strategy::Empty))
        .await
        .expect("parent");
    // A parent like a small image: 1,000 files of 10 KiB (10 MB).
    for i in 0..1000 {
        let d = format!("{}/d{}", parent.path, i % 20);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(format!("{d}/f{i}"), vec![i as u8; 10 * 1024]).expect("write");
    }
    let mut samples = Vec::new();
    for i in 0..30 {
        let start = Instant::now();
        volumes
            .create_volume(VolumeRequest::new(
                format!("c{i}"),
                Strategy::Cow {
                    volume: "parent".into(),
                },
            ))
            .await
            .expect("cow");
        samples.push(start.elapsed());
        volumes
            .destroy_volume(&format!("c{i}"))
            .await
            .expect("destroy");
    }
    println!(
        "COW volume create ({driver:?} driver, 10 MB / 1,000-file parent): {}",
        summary(samples)
    );
    volumes.destroy_volume("parent").await.expect("destroy");
}

async fn start_bc(dir: &Path, token: &CancellationToken) -> (BaggageclaimClient, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut config = VolumesConfig::under(dir);
    config.driver = Some(DriverKind::Naive);
    config.p2p_url = Some(format!("http://127.0.0.1:{port}"));
    let volumes = Volumes::open(config).expect("volumes");
    tokio::spawn(bc_server::run(listener, Arc::new(volumes), token.clone()));
    let url = format!("http://127.0.0.1:{port}");
    (BaggageclaimClient::new(&url), url)
}

async fn bench_streaming(dir: &Path) {
    let token = CancellationToken::new();
    let (a, _) = start_bc(&dir.join("bc-a"), &token).await;
    let (b, b_url) = start_bc(&dir.join("bc-b"), &token).await;
    let src = a
        .create_volume(VolumeRequest::new("src", Strategy::Empty))
        .await
        .expect("src");
    // 100 files of 1 MiB: half random bytes (incompressible), half text-like (compressible).
    let mut seed = 0x2545F4914F6CDD1Du64;
    for i in 0..100 {
        let data: Vec<u8> = if i % 2 == 0 {
            (0..1024 * 1024)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect()
        } else {
            format!("line {i} of a build log with some repetition\n")
                .into_bytes()
                .into_iter()
                .cycle()
                .take(1024 * 1024)
                .collect()
        };
        std::fs::write(format!("{}/file{i}", src.path), data).expect("write");
    }
    let mb = 100.0 * 1024.0 * 1024.0 / 1e6;
    for (n, enc) in [Encoding::Raw, Encoding::Zstd, Encoding::Gzip]
        .into_iter()
        .enumerate()
    {
        let mut samples = Vec::new();
        for i in 0..3 {
            let dst = format!("dst-{n}-{i}");
            b.create_volume(VolumeRequest::new(dst.clone(), Strategy::Empty))
                .await
                .expect("dst");
            let start = Instant::now();
            let out = a.stream_out("src", ".", enc).await.expect("out");
            b.stream_in(&dst, ".", enc, None, out).await.expect("in");
            samples.push(start.elapsed());
            b.destroy_volume(&dst).await.expect("destroy");
        }
        let median = {
            samples.sort();
            samples[1]
        };
        println!(
            "stream 100 MB A -> client -> B, {}: median {:.0} ms ({:.0} MB/s)",
            enc.as_str(),
            median.as_secs_f64() * 1e3,
            mb / median.as_secs_f64()
        );
        let mut samples = Vec::new();
        for i in 0..3 {
            let dst = format!("p2p-{n}-{i}");
            b.create_volume(VolumeRequest::new(dst.clone(), Strategy::Empty))
                .await
                .expect("dst");
            let start = Instant::now();
            a.stream_p2p_out(
                "src",
                ".",
                enc,
                &format!("{b_url}/volumes/{dst}/stream-in?path=."),
            )
            .await
            .expect("p2p");
            samples.push(start.elapsed());
            b.destroy_volume(&dst).await.expect("destroy");
        }
        let median = {
            samples.sort();
            samples[1]
        };
        println!(
            "stream 100 MB A -> B peer-to-peer, {}: median {:.0} ms ({:.0} MB/s)",
            enc.as_str(),
            median.as_secs_f64() * 1e3,
            mb / median.as_secs_f64()
        );
    }
    token.cancel();
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tmp");
    rt.block_on(async {
        bench_backend("process", Arc::new(ProcessBackend), "", dir.path()).await;
        if concourse::garden::linux::supported() && Path::new("/bin/busybox").exists() {
            let image = dir.path().join("image/bin");
            std::fs::create_dir_all(&image).expect("image");
            std::fs::copy("/bin/busybox", image.join("busybox")).expect("busybox");
            std::os::unix::fs::symlink("busybox", image.join("true")).expect("true");
            let backend = LinuxBackend::with_config(concourse::garden::linux::LinuxConfig {
                work_dir: dir.path().to_path_buf(),
                allowed_raw_rootfs: vec![dir.path().join("image")],
                // Containers start from the real executable (this bench is not it).
                stage: env!("CARGO_BIN_EXE_concourse").into(),
                ..Default::default()
            })
            .expect("linux backend");
            let rootfs = format!("raw://{}", dir.path().join("image").display());
            bench_backend("linux", Arc::new(backend), &rootfs, dir.path()).await;
        } else {
            println!("linux backend: skipped (needs root and /bin/busybox)");
        }
        bench_cow(DriverKind::Naive, dir.path()).await;
        if concourse::garden::linux::supported() {
            bench_cow(DriverKind::Overlay, dir.path()).await;
        }
        bench_streaming(dir.path()).await;
    });
}
