//! The container table: the in-process `Garden` implementation over a backend.

mod spawn;

use super::backend::{Backend, Sandbox};
use super::process::{open_pty, Attachment, ProcessRecord};
use crate::proto::garden::*;
use crate::worker_fs::archive::{self, ArchiveError, Compression, UnpackOptions};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How a Garden server behaves.
#[derive(Debug, Clone)]
pub struct GardenConfig {
    /// Container directories live under `<dir>/<handle>`.
    pub dir: PathBuf,
    /// Grace time for containers whose spec says 0; zero means never reaped.
    pub default_grace_time: Duration,
    /// `create` fails with `max containers reached` beyond this (0 = no limit).
    pub max_containers: usize,
}

struct Container {
    handle: String,
    spec: ContainerSpec,
    sandbox: Box<dyn Sandbox>,
    created: Instant,
    // std Mutex: short critical sections, never held across an `.await`.
    inner: Mutex<ContainerInner>,
}

struct ContainerInner {
    properties: Properties,
    grace_time: Duration,
    last_used: Instant,
    state: ContainerState,
    destroying: bool,
    processes: HashMap<String, Arc<ProcessRecord>>,
    mapped_ports: Vec<PortMapping>,
    net_out: Vec<NetOutRule>,
}

/// Why a container is refused once the worker has begun to stop.
const STOPPING: &str = "the worker is stopping";

/// The containers of one Garden. Cheap to share as `Arc<Containers>`.
pub struct Containers {
    backend: Arc<dyn Backend>,
    config: GardenConfig,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    /// Creations under way, counted against the cap with the table (both under the
    /// table's lock), so creations racing each other cannot pass `max_containers`.
    creating: AtomicUsize,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// A creation counted in `Containers::creating` until dropped.
struct Reserved<'a>(&'a AtomicUsize);

impl<'a> Reserved<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Reserved(count)
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn internal(context: &str, e: impl std::fmt::Display) -> GardenError {
    GardenError::Other(format!("{context}: {e}"))
}

fn archive_err(e: ArchiveError) -> GardenError {
    match e {
        ArchiveError::Hostile(_) | ArchiveError::Malformed(_) | ArchiveError::NotFound(_) => {
            GardenError::BadRequest(e.to_string())
        }
        other => GardenError::Other(other.to_string()),
    }
}

fn check_handle(handle: &str) -> Result<(), GardenError> {
    let ok = !handle.is_empty()
        && handle.len() <= 200
        && handle != "."
        && handle != ".."
        && !handle.contains(['/', '\0']);
    if ok {
        Ok(())
    } else {
        Err(GardenError::BadRequest(format!(
            "invalid container handle: {handle:?}"
        )))
    }
}

impl Containers {
    /// A container table over `backend`. Leftover containers of an earlier run are
    /// destroyed: their processes killed, mounts and cgroups undone, directories removed
    /// (containers do not survive a worker restart; volumes do).
    pub fn new(
        backend: Arc<dyn Backend>,
        config: GardenConfig,
    ) -> std::io::Result<Arc<Containers>> {
        std::fs::create_dir_all(&config.dir)?;
        crate::worker_fs::spread_subdirectories(&config.dir)?;
        for entry in std::fs::read_dir(&config.dir)?.flatten() {
            let killed = super::leftovers::kill_recorded(&entry.path());
            tracing::info!(container = ?entry.file_name(), killed, "destroying a container of an earlier run");
            super::linux::cleanup_leftover(&entry.path());
            let _ = crate::worker_fs::remove_tree(&entry.path());
        }
        let c = Arc::new(Containers {
            backend,
            config,
            containers: Mutex::new(HashMap::new()),
            creating: AtomicUsize::new(0),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        });
        let reaper = Arc::downgrade(&c);
        let token = c.shutdown.clone();
        c.tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(this) = reaper.upgrade() else { return };
                for handle in this.expired() {
                    tracing::info!(handle = %handle, "container grace time expired; destroying");
                    if let Err(e) = this.destroy(&handle).await {
                        tracing::warn!(handle = %handle, error = %e, "reaping container");
                    }
                }
            }
        });
        Ok(c)
    }

    pub fn backend_kind(&self) -> super::backend::BackendKind {
        self.backend.kind()
    }

    /// Stops the reaper, destroys every container (its processes killed after a short
    /// grace, its mounts and cgroups gone: nothing of a stopped worker keeps running), and
    /// waits for process bookkeeping tasks.
    pub async fn close(&self) {
        self.shutdown.cancel();
        let handles: Vec<String> = self.table().keys().cloned().collect();
        let destroying = handles.iter().map(|h| async move {
            if let Err(e) = self.destroy_within(h, Duration::from_millis(500)).await {
                tracing::warn!(handle = %h, error = %e, "destroying container at shutdown");
            }
        });
        let all = futures::future::join_all(destroying);
        if tokio::time::timeout(Duration::from_secs(20), all)
            .await
            .is_err()
        {
            tracing::warn!(
                "containers still being destroyed at shutdown; the next start reaps them"
            );
        }
        self.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tasks.wait()).await;
        let backend = self.backend.clone();
        let _ = tokio::task::spawn_blocking(move || backend.close()).await;
    }

    /// Destroys a container, its processes killed if still running after `grace`.
    pub async fn destroy_within(&self, handle: &str, grace: Duration) -> Result<(), GardenError> {
        let c = self.get(handle)?;
        {
            let mut inner = c.lock();
            if inner.destroying {
                return Err(GardenError::Other(
                    "container already being destroyed".into(),
                ));
            }
            inner.destroying = true;
        }
        c.stop_processes(grace).await;
        let c2 = c.clone();
        let result = tokio::task::spawn_blocking(move || c2.sandbox.destroy())
            .await
            .map_err(|e| internal("destroying", e))?;
        if let Err(e) = result {
            c.lock().destroying = false;
            return Err(e);
        }
        self.table().remove(handle);
        Ok(())
    }

    /// Every container's handle.
    pub fn handles(&self) -> Vec<String> {
        self.table().keys().cloned().collect()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Container>>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expired(&self) -> Vec<String> {
        let now = Instant::now();
        self.table()
            .values()
            .filter(|c| {
                let inner = c.lock();
                !inner.destroying
                    && !inner.grace_time.is_zero()
                    && now.duration_since(inner.last_used) >= inner.grace_time
            })
            .map(|c| c.handle.clone())
            .collect()
    }

    /// The container, its grace timer reset (every request naming a handle does this).
    fn get(&self, handle: &str) -> Result<Arc<Container>, GardenError> {
        let c = self
            .table()
            .get(handle)
            .cloned()
            .ok_or_else(|| GardenError::ContainerNotFound(handle.to_string()))?;
        c.lock().last_used = Instant::now();
        Ok(c)
    }

    fn info_of(&self, c: &Container) -> ContainerInfo {
        let inner = c.lock();
        let mut events = Vec::new();
        if c.sandbox.oom_killed() {
            events.push("oom".to_string());
        }
        ContainerInfo {
            state: inner.state,
            events,
            host_ip: "127.0.0.1".into(),
            container_ip: "127.0.0.1".into(),
            external_ip: "127.0.0.1".into(),
            container_path: self.config.dir.join(&c.handle).display().to_string(),
            process_ids: inner.processes.keys().cloned().collect(),
            properties: inner.properties.clone(),
            mapped_ports: inner.mapped_ports.clone(),
            ..Default::default()
        }
    }

    fn metrics_of(&self, c: &Container) -> Metrics {
        let mut m = c.sandbox.metrics();
        m.age = c.created.elapsed().as_nanos() as u64;
        m
    }

    /// Where a container path is on the host: under the bind mount with the longest
    /// matching destination, else under the container root. Returns (root, sub path).
    fn host_location(c: &Container, path: &str) -> (PathBuf, String) {
        let p = Path::new(path);
        let best = c
            .spec
            .bind_mounts
            .iter()
            .filter(|m| p.starts_with(&m.dst_path))
            .max_by_key(|m| m.dst_path.len());
        match best {
            Some(m) => {
                let rest = p.strip_prefix(&m.dst_path).unwrap_or(Path::new(""));
                (PathBuf::from(&m.src_path), rest.display().to_string())
            }
            None => (c.sandbox.root().to_path_buf(), path.to_string()),
        }
    }
}

impl Container {
    fn lock(&self) -> std::sync::MutexGuard<'_, ContainerInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn processes(&self) -> Vec<Arc<ProcessRecord>> {
        self.lock().processes.values().cloned().collect()
    }

    /// SIGTERM everything, SIGKILL what is left after `grace` (or at once when zero).
    async fn stop_processes(&self, grace: Duration) {
        let procs = self.processes();
        let signal = if grace.is_zero() {
            Signal::Kill
        } else {
            Signal::Terminate
        };
        for p in &procs {
            let _ = p.signal(signal);
        }
        let all_exited = futures::future::join_all(procs.iter().map(|p| p.wait_exit()));
        if tokio::time::timeout(grace, all_exited).await.is_err() || grace.is_zero() {
            for p in &procs {
                let _ = p.signal(Signal::Kill);
            }
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                futures::future::join_all(procs.iter().map(|p| p.wait_exit())),
            )
            .await;
        }
    }
}

impl Containers {
    async fn create_container(&self, mut spec: ContainerSpec) -> Result<String, GardenError> {
        // Held until the container is in the table or gone again, so `close` waits for a
        // creation it raced with instead of exiting while its init still runs.
        let _creating = self.tasks.token();
        if self.shutdown.is_cancelled() {
            return Err(GardenError::Other(STOPPING.into()));
        }
        if spec.handle.is_empty() {
            spec.handle = crate::worker_fs::new_handle();
        }
        check_handle(&spec.handle)?;
        for m in &spec.bind_mounts {
            if !m.dst_path.starts_with('/') || m.dst_path.split('/').any(|s| s == "..") {
                return Err(GardenError::BadRequest(format!(
                    "bind mount destination must be an absolute path: {}",
                    m.dst_path
                )));
            }
        }
        let handle = spec.handle.clone();
        let dir = self.config.dir.join(&handle);
        let reserved = {
            let table = self.table();
            if table.contains_key(&handle) {
                return Err(GardenError::Other(format!(
                    "handle already exists: {handle}"
                )));
            }
            let creating = self.creating.load(Ordering::SeqCst);
            if self.config.max_containers > 0
                && table.len() + creating >= self.config.max_containers
            {
                return Err(GardenError::Other("max containers reached".into()));
            }
            Reserved::new(&self.creating)
        };
        let backend = self.backend.clone();
        let s = spec.clone();
        let h = handle.clone();
        let sandbox = tokio::task::spawn_blocking(move || backend.create(&h, &s, &dir))
            .await
            .map_err(|e| internal("creating container", e))??;
        let grace = if spec.grace_time > 0 {
            Duration::from_nanos(spec.grace_time)
        } else {
            self.config.default_grace_time
        };
        let container = Arc::new(Container {
            handle: handle.clone(),
            inner: Mutex::new(ContainerInner {
                properties: spec.properties.clone(),
                grace_time: grace,
                last_used: Instant::now(),
                state: ContainerState::Active,
                destroying: false,
                processes: HashMap::new(),
                mapped_ports: Vec::new(),
                net_out: spec.netout_rules.clone(),
            }),
            spec,
            sandbox,
            created: Instant::now(),
        });
        // Decided under the table's lock, which `close` takes after cancelling: a container
        // either joins the table before `close` lists it, or sees the shutdown and goes.
        let refused = {
            let mut table = self.table();
            let refused = if self.shutdown.is_cancelled() {
                Some((container, STOPPING.to_string()))
            } else if table.contains_key(&handle) {
                Some((container, format!("handle already exists: {handle}")))
            } else {
                table.insert(handle.clone(), container);
                None
            };
            // In the table now (or going): no longer counted as under way.
            drop(reserved);
            refused
        };
        if let Some((lost, why)) = refused {
            let _ = tokio::task::spawn_blocking(move || lost.sandbox.destroy()).await;
            return Err(GardenError::Other(why));
        }
        Ok(handle)
    }
}

#[async_trait]
impl Garden for Arc<Containers> {
    async fn ping(&self) -> Result<(), GardenError> {
        Ok(())
    }

    async fn capacity(&self) -> Result<Capacity, GardenError> {
        // SAFETY: sysinfo fills the struct we pass.
        let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
        let memory = if unsafe { libc::sysinfo(&mut info) } == 0 {
            info.totalram as u64 * info.mem_unit as u64
        } else {
            0
        };
        // SAFETY: statvfs is plain old data; all-zero is a valid value.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let dir = std::ffi::CString::new(self.config.dir.display().to_string()).unwrap_or_default();
        // SAFETY: `dir` is NUL-terminated and `st` is a valid out-pointer.
        let disk = if unsafe { libc::statvfs(dir.as_ptr(), &mut st) } == 0 {
            st.f_blocks as u64 * st.f_frsize as u64
        } else {
            0
        };
        Ok(Capacity {
            memory_in_bytes: memory,
            disk_in_bytes: disk,
            schedulable_disk_in_bytes: disk,
            max_containers: if self.config.max_containers == 0 {
                250
            } else {
                self.config.max_containers as u64
            },
        })
    }

    async fn create(&self, spec: ContainerSpec) -> Result<String, GardenError> {
        // A caller that goes away mid-creation (a client that gave up) must not leave a
        // half-made container behind, unknown to the table: the creation runs on as a task
        // of its own and ends in the table (where the web node's collector finds it) or
        // destroyed.
        let this = self.clone();
        tokio::spawn(async move { this.create_container(spec).await })
            .await
            .map_err(|e| internal("creating container", e))?
    }

    async fn list(&self, filter: Properties) -> Result<Vec<String>, GardenError> {
        let mut handles: Vec<String> = self
            .table()
            .values()
            .filter(|c| {
                let inner = c.lock();
                filter
                    .iter()
                    .all(|(k, v)| inner.properties.get(k) == Some(v))
            })
            .map(|c| c.handle.clone())
            .collect();
        handles.sort();
        Ok(handles)
    }

    async fn destroy(&self, handle: &str) -> Result<(), GardenError> {
        self.destroy_within(handle, Duration::from_secs(10)).await
    }

    async fn stop(&self, handle: &str, kill: bool) -> Result<(), GardenError> {
        let c = self.get(handle)?;
        c.stop_processes(if kill {
            Duration::ZERO
        } else {
            Duration::from_secs(10)
        })
        .await;
        c.lock().state = ContainerState::Stopped;
        Ok(())
    }

    async fn info(&self, handle: &str) -> Result<ContainerInfo, GardenError> {
        let c = self.get(handle)?;
        Ok(self.info_of(&c))
    }

    async fn bulk_info(
        &self,
        handles: &[String],
    ) -> Result<BTreeMap<String, ContainerInfoEntry>, GardenError> {
        Ok(handles
            .iter()
            .map(|h| {
                let entry = match self.get(h) {
                    Ok(c) => ContainerInfoEntry {
                        info: self.info_of(&c),
                        err: None,
                    },
                    Err(e) => ContainerInfoEntry {
                        info: ContainerInfo::default(),
                        err: Some(e.to_wire()),
                    },
                };
                (h.clone(), entry)
            })
            .collect())
    }

    async fn metrics(&self, handle: &str) -> Result<Metrics, GardenError> {
        let c = self.get(handle)?;
        Ok(self.metrics_of(&c))
    }

    async fn bulk_metrics(
        &self,
        handles: &[String],
    ) -> Result<BTreeMap<String, ContainerMetricsEntry>, GardenError> {
        Ok(handles
            .iter()
            .map(|h| {
                let entry = match self.get(h) {
                    Ok(c) => ContainerMetricsEntry {
                        metrics: self.metrics_of(&c),
                        err: None,
                    },
                    Err(e) => ContainerMetricsEntry {
                        metrics: Metrics::default(),
                        err: Some(e.to_wire()),
                    },
                };
                (h.clone(), entry)
            })
            .collect())
    }

    async fn properties(&self, handle: &str) -> Result<Properties, GardenError> {
        Ok(self.get(handle)?.lock().properties.clone())
    }

    async fn property(&self, handle: &str, key: &str) -> Result<String, GardenError> {
        let c = self.get(handle)?;
        let value = c.lock().properties.get(key).cloned();
        value.ok_or_else(|| GardenError::Other(format!("property does not exist: {key}")))
    }

    async fn set_property(&self, handle: &str, key: &str, value: &str) -> Result<(), GardenError> {
        self.get(handle)?
            .lock()
            .properties
            .insert(key.to_string(), value.to_string());
        Ok(())
    }

    async fn remove_property(&self, handle: &str, key: &str) -> Result<(), GardenError> {
        let c = self.get(handle)?;
        let removed = c.lock().properties.remove(key);
        removed
            .map(|_| ())
            .ok_or_else(|| GardenError::Other(format!("property does not exist: {key}")))
    }

    async fn set_grace_time(&self, handle: &str, grace_time: Duration) -> Result<(), GardenError> {
        self.get(handle)?.lock().grace_time = grace_time;
        Ok(())
    }

    async fn bandwidth_limits(&self, handle: &str) -> Result<BandwidthLimits, GardenError> {
        Ok(self.get(handle)?.spec.limits.bandwidth_limits)
    }

    async fn cpu_limits(&self, handle: &str) -> Result<CpuLimits, GardenError> {
        Ok(self.get(handle)?.spec.limits.cpu_limits)
    }

    async fn disk_limits(&self, handle: &str) -> Result<DiskLimits, GardenError> {
        Ok(self.get(handle)?.spec.limits.disk_limits)
    }

    async fn memory_limits(&self, handle: &str) -> Result<MemoryLimits, GardenError> {
        Ok(self.get(handle)?.spec.limits.memory_limits)
    }

    async fn net_in(
        &self,
        handle: &str,
        host_port: u32,
        container_port: u32,
    ) -> Result<(u32, u32), GardenError> {
        // Containers share the host's network here: a port maps to itself.
        let c = self.get(handle)?;
        let port = if container_port != 0 {
            container_port
        } else {
            host_port
        };
        let mapping = PortMapping {
            host_port: if host_port != 0 { host_port } else { port },
            container_port: port,
        };
        c.lock().mapped_ports.push(mapping);
        Ok((mapping.host_port, mapping.container_port))
    }

    async fn net_out(&self, handle: &str, rules: Vec<NetOutRule>) -> Result<(), GardenError> {
        self.get(handle)?.lock().net_out.extend(rules);
        Ok(())
    }

    async fn stream_in(
        &self,
        handle: &str,
        _user: &str,
        destination: &str,
        tar: ByteStream,
    ) -> Result<(), GardenError> {
        let c = self.get(handle)?;
        let (root, sub) = Containers::host_location(&c, destination);
        let options = UnpackOptions {
            allow_devices: c.spec.privileged,
        };
        archive::unpack_stream(tar, Compression::None, None, root, sub, options)
            .await
            .map_err(archive_err)
    }

    async fn stream_out(
        &self,
        handle: &str,
        _user: &str,
        source: &str,
    ) -> Result<ByteStream, GardenError> {
        let c = self.get(handle)?;
        let (root, sub) = Containers::host_location(&c, source);
        let path = tokio::task::spawn_blocking(move || archive::pack_source(&root, &sub))
            .await
            .map_err(|e| internal("streaming out", e))?
            .map_err(archive_err)?;
        Ok(archive::pack_stream(path, Compression::None))
    }

    async fn run(
        &self,
        handle: &str,
        spec: ProcessSpec,
        io: ProcessIo,
    ) -> Result<Box<dyn Process>, GardenError> {
        let c = self.get(handle)?;
        if c.lock().destroying {
            return Err(GardenError::Other("container is being destroyed".into()));
        }
        let record = self.spawn(&c, spec).await?;
        Ok(Box::new(Attachment::attach(record, io, true, &self.tasks)))
    }

    async fn attach(
        &self,
        handle: &str,
        process_id: &str,
        io: ProcessIo,
    ) -> Result<Box<dyn Process>, GardenError> {
        let c = self.get(handle)?;
        let record = c.lock().processes.get(process_id).cloned();
        let record = record.ok_or_else(|| GardenError::ProcessNotFound(process_id.to_string()))?;
        Ok(Box::new(Attachment::attach(record, io, false, &self.tasks)))
    }
}
