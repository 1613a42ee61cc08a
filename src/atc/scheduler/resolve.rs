//! Input resolution (pipeline-config.md §9.2): for one job, pick a version for every
//! input from the versions history, honouring `version: latest | every | {pinned}`,
//! disabled versions and `passed` constraints. Inputs whose `passed` lists share a job
//! are resolved together: for each shared upstream job, their versions must come from
//! the same successful build of it. Pure: the caller loads a [`VersionsDb`] snapshot.

use std::collections::HashMap;

pub type ResourceId = i64;
pub type VersionId = i64;
pub type JobId = i64;
pub type BuildId = i64;

/// A snapshot of what the scheduler needs from the database for one pipeline.
#[derive(Debug, Default, Clone)]
pub struct VersionsDb {
    /// Enabled versions of each resource, oldest first (check order).
    versions: HashMap<ResourceId, Vec<VersionId>>,
    /// Position of each version in its resource's list.
    order: HashMap<VersionId, usize>,
    /// Successful builds of each job, newest first.
    builds: HashMap<JobId, Vec<BuildId>>,
    /// What each successful build "passed on" per resource: its output if it put the
    /// resource, else its input.
    passed: HashMap<BuildId, HashMap<ResourceId, VersionId>>,
    /// Builds of a job that passed on a version, newest first: (job, version) → builds.
    by_version: HashMap<(JobId, VersionId), Vec<BuildId>>,
}

impl VersionsDb {
    /// Adds a version to the end of a resource's history (the newest).
    pub fn add_version(&mut self, resource: ResourceId, version: VersionId) {
        let list = self.versions.entry(resource).or_default();
        self.order.insert(version, list.len());
        list.push(version);
    }

    /// Records a successful build; call in build order (oldest first).
    pub fn add_successful_build(
        &mut self,
        job: JobId,
        build: BuildId,
        inputs: &[(ResourceId, VersionId)],
        outputs: &[(ResourceId, VersionId)],
    ) {
        let mut passed: HashMap<ResourceId, VersionId> = inputs.iter().copied().collect();
        // A build that both got and put a resource passes on what it put.
        passed.extend(outputs.iter().copied());
        for &v in passed.values() {
            self.by_version
                .entry((job, v))
                .or_default()
                .insert(0, build);
        }
        self.builds.entry(job).or_default().insert(0, build);
        self.passed.insert(build, passed);
    }

    fn latest(&self, resource: ResourceId) -> Option<VersionId> {
        self.versions.get(&resource).and_then(|v| v.last().copied())
    }

    fn is_enabled(&self, resource: ResourceId, version: VersionId) -> bool {
        self.order
            .get(&version)
            .is_some_and(|&i| self.versions.get(&resource).and_then(|v| v.get(i)) == Some(&version))
    }

    fn newer(&self, a: VersionId, b: VersionId) -> bool {
        self.order.get(&a).copied().unwrap_or(0) > self.order.get(&b).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum VersionChoice {
    Latest,
    Every,
    /// A pinned version, already looked up (None when the pin matches nothing).
    Pinned(Option<VersionId>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct InputConfig {
    pub name: String,
    pub resource: ResourceId,
    pub version: VersionChoice,
    pub passed: Vec<JobId>,
    /// The version this job used last for this input (for `every`).
    pub last_used: Option<VersionId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedInput {
    pub name: String,
    pub resource: ResourceId,
    pub version: VersionId,
    /// For `passed` inputs: the upstream builds the version came through.
    pub passed_builds: Vec<BuildId>,
}

/// Why an input could not be resolved, in upstream's words.
#[derive(Debug, Clone, PartialEq)]
pub enum Unresolved {
    LatestNotFound,
    PinnedNotFound,
    NoSatisfiableBuilds,
}

impl Unresolved {
    pub fn message(&self, pinned: Option<&str>) -> String {
        match self {
            Unresolved::LatestNotFound => "latest version of resource not found".into(),
            Unresolved::PinnedNotFound => {
                format!("pinned version {} not found", pinned.unwrap_or("{}"))
            }
            Unresolved::NoSatisfiableBuilds => {
                "no satisfiable builds from passed jobs found for set of inputs".into()
            }
        }
    }
}

pub type Resolution = Result<Vec<ResolvedInput>, HashMap<String, Unresolved>>;

/// Resolves every input of one job.
pub fn resolve(db: &VersionsDb, inputs: &[InputConfig]) -> Resolution {
    let mut failures = HashMap::new();
    let mut resolved: Vec<Option<ResolvedInput>> = vec![None; inputs.len()];
    let mut constrained = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        if input.passed.is_empty() {
            match resolve_independent(db, input) {
                Ok(v) => {
                    resolved[i] = Some(ResolvedInput {
                        name: input.name.clone(),
                        resource: input.resource,
                        version: v,
                        passed_builds: vec![],
                    })
                }
                Err(e) => {
                    failures.insert(input.name.clone(), e);
                }
            }
        } else {
            constrained.push(i);
        }
    }
    if !constrained.is_empty() {
        let mut chosen: HashMap<JobId, BuildId> = HashMap::new();
        let mut picks: Vec<(VersionId, Vec<BuildId>)> = Vec::new();
        if search(db, inputs, &constrained, 0, &mut chosen, &mut picks) {
            for (k, &i) in constrained.iter().enumerate() {
                let (version, builds) = picks[k].clone();
                resolved[i] = Some(ResolvedInput {
                    name: inputs[i].name.clone(),
                    resource: inputs[i].resource,
                    version,
                    passed_builds: builds,
                });
            }
        } else {
            for &i in &constrained {
                let reason = match inputs[i].version {
                    VersionChoice::Pinned(None) => Unresolved::PinnedNotFound,
                    _ => Unresolved::NoSatisfiableBuilds,
                };
                failures.insert(inputs[i].name.clone(), reason);
            }
        }
    }
    if failures.is_empty() {
        Ok(resolved.into_iter().flatten().collect())
    } else {
        Err(failures)
    }
}

fn resolve_independent(db: &VersionsDb, input: &InputConfig) -> Result<VersionId, Unresolved> {
    match input.version {
        VersionChoice::Pinned(Some(v)) if db.is_enabled(input.resource, v) => Ok(v),
        VersionChoice::Pinned(_) => Err(Unresolved::PinnedNotFound),
        VersionChoice::Latest => db.latest(input.resource).ok_or(Unresolved::LatestNotFound),
        VersionChoice::Every => {
            let versions = db
                .versions
                .get(&input.resource)
                .filter(|v| !v.is_empty())
                .ok_or(Unresolved::LatestNotFound)?;
            match input.last_used.and_then(|u| db.order.get(&u).copied()) {
                // Never used: start at the newest; history before it is skipped.
                None => versions.last().copied().ok_or(Unresolved::LatestNotFound),
                Some(pos) => Ok(versions
                    .get(pos + 1)
                    .or(versions.get(pos))
                    .copied()
                    .unwrap_or(versions[versions.len() - 1])),
            }
        }
    }
}

/// Candidate versions for a constrained input, in preference order, each with the builds
/// of its first passed job that carry it.
fn candidates(db: &VersionsDb, input: &InputConfig) -> Vec<VersionId> {
    let first = input.passed[0];
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<VersionId> = db
        .builds
        .get(&first)
        .map(|bs| {
            bs.iter()
                .filter_map(|b| {
                    db.passed
                        .get(b)
                        .and_then(|p| p.get(&input.resource))
                        .copied()
                })
                .filter(|v| seen.insert(*v))
                .collect()
        })
        .unwrap_or_default();
    out.retain(|&v| db.is_enabled(input.resource, v));
    match &input.version {
        VersionChoice::Pinned(Some(p)) => out.retain(|v| v == p),
        VersionChoice::Pinned(None) => out.clear(),
        VersionChoice::Every => {
            // The next one in order after the last used, then older fallbacks.
            if let Some(last) = input.last_used {
                let (mut newer, older): (Vec<_>, Vec<_>) =
                    out.into_iter().partition(|&v| db.newer(v, last));
                newer.sort_by_key(|v| db.order.get(v).copied().unwrap_or(0));
                newer.extend(older);
                out = newer;
            }
        }
        VersionChoice::Latest => {
            out.sort_by_key(|v| std::cmp::Reverse(db.order.get(v).copied().unwrap_or(0)))
        }
    }
    out
}

/// Backtracking over constrained inputs: `chosen` pins a build per upstream job once an
/// earlier input has committed to it.
fn search(
    db: &VersionsDb,
    inputs: &[InputConfig],
    order: &[usize],
    k: usize,
    chosen: &mut HashMap<JobId, BuildId>,
    picks: &mut Vec<(VersionId, Vec<BuildId>)>,
) -> bool {
    let Some(&i) = order.get(k) else { return true };
    let input = &inputs[i];
    for v in candidates(db, input) {
        if assign(
            db,
            input,
            v,
            0,
            chosen,
            &mut Vec::new(),
            inputs,
            order,
            k,
            picks,
        ) {
            return true;
        }
    }
    false
}

/// Chooses, for each passed job of `input` from `j` on, a build carrying `v` consistent
/// with `chosen`; then recurses to the next input.
#[allow(clippy::too_many_arguments)]
fn assign(
    db: &VersionsDb,
    input: &InputConfig,
    v: VersionId,
    j: usize,
    chosen: &mut HashMap<JobId, BuildId>,
    builds: &mut Vec<BuildId>,
    inputs: &[InputConfig],
    order: &[usize],
    k: usize,
    picks: &mut Vec<(VersionId, Vec<BuildId>)>,
) -> bool {
    let Some(&job) = input.passed.get(j) else {
        picks.push((v, builds.clone()));
        if search(db, inputs, order, k + 1, chosen, picks) {
            return true;
        }
        picks.pop();
        return false;
    };
    if let Some(&b) = chosen.get(&job) {
        // The build an earlier input committed to must carry this version too.
        if db.passed.get(&b).and_then(|p| p.get(&input.resource)) == Some(&v) {
            builds.push(b);
            let ok = assign(db, input, v, j + 1, chosen, builds, inputs, order, k, picks);
            builds.pop();
            return ok;
        }
        return false;
    }
    let Some(candidates) = db.by_version.get(&(job, v)) else {
        return false;
    };
    for &b in candidates {
        chosen.insert(job, b);
        builds.push(b);
        if assign(db, input, v, j + 1, chosen, builds, inputs, order, k, picks) {
            return true;
        }
        builds.pop();
        chosen.remove(&job);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, resource: ResourceId, passed: &[JobId]) -> InputConfig {
        InputConfig {
            name: name.into(),
            resource,
            version: VersionChoice::Latest,
            passed: passed.to_vec(),
            last_used: None,
        }
    }

    #[test]
    fn latest_every_and_pinned_without_passed() {
        let mut db = VersionsDb::default();
        for v in [10, 11, 12] {
            db.add_version(1, v);
        }
        assert_eq!(
            resolve(&db, &[input("a", 1, &[])]).expect("ok")[0].version,
            12
        );
        let mut every = input("a", 1, &[]);
        every.version = VersionChoice::Every;
        assert_eq!(
            resolve(&db, std::slice::from_ref(&every)).expect("ok")[0].version,
            12,
            "never used: newest"
        );
        every.last_used = Some(10);
        assert_eq!(
            resolve(&db, std::slice::from_ref(&every)).expect("ok")[0].version,
            11,
            "then the next one"
        );
        every.last_used = Some(12);
        assert_eq!(
            resolve(&db, std::slice::from_ref(&every)).expect("ok")[0].version,
            12,
            "nothing newer: stays"
        );
        let mut pinned = input("a", 1, &[]);
        pinned.version = VersionChoice::Pinned(Some(10));
        assert_eq!(resolve(&db, &[pinned]).expect("ok")[0].version, 10);
        let err = resolve(&db, &[input("b", 2, &[])]).expect_err("no versions");
        assert_eq!(
            err["b"].message(None),
            "latest version of resource not found"
        );
    }

    #[test]
    fn passed_picks_versions_that_went_through_upstream() {
        let mut db = VersionsDb::default();
        for v in [10, 11] {
            db.add_version(1, v);
        }
        db.add_successful_build(100, 1, &[(1, 10)], &[]);
        let r = resolve(&db, &[input("a", 1, &[100])]).expect("ok");
        assert_eq!(r[0].version, 10, "11 has not passed job 100");
        let err = resolve(&db, &[input("a", 1, &[200])]).expect_err("nothing passed");
        assert_eq!(
            err["a"].message(None),
            "no satisfiable builds from passed jobs found for set of inputs"
        );
    }

    #[test]
    fn a_put_supersedes_the_input_downstream() {
        let mut db = VersionsDb::default();
        for v in [10, 11, 12] {
            db.add_version(1, v);
        }
        db.add_successful_build(100, 1, &[(1, 11)], &[(1, 10)]);
        assert_eq!(
            resolve(&db, &[input("a", 1, &[100])]).expect("ok")[0].version,
            10
        );
    }

    #[test]
    fn shared_upstream_jobs_give_versions_from_one_build() {
        let mut db = VersionsDb::default();
        for v in [10, 11] {
            db.add_version(1, v);
        }
        for v in [20, 21] {
            db.add_version(2, v);
        }
        // Build 1 ran (10, 20), build 2 ran (11, 20); job 300 saw only app 11 with config 21.
        db.add_successful_build(100, 1, &[(1, 10), (2, 20)], &[]);
        db.add_successful_build(100, 2, &[(1, 11), (2, 20)], &[]);
        let r = resolve(&db, &[input("app", 1, &[100]), input("config", 2, &[100])]).expect("ok");
        assert_eq!((r[0].version, r[1].version), (11, 20));
        assert_eq!(r[0].passed_builds, vec![2]);
        assert_eq!(r[1].passed_builds, vec![2]);
        // Requiring both 100 and 200 for app: 200 only has 10.
        db.add_successful_build(200, 3, &[(1, 10)], &[]);
        let r = resolve(
            &db,
            &[input("app", 1, &[100, 200]), input("config", 2, &[100])],
        )
        .expect("ok");
        assert_eq!((r[0].version, r[1].version), (10, 20));
        assert_eq!(r[0].passed_builds, vec![1, 3]);
    }

    #[test]
    fn disabled_versions_are_never_chosen() {
        let mut db = VersionsDb::default();
        db.add_version(1, 10);
        db.add_successful_build(100, 1, &[(1, 10)], &[]);
        db.add_successful_build(100, 2, &[(1, 99)], &[]); // 99 is not an enabled version
        assert_eq!(
            resolve(&db, &[input("a", 1, &[100])]).expect("ok")[0].version,
            10
        );
    }
}
