//! `fly execute` end to end: real fly subprocesses against a real `concourse quickstart`
//! (its in-process worker runs the one-off builds), once on the embedded store and once
//! on PostgreSQL. Inputs are uploaded as artifacts, outputs downloaded, `-j` runs a task
//! against a corpus pipeline job's inputs.
//!
//! Scenarios share one server per backend and run a few at a time; failures are reported
//! by scenario name with fly's output.

mod common;

use common::{corpus_dir, stderr, stdout, Backend, Fly, Server};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: &str = "ex";

struct Env {
    server: Server,
    fly: Fly,
    dir: tempfile::TempDir,
    /// Bearer tokens of `test` (main team owner) and `dev` (no role on main).
    token: String,
    dev_token: String,
}

use common::scenarios::Check;

impl Env {
    fn cmd(&self, cwd: Option<&Path>, args: &[&str]) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.arg("120")
            .arg(common::bin())
            .args(["fly", "-t", T])
            .args(args)
            .env("HOME", self.fly.home.path())
            .env_remove("FLY_HOME")
            .stdin(Stdio::null());
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        cmd
    }

    fn fly_in(&self, cwd: Option<&Path>, args: &[&str]) -> Output {
        self.cmd(cwd, args).output().expect("running fly")
    }

    fn fly(&self, args: &[&str]) -> Output {
        self.fly_in(None, args)
    }

    fn ok(&self, args: &[&str]) -> Result<String, String> {
        let out = self.fly(args);
        if out.status.success() {
            Ok(stdout(&out))
        } else {
            Err(format!(
                "fly {args:?} exited {:?}\n{}",
                out.status.code(),
                text(&out)
            ))
        }
    }

    /// A fresh directory for a scenario.
    fn mkdir(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    fn set(&self, p: &str, fixture: &str, vars: &[&str]) -> Check {
        let path = corpus_dir().join(fixture).to_string_lossy().to_string();
        let mut args = vec!["set-pipeline", "-n", "-p", p, "-c", &path];
        args.extend_from_slice(vars);
        self.ok(&args)?;
        self.ok(&["unpause-pipeline", "-p", p]).map(|_| ())
    }

    fn new_version(&self, p: &str, resource: &str, v: &str) -> Check {
        let r = format!("{p}/{resource}");
        self.ok(&["check-resource", "-r", &r, "-f", &format!("version:{v}")])
            .map(|_| ())
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

fn write(path: &Path, content: &str) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    std::fs::write(path, content).expect("write");
}

/// Exit code and ordered output expectations.
fn expect(out: &Output, code: i32, wants: &[&str], unwanted: &[&str]) -> Check {
    let status = out.status.code().unwrap_or(-1);
    common::scenarios::expect(status, &text(out), code, wants, unwanted)
}

/// Writes a task config; one without an image gets mock's mirrored base root, as upstream's
/// testflight tasks do (a task with no image is refused on the linux runtime).
fn task(dir: &Path, body: &str) -> String {
    let path = dir.join("task.yml");
    let body = if body.contains("image_resource") || body.contains("rootfs_uri") {
        body.to_string()
    } else {
        format!("image_resource: {{type: mock, source: {{mirror_self: true}}}}\n{body}")
    };
    write(&path, &body);
    path.to_string_lossy().to_string()
}

fn git(dir: &Path, args: &[&str]) -> Check {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.email=t@t", "-c", "user.name=t"])
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("git {args:?}: {}", text(&out)))
    }
}

type Scenario = common::scenarios::Scenario<Env>;

fn scenarios() -> Vec<Scenario> {
    vec![
        ("inputs-and-outputs-round-trip", |e| {
            let d = e.mkdir("round-trip");
            write(&d.join("src/a.txt"), "from-a\n");
            write(&d.join("src/nested/b.txt"), "from-b\n");
            let t = task(
                &d,
                "platform: linux\ninputs: [{name: src}]\noutputs: [{name: out}]\n\
                 params: {GREETING: default}\n\
                 run:\n  path: sh\n  args: [-c, 'cat src/a.txt; echo \"$GREETING $0\"; cp -r src/. out/; echo made > out/new.txt']\n",
            );
            let (src, out_dir) = (d.join("src"), d.join("downloaded"));
            let out = e
                .cmd(
                    None,
                    &[
                        "execute",
                        "-c",
                        &t,
                        "-i",
                        &format!("src={}", src.display()),
                        "-o",
                        &format!("out={}", out_dir.display()),
                        "--",
                        "extra-arg",
                    ],
                )
                .env("GREETING", "overridden")
                .output()
                .expect("fly");
            expect(
                &out,
                0,
                &[
                    "executing build",
                    "from-a",
                    "overridden extra-arg",
                    "succeeded",
                ],
                &[],
            )?;
            for (f, want) in [
                ("a.txt", "from-a\n"),
                ("nested/b.txt", "from-b\n"),
                ("new.txt", "made\n"),
            ] {
                let got = std::fs::read_to_string(out_dir.join(f))
                    .map_err(|err| format!("{f}: {err}"))?;
                if got != want {
                    return Err(format!("{f}: {got:?}, want {want:?}"));
                }
            }
            Ok(())
        }),
        ("current-directory-is-the-input-named-like-it", |e| {
            let d = e.mkdir("cwd");
            write(&d.join("my-input/file"), "in-cwd\n");
            let t = task(&d, "platform: linux\ninputs: [{name: my-input}]\nrun: {path: cat, args: [my-input/file]}\n");
            let out = e.fly_in(Some(&d.join("my-input")), &["execute", "-c", &t]);
            expect(&out, 0, &["in-cwd", "succeeded"], &[])
        }),
        ("git-ignored-files-stay-home-unless-included", |e| {
            let src = e.mkdir("gitrepo/src");
            git(&src, &["init", "-q"])?;
            write(&src.join(".gitignore"), "ignored.txt\n");
            write(&src.join("tracked.txt"), "t\n");
            write(&src.join("deleted.txt"), "d\n");
            git(&src, &["add", "."])?;
            git(&src, &["commit", "-qm", "init"])?;
            std::fs::remove_file(src.join("deleted.txt")).map_err(|e| e.to_string())?;
            write(&src.join("untracked.txt"), "u\n");
            write(&src.join("ignored.txt"), "i\n");
            let d = e.dir.path().join("gitrepo");
            let t = task(&d, "platform: linux\ninputs: [{name: src}]\nrun: {path: sh, args: [-c, 'ls src | sed s/^/listed-/']}\n");
            let input = format!("src={}", src.display());
            let out = e.fly(&["execute", "-c", &t, "-i", &input]);
            expect(
                &out,
                0,
                &["listed-tracked.txt", "listed-untracked.txt"],
                &["listed-ignored.txt", "listed-deleted.txt"],
            )?;
            let out = e.fly(&["execute", "-c", &t, "-i", &input, "--include-ignored"]);
            expect(&out, 0, &["listed-ignored.txt", "listed-tracked.txt"], &[])
        }),
        ("background-exits-once-started", |e| {
            let d = e.mkdir("background");
            let t = task(
                &d,
                "platform: linux\nrun: {path: echo, args: [in-the-background]}\n",
            );
            let out = e.fly(&["execute", "-c", &t, "-b"]);
            expect(&out, 0, &["executing build"], &["in-the-background"])?;
            let id = stdout(&out)
                .split_whitespace()
                .nth(2)
                .unwrap_or_default()
                .to_string();
            let watched = e.fly(&["watch", "-b", &id]);
            expect(&watched, 0, &["in-the-background", "succeeded"], &[])
        }),
        ("sigint-aborts-the-build-and-exits-3", |e| {
            let d = e.mkdir("abort");
            let t = task(
                &d,
                "platform: linux\nrun:\n  path: sh\n  args: [-c, 'trap \"echo task got sigterm; exit 1\" TERM; echo task-started; sleep 600 & wait']\n",
            );
            let mut child = e
                .cmd(None, &["execute", "-c", &t])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| e.to_string())?;
            let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
            let mut seen = String::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !seen.contains("task-started") && Instant::now() < deadline {
                match lines.next() {
                    Some(Ok(l)) => seen.push_str(&format!("{l}\n")),
                    _ => break,
                }
            }
            if !seen.contains("task-started") {
                let _ = child.kill();
                return Err(format!("the task never started:\n{seen}"));
            }
            // `timeout` runs fly as its child; signal fly itself.
            let fly_pid = child_pid_of(child.id()).ok_or("no fly process under timeout")?;
            unsafe { libc::kill(fly_pid, libc::SIGINT) };
            let rest: Vec<String> = lines.map_while(Result::ok).collect();
            let status = child.wait().map_err(|e| e.to_string())?;
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
                .map_err(|e| e.to_string())?;
            let all = format!("{seen}{}\n{err}", rest.join("\n"));
            if status.code() != Some(3)
                || !err.contains("aborting...")
                || !all.contains("interrupted")
            {
                return Err(format!(
                    "exit {:?}, want 3 with aborting/interrupted:\n{all}",
                    status.code()
                ));
            }
            Ok(())
        }),
        ("bad-flags-are-refused-before-anything-runs", |e| {
            let d = e.mkdir("errors");
            write(&d.join("a-file"), "x");
            let t = task(&d, "platform: linux\ninputs: [{name: src}]\noutputs: [{name: out}]\nrun: {path: 'true'}\n");
            let dir = d.to_string_lossy().to_string();
            let file = d.join("a-file").to_string_lossy().to_string();
            let cases: Vec<(Vec<String>, String)> = vec![
                (
                    vec!["-i".into(), format!("nope={dir}")],
                    "unknown input 'nope'".into(),
                ),
                (
                    vec!["-i".into(), format!("src={file}")],
                    format!("{file} not a folder"),
                ),
                (
                    vec![
                        "-i".into(),
                        format!("src={dir}"),
                        "-o".into(),
                        format!("nope={dir}"),
                    ],
                    "unknown output 'nope'".into(),
                ),
                (
                    vec![
                        "-i".into(),
                        format!("src={dir}"),
                        "-o".into(),
                        format!("out={dir}"),
                        "-b".into(),
                    ],
                    "background execution cannot withstand outputs".into(),
                ),
                (
                    vec!["--image".into(), "x".into()],
                    "must set --inputs-from when using --image".into(),
                ),
                (vec![], "missing required input 'src'".into()),
            ];
            for (flags, want) in cases {
                let mut args = vec!["execute", "-c", &t];
                args.extend(flags.iter().map(String::as_str));
                let out = e.fly(&args);
                if out.status.code() != Some(1) || !stderr(&out).contains(&want) {
                    return Err(format!(
                        "{flags:?}: want exit 1 with {want:?}, got {:?}:\n{}",
                        out.status.code(),
                        text(&out)
                    ));
                }
            }
            Ok(())
        }),
        ("inputs-from-a-job-with-and-without-an-override", |e| {
            e.set(
                "many",
                "many-inputs.yml",
                &["-v", "hash-1=m1", "-v", "hash-2=m2"],
            )?;
            e.new_version("many", "some-resource-a", "a-one")?;
            e.new_version("many", "some-resource-b", "b-one")?;
            let d = e.mkdir("many");
            let t = task(
                &d,
                "platform: linux\ninputs: [{name: some-resource-a}, {name: some-resource-b}]\n\
                 run:\n  path: sh\n  args: [-c, 'echo a has $(cat some-resource-a/version); echo b has $(cat some-resource-b/version)']\n",
            );
            let out = e.fly(&["execute", "-c", &t, "--inputs-from", "many/some-job"]);
            expect(&out, 0, &["a has a-one", "b has b-one", "succeeded"], &[])?;
            write(&d.join("override/version"), "some-overridden-version\n");
            let input = format!("some-resource-b={}", d.join("override").display());
            let out = e.fly(&[
                "execute",
                "-c",
                &t,
                "-j",
                "many/some-job",
                "--input",
                &input,
            ]);
            expect(
                &out,
                0,
                &["a has a-one", "b has some-overridden-version", "succeeded"],
                &[],
            )
        }),
        ("inputs-from-honour-passed-constraints-and-mappings", |e| {
            e.set("cfg", "config-test.yml", &[])?;
            e.new_version("cfg", "some-resource", "first-version")?;
            let d = e.mkdir("cfg");
            let t = task(&d, "platform: linux\ninputs: [{name: renamed}]\nrun: {path: cat, args: [renamed/version]}\n");
            let out = e.fly(&[
                "execute",
                "-c",
                &t,
                "-j",
                "cfg/downstream-job",
                "-m",
                "renamed=some-resource",
            ]);
            expect(
                &out,
                1,
                &["build inputs for cfg/downstream-job not found"],
                &[],
            )?;
            let out = e.fly(&["trigger-job", "-j", "cfg/upstream-job", "-w"]);
            expect(&out, 0, &["succeeded"], &[])?;
            e.new_version("cfg", "some-resource", "second-version")?;
            let out = e.fly(&[
                "execute",
                "-c",
                &t,
                "-j",
                "cfg/downstream-job",
                "-m",
                "renamed=some-resource",
            ]);
            expect(
                &out,
                0,
                &["first-version", "succeeded"],
                &["second-version"],
            )
        }),
        ("inputs-from-a-triggered-job-with-an-input-mapping", |e| {
            e.set("imap", "input-mapping-test.yml", &["-y", "task_content={}"])?;
            e.new_version("imap", "some-resource", "first-version")?;
            expect(
                &e.fly(&["trigger-job", "-j", "imap/upstream-job", "-w"]),
                0,
                &["succeeded"],
                &[],
            )?;
            e.new_version("imap", "some-resource", "second-version")?;
            let d = e.mkdir("imap");
            let t = task(&d, "platform: linux\ninputs: [{name: mapped}]\nrun: {path: cat, args: [mapped/version]}\n");
            let args = [
                "execute",
                "-c",
                &t,
                "-j",
                "imap/downstream-job",
                "-m",
                "mapped=some-resource",
            ];
            expect(
                &e.fly(&args),
                0,
                &["first-version", "succeeded"],
                &["second-version"],
            )?;
            expect(
                &e.fly(&["trigger-job", "-j", "imap/upstream-job", "-w"]),
                0,
                &["succeeded"],
                &[],
            )?;
            expect(&e.fly(&args), 0, &["second-version", "succeeded"], &[])
        }),
        ("inputs-from-a-job-with-a-custom-resource-type", |e| {
            e.set("custom", "custom-resource-type.yml", &[])?;
            e.ok(&["check-resource", "-r", "custom/some-resource"])?;
            let d = e.mkdir("custom");
            let t = task(&d, "platform: linux\ninputs: [{name: some-resource}]\nrun: {path: sh, args: [-c, 'cat some-resource/*']}\n");
            let out = e.fly(&["execute", "-c", &t, "-j", "custom/input-test"]);
            expect(&out, 0, &["custom-type-version", "succeeded"], &[])?;
            write(&d.join("fixture/version"), "local-fixture\n");
            let input = format!("some-resource={}", d.join("fixture").display());
            let out = e.fly(&["execute", "-c", &t, "-j", "custom/input-test", "-i", &input]);
            expect(
                &out,
                0,
                &["local-fixture", "succeeded"],
                &["custom-type-version"],
            )
        }),
        ("inputs-from-with-an-image-from-the-job", |e| {
            e.set("img", "image-resource-test.yml", &["-y", "task_content={}"])?;
            e.new_version("img", "some-resource", "first-version")?;
            e.ok(&["check-resource", "-r", "img/some-image"])?;
            let out = e.fly(&["trigger-job", "-j", "img/upstream-job", "-w"]);
            expect(&out, 0, &["succeeded"], &[])?;
            e.new_version("img", "some-resource", "second-version")?;
            let d = e.mkdir("img");
            // The image comes from the job's input (`--image`), so the config names none.
            let t = d.join("task.yml");
            write(&t, "platform: linux\ninputs: [{name: some-resource}]\nrun: {path: sh, args: [-c, 'cat some-resource/version; echo image-$MIRRORED_VERSION']}\n");
            let t = t.to_string_lossy().to_string();
            let out = e.fly(&[
                "execute",
                "-c",
                &t,
                "-j",
                "img/downstream-job",
                "--image",
                "some-image",
            ]);
            expect(
                &out,
                0,
                &["first-version", "succeeded"],
                &["second-version"],
            )?;
            let out = e.fly(&[
                "execute",
                "-c",
                &t,
                "-j",
                "img/downstream-job",
                "--image",
                "nope",
            ]);
            expect(&out, 1, &["image resource nope not found"], &[])
        }),
        ("api-refuses-bad-plans-and-accepts-upstreams-shape", |e| {
            let http = reqwest::blocking::Client::new();
            let call = |method: reqwest::Method, path: &str, token: &str, body: Option<&str>| {
                let mut rb = http.request(method, e.server.api(path)).bearer_auth(token);
                if let Some(b) = body {
                    rb = rb
                        .header("Content-Type", "application/json")
                        .body(b.to_string());
                }
                let resp = rb.send().map_err(|err| err.to_string())?;
                let status = resp.status().as_u16();
                Ok::<_, String>((status, resp.text().unwrap_or_default()))
            };
            let count = || -> Result<usize, String> {
                let (_, body) = call(
                    reqwest::Method::GET,
                    "/api/v1/teams/main/builds?limit=1000",
                    &e.token,
                    None,
                )?;
                let builds: Vec<serde_json::Value> =
                    serde_json::from_str(&body).map_err(|err| err.to_string())?;
                Ok(builds.len())
            };
            let before = count()?;
            for (body, want) in [
                (
                    r#"{"id":"1","check":{"name":"x"}}"#,
                    "unsupported plan step: check",
                ),
                ("not json", "malformed request"),
                (
                    r#"{"id":"1","task":{"name":"t","config":{"platform":"linux","run":{"path":"x"},"bogus":1}}}"#,
                    "invalid task config",
                ),
            ] {
                let (status, text) = call(
                    reqwest::Method::POST,
                    "/api/v1/teams/main/builds",
                    &e.token,
                    Some(body),
                )?;
                if status != 400 || !text.contains(want) {
                    return Err(format!("{body}: {status} {text}, want 400 with {want:?}"));
                }
            }
            if count()? != before {
                return Err("a refused plan created a build".into());
            }
            // What upstream's fly sends, Go nulls included.
            let plan = r#"{"id":"a3","do":[{"id":"a1","in_parallel":{"steps":[]}},
                {"id":"a2","task":{"name":"one-off","privileged":false,"tags":null,
                 "config":{"platform":"linux","run":{"path":"echo","args":["hello-upstream"]},"params":null,"inputs":null},
                 "input_mapping":null,"resource_types":null}}]}"#;
            let (status, text) = call(
                reqwest::Method::POST,
                "/api/v1/teams/main/builds",
                &e.token,
                Some(plan),
            )?;
            let build: serde_json::Value =
                serde_json::from_str(&text).map_err(|err| format!("{status} {text}: {err}"))?;
            if status != 201 || build["status"] != "started" {
                return Err(format!("one-off build: {status} {text}"));
            }
            let id = build["id"].to_string();
            // It names no image: the linux runtime (quickstart's as root) refuses it as
            // upstream's containerd does; the process runtime runs it on the host.
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                expect(
                    &e.fly(&["watch", "-b", &id]),
                    2,
                    &["no image specified", "errored"],
                    &["hello-upstream"],
                )?;
            } else {
                expect(&e.fly(&["watch", "-b", &id]), 0, &["hello-upstream"], &[])?;
            }
            let (status, text) = call(
                reqwest::Method::GET,
                &format!("/api/v1/builds/{id}/artifacts"),
                &e.token,
                None,
            )?;
            if (status, text.trim()) != (200, "[]") {
                return Err(format!("build artifacts: {status} {text}"));
            }
            let (status, _) = call(
                reqwest::Method::GET,
                "/api/v1/teams/main/artifacts/99999",
                &e.token,
                None,
            )?;
            let (dev_status, _) = call(
                reqwest::Method::POST,
                "/api/v1/teams/main/artifacts",
                &e.dev_token,
                Some(""),
            )?;
            let (inputs_status, _) = call(
                reqwest::Method::GET,
                "/api/v1/teams/main/pipelines/nope/jobs/j/inputs",
                &e.token,
                None,
            )?;
            if (status, dev_status, inputs_status) != (404, 403, 404) {
                return Err(format!("artifact 404 / foreign team 403 / no pipeline 404: got {status} {dev_status} {inputs_status}"));
            }
            Ok(())
        }),
    ]
}

/// The pid of the (only) child of `parent` (fly under `timeout`).
fn child_pid_of(parent: u32) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let path = format!("/proc/{parent}/task/{parent}/children");
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn suite(backend: Backend) {
    let server = Server::quickstart(backend);
    let fly = Fly::new();
    fly.login(&server, T);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let token = rt.block_on(server.token(common::USER, common::PASS));
    let dev_token = rt.block_on(server.token("dev", "dev"));
    let env = Arc::new(Env {
        server,
        fly,
        dir: tempfile::tempdir().expect("temp dir"),
        token,
        dev_token,
    });
    common::scenarios::run_all(env, scenarios(), 3);
}

#[test]
fn fly_execute_on_quickstart_with_the_embedded_store() {
    suite(Backend::Embedded);
}

#[test]
fn fly_execute_on_quickstart_with_postgres() {
    let Some(pg) = Backend::postgres("fly_execute_on_quickstart_with_postgres") else {
        return;
    };
    suite(pg);
}
