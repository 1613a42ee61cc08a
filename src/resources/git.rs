//! The `git` base type (upstream git-resource), through the git CLI: check lists commits
//! (or tags) of a branch, in checks out a ref with upstream's `.git/*` metadata files,
//! out pushes a repository from the inputs.

use super::{require_dir, MetadataField, ResourceError, Version, VersionResult};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    uri: String,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    paths: Vec<String>,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    ignore_paths: Vec<String>,
    #[serde(default)]
    tag_filter: Option<String>,
    #[serde(default)]
    tag_regex: Option<String>,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    disable_ci_skip: bool,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    git_config: Vec<GitConfig>,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    skip_ssl_verification: bool,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    fetch_tags: bool,
    #[serde(default)]
    version_depth: Option<usize>,
    // Accepted for compatibility; credentials and signing are not supported yet.
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    debug: bool,
}

#[derive(Debug, Deserialize)]
struct GitConfig {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
struct Request {
    source: Value,
    #[serde(default)]
    params: Option<Map<String, Value>>,
    #[serde(default)]
    version: Option<Version>,
}

fn err(msg: impl Into<String>) -> ResourceError {
    ResourceError::new(msg)
}

/// Upstream refuses unknown source keys with this message.
fn parse_source(v: Value) -> Result<Source, ResourceError> {
    serde_json::from_value(v).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("unknown field") {
            err(format!("Found unknown keys in source: {msg}"))
        } else {
            err(format!("invalid source: {msg}"))
        }
    })
}

struct Git<'a> {
    source: &'a Source,
}

impl Git<'_> {
    fn cmd(&self, dir: Option<&Path>) -> Command {
        let mut c = Command::new("git");
        if let Some(d) = dir {
            c.arg("-C").arg(d);
        }
        for cfg in &self.source.git_config {
            c.arg("-c").arg(format!("{}={}", cfg.name, cfg.value));
        }
        if self.source.skip_ssl_verification {
            c.arg("-c").arg("http.sslVerify=false");
        }
        c.env("GIT_TERMINAL_PROMPT", "0");
        c
    }

    fn run(&self, dir: Option<&Path>, args: &[&str]) -> Result<String, ResourceError> {
        let out = self
            .cmd(dir)
            .args(args)
            .output()
            .map_err(|e| err(format!("running git: {e}")))?;
        if !out.status.success() {
            return Err(err(format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn ok(&self, dir: &Path, args: &[&str]) -> bool {
        self.cmd(Some(dir))
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
}

/// A bare clone kept under the temp dir, keyed by URI, so repeated checks only fetch.
fn bare_cache(git: &Git, uri: &str) -> Result<PathBuf, ResourceError> {
    use sha2::Digest;
    let key: String = sha2::Sha256::digest(uri.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = std::env::temp_dir().join(format!("concourse-git-check-{key}"));
    if dir.join("HEAD").exists() {
        git.run(
            Some(&dir),
            &[
                "fetch",
                "--quiet",
                "--prune",
                "--tags",
                "--force",
                "origin",
                "+refs/heads/*:refs/heads/*",
            ],
        )?;
    } else {
        let tmp =
            std::env::temp_dir().join(format!("concourse-git-check-{key}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        git.run(
            None,
            &[
                "clone",
                "--quiet",
                "--bare",
                uri,
                tmp.to_str().unwrap_or_default(),
            ],
        )?;
        git.run(
            Some(&tmp),
            &[
                "config",
                "remote.origin.fetch",
                "+refs/heads/*:refs/heads/*",
            ],
        )?;
        // Another check may have won the race; either copy is fine.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    Ok(dir)
}

fn skip_ci(message: &str) -> bool {
    message.contains("[ci skip]") || message.contains("[skip ci]")
}

fn pathspecs(source: &Source) -> Vec<String> {
    let mut specs: Vec<String> = source.paths.clone();
    if specs.is_empty() && !source.ignore_paths.is_empty() {
        specs.push(".".into());
    }
    specs.extend(source.ignore_paths.iter().map(|p| format!(":(exclude){p}")));
    specs
}

fn ref_version(sha: &str) -> Version {
    let mut v = Version::new();
    v.insert("ref".into(), sha.to_string());
    v
}

fn check(source: &Source, version: Option<&Version>) -> Result<Vec<Version>, ResourceError> {
    if source.tag_filter.is_some() && source.tag_regex.is_some() {
        return Err(err("cannot specify both tag_filter and tag_regex"));
    }
    let git = Git { source };
    let repo = bare_cache(&git, &source.uri)?;
    if source.tag_filter.is_some() || source.tag_regex.is_some() {
        return check_tags(&git, &repo, source, version);
    }
    let branch = match &source.branch {
        Some(b) => format!("refs/heads/{b}"),
        None => "HEAD".into(),
    };
    let specs = pathspecs(source);
    let rev_list = |range: &str, limit: Option<usize>| -> Result<Vec<String>, ResourceError> {
        let mut args: Vec<String> = vec![
            "log".into(),
            "--first-parent".into(),
            "--format=%H%x00%B%x1e".into(),
        ];
        // Skipped commits do not count towards the limit, so ask git for some slack.
        if let Some(n) = limit {
            args.push(format!("-{}", n + 100));
        }
        args.push(range.into());
        args.push("--".into());
        args.extend(specs.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = git.run(Some(&repo), &refs)?;
        Ok(out
            .split('\x1e')
            .filter_map(|entry| {
                let (sha, msg) = entry.trim_start_matches('\n').split_once('\0')?;
                (source.disable_ci_skip || !skip_ci(msg)).then(|| sha.to_string())
            })
            .take(limit.unwrap_or(usize::MAX))
            .collect())
    };
    let given = version
        .and_then(|v| v.get("ref"))
        .filter(|r| git.ok(&repo, &["cat-file", "-e", &format!("{r}^{{commit}}")]));
    let given = given.filter(|r| git.ok(&repo, &["merge-base", "--is-ancestor", r, &branch]));
    let mut shas = match given {
        Some(r) => {
            // The given commit first (still valid), then every later matching commit.
            let mut later = rev_list(&format!("{r}..{branch}"), None)?;
            later.push(r.clone());
            later
        }
        None => rev_list(&branch, Some(source.version_depth.unwrap_or(1).max(1)))?,
    };
    shas.reverse();
    Ok(shas.iter().map(|s| ref_version(s)).collect())
}

fn glob_to_regex(glob: &str) -> String {
    let mut re = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c if "\\.+()|[]{}^$".contains(c) => {
                re.push('\\');
                re.push(c);
            }
            c => re.push(c),
        }
    }
    re.push('$');
    re
}

fn check_tags(
    git: &Git,
    repo: &Path,
    source: &Source,
    version: Option<&Version>,
) -> Result<Vec<Version>, ResourceError> {
    let pattern = match (&source.tag_filter, &source.tag_regex) {
        (Some(f), _) => glob_to_regex(f),
        (None, Some(r)) => r.clone(),
        _ => unreachable!("checked by the caller"),
    };
    let re = regex_lite::Regex::new(&pattern)
        .map_err(|e| err(format!("invalid tag pattern '{pattern}': {e}")))?;
    let out = git.run(
        Some(repo),
        &[
            "for-each-ref",
            "--sort=creatordate",
            "--format=%(refname:short)%00%(objectname)%00%(*objectname)",
            "refs/tags",
        ],
    )?;
    let tags: Vec<Version> = out
        .lines()
        .filter_map(|l| {
            let mut parts = l.split('\0');
            let (name, obj, peeled) = (
                parts.next()?,
                parts.next()?,
                parts.next().unwrap_or_default(),
            );
            let commit = if peeled.is_empty() { obj } else { peeled };
            re.is_match(name).then(|| {
                let mut v = ref_version(name);
                v.insert("commit".into(), commit.to_string());
                v
            })
        })
        .collect();
    let from = version
        .and_then(|v| v.get("ref"))
        .and_then(|r| tags.iter().position(|t| t.get("ref") == Some(r)));
    Ok(match from {
        Some(i) => tags[i..].to_vec(),
        None => tags.last().cloned().into_iter().collect(),
    })
}

fn get(
    source: &Source,
    dir: &Path,
    version: &Version,
    params: &Map<String, Value>,
) -> Result<VersionResult, ResourceError> {
    let git = Git { source };
    let reference = version
        .get("ref")
        .ok_or_else(|| err("version has no ref"))?;
    let commit = version.get("commit").unwrap_or(reference);
    let dest = dir
        .to_str()
        .ok_or_else(|| err("destination is not UTF-8"))?;
    let mut args = vec!["clone", "--quiet"];
    let depth = params
        .get("depth")
        .and_then(Value::as_u64)
        .map(|d| d.to_string());
    if let Some(d) = &depth {
        args.extend(["--depth", d.as_str()]);
    }
    if let Some(b) = &source.branch {
        args.extend(["--branch", b.as_str()]);
    }
    args.extend([source.uri.as_str(), dest]);
    git.run(None, &args)?;
    if source.fetch_tags
        || params
            .get("fetch_tags")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    {
        git.run(Some(dir), &["fetch", "--quiet", "--tags", "origin"])?;
    }
    git.run(
        Some(dir),
        &[
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            commit,
        ],
    )?;
    if let Some(b) = &source.branch {
        // Leave the branch pointing at the fetched commit, like upstream's reset --hard.
        git.run(Some(dir), &["checkout", "--quiet", "-B", b])?;
    }
    let show = |fmt: &str| {
        git.run(
            Some(dir),
            &["log", "-1", &format!("--format={fmt}"), "HEAD"],
        )
        .map(|s| s.trim_end_matches('\n').to_string())
    };
    let sha = show("%H")?;
    let tags = git
        .run(Some(dir), &["tag", "--points-at", "HEAD"])?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(",");
    let files = [
        ("ref", reference.clone()),
        ("commit", sha.clone()),
        ("short_ref", show("%h")?),
        ("branch", source.branch.clone().unwrap_or_default()),
        ("tags", tags.clone()),
        ("author", show("%an")?),
        ("author_date", show("%ad")?),
        ("committer", show("%ce")?),
        ("committer_name", show("%cn")?),
        ("committer_date", show("%cd")?),
        ("commit_message", show("%B")?),
        ("commit_timestamp", show("%ct")?),
        ("url", source.uri.clone()),
    ];
    let git_dir = dir.join(".git");
    for (name, contents) in &files {
        std::fs::write(git_dir.join(name), contents)
            .map_err(|e| err(format!("writing .git/{name}: {e}")))?;
    }
    let mut metadata = vec![
        MetadataField {
            name: "commit".into(),
            value: sha,
        },
        MetadataField {
            name: "author".into(),
            value: show("%an")?,
        },
        MetadataField {
            name: "author_date".into(),
            value: show("%ad")?,
        },
        MetadataField {
            name: "committer".into(),
            value: show("%cn")?,
        },
        MetadataField {
            name: "committer_date".into(),
            value: show("%cd")?,
        },
    ];
    if let Some(b) = &source.branch {
        metadata.push(MetadataField {
            name: "branch".into(),
            value: b.clone(),
        });
    }
    if !tags.is_empty() {
        metadata.push(MetadataField {
            name: "tags".into(),
            value: tags,
        });
    }
    metadata.push(MetadataField {
        name: "message".into(),
        value: show("%B")?.trim().to_string(),
    });
    let json: Map<String, Value> = metadata
        .iter()
        .map(|m| (m.name.clone(), Value::String(m.value.clone())))
        .collect();
    std::fs::write(
        git_dir.join("metadata.json"),
        Value::Object(json).to_string(),
    )
    .map_err(|e| err(format!("writing metadata: {e}")))?;
    Ok(VersionResult {
        version: version.clone(),
        metadata,
    })
}

fn put(
    source: &Source,
    dir: &Path,
    params: &Map<String, Value>,
    log: &mut dyn Write,
) -> Result<VersionResult, ResourceError> {
    let git = Git { source };
    let repository = params
        .get("repository")
        .and_then(Value::as_str)
        .ok_or_else(|| err("invalid payload (missing repository)"))?;
    let repo = dir.join(repository);
    let branch = params
        .get("branch")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| source.branch.clone());
    let Some(branch) = branch else {
        return Err(err("invalid payload (missing branch)"));
    };
    let force = params
        .get("force")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let rebase = params
        .get("rebase")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(tag_file) = params.get("tag").and_then(Value::as_str) {
        let prefix = params
            .get("tag_prefix")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = std::fs::read_to_string(dir.join(tag_file))
            .map_err(|e| err(format!("reading tag file {tag_file}: {e}")))?;
        let tag = format!("{prefix}{}", name.trim());
        git.run(Some(&repo), &["tag", "-f", &tag])?;
        git.run(
            Some(&repo),
            &[
                "push",
                "--quiet",
                "--force",
                &source.uri,
                &format!("refs/tags/{tag}"),
            ],
        )?;
        let _ = writeln!(log, "tagged {tag}");
    }
    let only_tag = params
        .get("only_tag")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !only_tag {
        let refspec = format!("HEAD:refs/heads/{branch}");
        let mut push = vec!["push", "--quiet"];
        if force {
            push.push("--force");
        }
        push.extend([source.uri.as_str(), refspec.as_str()]);
        if git.run(Some(&repo), &push).is_err() && rebase {
            let _ = writeln!(log, "push rejected, rebasing onto {branch}");
            git.run(
                Some(&repo),
                &[
                    "fetch",
                    "--quiet",
                    &source.uri,
                    &format!("refs/heads/{branch}"),
                ],
            )?;
            git.run(Some(&repo), &["rebase", "--quiet", "FETCH_HEAD"])?;
            git.run(Some(&repo), &push)?;
        } else if !force {
            // Report the real failure when there is no rebase to try.
            git.run(
                Some(&repo),
                &["push", "--quiet", "--dry-run", &source.uri, &refspec],
            )?;
        }
    }
    let sha = git
        .run(Some(&repo), &["rev-parse", "HEAD"])?
        .trim()
        .to_string();
    Ok(VersionResult {
        version: ref_version(&sha),
        metadata: vec![],
    })
}

pub fn run(
    action: &str,
    dir: Option<&str>,
    request: &[u8],
    log: &mut dyn Write,
) -> Result<Value, ResourceError> {
    let req: Request =
        serde_json::from_slice(request).map_err(|e| err(format!("invalid payload: {e}")))?;
    let source = parse_source(req.source)?;
    if source.private_key.is_some() || source.username.is_some() || source.password.is_some() {
        let _ = writeln!(
            log,
            "warning: private_key/username/password are not supported by the built-in git type yet"
        );
    }
    if source.debug {
        let _ = writeln!(log, "checking {}", source.uri);
    }
    let params = req.params.unwrap_or_default();
    let out = match action {
        "check" => serde_json::to_value(check(&source, req.version.as_ref())?),
        "in" => {
            let version = req.version.ok_or_else(|| err("no version given"))?;
            serde_json::to_value(get(
                &source,
                Path::new(require_dir(action, dir)?),
                &version,
                &params,
            )?)
        }
        "out" => serde_json::to_value(put(
            &source,
            Path::new(require_dir(action, dir)?),
            &params,
            log,
        )?),
        other => return Err(err(format!("unknown action '{other}' (check, in, out)"))),
    };
    out.map_err(|e| err(format!("encoding response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_source_fields_read_as_absent() {
        crate::resources::assert_null_is_absent::<Source>(
            serde_json::json!({"uri": "https://example.com/repo.git"}),
            &[
                "branch",
                "paths",
                "ignore_paths",
                "tag_filter",
                "tag_regex",
                "disable_ci_skip",
                "git_config",
                "skip_ssl_verification",
                "fetch_tags",
                "version_depth",
                "private_key",
                "username",
                "password",
                "debug",
            ],
        );
        crate::resources::assert_null_is_absent::<Request>(
            serde_json::json!({"source": {}}),
            &["params", "version"],
        );
    }
}
