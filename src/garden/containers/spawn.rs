//! Starting a process in a container: its environment, its stdio (pipes or a tty), the
//! backend's handoff, and its record in the container's table.

use super::*;

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
        let crate::garden::backend::Spawn { mut cmd, handoff } =
            c.sandbox.command(&spec, &env, tty)?;
        let (outputs, stdin, master): (
            Vec<OutputReader>,
            Option<crate::garden::process::StdinWriter>,
            Option<OwnedFd>,
        );
        let mut child = if let Some(t) = spec.tty {
            let size = t.window_size.unwrap_or(WindowSize {
                columns: 80,
                rows: 24,
            });
            let (m, s) =
                open_pty(size.columns, size.rows).map_err(|e| internal("allocating a tty", e))?;
            let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| internal("allocating a tty", e));
            cmd.stdin(Stdio::from(dup(&s)?))
                .stdout(Stdio::from(dup(&s)?))
                .stderr(Stdio::from(s));
            let child = cmd.spawn().map_err(|e| spawn_error(&spec.path, e))?;
            let reader = tokio::fs::File::from_std(std::fs::File::from(dup(&m)?));
            let writer = tokio::fs::File::from_std(std::fs::File::from(dup(&m)?));
            outputs = vec![(Box::new(reader), true)];
            stdin = Some(Box::new(writer) as crate::garden::process::StdinWriter);
            master = Some(m);
            child
        } else {
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().map_err(|e| spawn_error(&spec.path, e))?;
            let out = child.stdout.take().map(|o| {
                (
                    Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                    true,
                )
            });
            let err = child.stderr.take().map(|o| {
                (
                    Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                    false,
                )
            });
            outputs = out.into_iter().chain(err).collect();
            stdin = child
                .stdin
                .take()
                .map(|w| Box::new(w) as crate::garden::process::StdinWriter);
            master = None;
            child
        };
        drop(cmd); // closes our copies of the pty slave
        if let Some(h) = handoff {
            if let Err(e) = h.finish_async().await {
                let _ = child.kill().await;
                return Err(spawn_error(&spec.path, e));
            }
        }
        if let Some(pid) = child.id() {
            crate::garden::leftovers::record(&self.config.dir.join(&c.handle), pid);
        }
        if let Some(m) = &master {
            tracing::debug!(fd = m.as_raw_fd(), "pty allocated");
        }
        let record =
            ProcessRecord::start(spec.id.clone(), child, stdin, outputs, master, &self.tasks);
        c.lock().processes.insert(spec.id.clone(), record.clone());
        Ok(record)
    }
}

/// A process output reader and whether it is stdout.
type OutputReader = (Box<dyn tokio::io::AsyncRead + Send + Unpin>, bool);

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
