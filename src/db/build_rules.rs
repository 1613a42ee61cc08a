//! Build rules both backends apply around their statements (`sql::BuildSql`): what a rerun
//! needs, when a build may finish, what finishing tells its job, and a page's links.

use super::*;

/// The original of a build to rerun: id, name, team, job, pipeline.
pub(crate) type RerunOf = (i64, String, i64, Option<i64>, Option<i64>);

pub(crate) fn not_a_job_build(build_id: i64) -> StoreError {
    StoreError::Invalid(format!("build {build_id} is not a job build"))
}

/// Only a finished status can finish a build.
pub(crate) fn check_finished(status: BuildStatus) -> Result<()> {
    if status.is_finished() {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{} is not a finished build status",
            status.as_str()
        )))
    }
}

/// A build finishes once: `current` is its stored status.
pub(crate) fn check_unfinished(id: i64, current: &str) -> Result<()> {
    if BuildStatus::parse(current).is_none_or(BuildStatus::is_finished) {
        Err(StoreError::Conflict(format!("build {id} already finished")))
    } else {
        Ok(())
    }
}

/// Whether `build_id` becomes its job's latest finished build (it is the newest to finish),
/// and if so whether it is also the transition build (its status differs from the previous
/// latest's).
pub(crate) fn job_finished(
    latest: Option<i64>,
    latest_status: Option<String>,
    build_id: i64,
    status: BuildStatus,
) -> Option<bool> {
    latest
        .is_none_or(|latest| build_id > latest)
        .then(|| latest_status.as_deref() != Some(status.as_str()))
}

impl PagePlan {
    /// The builds this plan queried, newest first.
    pub fn page(&self, mut builds: Vec<BuildRow>) -> BuildsPage {
        if self.ascending {
            builds.reverse();
        }
        BuildsPage {
            builds,
            older: None,
            newer: None,
        }
    }

    /// Links the page to the builds just `older` and `newer` than it.
    pub fn link(&self, page: &mut BuildsPage, older: Option<i64>, newer: Option<i64>) {
        page.older = older.map(|id| Page {
            to: Some(id),
            limit: self.limit,
            ..Page::default()
        });
        page.newer = newer.map(|id| Page {
            from: Some(id),
            limit: self.limit,
            ..Page::default()
        });
    }
}

impl BuildsPage {
    /// The ids of the newest and the oldest build, unless the page is empty.
    pub(crate) fn ends(&self) -> Option<(i64, i64)> {
        Some((self.builds.first()?.id, self.builds.last()?.id))
    }
}
