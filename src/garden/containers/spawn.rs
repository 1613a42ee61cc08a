//! Starting a process in a container: its environment, its stdio (pipes or a tty), the
//! backend's handoff, and its record in the container's table.

use super::*;
use crate::garden::backend::Spawn;
use crate::garden::process::StdinWriter;

/// The env a process starts with: container env, then the process's (later wins), plus
/// `USER` and a default `PATH` like upstream.
fn process_env(container: &[String], spec: &ProcessSpec, user: &str) -> Vec<String> {
    let mut env: Vec<String> = container.iter().chain(spec.env.iter()).cloned().collect();
    if !user.is_empty() {
        env.push(format!("USER={user}"));
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        let root = user.is_empty()
            || user == "root"
            || user == "0"
            || user.starts_with("root:")
            || user.starts_with("0:");
        env.push(if root {
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        } else {
            "PATH=/usr/local/bin:/usr/bin:/bin".into()
        });
    }
    // Later definitions win: keep the last of each key.
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = env
        .into_iter()
        .rev()
        .filter(|kv| {
            seen.insert(
                kv.split_once('=')
                    .map(|(k, _)| k.to_string())
                    .unwrap_or_else(|| kv.clone()),
            )
        })
        .collect();
    out.reverse();
    out
}

impl Containers {
    pub(super) async fn spawn(
        &self,
        c: &Arc<Container>,
        mut spec: ProcessSpec,
    ) -> Result<Arc<ProcessRecord>, GardenError> {
        if spec.id.is_empty() {
            spec.id = crate::worker_fs::new_handle();
        }
        {
            let inner = c.lock();
            if let Some(existing) = inner.processes.get(&spec.id) {
                if existing.exit_status().is_none() {
                    return Err(GardenError::Other(format!(
                        "process ID '{}' already in use",
                        spec.id
                    )));
                }
            }
        }
        let user = if spec.user.is_empty() {
            c.lock().properties.get("user").cloned().unwrap_or_default()
        } else {
            spec.user.clone()
        };
        let env = process_env(&c.spec.env, &spec, &spec.user);
        spec.user = user;
        let tty = spec.tty.is_some();
        let pty = match spec.tty {
            Some(t) => {
                let size = t.window_size.unwrap_or(WindowSize {
                    columns: 80,
                    rows: 24,
                });
                Some(
                    open_pty(size.columns, size.rows)
                        .map_err(|e| internal("allocating a tty", e))?,
                )
            }
            None => None,
        };
        let started = match c.sandbox.command(&spec, &env, tty)? {
            Spawn::Command(cmd) => spawn_command(cmd, pty, &spec.path)?,
            Spawn::Stage {
                stages,
                handoff,
                theirs,
            } => launch_stage(stages, handoff, theirs, pty, &spec.path).await?,
        };
        if started.pid > 0 {
            crate::garden::leftovers::record(&self.config.dir.join(&c.handle), started.pid as u32);
        }
        if let Some(m) = &started.master {
            tracing::debug!(fd = m.as_raw_fd(), "pty allocated");
        }
        let record = ProcessRecord::start(
            spec.id.clone(),
            started.pid,
            started.exited,
            started.stdin,
            started.outputs,
            started.master,
            &self.tasks,
        );
        c.lock().processes.insert(spec.id.clone(), record.clone());
        Ok(record)
    }
}

/// A process output reader and whether it is stdout.
type OutputReader = (Box<dyn tokio::io::AsyncRead + Send + Unpin>, bool);

/// A started process as its record takes it.
struct Started {
    pid: i32,
    exited: crate::garden::process::Exited,
    stdin: Option<StdinWriter>,
    outputs: Vec<OutputReader>,
    master: Option<OwnedFd>,
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, GardenError> {
    fd.try_clone().map_err(|e| internal("allocating a tty", e))
}

/// Our side of a pty master: its reader and its writer.
fn pty_ends(master: &OwnedFd) -> Result<(OutputReader, StdinWriter), GardenError> {
    let reader = tokio::fs::File::from_std(std::fs::File::from(dup(master)?));
    let writer = tokio::fs::File::from_std(std::fs::File::from(dup(master)?));
    Ok(((Box::new(reader), true), Box::new(writer)))
}

/// The process backend: spawns the command with pipes or the pty slave as its stdio.
fn spawn_command(
    mut cmd: tokio::process::Command,
    pty: Option<(OwnedFd, OwnedFd)>,
    path: &str,
) -> Result<Started, GardenError> {
    let (mut child, stdin, outputs, master) = if let Some((m, s)) = pty {
        cmd.stdin(Stdio::from(dup(&s)?))
            .stdout(Stdio::from(dup(&s)?))
            .stderr(Stdio::from(s));
        let child = cmd.spawn().map_err(|e| spawn_error(path, e))?;
        let (reader, writer) = pty_ends(&m)?;
        (child, Some(writer), vec![reader], Some(m))
    } else {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| spawn_error(path, e))?;
        let out = child.stdout.take().map(|o| (Box::new(o) as _, true));
        let err = child.stderr.take().map(|o| (Box::new(o) as _, false));
        let stdin = child.stdin.take().map(|w| Box::new(w) as StdinWriter);
        (child, stdin, out.into_iter().chain(err).collect(), None)
    };
    drop(cmd); // closes our copies of the pty slave
    Ok(Started {
        pid: child.id().map(|p| p as i32).unwrap_or(0),
        exited: Box::pin(async move { child.wait().await }),
        stdin,
        outputs,
        master,
    })
}

/// A pipe's (read, write) ends, close-on-exec.
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The linux backend: the stage server forks the stage with pipes or the pty slave as its
/// stdio, then the stage gets its plan.
async fn launch_stage(
    stages: Arc<crate::garden::linux::stages::Stages>,
    handoff: crate::garden::linux::stage::Handoff,
    theirs: OwnedFd,
    pty: Option<(OwnedFd, OwnedFd)>,
    path: &str,
) -> Result<Started, GardenError> {
    use tokio::net::unix::pipe;
    let io = |e| internal("making the process's pipes", e);
    let (stdio, stdin, outputs, master): ([OwnedFd; 3], StdinWriter, Vec<OutputReader>, _) =
        if let Some((m, s)) = pty {
            let (reader, writer) = pty_ends(&m)?;
            ([dup(&s)?, dup(&s)?, s], writer, vec![reader], Some(m))
        } else {
            let ((in_r, in_w), (out_r, out_w), (err_r, err_w)) = (
                pipe().map_err(io)?,
                pipe().map_err(io)?,
                pipe().map_err(io)?,
            );
            let stdin = Box::new(pipe::Sender::from_owned_fd(in_w).map_err(io)?);
            let out = Box::new(pipe::Receiver::from_owned_fd(out_r).map_err(io)?);
            let err = Box::new(pipe::Receiver::from_owned_fd(err_r).map_err(io)?);
            let outputs = vec![(out as _, true), (err as _, false)];
            ([in_r, out_w, err_w], stdin, outputs, None)
        };
    // Quick (a fork in the server), but a blocking exchange on a socket.
    let launched = tokio::task::spawn_blocking(move || {
        let [a, b, c] = &stdio;
        stages.launch([a, b, c], &theirs)
        // The child's ends and `theirs` close here: only the stage holds them now.
    })
    .await
    .map_err(|e| GardenError::Other(format!("running {path}: {e}")))?
    .map_err(|e| spawn_error(path, e))?;
    if let Err(e) = handoff.finish_async().await {
        launched.kill();
        let _ = launched.exited().await;
        return Err(spawn_error(path, e));
    }
    Ok(Started {
        pid: launched.pid,
        exited: Box::pin(launched.exited()),
        stdin: Some(stdin),
        outputs,
        master,
    })
}

fn spawn_error(path: &str, e: std::io::Error) -> GardenError {
    if e.kind() == std::io::ErrorKind::NotFound {
        GardenError::ExecutableNotFound {
            message: format!("exec: \"{path}\": executable file not found in $PATH"),
        }
    } else {
        GardenError::Other(format!("running {path}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_env_appends_user_default_path_and_later_wins() {
        let spec = ProcessSpec {
            env: vec!["A=2".into(), "B=1".into()],
            ..Default::default()
        };
        let env = process_env(&["A=1".into()], &spec, "");
        assert_eq!(
            env,
            [
                "A=2",
                "B=1",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ]
        );
        let env = process_env(&[], &spec, "nobody");
        assert!(
            env.contains(&"USER=nobody".to_string())
                && env.contains(&"PATH=/usr/local/bin:/usr/bin:/bin".to_string())
        );
    }
}
