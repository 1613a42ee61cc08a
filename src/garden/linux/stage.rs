//! Container inits and processes start as stages: small single-threaded processes forked
//! by the worker's stage server (see `stages`), not from the worker itself.
//!
//! Forking the worker (or quickstart, with the whole web node inside) copied its page
//! tables for every container and process and then threw them away at exec; exec'ing a
//! fresh copy of this executable for each one instead cost its relocations and page
//! faults. A stage gets its plan over a socket, runs [`child::enter_init`] or
//! [`child::enter_process`] and execs the task's program.
//!
//! The socket carries the plan one way (until the worker shuts its side) and, the other
//! way, nothing when all went well (every copy of the stage's end is closed: by exec, or by
//! the init once its mount tree is ready) or one failure: a kind byte and a message.

use super::child::{self, InitPlan, ProcessPlan};
use crate::proto::garden::{GardenError, ProcessSpec};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Where the stage keeps its socket (every other inherited descriptor is closed).
pub(super) const FD: libc::c_int = 3;
const NOT_FOUND: u8 = b'N';
const FAILED: u8 = b'E';

/// What a stage is asked to do.
#[derive(Serialize, Deserialize)]
pub enum Plan {
    Init(InitPlan),
    Process {
        plan: ProcessPlan,
        /// The program, found through the `PATH` in `env` as `execvp` does.
        program: CString,
        argv: Vec<CString>,
        env: Vec<CString>,
    },
}

impl Plan {
    /// A process running `spec` with the final `env` (`NAME=value` strings).
    pub fn process(
        plan: ProcessPlan,
        spec: &ProcessSpec,
        env: &[String],
    ) -> Result<Plan, GardenError> {
        let c = |s: &str, what: &str| {
            CString::new(s).map_err(|_| GardenError::bad_request(format!("{what} with a NUL byte")))
        };
        let program = c(&spec.path, "path")?;
        let argv = std::iter::once(Ok(program.clone()))
            .chain(spec.args.iter().map(|a| c(a, "argument")))
            .collect::<Result<_, _>>()?;
        // Final already (the garden's `process_env` applied the later-name-wins rule); a
        // bare name is set empty, as Command::env sets it for the process runtime.
        let env = env
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                c(&format!("{k}={v}"), "environment variable")
            })
            .collect::<Result<_, _>>()?;
        Ok(Plan::Process {
            plan,
            program,
            argv,
            env,
        })
    }
}

/// The worker's side of one stage: give [`Handoff::new`]'s descriptor to
/// [`super::stages::Stages::launch`], drop it, then [`Handoff::finish`].
pub struct Handoff {
    ours: UnixStream,
    plan: Vec<u8>,
}

impl Handoff {
    /// The handoff of `plan` and the stage's end of its socket.
    pub fn new(plan: &Plan) -> io::Result<(Handoff, OwnedFd)> {
        let plan = serde_json::to_vec(plan).map_err(io::Error::other)?;
        let (ours, theirs) = UnixStream::pair()?;
        Ok((Handoff { ours, plan }, theirs.into()))
    }

    /// After the spawn: sends the plan and waits until the stage is done (its program
    /// exec'd, or the init's mount tree ready). Blocking.
    pub fn finish(mut self) -> io::Result<()> {
        self.ours.write_all(&self.plan)?;
        self.ours.shutdown(std::net::Shutdown::Write)?;
        let mut answer = Vec::new();
        self.ours.read_to_end(&mut answer)?;
        failure(&answer)
    }

    /// [`Handoff::finish`] without blocking a runtime thread.
    pub async fn finish_async(self) -> io::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.ours.set_nonblocking(true)?;
        let mut ours = tokio::net::UnixStream::from_std(self.ours)?;
        ours.write_all(&self.plan).await?;
        ours.shutdown().await?;
        let mut answer = Vec::new();
        ours.read_to_end(&mut answer).await?;
        failure(&answer)
    }
}

fn failure(answer: &[u8]) -> io::Result<()> {
    match answer.split_first() {
        None => Ok(()),
        Some((&NOT_FOUND, msg)) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            String::from_utf8_lossy(msg).into_owned(),
        )),
        Some((_, msg)) => Err(io::Error::other(String::from_utf8_lossy(msg).into_owned())),
    }
}

/// A stage forked by the stage server, its stdio in place and its socket on descriptor 3
/// (every other descriptor closed, signals at their defaults). Never returns.
pub fn run() -> ! {
    // SAFETY: descriptor 3 is the socket, and only this owns it.
    let mut socket = unsafe { UnixStream::from_raw_fd(FD) };
    let mut text = Vec::new();
    let plan = socket
        .read_to_end(&mut text)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice::<Plan>(&text).map_err(|e| e.to_string()));
    // From here a successful exec (or the init's readiness) closes it.
    // SAFETY: fcntl on our own descriptor.
    unsafe { libc::fcntl(FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    let err = match plan {
        Err(e) => io::Error::other(format!("reading the stage plan: {e}")),
        // SAFETY: a single-threaded process that exists only to become the container's
        // init or process.
        Ok(Plan::Init(plan)) => match unsafe { child::enter_init(&plan) } {
            Err(e) => e,
            Ok(()) => io::Error::other("the container's init returned"),
        },
        Ok(Plan::Process {
            plan,
            program,
            argv,
            env,
        }) => match unsafe { child::enter_process(&plan) } {
            Err(e) => e,
            Ok(()) => exec(&program, &argv, &env),
        },
    };
    let kind = if err.kind() == io::ErrorKind::NotFound {
        NOT_FOUND
    } else {
        FAILED
    };
    let mut msg = vec![kind];
    msg.extend_from_slice(err.to_string().as_bytes());
    let _ = socket.write_all(&msg);
    // SAFETY: ends this process without running anything else.
    unsafe { libc::_exit(127) }
}

/// Every signal back to its default, as a process in a container starts: Rust ignores
/// SIGPIPE, and posix_spawn leaves libc's internal signals ignored (which libc's own
/// `sigaction` refuses to touch, hence the system call).
///
/// # Safety
/// Only in the stage: it drops the handlers the Rust runtime installed.
pub(super) unsafe fn default_signals() {
    // A kernel `struct sigaction` of zeros is SIG_DFL, no flags, an empty mask.
    let dfl = [0u64; 4];
    for sig in 1..=libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::syscall(libc::SYS_rt_sigaction, sig, dfl.as_ptr(), 0usize, 8usize);
        }
    }
}

/// Replaces the environment and execs `program` as `execvp` finds it; returns its error.
fn exec(program: &CString, argv: &[CString], env: &[CString]) -> io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*mut libc::c_char> = env
        .iter()
        .map(|e| e.as_ptr() as *mut libc::c_char)
        .collect();
    env_ptrs.push(std::ptr::null_mut());
    // SAFETY: single-threaded; `environ` points at strings that live until the exec, and
    // `execvp` (which reads PATH from it and passes it on) only returns on failure.
    unsafe {
        unsafe extern "C" {
            static mut environ: *mut *mut libc::c_char;
        }
        environ = env_ptrs.as_mut_ptr();
        libc::execvp(program.as_ptr(), argv_ptrs.as_ptr());
    }
    io::Error::last_os_error()
}
