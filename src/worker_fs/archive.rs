//! Tar streams in and out of a directory tree we own (a volume, a container's rootfs),
//! refusing archives that would write outside it.
//!
//! The rules, applied to every entry before anything is written for it:
//! - absolute paths and `..` components are refused;
//! - no existing path component below the root may be a symlink: a symlink planted by an
//!   earlier entry (or by a process in the container) is never followed;
//! - a hard link must name a file inside the root, reached without symlinks;
//! - a relative symlink whose target climbs above the root is refused (absolute targets are
//!   kept as they are: they mean the container's root once mounted);
//! - device files are refused unless the caller allows them (privileged volumes).
//!
//! Blocking code: callers run it on `spawn_blocking`.

use bytes::Bytes;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Why an archive could not be unpacked or packed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive tries to leave its root or holds something not allowed here.
    #[error("{0}")]
    Hostile(String),
    /// Not a readable archive (bad tar, bad compression).
    #[error("malformed archive: {0}")]
    Malformed(String),
    /// The compressed stream exceeded the caller's size limit.
    #[error("exceeded volume streaming limit of {0}MB")]
    LimitExceeded(String),
    #[error("no such file or directory: {0}")]
    NotFound(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Compression of a streamed tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// A `Read` that counts what passes and fails once more than `limit` bytes went by.
pub struct LimitedReader<R> {
    inner: R,
    remaining: Option<u64>,
    limit_text: String,
}

/// The marker inside the `io::Error` a `LimitedReader` fails with.
#[derive(Debug)]
struct LimitHit(String);
impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exceeded volume streaming limit of {}MB", self.0)
    }
}
impl std::error::Error for LimitHit {}

impl<R: Read> LimitedReader<R> {
    /// `limit_mb` of `None` or 0 means unlimited.
    pub fn new(inner: R, limit_mb: Option<f64>) -> Self {
        let remaining = limit_mb
            .filter(|l| *l > 0.0)
            .map(|l| (l * 1024.0 * 1024.0) as u64);
        LimitedReader {
            inner,
            remaining,
            limit_text: limit_mb.map(|l| format!("{l}")).unwrap_or_default(),
        }
    }
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(rem) = self.remaining.as_mut() {
            if n as u64 > *rem {
                return Err(io::Error::other(LimitHit(self.limit_text.clone())));
            }
            *rem -= n as u64;
        }
        Ok(n)
    }
}

/// The `LimitHit` anywhere in an error chain (tar wraps reader errors in its own).
fn find_limit(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(hit) = e.downcast_ref::<LimitHit>() {
        return Some(hit.0.clone());
    }
    if let Some(inner) = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
        if let Some(found) = find_limit(inner) {
            return Some(found);
        }
    }
    e.source().and_then(find_limit)
}

fn classify(e: io::Error) -> ArchiveError {
    if let Some(limit) = find_limit(&e) {
        return ArchiveError::LimitExceeded(limit);
    }
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof => {
            ArchiveError::Malformed(e.to_string())
        }
        _ if e.to_string().contains("numeric field") || e.to_string().contains("checksum") => {
            ArchiveError::Malformed(e.to_string())
        }
        _ => ArchiveError::Io(e),
    }
}

/// What an unpack may create.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnpackOptions {
    /// Create character and block devices (privileged volumes only).
    pub allow_devices: bool,
}

/// Unpacks a (compressed) tar read from `reader` into `root/sub`, creating `sub`.
pub fn unpack(
    reader: impl Read,
    compression: Compression,
    root: &Path,
    sub: &str,
    options: UnpackOptions,
) -> Result<(), ArchiveError> {
    let sub = clean_relative(sub, true)?;
    let dest = ensure_dir_inside(root, &sub)?;
    let decoder: Box<dyn Read> = match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader).map_err(classify)?),
    };
    let mut archive = tar::Archive::new(decoder);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(is_root());
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(classify)? {
        let mut entry = entry.map_err(classify)?;
        unpack_entry(&mut entry, &sub, &dest, options)?;
    }
    // Drain what follows the end-of-archive marker so compressed trailers (and the limit) are checked.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(classify)?;
    Ok(())
}

fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<R>,
    sub: &Path,
    dest: &Path,
    options: UnpackOptions,
) -> Result<(), ArchiveError> {
    let raw_path = entry.path().map_err(classify)?.into_owned();
    let rel = clean_relative_path(&raw_path, false)?;
    if rel.as_os_str().is_empty() {
        return Ok(()); // "./": the destination directory itself
    }
    let kind = entry.header().entry_type();
    if (kind.is_character_special() || kind.is_block_special()) && !options.allow_devices {
        return Err(ArchiveError::Hostile(format!(
            "device file {} is not allowed in an unprivileged volume",
            raw_path.display()
        )));
    }
    let parent_rel = rel.parent().unwrap_or(Path::new(""));
    let parent = ensure_dir_inside(dest, parent_rel)?;
    let file_name = rel
        .file_name()
        .ok_or_else(|| ArchiveError::Hostile(format!("bad path {}", raw_path.display())))?;
    let target = parent.join(file_name);
    if let Ok(meta) = fs::symlink_metadata(&target) {
        if meta.file_type().is_symlink() || (!meta.is_dir() && kind.is_dir()) {
            fs::remove_file(&target)?;
        }
    }
    if kind.is_symlink() {
        let link = entry
            .link_name()
            .map_err(classify)?
            .map(|l| l.into_owned())
            .unwrap_or_default();
        if link.is_relative() {
            // Depth of the link's directory below the root, then walk its target lexically.
            let mut depth =
                sub.components().count() as i64 + parent_rel.components().count() as i64;
            for c in link.components() {
                match c {
                    Component::ParentDir => depth -= 1,
                    Component::Normal(_) => depth += 1,
                    _ => {}
                }
                if depth < 0 {
                    return Err(ArchiveError::Hostile(format!(
                        "symlink {} -> {} leads out of the destination",
                        raw_path.display(),
                        link.display()
                    )));
                }
            }
        }
    } else if kind.is_hard_link() {
        let link = entry
            .link_name()
            .map_err(classify)?
            .map(|l| l.into_owned())
            .unwrap_or_default();
        let link_rel = clean_relative_path(&link, false).map_err(|_| {
            ArchiveError::Hostile(format!(
                "hard link {} -> {} leads out of the destination",
                raw_path.display(),
                link.display()
            ))
        })?;
        let link_parent = resolve_inside(dest, link_rel.parent().unwrap_or(Path::new("")))?;
        let source = link_parent.join(link_rel.file_name().unwrap_or_default());
        let meta = fs::symlink_metadata(&source).map_err(|_| {
            ArchiveError::Hostile(format!(
                "hard link {} -> {}: no such file",
                raw_path.display(),
                link.display()
            ))
        })?;
        if meta.is_dir() {
            return Err(ArchiveError::Hostile(format!(
                "hard link {} to a directory",
                raw_path.display()
            )));
        }
        if fs::symlink_metadata(&target).is_ok() {
            fs::remove_file(&target)?;
        }
        fs::hard_link(&source, &target)?;
        return Ok(());
    } else if kind.is_character_special() || kind.is_block_special() {
        return make_device(entry.header(), &target);
    }
    entry.unpack(&target).map_err(classify)?;
    Ok(())
}

fn make_device(header: &tar::Header, target: &Path) -> Result<(), ArchiveError> {
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    let mode = header.mode().unwrap_or(0o600)
        | if header.entry_type().is_character_special() {
            libc::S_IFCHR
        } else {
            libc::S_IFBLK
        };
    let c = std::ffi::CString::new(target.as_os_str().as_bytes())
        .map_err(|_| ArchiveError::Hostile("path with a NUL byte".into()))?;
    // SAFETY: `c` is a valid NUL-terminated path; mknod does not retain it.
    let rc = unsafe { libc::mknod(c.as_ptr(), mode, libc::makedev(major, minor)) };
    if rc != 0 {
        return Err(ArchiveError::Io(io::Error::last_os_error()));
    }
    Ok(())
}

/// Whether we can chown (tar ownership is only kept when running as root).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Normalises a caller-given relative path: leading `/` and `.` dropped; `..` refused
/// (or dropped, when `strip_parent`, as upstream does for stream-in's `path`).
pub fn clean_relative(path: &str, strip_parent: bool) -> Result<PathBuf, ArchiveError> {
    let p = Path::new(path);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir if strip_parent => {}
            _ => {
                return Err(ArchiveError::Hostile(format!(
                    "path {path} leads out of the destination"
                )))
            }
        }
    }
    Ok(out)
}

fn clean_relative_path(p: &Path, strip_parent: bool) -> Result<PathBuf, ArchiveError> {
    if p.is_absolute() {
        return Err(ArchiveError::Hostile(format!(
            "absolute path {} is not allowed",
            p.display()
        )));
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir if strip_parent => {}
            _ => {
                return Err(ArchiveError::Hostile(format!(
                    "path {} leads out of the destination",
                    p.display()
                )))
            }
        }
    }
    Ok(out)
}

/// `root/rel` with every component checked not to be a symlink (so nothing outside `root`
/// is reached). Missing components are fine: the result may not exist.
pub fn resolve_inside(root: &Path, rel: &Path) -> Result<PathBuf, ArchiveError> {
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        let Component::Normal(n) = c else {
            return Err(ArchiveError::Hostile(format!(
                "path {} leads out of the destination",
                rel.display()
            )));
        };
        cur.push(n);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(ArchiveError::Hostile(format!(
                    "path {} goes through a symlink",
                    rel.display()
                )))
            }
            _ => {}
        }
    }
    Ok(cur)
}

/// Like `resolve_inside`, creating missing directories on the way.
pub fn ensure_dir_inside(root: &Path, rel: &Path) -> Result<PathBuf, ArchiveError> {
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        let Component::Normal(n) = c else {
            return Err(ArchiveError::Hostile(format!(
                "path {} leads out of the destination",
                rel.display()
            )));
        };
        cur.push(n);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(ArchiveError::Hostile(format!(
                    "path {} goes through a symlink",
                    rel.display()
                )))
            }
            Ok(m) if !m.is_dir() => {
                return Err(ArchiveError::Hostile(format!(
                    "{} is not a directory",
                    rel.display()
                )));
            }
            Ok(_) => {}
            Err(_) => match fs::create_dir(&cur) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            },
        }
    }
    Ok(cur)
}

/// A writer compressing with one of the encodings; `finish` writes the trailer.
pub enum Compressor<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    pub fn new(w: W, compression: Compression) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => Compressor::None(w),
            Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::fast(),
            )),
            Compression::Zstd => Compressor::Zstd(zstd::stream::write::Encoder::new(w, 1)?),
        })
    }
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(w) => Ok(w),
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(w) => w.write(buf),
            Compressor::Gzip(w) => w.write(buf),
            Compressor::Zstd(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(w) => w.flush(),
            Compressor::Gzip(w) => w.flush(),
            Compressor::Zstd(w) => w.flush(),
        }
    }
}

/// Where `root/sub` is, checked for `pack`: an error if it is missing or leaves the root.
pub fn pack_source(root: &Path, sub: &str) -> Result<PathBuf, ArchiveError> {
    let rel = clean_relative(sub, false)?;
    let path = match rel.parent() {
        Some(parent) if !rel.as_os_str().is_empty() => {
            resolve_inside(root, parent)?.join(rel.file_name().unwrap_or_default())
        }
        _ => root.to_path_buf(),
    };
    if fs::symlink_metadata(&path).is_err() {
        return Err(ArchiveError::NotFound(sub.to_string()));
    }
    Ok(path)
}

/// Writes a tar of `path` (checked by `pack_source`) to `w`: a directory's contents as
/// `./...`, or a single file under its own name. Symlinks are stored, never followed.
pub fn pack(path: &Path, w: impl Write, compression: Compression) -> Result<(), ArchiveError> {
    let meta = fs::symlink_metadata(path)
        .map_err(|_| ArchiveError::NotFound(path.display().to_string()))?;
    let mut builder = tar::Builder::new(Compressor::new(w, compression)?);
    builder.follow_symlinks(false);
    if meta.is_dir() {
        builder.append_dir_all(".", path)?;
    } else {
        let name = path.file_name().unwrap_or_default();
        builder.append_path_with_name(path, name)?;
    }
    let compressor = builder.into_inner()?;
    compressor.finish()?.flush()?;
    Ok(())
}

/// A `Write` that sends each buffer as a `Bytes` chunk over a bounded channel, blocking when
/// the receiver is slow (back-pressure on the packing thread, never on a process).
pub struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl ChannelWriter {
    pub fn new(tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "reader went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// Packs `path` on a blocking thread and returns the tar as a stream; a packing error
/// ends the stream with that error.
pub fn pack_stream(path: PathBuf, compression: Compression) -> crate::proto::stream::ByteStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(16);
    tokio::task::spawn_blocking(move || {
        let err_tx = tx.clone();
        if let Err(e) = pack(&path, ChannelWriter::new(tx), compression) {
            let _ = err_tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
    });
    Box::pin(tokio_stream_from(rx))
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Unpacks a stream on a blocking thread (see `unpack`).
pub async fn unpack_stream(
    stream: crate::proto::stream::ByteStream,
    compression: Compression,
    limit_mb: Option<f64>,
    root: PathBuf,
    sub: String,
    options: UnpackOptions,
) -> Result<(), ArchiveError> {
    let reader = tokio_util::io::StreamReader::new(stream);
    let sync = tokio_util::io::SyncIoBridge::new(reader);
    tokio::task::spawn_blocking(move || {
        let limited = LimitedReader::new(sync, limit_mb);
        unpack(limited, compression, &root, &sub, options)
    })
    .await
    .map_err(|e| ArchiveError::Io(io::Error::other(e.to_string())))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().expect("tar")
    }

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn raw_path(h: &mut tar::Header, path: &str) {
        // `set_path` refuses `..`; write the name field directly, as a hostile tool would.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
    }

    #[test]
    fn parent_components_are_refused_and_nothing_is_written_outside() {
        let outside = tempfile::tempdir().expect("tmp");
        let root = tempfile::tempdir().expect("tmp");
        let data = tar_with(|b| {
            let mut h = header(tar::EntryType::Regular, 3);
            raw_path(&mut h, "../escaped");
            b.append(&h, &b"bad"[..]).expect("append");
        });
        let err = unpack(
            &data[..],
            Compression::None,
            root.path(),
            "sub",
            UnpackOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::Hostile(_)), "{err}");
        assert!(!root.path().join("escaped").exists());
        assert!(fs::read_dir(outside.path()).expect("dir").next().is_none());
    }

    #[test]
    fn a_symlink_planted_by_an_earlier_entry_is_not_followed() {
        let outside = tempfile::tempdir().expect("tmp");
        let root = tempfile::tempdir().expect("tmp");
        let target = outside.path().to_str().expect("utf8").to_string();
        let data = tar_with(|b| {
            let mut h = header(tar::EntryType::Symlink, 0);
            h.set_link_name(&target).expect("link");
            b.append_data(&mut h, "link", io::empty()).expect("append");
            let mut h = header(tar::EntryType::Regular, 3);
            b.append_data(&mut h, "link/owned", &b"bad"[..])
                .expect("append");
        });
        let err = unpack(
            &data[..],
            Compression::None,
            root.path(),
            ".",
            UnpackOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::Hostile(_)), "{err}");
        assert!(!outside.path().join("owned").exists());
    }

    #[test]
    fn relative_symlinks_climbing_out_and_devices_are_refused() {
        let root = tempfile::tempdir().expect("tmp");
        let data = tar_with(|b| {
            let mut h = header(tar::EntryType::Symlink, 0);
            h.set_link_name("../../etc").expect("link");
            b.append_data(&mut h, "a/link", io::empty())
                .expect("append");
        });
        assert!(matches!(
            unpack(
                &data[..],
                Compression::None,
                root.path(),
                ".",
                UnpackOptions::default()
            ),
            Err(ArchiveError::Hostile(_))
        ));
        let data = tar_with(|b| {
            let mut h = header(tar::EntryType::Char, 0);
            b.append_data(&mut h, "null", io::empty()).expect("append");
        });
        let err = unpack(
            &data[..],
            Compression::None,
            root.path(),
            ".",
            UnpackOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "device file null is not allowed in an unprivileged volume"
        );
    }

    #[test]
    fn round_trip_through_every_compression_keeps_files_links_and_modes() {
        let src = tempfile::tempdir().expect("tmp");
        fs::create_dir_all(src.path().join("d/e")).expect("mkdir");
        fs::write(src.path().join("d/e/f.txt"), b"hello").expect("write");
        std::os::unix::fs::symlink("e/f.txt", src.path().join("d/l")).expect("symlink");
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("abs")).expect("symlink");
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut out = Vec::new();
            pack(&pack_source(src.path(), ".").expect("source"), &mut out, c).expect("pack");
            let dst = tempfile::tempdir().expect("tmp");
            unpack(&out[..], c, dst.path(), "x/y", UnpackOptions::default()).expect("unpack");
            assert_eq!(
                fs::read(dst.path().join("x/y/d/e/f.txt")).expect("read"),
                b"hello"
            );
            assert_eq!(
                fs::read_link(dst.path().join("x/y/d/l")).expect("link"),
                Path::new("e/f.txt")
            );
            assert_eq!(
                fs::read_link(dst.path().join("x/y/abs")).expect("link"),
                Path::new("/etc/passwd")
            );
        }
    }

    #[test]
    fn the_limit_counts_compressed_bytes() {
        let data = vec![0u8; 2 * 1024 * 1024];
        let err = unpack(
            LimitedReader::new(&data[..], Some(1.0)),
            Compression::None,
            tempfile::tempdir().expect("tmp").path(),
            ".",
            UnpackOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::LimitExceeded(_)), "{err:?}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn names() -> impl Strategy<Value = String> {
            prop::sample::select(vec![
                "a",
                "b/c",
                "..",
                "../x",
                "/abs",
                "./d/../..",
                "l",
                "l/f",
                "d/",
                ".",
            ])
            .prop_map(String::from)
        }

        fn kinds() -> impl Strategy<Value = tar::EntryType> {
            prop::sample::select(vec![
                tar::EntryType::Regular,
                tar::EntryType::Directory,
                tar::EntryType::Symlink,
                tar::EntryType::Link,
                tar::EntryType::Char,
                tar::EntryType::Fifo,
            ])
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..3000)) {
                let root = tempfile::tempdir().expect("tmp");
                let _ = unpack(&data[..], Compression::None, root.path(), "x", UnpackOptions::default());
                let _ = unpack(&data[..], Compression::Gzip, root.path(), "x", UnpackOptions::default());
            }

            #[test]
            fn hostile_entry_mixes_never_write_outside_the_root(
                entries in prop::collection::vec((names(), kinds(), names()), 1..6)
            ) {
                let sandbox = tempfile::tempdir().expect("tmp");
                let root = sandbox.path().join("root");
                fs::create_dir(&root).expect("root");
                let mut b = tar::Builder::new(Vec::new());
                for (name, kind, link) in &entries {
                    let mut h = header(*kind, 0);
                    let n = name.as_bytes();
                    h.as_old_mut().name[..n.len()].copy_from_slice(n);
                    if kind.is_symlink() || kind.is_hard_link() {
                        let l = link.as_bytes();
                        h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
                    }
                    h.set_cksum();
                    b.append(&h, io::empty()).expect("append");
                }
                let data = b.into_inner().expect("tar");
                let _ = unpack(&data[..], Compression::None, &root, "sub", UnpackOptions::default());
                let outside: Vec<_> = fs::read_dir(sandbox.path()).expect("dir").map(|e| e.expect("entry").file_name()).collect();
                prop_assert_eq!(outside, vec![std::ffi::OsString::from("root")]);
            }
        }
    }
}
