//! The volume store: volumes on disk under `<dir>/{init,live,dead}/<handle>/`, their
//! metadata in memory and in files beside the data (so a restart finds them again), and
//! the in-process implementation of the `Baggageclaim` trait.

use super::driver::{copy_tree, Driver, DriverKind, NaiveDriver};
use super::overlay::OverlayDriver;
use crate::proto::baggageclaim::{
    AsyncVolume, Baggageclaim, BaggageclaimError, ByteStream, Encoding, Properties, Strategy,
    Volume, VolumeRequest,
};
use crate::worker_fs::archive::{self, ArchiveError, Compression, UnpackOptions};
use crate::worker_fs::{new_handle, remove_tree};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_util::task::TaskTracker;

/// Where and how volumes are kept.
#[derive(Debug, Clone)]
pub struct VolumesConfig {
    /// `<work-dir>/volumes`.
    pub dir: PathBuf,
    /// `<work-dir>/overlays` (overlay driver layers).
    pub overlays_dir: PathBuf,
    /// `None` detects: overlay where it works, else naive.
    pub driver: Option<DriverKind>,
    /// What `/p2p-url` answers; `None` looks up the interface.
    pub p2p_url: Option<String>,
    /// Interface name pattern and family (4 or 6) for `/p2p-url`.
    pub p2p_interface_pattern: String,
    pub p2p_interface_family: u8,
    /// Port this Baggageclaim listens on (for `/p2p-url`).
    pub bind_port: u16,
}

impl VolumesConfig {
    pub fn under(work_dir: &Path) -> Self {
        VolumesConfig {
            dir: work_dir.join("volumes"),
            overlays_dir: work_dir.join("overlays"),
            driver: None,
            p2p_url: None,
            p2p_interface_pattern: "eth0".into(),
            p2p_interface_family: 4,
            bind_port: 7788,
        }
    }
}

#[derive(Debug, Clone)]
struct Meta {
    properties: Properties,
    privileged: bool,
    parent: Option<String>,
    /// Destroyed by the API but kept on disk because COW children still read it.
    destroyed: bool,
}

enum AsyncState {
    Pending,
    Done(Result<Volume, BaggageclaimError>),
}

#[derive(Default)]
struct State {
    live: HashMap<String, Meta>,
    /// Handles being created (init/): a second create of the same handle fails.
    creating: HashSet<String>,
    futures: HashMap<String, AsyncState>,
}

/// The volume store. Cheap to share as `Arc<Volumes>`.
pub struct Volumes {
    dir: PathBuf,
    driver: Arc<dyn Driver>,
    // std Mutex: held only for map updates, never across an `.await`.
    state: Mutex<State>,
    config: VolumesConfig,
    tasks: TaskTracker,
    http: reqwest::Client,
}

fn not_found(_handle: &str) -> BaggageclaimError {
    BaggageclaimError::NotFound("failed to get volume".to_string())
}

fn io_err(context: &str, e: impl std::fmt::Display) -> BaggageclaimError {
    BaggageclaimError::Other(format!("{context}: {e}"))
}

fn archive_err(e: ArchiveError) -> BaggageclaimError {
    match e {
        ArchiveError::Hostile(_) | ArchiveError::Malformed(_) => {
            BaggageclaimError::BadRequest(e.to_string())
        }
        ArchiveError::LimitExceeded(_) => BaggageclaimError::Forbidden(e.to_string()),
        ArchiveError::NotFound(_) => {
            BaggageclaimError::NotFound("no such file or directory".into())
        }
        ArchiveError::Io(e) => BaggageclaimError::Other(e.to_string()),
    }
}

fn compression(e: Encoding) -> Result<Compression, BaggageclaimError> {
    match e {
        Encoding::Raw => Ok(Compression::None),
        Encoding::Gzip => Ok(Compression::Gzip),
        Encoding::Zstd => Ok(Compression::Zstd),
        Encoding::S2 => Err(BaggageclaimError::BadRequest(
            "unsupported encoding: s2".into(),
        )),
    }
}

/// A handle becomes a directory name: refuse anything that is not one plain component.
fn check_handle(handle: &str) -> Result<(), BaggageclaimError> {
    let ok = !handle.is_empty()
        && handle.len() <= 200
        && handle != "."
        && handle != ".."
        && !handle.contains(['/', '\0', '\\'])
        && handle != "destroy";
    if ok {
        Ok(())
    } else {
        Err(BaggageclaimError::BadRequest(format!(
            "invalid volume handle: {handle:?}"
        )))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BaggageclaimError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io_err("worker thread", e))
}

impl Volumes {
    /// Opens the store: recovers live volumes, discards half-created and dead ones.
    pub fn open(config: VolumesConfig) -> io::Result<Arc<Volumes>> {
        for sub in ["init", "live", "dead"] {
            fs::create_dir_all(config.dir.join(sub))?;
        }
        // Volumes are made in `init` (then renamed), their overlay layers in `overlays`.
        crate::worker_fs::spread_subdirectories(&config.dir.join("init"))?;
        let kind = match config.driver {
            Some(k) => k,
            None => {
                fs::create_dir_all(&config.overlays_dir)?;
                DriverKind::detect(&config.overlays_dir)
            }
        };
        let driver: Arc<dyn Driver> = match kind {
            DriverKind::Naive => Arc::new(NaiveDriver),
            DriverKind::Overlay => Arc::new(OverlayDriver::new(config.overlays_dir.clone())?),
        };
        let mut state = State::default();
        for entry in fs::read_dir(config.dir.join("init"))? {
            let entry = entry?;
            let _ = fs::rename(
                entry.path(),
                config.dir.join("dead").join(entry.file_name()),
            );
        }
        for entry in fs::read_dir(config.dir.join("live"))? {
            let entry = entry?;
            let handle = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path();
            let meta = Meta {
                properties: read_json(&dir.join("properties.json")).unwrap_or_default(),
                privileged: read_json(&dir.join("privileged.json")).unwrap_or(false),
                parent: fs::read_link(dir.join("parent"))
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())),
                destroyed: dir.join("destroyed").exists(),
            };
            driver.recover(&handle, meta.parent.as_deref(), &dir.join("volume"))?;
            state.live.insert(handle, meta);
        }
        tracing::info!(driver = ?kind, volumes = state.live.len(), dir = %config.dir.display(), "volumes opened");
        let volumes = Volumes {
            dir: config.dir.clone(),
            driver,
            state: Mutex::new(state),
            config,
            tasks: TaskTracker::new(),
            http: reqwest::Client::new(),
        };
        volumes.purge_dead();
        Ok(Arc::new(volumes))
    }

    /// Destroys the copy-on-write volumes no live container uses: a copy is made to be
    /// mounted in one container (its `container_key` property names it), so once that
    /// container is gone (a worker restart takes every container with it) the copy and
    /// its overlay mount are garbage. Other volumes (caches, uploads, outputs) stay: only
    /// the ATC knows whether they are still wanted. Returns the handles destroyed.
    pub fn reap_copies(&self, container_key: &str, live: &HashSet<String>) -> Vec<String> {
        let copies: Vec<String> = {
            let st = self.lock();
            st.live
                .iter()
                .filter(|(_, m)| m.parent.is_some() && !m.destroyed)
                .filter(|(_, m)| {
                    m.properties
                        .get(container_key)
                        .is_none_or(|c| !live.contains(c))
                })
                .map(|(h, _)| h.clone())
                .collect()
        };
        let mut reaped = Vec::new();
        for handle in copies {
            match self.destroy_blocking(&handle) {
                Ok(()) => reaped.push(handle),
                Err(e) => tracing::warn!(volume = %handle, error = %e, "reaping a volume copy"),
            }
        }
        reaped
    }

    pub fn driver_kind(&self) -> DriverKind {
        self.driver.kind()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that are still consistent entry by entry.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live_dir(&self, handle: &str) -> PathBuf {
        self.dir.join("live").join(handle)
    }

    /// The data directory of a visible live volume.
    fn data_of(&self, handle: &str) -> Result<(PathBuf, Meta), BaggageclaimError> {
        check_handle(handle).map_err(|_| not_found(handle))?;
        let st = self.lock();
        match st.live.get(handle) {
            Some(m) if !m.destroyed => Ok((self.live_dir(handle).join("volume"), m.clone())),
            _ => Err(not_found(handle)),
        }
    }

    fn to_volume(&self, handle: &str, meta: &Meta) -> Volume {
        Volume {
            handle: handle.to_string(),
            path: self.live_dir(handle).join("volume").display().to_string(),
            properties: meta.properties.clone(),
            privileged: meta.privileged,
        }
    }

    fn purge_dead(&self) {
        if let Ok(entries) = fs::read_dir(self.dir.join("dead")) {
            for entry in entries.flatten() {
                let handle = entry.file_name().to_string_lossy().into_owned();
                let _ = self.driver.destroy(&handle, &entry.path().join("volume"));
                if let Err(e) = remove_tree(&entry.path()) {
                    tracing::warn!(volume = %handle, error = %e, "removing dead volume");
                }
            }
        }
    }

    async fn create(self: &Arc<Self>, mut req: VolumeRequest) -> Result<Volume, BaggageclaimError> {
        if req.handle.is_empty() {
            req.handle = new_handle();
        }
        check_handle(&req.handle)?;
        let handle = req.handle.clone();
        let parent = match &req.strategy {
            Strategy::Cow { volume } => {
                let (data, _) = self.data_of(volume).map_err(|_| {
                    BaggageclaimError::Unprocessable(format!("parent volume not found: {volume}"))
                })?;
                Some((volume.clone(), data))
            }
            _ => None,
        };
        {
            let mut st = self.lock();
            if st.live.contains_key(&handle) || !st.creating.insert(handle.clone()) {
                return Err(BaggageclaimError::Other(format!(
                    "volume already exists: {handle}"
                )));
            }
        }
        let meta = Meta {
            properties: req.properties.clone(),
            privileged: req.privileged,
            parent: parent.as_ref().map(|p| p.0.clone()),
            destroyed: false,
        };
        let this = self.clone();
        let m = meta.clone();
        let h = handle.clone();
        let result = blocking(move || this.create_on_disk(&h, &req, parent, &m))
            .await
            .and_then(|r| r);
        let mut st = self.lock();
        st.creating.remove(&handle);
        match result {
            Ok(()) => {
                let volume = self.to_volume(&handle, &meta);
                st.live.insert(handle, meta);
                Ok(volume)
            }
            Err(e) => Err(e),
        }
    }

    fn create_on_disk(
        &self,
        handle: &str,
        req: &VolumeRequest,
        parent: Option<(String, PathBuf)>,
        meta: &Meta,
    ) -> Result<(), BaggageclaimError> {
        let init = self.dir.join("init").join(handle);
        let data = init.join("volume");
        let result = (|| -> Result<(), BaggageclaimError> {
            fs::create_dir(&init).map_err(|e| io_err("creating volume", e))?;
            match &req.strategy {
                Strategy::Empty => self
                    .driver
                    .create_empty(&data)
                    .map_err(|e| io_err("creating volume", e))?,
                Strategy::Cow { .. } => {
                    let (parent_handle, parent_data) = parent
                        .as_ref()
                        .expect("cow parent resolved before creation");
                    self.driver
                        .create_cow(handle, parent_handle, parent_data, &data)
                        .map_err(|e| io_err("creating copy-on-write volume", e))?;
                    std::os::unix::fs::symlink(
                        Path::new("..").join(parent_handle),
                        init.join("parent"),
                    )
                    .map_err(|e| io_err("linking parent", e))?;
                }
                Strategy::Import {
                    path,
                    follow_symlinks,
                } => {
                    self.driver
                        .create_empty(&data)
                        .map_err(|e| io_err("creating volume", e))?;
                    import(Path::new(path), &data, *follow_symlinks, req.privileged)?;
                }
            }
            if let (Some(uid), Some(gid)) = (req.uid, req.gid) {
                std::os::unix::fs::chown(&data, Some(uid), Some(gid))
                    .map_err(|e| io_err("chown volume", e))?;
            }
            write_json(&init.join("properties.json"), &meta.properties)?;
            write_json(&init.join("privileged.json"), &meta.privileged)?;
            fs::rename(&init, self.live_dir(handle)).map_err(|e| io_err("activating volume", e))
        })();
        if result.is_err() {
            let _ = self.driver.destroy(handle, &data);
            let _ = remove_tree(&init);
        }
        result
    }

    fn save_meta(&self, handle: &str, meta: &Meta) -> Result<(), BaggageclaimError> {
        let dir = self.live_dir(handle);
        write_json(&dir.join("properties.json"), &meta.properties)?;
        write_json(&dir.join("privileged.json"), &meta.privileged)
    }

    /// Destroys a volume; when the driver's COW children read it and some are alive, it is
    /// hidden now and removed with its last child.
    fn destroy_blocking(&self, handle: &str) -> Result<(), BaggageclaimError> {
        let (parent, keep) = {
            let mut st = self.lock();
            let has_children = self.driver.children_share_parent_data()
                && st
                    .live
                    .iter()
                    .any(|(h, m)| h != handle && m.parent.as_deref() == Some(handle));
            let Some(meta) = st.live.get_mut(handle) else {
                return Err(not_found(handle));
            };
            if has_children {
                meta.destroyed = true;
                (None, true)
            } else {
                let parent = meta.parent.clone();
                st.live.remove(handle);
                (parent, false)
            }
        };
        if keep {
            fs::write(self.live_dir(handle).join("destroyed"), b"")
                .map_err(|e| io_err("destroying volume", e))?;
            return Ok(());
        }
        let dead = self.dir.join("dead").join(handle);
        fs::rename(self.live_dir(handle), &dead).map_err(|e| io_err("destroying volume", e))?;
        self.driver
            .destroy(handle, &dead.join("volume"))
            .map_err(|e| io_err("destroying volume", e))?;
        remove_tree(&dead).map_err(|e| io_err("destroying volume", e))?;
        // A parent that waited for its last child goes now.
        if let Some(p) = parent {
            let waiting = {
                let st = self.lock();
                st.live.get(&p).map(|m| m.destroyed).unwrap_or(false)
                    && !st
                        .live
                        .values()
                        .any(|m| m.parent.as_deref() == Some(p.as_str()))
            };
            if waiting {
                self.destroy_blocking(&p)?;
            }
        }
        Ok(())
    }

    /// The interface address for `/p2p-url`.
    fn detect_p2p_url(&self) -> Result<String, BaggageclaimError> {
        let pattern =
            regex_lite::Regex::new(&format!("^(?:{})$", self.config.p2p_interface_pattern))
                .map_err(|e| io_err("interface pattern", e))?;
        for (name, ip) in interface_addresses().map_err(|e| io_err("listing interfaces", e))? {
            let family_ok = matches!(
                (self.config.p2p_interface_family, ip),
                (4, std::net::IpAddr::V4(_)) | (6, std::net::IpAddr::V6(_))
            );
            if family_ok && pattern.is_match(&name) {
                let host = match ip {
                    std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                    v4 => v4.to_string(),
                };
                return Ok(format!("http://{host}:{}", self.config.bind_port));
            }
        }
        Err(BaggageclaimError::Other(
            "failed to find a network interface for p2p streaming".into(),
        ))
    }

    /// Waits for background creations (shutdown).
    /// Waits for background work, then unmounts what the driver mounted (a stopped worker
    /// leaves no mounts; the volumes' data stays and is remounted at the next start).
    pub async fn close(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        let handles: Vec<String> = self.lock().live.keys().cloned().collect();
        for h in handles {
            let data = self.live_dir(&h).join("volume");
            if let Err(e) = self.driver.release(&h, &data) {
                tracing::warn!(handle = %h, error = %e, "unmounting volume at shutdown");
            }
        }
    }
}

fn import(
    src: &Path,
    data: &Path,
    follow_symlinks: bool,
    privileged: bool,
) -> Result<(), BaggageclaimError> {
    let meta = fs::metadata(src).map_err(|e| io_err(&format!("importing {}", src.display()), e))?;
    if meta.is_dir() {
        copy_tree(src, data, follow_symlinks).map_err(|e| io_err("importing", e))
    } else {
        let file = fs::File::open(src).map_err(|e| io_err("importing", e))?;
        archive::unpack(
            io::BufReader::new(file),
            Compression::Gzip,
            data,
            ".",
            UnpackOptions {
                allow_devices: privileged,
            },
        )
        .map_err(archive_err)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// Writes through a temporary file and a rename, so a crash leaves the old or the new file.
fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), BaggageclaimError> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(value).map_err(|e| io_err("encoding metadata", e))?;
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| io_err("writing metadata", e))
}

/// (interface name, address) pairs of this host.
fn interface_addresses() -> io::Result<Vec<(String, std::net::IpAddr)>> {
    let mut out = Vec::new();
    let mut addrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `addrs` with a list we free below; we only read it meanwhile.
    unsafe {
        if libc::getifaddrs(&mut addrs) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut cur = addrs;
        while !cur.is_null() {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null() {
                let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                    .to_string_lossy()
                    .into_owned();
                match (*ifa.ifa_addr).sa_family as i32 {
                    libc::AF_INET => {
                        let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                        out.push((
                            name,
                            std::net::IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes()),
                        ));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                        out.push((name, std::net::IpAddr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(addrs);
    }
    Ok(out)
}

#[async_trait]
impl Baggageclaim for Arc<Volumes> {
    async fn create_volume(&self, request: VolumeRequest) -> Result<Volume, BaggageclaimError> {
        self.create(request).await
    }

    async fn create_volume_async(
        &self,
        mut request: VolumeRequest,
    ) -> Result<String, BaggageclaimError> {
        if request.handle.is_empty() {
            request.handle = new_handle();
        }
        check_handle(&request.handle)?;
        let handle = request.handle.clone();
        {
            let mut st = self.lock();
            if st.futures.contains_key(&handle) {
                return Err(BaggageclaimError::Other(format!(
                    "volume already being created: {handle}"
                )));
            }
            st.futures.insert(handle.clone(), AsyncState::Pending);
        }
        let this = self.clone();
        let h = handle.clone();
        self.tasks.spawn(async move {
            let result = this.create(request).await;
            let forgotten = {
                let mut st = this.lock();
                match st.futures.get_mut(&h) {
                    Some(slot) => {
                        *slot = AsyncState::Done(result.clone());
                        false
                    }
                    None => true,
                }
            };
            if forgotten && result.is_ok() {
                let t = this.clone();
                let _ = blocking(move || t.destroy_blocking(&h)).await;
            }
        });
        Ok(handle)
    }

    async fn create_volume_async_result(
        &self,
        handle: &str,
    ) -> Result<AsyncVolume, BaggageclaimError> {
        let st = self.lock();
        match st.futures.get(handle) {
            None => Err(BaggageclaimError::NotFound(format!(
                "unknown volume future: {handle}"
            ))),
            Some(AsyncState::Pending) => Ok(AsyncVolume::Pending),
            Some(AsyncState::Done(Ok(v))) => Ok(AsyncVolume::Done(v.clone())),
            Some(AsyncState::Done(Err(e))) => Err(e.clone()),
        }
    }

    async fn forget_volume_async(&self, handle: &str) -> Result<(), BaggageclaimError> {
        let removed = self.lock().futures.remove(handle);
        match removed {
            None => Err(BaggageclaimError::NotFound(format!(
                "unknown volume future: {handle}"
            ))),
            Some(_) => Ok(()),
        }
    }

    async fn list_volumes(&self, filter: Properties) -> Result<Vec<Volume>, BaggageclaimError> {
        let st = self.lock();
        let mut out: Vec<Volume> = st
            .live
            .iter()
            .filter(|(_, m)| {
                !m.destroyed && filter.iter().all(|(k, v)| m.properties.get(k) == Some(v))
            })
            .map(|(h, m)| self.to_volume(h, m))
            .collect();
        out.sort_by(|a, b| a.handle.cmp(&b.handle));
        Ok(out)
    }

    async fn lookup_volume(&self, handle: &str) -> Result<Volume, BaggageclaimError> {
        let (_, meta) = self.data_of(handle)?;
        Ok(self.to_volume(handle, &meta))
    }

    async fn destroy_volume(&self, handle: &str) -> Result<(), BaggageclaimError> {
        self.data_of(handle)
            .map_err(|_| BaggageclaimError::NotFound("failed to destroy volume".into()))?;
        let this = self.clone();
        let h = handle.to_string();
        blocking(move || this.destroy_blocking(&h)).await?
    }

    async fn destroy_volumes(&self, handles: &[String]) -> Result<(), BaggageclaimError> {
        let mut failed = Vec::new();
        for h in handles {
            match self.destroy_volume(h).await {
                Ok(()) | Err(BaggageclaimError::NotFound(_)) => {}
                Err(e) => failed.push(format!("{h}: {e}")),
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(BaggageclaimError::Other(format!(
                "failed to destroy volumes: {}",
                failed.join("; ")
            )))
        }
    }

    async fn cleanup_orphans(&self) -> Result<(), BaggageclaimError> {
        let this = self.clone();
        blocking(move || {
            this.purge_dead();
            let live: Vec<String> = {
                let st = this.lock();
                st.live.keys().chain(st.creating.iter()).cloned().collect()
            };
            this.driver
                .cleanup_orphans(&live)
                .map_err(|e| io_err("cleaning up orphans", e))
        })
        .await?
    }

    async fn set_property(
        &self,
        handle: &str,
        key: &str,
        value: &str,
    ) -> Result<(), BaggageclaimError> {
        self.data_of(handle)?;
        let meta = {
            let mut st = self.lock();
            let meta = st.live.get_mut(handle).ok_or_else(|| not_found(handle))?;
            meta.properties.insert(key.to_string(), value.to_string());
            meta.clone()
        };
        self.save_meta(handle, &meta)
    }

    async fn privileged(&self, handle: &str) -> Result<bool, BaggageclaimError> {
        Ok(self.data_of(handle)?.1.privileged)
    }

    async fn set_privileged(
        &self,
        handle: &str,
        privileged: bool,
    ) -> Result<(), BaggageclaimError> {
        self.data_of(handle)?;
        let meta = {
            let mut st = self.lock();
            let meta = st.live.get_mut(handle).ok_or_else(|| not_found(handle))?;
            meta.privileged = privileged;
            meta.clone()
        };
        self.save_meta(handle, &meta)
    }

    async fn stream_in(
        &self,
        handle: &str,
        path: &str,
        encoding: Encoding,
        limit_mb: Option<f64>,
        body: ByteStream,
    ) -> Result<(), BaggageclaimError> {
        let (data, meta) = self.data_of(handle)?;
        let c = compression(encoding)?;
        let options = UnpackOptions {
            allow_devices: meta.privileged,
        };
        archive::unpack_stream(body, c, limit_mb, data, path.to_string(), options)
            .await
            .map_err(archive_err)
    }

    async fn stream_out(
        &self,
        handle: &str,
        path: &str,
        encoding: Encoding,
    ) -> Result<ByteStream, BaggageclaimError> {
        let (data, _) = self.data_of(handle)?;
        let c = compression(encoding)?;
        let p = path.to_string();
        let source = blocking(move || archive::pack_source(&data, &p))
            .await?
            .map_err(archive_err)?;
        Ok(archive::pack_stream(source, c))
    }

    async fn stream_p2p_out(
        &self,
        handle: &str,
        path: &str,
        encoding: Encoding,
        stream_in_url: &str,
    ) -> Result<(), BaggageclaimError> {
        let url = url::Url::parse(stream_in_url)
            .map_err(|e| BaggageclaimError::BadRequest(format!("invalid streamInURL: {e}")))?;
        let body = self.stream_out(handle, path, encoding).await?;
        let resp = self
            .http
            .put(url)
            .header("Content-Encoding", encoding.as_str())
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map_err(|e| io_err("streaming to peer", e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<crate::proto::baggageclaim::ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        Err(BaggageclaimError::Other(format!(
            "peer answered {}: {message}",
            status.as_u16()
        )))
    }

    async fn p2p_url(&self) -> Result<String, BaggageclaimError> {
        match &self.config.p2p_url {
            Some(u) => Ok(u.clone()),
            None => self.detect_p2p_url(),
        }
    }
}
