//! A step's process on a worker: started, or re-attached by id when its build is resumed,
//! its output streamed into the build log (journaled for tasks), signalled on cancel.

use super::events::{LineBuffer, Origin};
use super::runtime::{errored, Cancel, Fail, WorkerClient};
use crate::proto::garden::{ProcessIo, ProcessSpec, Signal};
use bytes::Bytes;
use std::time::Duration;

/// How a step reaches its process: started now, or re-attached by id when its build is
/// resumed.
pub enum Launch {
    Run {
        spec: Box<ProcessSpec>,
        stdin: Option<Vec<u8>>,
    },
    /// The process's stdout and stderr before `from` are in the build log already.
    Attach { id: String, from: [u64; 2] },
}

/// Runs a process to its end, streaming stderr (and stdout unless captured) into the build
/// log. On cancel: SIGTERM, then SIGKILL after 10 s. Returns the exit status and the
/// captured stdout. Errors naming the worker when it stalls or its streams break.
pub async fn run_process(
    w: &WorkerClient,
    handle: &str,
    spec: ProcessSpec,
    stdin: Option<Vec<u8>>,
    origin: &Origin,
    capture_stdout: bool,
    cancel: &Cancel,
) -> Result<(i32, Vec<u8>), Fail> {
    let launch = Launch::Run {
        spec: Box::new(spec),
        stdin,
    };
    follow_process(w, handle, launch, origin, capture_stdout, false, cancel).await
}

/// As [`run_process`] for a build's task: its output offsets are journaled with the log
/// (`tracked`), and it may be a re-attach.
pub async fn run_tracked(
    w: &WorkerClient,
    handle: &str,
    launch: Launch,
    origin: &Origin,
    tracked: bool,
    cancel: &Cancel,
) -> Result<i32, Fail> {
    let (status, _) = follow_process(w, handle, launch, origin, false, tracked, cancel).await?;
    Ok(status)
}

async fn follow_process(
    w: &WorkerClient,
    handle: &str,
    launch: Launch,
    origin: &Origin,
    capture_stdout: bool,
    tracked: bool,
    cancel: &Cancel,
) -> Result<(i32, Vec<u8>), Fail> {
    tokio::select! {
        r = stream_process(w, handle, launch, origin, capture_stdout, tracked, cancel) => r,
        msg = super::liveness::worker_lost(w.store.as_ref(), &w.name, super::liveness::POLL) => {
            Err(errored(msg))
        }
    }
}

async fn stream_process(
    w: &WorkerClient,
    handle: &str,
    launch: Launch,
    origin: &Origin,
    capture_stdout: bool,
    tracked: bool,
    cancel: &Cancel,
) -> Result<(i32, Vec<u8>), Fail> {
    use super::liveness::worker_error;
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let (err_tx, mut err_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let (in_tx, in_rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let mut io = ProcessIo {
        stdin: Some(in_rx),
        stdout: Some(out_tx),
        stderr: Some(err_tx),
        ..Default::default()
    };
    let (process, path, stdin, from) = match launch {
        Launch::Run { spec, stdin } => {
            let path = spec.path.clone();
            let p = w.garden.run(handle, *spec, io).await;
            (p, path, stdin, [0, 0])
        }
        Launch::Attach { id, from } => {
            io.replay_from = from;
            // No stdin: a re-attach must not close the process's input.
            io.stdin = None;
            let p = w.garden.attach(handle, &id, io).await;
            (p, format!("process {id}"), None, from)
        }
    };
    let process =
        process.map_err(|e| errored(worker_error(&w.name, &format!("running {path}"), e)))?;
    tokio::spawn(async move {
        if let Some(data) = stdin {
            let _ = in_tx.send(Bytes::from(data)).await;
        }
        drop(in_tx);
    });
    let buffer = |source| match tracked {
        true => LineBuffer::tracked(origin.clone(), source, from[(source == "stderr") as usize]),
        false => LineBuffer::new(origin.clone(), source),
    };
    let mut captured = Vec::new();
    let mut out_buf = buffer("stdout");
    let mut err_buf = buffer("stderr");
    let (mut out_open, mut err_open) = (true, true);
    let mut signalled = false;
    let mut flush = tokio::time::interval(Duration::from_secs(1));
    let kill_after = tokio::time::sleep(Duration::from_secs(3600 * 24 * 365));
    tokio::pin!(kill_after);
    while out_open || err_open {
        tokio::select! {
            chunk = out_rx.recv(), if out_open => match chunk {
                Some(c) if capture_stdout => captured.extend_from_slice(&c),
                Some(c) => out_buf.push(&c).await,
                None => out_open = false,
            },
            chunk = err_rx.recv(), if err_open => match chunk {
                Some(c) => err_buf.push(&c).await,
                None => err_open = false,
            },
            _ = flush.tick() => { out_buf.flush(); err_buf.flush(); }
            _ = cancel.token.cancelled(), if !signalled => {
                signalled = true;
                let _ = process.signal(Signal::Terminate).await;
                kill_after.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(10));
            }
            _ = &mut kill_after => {
                let _ = process.signal(Signal::Kill).await;
                kill_after.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(3600));
            }
        }
    }
    out_buf.finish();
    err_buf.finish();
    let status = process
        .wait()
        .await
        .map_err(|e| errored(worker_error(&w.name, &format!("running {path}"), e)))?;
    if cancel.is_cancelled() {
        return Err(Fail::Interrupted);
    }
    Ok((status, captured))
}
