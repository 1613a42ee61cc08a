//! Testflight-style acceptance: upstream's corpus pipelines set with fly on a real
//! `concourse quickstart` (its in-process worker runs the builds), driven the way
//! upstream's suite drives them (`fly trigger-job -w`, `fly check-resource -f`, ...), and
//! checked against what shared/corpus/pipelines/INDEX.md says they print. Once on the
//! embedded store, once on PostgreSQL.
//!
//! Scenarios share one server per backend and run a few at a time; a failing scenario is
//! reported by name with fly's output, and the others still run.

mod common;
#[path = "testflight_scenarios/resources.rs"]
mod resources;

use common::{corpus_dir, stderr, stdout, Backend, Fly, Server};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: &str = "tf";

struct Env {
    _server: Server,
    fly: Fly,
}

use common::scenarios::{expect, Check};

impl Env {
    /// Runs fly, killed after two minutes so a stuck build fails its scenario instead of
    /// hanging the suite.
    fn fly(&self, args: &[&str]) -> std::process::Output {
        self.fly_for(120, args)
    }

    /// Runs fly for at most `secs` seconds (what it printed until then is kept).
    fn fly_for(&self, secs: u32, args: &[&str]) -> std::process::Output {
        std::process::Command::new("timeout")
            .arg(secs.to_string())
            .arg(common::bin())
            .args(["fly", "-t", T])
            .args(args)
            .env("HOME", self.fly.home.path())
            .env_remove("FLY_HOME")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("running fly")
    }

    fn ok(&self, args: &[&str]) -> Result<String, String> {
        let out = self.fly(args);
        if out.status.success() {
            Ok(stdout(&out))
        } else {
            Err(format!(
                "fly {args:?} exited {:?}\n{}{}",
                out.status.code(),
                stdout(&out),
                stderr(&out)
            ))
        }
    }

    /// `fly set-pipeline` + `unpause-pipeline`, like testflight's `setAndUnpausePipeline`.
    fn set(&self, p: &str, fixture: &str, vars: &[&str]) -> Check {
        let path = corpus_dir().join(fixture);
        let path = path.to_string_lossy().to_string();
        let mut args = vec!["set-pipeline", "-n", "-p", p, "-c", &path];
        args.extend_from_slice(vars);
        self.ok(&args)?;
        self.ok(&["unpause-pipeline", "-p", p])?;
        Ok(())
    }

    /// `fly trigger-job -w`: (exit code, output).
    fn trigger(&self, p: &str, job: &str) -> (i32, String) {
        let out = self.fly(&["trigger-job", "-j", &format!("{p}/{job}"), "-w"]);
        (
            out.status.code().unwrap_or(-1),
            format!("{}{}", stdout(&out), stderr(&out)),
        )
    }

    /// testflight's "new mock version".
    fn new_version(&self, p: &str, resource: &str, v: &str) -> Check {
        self.ok(&[
            "check-resource",
            "-r",
            &format!("{p}/{resource}"),
            "-f",
            &format!("version:{v}"),
        ])
        .map(|_| ())
    }

    /// Waits for a condition on fly's output of `args` (30 s).
    fn eventually(&self, args: &[&str], what: &str, cond: impl Fn(&str) -> bool) -> Check {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            // `watch` of a running build does not return: look at what it printed so far.
            let out = self.fly_for(3, args);
            last = format!("{}{}", stdout(&out), stderr(&out));
            if cond(&last) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "timed out waiting for {what}; last output of {args:?}:\n{last}"
        ))
    }
}

/// A bare `POST` without credentials (webhooks need none); returns the raw response head.
fn post(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
        return "connect failed".into();
    };
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if conn.write_all(req.as_bytes()).is_err() {
        return "write failed".into();
    }
    let mut out = String::new();
    let _ = conn.read_to_string(&mut out);
    out
}

fn run(
    e: &Env,
    p: &str,
    fixture: &str,
    vars: &[&str],
    job: &str,
    code: i32,
    wants: &[&str],
) -> Check {
    e.set(p, fixture, vars)?;
    let (c, out) = e.trigger(p, job);
    expect(c, &out, code, wants, &[])
}

type Scenario = common::scenarios::Scenario<Env>;

fn scenarios() -> Vec<Scenario> {
    vec![
        ("simple", |e| {
            run(
                e,
                "simple",
                "simple.yml",
                &[],
                "simple",
                0,
                &["Hello, world!", "succeeded"],
            )
        }),
        ("fail", |e| {
            run(
                e,
                "fail",
                "fail.yml",
                &[],
                "failing-job",
                1,
                &["initializing", "failed"],
            )
        }),
        ("do", |e| {
            run(
                e,
                "do",
                "do.yml",
                &[],
                "do-job",
                0,
                &[
                    "running do step 1",
                    "running do step 2",
                    "running do step 3",
                ],
            )
        }),
        ("try", |e| {
            run(
                e,
                "try",
                "try.yml",
                &[],
                "try-job",
                0,
                &["passing-task succeeded"],
            )
        }),
        ("hooks-passing", |e| {
            e.set("hooks", "hooks.yml", &[])?;
            let (c, out) = e.trigger("hooks", "some-passing-job");
            expect(
                c,
                &out,
                0,
                &[
                    "passing job on success",
                    "passing job ensure",
                    "passing job on job success",
                    "passing job on job ensure",
                ],
                &["on failure", "on abort", "on error"],
            )
        }),
        ("hooks-failing-and-errored", |e| {
            e.set("hooks2", "hooks.yml", &[])?;
            let (c, out) = e.trigger("hooks2", "some-failing-job");
            expect(
                c,
                &out,
                1,
                &["failing job on failure", "failing job ensure"],
                &["failing job on success"],
            )?;
            let (c, out) = e.trigger("hooks2", "some-errored-job");
            expect(
                c,
                &out,
                2,
                &["errored job on error", "errored job ensure"],
                &["errored job on success"],
            )
        }),
        ("hooks-aborted", |e| {
            e.set("hooks3", "hooks.yml", &[])?;
            let child = std::process::Command::new(common::bin())
                .args([
                    "fly",
                    "-t",
                    T,
                    "trigger-job",
                    "-j",
                    "hooks3/some-aborted-job",
                    "-w",
                ])
                .env("HOME", e.fly.home.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| e.to_string())?;
            e.eventually(
                &["watch", "-j", "hooks3/some-aborted-job"],
                "waiting to be aborted",
                |o| o.contains("waiting to be aborted"),
            )?;
            e.ok(&["abort-build", "-j", "hooks3/some-aborted-job", "-b", "1"])?;
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            let text = format!("{}{}", stdout(&out), stderr(&out));
            expect(
                out.status.code().unwrap_or(-1),
                &text,
                3,
                &["aborted job on abort", "aborted job ensure"],
                &[],
            )
        }),
        ("timeout", |e| {
            e.set("timeout", "timeout.yml", &[])?;
            let (c, out) = e.trigger("timeout", "duration-successful-job");
            expect(c, &out, 0, &["passing-task succeeded"], &[])?;
            let (c, out) = e.trigger("timeout", "duration-fail-job");
            expect(c, &out, 1, &["timeout exceeded"], &[])
        }),
        ("timeout-hooks", |e| {
            run(
                e,
                "timeout-hooks",
                "timeout_hooks.yml",
                &[],
                "duration-fail-job",
                1,
                &["duration fail job on failure", "duration fail job ensure"],
            )
        }),
        ("task-outputs", |e| {
            run(
                e,
                "task-outputs",
                "task-outputs.yml",
                &[],
                "some-job",
                0,
                &["./output-1/file-1"],
            )
            .and_then(|_| {
                run(
                    e,
                    "task-outputs",
                    "task-outputs.yml",
                    &[],
                    "some-job",
                    0,
                    &["./output-2/file-2"],
                )
            })
        }),
        ("task-missing-outputs", |e| {
            run(
                e,
                "missing-outputs",
                "task-missing-outputs.yml",
                &[],
                "missing-outputs-job",
                2,
                &["missing inputs: missing-outputs"],
            )
        }),
        ("optional-inputs", |e| {
            run(
                e,
                "optional-inputs",
                "optional-inputs.yml",
                &[],
                "job-using-optional-inputs",
                0,
                &[
                    "step 1 complete",
                    "step 2 complete",
                    "step 3 complete",
                    "SUCCESS",
                ],
            )
        }),
        ("retry", |e| {
            run(
                e,
                "retry",
                "retry.yml",
                &[],
                "retry-job",
                0,
                &[
                    "attempts: 1; failing",
                    "attempts: 2; failing",
                    "attempts: 3; success!",
                    "succeeded",
                ],
            )
        }),
        ("matrix", |e| {
            run(
                e,
                "matrix",
                "matrix.yml",
                &["-v", "initial_version=v1"],
                "fancy-build-matrix",
                1,
                &[
                    "passing-unit-1/file passing-unit-2/file v1",
                    "failed in_parallel v1",
                ],
            )
        }),
        ("config-params", |e| {
            run(
                e,
                "config-params",
                "config_params.yml",
                &[],
                "file-test",
                0,
                &["SOURCE_PARAM is file_source"],
            )?;
            let (c, out) = e.trigger("config-params", "file-params-test");
            expect(c, &out, 0, &["SOURCE_PARAM is job_params_source"], &[])
        }),
        ("load-var", |e| {
            run(
                e,
                "load-var",
                "load-var-step.yml",
                &[],
                "use-var",
                0,
                &["succeeded"],
            )
        }),
        ("across", |e| {
            run(
                e,
                "across",
                "across.yml",
                &[],
                "job",
                0,
                &[
                    "running across static1 dynamic1",
                    "running across static1 dynamic2",
                    "running across static1 dynamic3",
                    "running across static1 4",
                    "running across static2 dynamic1",
                    "running across static2 4",
                    "pushing version: v_dynamic1",
                    "fetching version: v_dynamic1",
                    "pushing version: v_4",
                    "fetching version: v_4",
                ],
            )
        }),
        ("simple-trigger-and-rerun", |e| {
            e.set("trigger", "simple-trigger.yml", &["-v", "hash=h1"])?;
            e.new_version("trigger", "some-resource", "first-version")?;
            e.eventually(
                &["builds", "-j", "trigger/some-passing-job"],
                "build 1",
                |o| o.lines().any(|l| l.contains("succeeded")),
            )?;
            let out = e.ok(&["watch", "-j", "trigger/some-passing-job", "-b", "1"])?;
            expect(0, &out, 0, &["first-version"], &[])?;
            e.new_version("trigger", "some-resource", "second-version")?;
            e.eventually(
                &["builds", "-j", "trigger/some-passing-job"],
                "build 2",
                |o| o.lines().filter(|l| l.contains("succeeded")).count() >= 2,
            )?;
            let out = e.ok(&["watch", "-j", "trigger/some-passing-job", "-b", "2"])?;
            expect(0, &out, 0, &["second-version"], &[])?;
            e.ok(&["rerun-build", "-j", "trigger/some-passing-job", "-b", "1"])?;
            e.eventually(
                &["builds", "-j", "trigger/some-passing-job"],
                "rerun 1.1",
                |o| {
                    o.lines()
                        .any(|l| l.contains("1.1") && l.contains("succeeded"))
                },
            )?;
            let out = e.ok(&["watch", "-j", "trigger/some-passing-job", "-b", "1.1"])?;
            expect(0, &out, 0, &["first-version"], &["second-version"])
        }),
        ("version-every", |e| {
            e.set("every", "resource-version-every.yml", &["-v", "hash=h2"])?;
            e.new_version("every", "some-resource", "guid1")?;
            let (c, out) = e.trigger("every", "some-passing-job");
            expect(c, &out, 0, &["guid1"], &[])?;
            for v in ["guid2", "guid3", "guid4"] {
                e.new_version("every", "some-resource", v)?;
            }
            // Each run takes the next version after the last one used.
            for v in ["guid2", "guid3", "guid4"] {
                let (c, out) = e.trigger("every", "some-passing-job");
                expect(c, &out, 0, &[v], &[])?;
            }
            Ok(())
        }),
        ("version-latest", |e| {
            e.set("latest", "resource-version-latest.yml", &["-v", "hash=h3"])?;
            for v in ["guid2", "guid3", "guid4"] {
                e.new_version("latest", "some-resource", v)?;
            }
            let (c, out) = e.trigger("latest", "some-passing-job");
            expect(c, &out, 0, &["guid4"], &[])
        }),
        ("pinned-version", |e| {
            e.set(
                "pinned",
                "pinned-version.yml",
                &["-v", "hash=h4", "-v", "pinned_version=v3"],
            )?;
            for v in ["v1", "v2", "v3", "v4"] {
                e.new_version("pinned", "some-resource", v)?;
            }
            let (c, out) = e.trigger("pinned", "some-passing-job");
            expect(c, &out, 0, &["v3"], &["v4"])
        }),
        ("resource-check-failure", |e| {
            e.set(
                "check-fail",
                "resource-check.yml",
                &[
                    "-v",
                    "check_failure=super broken",
                    "-v",
                    "unique_version=u1",
                ],
            )?;
            let out = e.fly(&["check-resource", "-r", "check-fail/my-resource"]);
            let text = format!("{}{}", stdout(&out), stderr(&out));
            expect(
                out.status.code().unwrap_or(-1),
                &text,
                1,
                &["super broken", "failed"],
                &[],
            )
        }),
        ("resource-check", |e| {
            e.set(
                "check-ok",
                "resource-check.yml",
                &["-v", "check_failure=", "-v", "unique_version=u2"],
            )?;
            let out = e.ok(&["check-resource", "-r", "check-ok/my-resource"])?;
            expect(0, &out, 0, &["succeeded"], &[])?;
            let out = e.ok(&["resource-versions", "-r", "check-ok/my-resource"])?;
            expect(0, &out, 0, &["u2"], &[])
        }),
        ("custom-resource-types", |e| {
            run(
                e,
                "types",
                "resource-types.yml",
                &["-v", "hash=h5"],
                "resource-getter",
                0,
                &["fetched version: h5"],
            )
        }),
        ("resource-type-defaults", |e| {
            run(
                e,
                "defaults",
                "resource-type-defaults.yml",
                &["-v", "hash=h6"],
                "some-job",
                0,
                &[
                    "defaulted",
                    "fetching version: h6",
                    "defaulted",
                    "pushing version: put-version",
                    "defaulted",
                    "fetching version: put-version",
                ],
            )
        }),
        ("var-sources", |e| {
            run(
                e,
                "var-sources",
                "var-sources.yml",
                &[],
                "use-vars",
                0,
                &["succeeded"],
            )
        }),
        ("set-pipeline", |e| {
            run(
                e,
                "parent",
                "set-pipeline.yml",
                &["-v", "pipeline_name=child", "-v", "team_name=main"],
                "sp",
                0,
                &["setting pipeline: child", "done"],
            )?;
            e.ok(&["unpause-pipeline", "-p", "child"])?;
            let (c, out) = e.trigger("child", "normal-job");
            expect(c, &out, 0, &["hello world"], &[])
        }),
        ("volume-mounting", |e| {
            e.set("volumes", "volume-mounting.yml", &[])?;
            for job in [
                "input-under-output",
                "output-with-dot-with-input-within",
                "input-under-input",
                "output-under-input",
            ] {
                let (c, out) = e.trigger("volumes", job);
                expect(c, &out, 0, &[], &[]).map_err(|m| format!("{job}: {m}"))?;
            }
            Ok(())
        }),
        ("reconfiguring-mid-check", |e| {
            // A check that was running when `set-pipeline` gave its resource a new source
            // speaks only for the old source: it must not become the resource's check (here
            // it fails) nor hold back the build that checks the new one.
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let path = dir.path().join("midcheck.yml");
            std::fs::write(
                &path,
                "resources:\n- name: r\n  type: mock\n  check_every: never\n  source: ((source))\njobs:\n- name: j\n  plan: [{get: r}]\n",
            )
            .map_err(|e| e.to_string())?;
            let path = path.to_string_lossy().to_string();
            let set = |source: &str| {
                e.ok(&[
                    "set-pipeline",
                    "-n",
                    "-p",
                    "midcheck",
                    "-c",
                    &path,
                    "-y",
                    source,
                ])
            };
            set("source={check_delay: 6s, check_failure: old source}")?;
            e.ok(&["unpause-pipeline", "-p", "midcheck"])?;
            let asked = Instant::now();
            let out = e.ok(&["check-resource", "-r", "midcheck/r", "--async"])?;
            let stale = out
                .trim()
                .rsplit(' ')
                .next()
                .unwrap_or_default()
                .to_string();
            set("source={force_version: new-source}")?;
            if asked.elapsed() >= Duration::from_secs(6) {
                return Err(
                    "the old check may have ended before set-pipeline: too slow to tell".into(),
                );
            }
            let (c, out) = e.trigger("midcheck", "j");
            expect(c, &out, 0, &["fetching version: new-source"], &[])?;
            e.fly(&["watch", "-b", &stale]);
            let out = e.ok(&["resources", "-p", "midcheck"])?;
            expect(0, &out, 0, &["r"], &["failed"])?;
            let out = e.ok(&["resource-versions", "-r", "midcheck/r"])?;
            expect(0, &out, 0, &["new-source"], &[])
        }),
        ("check-webhook", |e| {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let path = dir.path().join("webhook.yml");
            std::fs::write(
                &path,
                "resources:\n- name: r\n  type: mock\n  webhook_token: s3cret\n  check_every: never\n  source: {force_version: hooked}\njobs:\n- name: j\n  plan: [{get: r}]\n",
            )
            .map_err(|e| e.to_string())?;
            e.ok(&[
                "set-pipeline",
                "-n",
                "-p",
                "hook",
                "-c",
                &path.to_string_lossy(),
            ])?;
            let url = "/api/v1/teams/main/pipelines/hook/resources/r/check/webhook";
            let wrong = post(&e._server.url, &format!("{url}?webhook_token=nope"));
            if !wrong.starts_with("HTTP/1.1 401") {
                return Err(format!("wrong token: {wrong}"));
            }
            let right = post(&e._server.url, &format!("{url}?webhook_token=s3cret"));
            if !right.starts_with("HTTP/1.1 201") {
                return Err(format!("right token: {right}"));
            }
            e.eventually(
                &["resource-versions", "-r", "hook/r"],
                "the webhook's check",
                |o| o.contains("hooked"),
            )
        }),
        ("inputs-outputs-propagation", |e| {
            e.set("prop", "inputs_outputs.yml", &["-v", "hash=h7"])?;
            e.new_version("prop", "some-resource", "first-version")?;
            let (c, out) = e.trigger("prop", "pushing-job");
            expect(c, &out, 0, &["pushing version: first-version"], &[])?;
            e.new_version("prop", "some-resource", "second-version")?;
            let (c, out) = e.trigger("prop", "downstream-job");
            expect(c, &out, 0, &["first-version"], &["second-version"])
        }),
    ]
}

fn suite(backend: Backend) {
    // A short GC interval: scenarios wait for collected check containers and children.
    let server = Server::quickstart_with(backend, &["--gc-interval", "3s"]);
    let fly = Fly::new();
    fly.login(&server, T);
    let env = Arc::new(Env {
        _server: server,
        fly,
    });
    let mut all = scenarios();
    all.extend(resources::scenarios());
    all.extend(resources::jobs());
    common::scenarios::run_all(env, all, 3);
}

#[test]
fn corpus_pipelines_run_on_quickstart_with_the_embedded_store() {
    suite(Backend::Embedded);
}

#[test]
fn corpus_pipelines_run_on_quickstart_with_postgres() {
    let Some(pg) = Backend::postgres("corpus_pipelines_run_on_quickstart_with_postgres") else {
        return;
    };
    suite(pg);
}
