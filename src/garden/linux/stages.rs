//! The worker's stage server: one small process, started once from this executable, that
//! forks each container init and process as a stage.
//!
//! Exec'ing the 40 MB executable for every stage cost more than the rest of a container's
//! start: the dynamic loader's relocations, the page faults on the fresh image and the
//! exit of a large address space, twice per build step (init and process). Forking the
//! worker instead would copy its page tables (see `stage`). The server is neither: a
//! fresh, single-threaded, nearly empty process whose fork costs a fraction of an exec.
//!
//! Its children are the worker's, not its own (`CLONE_PARENT`): the worker waits for their
//! exit statuses as for any child, through the pidfd the server hands back. A request is
//! one message on a seqpacket socket carrying the child's stdin, stdout, stderr and stage
//! socket; the answer is the child's pid and pidfd, or why there is none. The server ends
//! when the worker's end of its socket closes (the worker exited, or dropped it).

use super::stage;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The hidden first argument that makes `concourse` a stage server.
pub const ARG: &str = "__garden-stages";
/// Where the server keeps its socket.
const FD: RawFd = 3;
/// Descriptors a request carries: the child's stdin, stdout, stderr and stage socket.
const FDS: usize = 4;

/// A stage started by the server: the worker's child.
pub struct Launched {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

impl Launched {
    pub fn kill(&self) {
        // SAFETY: a pidfd we own; signals the process it names, never a reused pid.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }

    /// Reaps the child: its exit status, or `None` while it runs (`block` false).
    pub fn wait(&self, block: bool) -> io::Result<Option<std::process::ExitStatus>> {
        use std::os::unix::process::ExitStatusExt;
        // SAFETY: zeroed siginfo is a valid out-parameter; the pidfd is ours.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | if block { 0 } else { libc::WNOHANG };
        loop {
            // SAFETY: as above.
            let rc = unsafe {
                libc::waitid(
                    libc::P_PIDFD,
                    self.pidfd.as_raw_fd() as libc::id_t,
                    &mut info,
                    flags,
                )
            };
            if rc == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        // SAFETY: filled by waitid; si_pid is 0 when nothing had exited (WNOHANG).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        let raw = match info.si_code {
            libc::CLD_EXITED => (status & 0xff) << 8,
            _ => status & 0x7f, // killed or dumped: the signal
        };
        Ok(Some(std::process::ExitStatus::from_raw(raw)))
    }

    /// Waits for the exit without holding a runtime thread: a pidfd reads ready once its
    /// process has exited.
    pub async fn exited(self) -> io::Result<std::process::ExitStatus> {
        // SAFETY: the descriptor stays open (owned by `self`) while `fd` is registered.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(
                self.pidfd.as_raw_fd(),
                tokio::io::Interest::READABLE,
            )
        }?;
        loop {
            let mut ready = fd.readable().await?;
            if let Some(status) = self.wait(false)? {
                return Ok(status);
            }
            ready.clear_ready();
        }
    }
}

/// The worker's handle on its stage server, started at first use and again if it died.
pub struct Stages {
    exe: PathBuf,
    server: Mutex<Option<Server>>,
}

struct Server {
    socket: OwnedFd,
    child: std::process::Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Stages {
    /// `exe` empty: this executable.
    pub fn new(exe: &Path) -> Stages {
        Stages {
            exe: exe.to_path_buf(),
            server: Mutex::new(None),
        }
    }

    /// Forks a stage with `stdio` as its stdin, stdout and stderr; the caller then hands
    /// it its plan through `handoff` (see [`stage::Handoff`]).
    pub fn launch(&self, stdio: [&OwnedFd; 3], handoff: &OwnedFd) -> io::Result<Launched> {
        let mut server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        let fds = [stdio[0], stdio[1], stdio[2], handoff].map(|f| f.as_raw_fd());
        // A server found gone (killed by hand, by the OOM killer) before it got the
        // request is replaced once. One that ends after getting it may have forked the
        // stage already: that launch fails rather than fork a second one.
        for attempt in 0..2 {
            if server.is_none() {
                *server = Some(self.start()?);
            }
            let s = server.as_ref().expect("started above");
            if let Err(e) = send(s.socket.as_raw_fd(), b"s", &fds) {
                *server = None;
                if attempt == 1 {
                    return Err(e);
                }
                continue;
            }
            return match answer(&s.socket) {
                Answer::Launched(l) => Ok(l),
                Answer::Refused(e) => Err(e),
                Answer::Gone(e) => {
                    *server = None;
                    Err(e)
                }
            };
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// The server's pid, while it runs.
    pub fn server_pid(&self) -> Option<u32> {
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        server.as_ref().map(|s| s.child.id())
    }

    /// Ends the server (the worker stops); a later launch starts another.
    pub fn stop(&self) {
        self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn start(&self) -> io::Result<Server> {
        let mut pair = [0; 2];
        // SAFETY: socketpair writes two descriptors into `pair`.
        if unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                pair.as_mut_ptr(),
            )
        } != 0
        {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptors nobody else owns.
        let (ours, theirs) =
            unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
        let exe = match self.exe.as_os_str().is_empty() {
            true => Path::new("/proc/self/exe"),
            false => &self.exe,
        };
        let mut cmd = std::process::Command::new(exe);
        use std::os::unix::process::CommandExt;
        // Its own process group: a terminal's ^C reaches the worker, which ends it.
        cmd.arg0("concourse")
            .arg(ARG)
            .env_clear()
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit());
        let raw = theirs.as_raw_fd();
        // SAFETY: only dup2 and fcntl between fork and exec (async-signal-safe): the
        // server's end lands on FD without close-on-exec, so no other child inherits it.
        unsafe {
            cmd.pre_exec(move || {
                let rc = if raw == FD {
                    libc::fcntl(FD, libc::F_SETFD, 0)
                } else {
                    libc::dup2(raw, FD)
                };
                if rc < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        Ok(Server {
            socket: ours,
            child,
        })
    }
}

enum Answer {
    Launched(Launched),
    /// The server answered: the fork failed.
    Refused(io::Error),
    /// No answer: the server is gone.
    Gone(io::Error),
}

/// Room for `n` descriptors in a control message.
fn cmsg_space(n: usize) -> usize {
    // SAFETY: CMSG_SPACE is arithmetic.
    unsafe { libc::CMSG_SPACE((n * size_of::<RawFd>()) as u32) as usize }
}

fn send(socket: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut control = vec![0u8; cmsg_space(fds.len().max(1))];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr and its cmsg are built in buffers that outlive the sendmsg call.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = cmsg_space(fds.len()) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(cmsg) as *mut RawFd,
                fds.len(),
            );
        }
        if libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// One message: its bytes (empty at end of stream) and the descriptors it carried.
fn recv(socket: RawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut control = vec![0u8; cmsg_space(FDS)];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: as in `send`; received descriptors are taken into OwnedFds at once.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = control.len() as _;
        let n = loop {
            let n = libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(cmsg) as *const RawFd;
                for i in 0..bytes / size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(*data.add(i)));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Ok((n, fds))
    }
}

fn answer(socket: &OwnedFd) -> Answer {
    let mut buf = [0u8; 512];
    let (n, mut got) = match recv(socket.as_raw_fd(), &mut buf) {
        Ok(r) => r,
        Err(e) => return Answer::Gone(e),
    };
    match (n, got.pop()) {
        (0, _) => Answer::Gone(io::Error::other("the stage server exited")),
        (4, Some(pidfd)) => Answer::Launched(Launched {
            pid: i32::from_le_bytes(buf[..4].try_into().expect("four bytes")),
            pidfd,
        }),
        _ => Answer::Refused(io::Error::other(format!(
            "starting a stage: {}",
            String::from_utf8_lossy(&buf[..n])
        ))),
    }
}

/// The server itself (after [`ARG`]). Never returns.
pub fn main() -> ! {
    // SAFETY: single-threaded; FD is the socket the worker placed there.
    unsafe {
        super::child::close_from(FD as libc::c_uint + 1);
        stage::default_signals();
    }
    let mut buf = [0u8; 16];
    loop {
        let (n, fds) = match recv(FD, &mut buf) {
            Ok((0, _)) | Err(_) => std::process::exit(0),
            Ok(got) => got,
        };
        if n == 0 || fds.len() != FDS {
            let _ = send(FD, b"a request carries four descriptors", &[]);
            continue;
        }
        let mut pidfd: RawFd = -1;
        // SAFETY: clone3 with CLONE_PARENT forks this single-threaded process (no stack
        // given: the child continues on a copy of ours, as after fork); the child only
        // rearranges descriptors and becomes a stage.
        let pid = unsafe { clone_parent(&mut pidfd) };
        if pid == 0 {
            // SAFETY: the fresh child; the received descriptors are all above FD, so
            // none is overwritten before it is moved.
            unsafe {
                let [stdin, stdout, stderr, handoff] = fds.as_slice() else {
                    libc::_exit(127)
                };
                for (fd, to) in [(stdin, 0), (stdout, 1), (stderr, 2), (handoff, stage::FD)] {
                    libc::dup2(fd.as_raw_fd(), to);
                }
                super::child::close_from(stage::FD as libc::c_uint + 1);
            }
            std::mem::forget(fds); // closed above, as raw descriptors
            stage::run()
        }
        drop(fds);
        if pid < 0 {
            let e = io::Error::last_os_error();
            let _ = send(FD, e.to_string().as_bytes(), &[]);
            continue;
        }
        let _ = send(FD, &pid.to_le_bytes(), &[pidfd]);
        // SAFETY: the pidfd is ours and was sent (the worker holds its own copy now).
        unsafe { libc::close(pidfd) };
    }
}

/// `clone3(CLONE_PARENT | CLONE_PIDFD)`: the child's pid (0 in the child), or -1.
///
/// # Safety
/// As `fork`.
unsafe fn clone_parent(pidfd: &mut RawFd) -> i32 {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
    }
    let args = CloneArgs {
        flags: (libc::CLONE_PARENT | libc::CLONE_PIDFD) as u64,
        pidfd: pidfd as *mut RawFd as u64,
        ..Default::default()
    };
    libc::syscall(
        libc::SYS_clone3,
        &args as *const CloneArgs,
        size_of::<CloneArgs>(),
    ) as i32
}
