//! The dashboard's status rules (web-ui.md §4): a pipeline's colour and "since" time from
//! its jobs, a job box's colour, and the preview's columns by `passed` depth.

use serde::Serialize;
use std::collections::HashMap;

/// Pipeline status, most important first in the order the card shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PipelineStatus {
    Archived,
    Paused,
    Failed,
    Errored,
    Aborted,
    Succeeded,
    Pending,
}

/// What the rules need of one job.
#[derive(Debug, Clone, Default)]
pub struct JobState<'a> {
    pub paused: bool,
    /// Status of the latest finished build.
    pub finished: Option<&'a str>,
    /// A pending or started build exists.
    pub running: bool,
    /// End time of the build where the job's status last changed.
    pub transition_end: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelineSummary {
    pub status: PipelineStatus,
    pub running: bool,
    /// Since when the pipeline has had this status (unix seconds), when known.
    pub transition_time: Option<i64>,
}

/// Severity of a finished status; `pending` (no finished build) is the least.
fn severity(status: Option<&str>) -> u8 {
    match status {
        Some("failed") => 4,
        Some("errored") => 3,
        Some("aborted") => 2,
        Some("succeeded") => 1,
        _ => 0,
    }
}

pub fn pipeline_status(archived: bool, paused: bool, jobs: &[JobState]) -> PipelineSummary {
    let active: Vec<&JobState> = jobs.iter().filter(|j| !j.paused).collect();
    let running = active.iter().any(|j| j.running);
    let worst = active
        .iter()
        .map(|j| severity(j.finished))
        .max()
        .unwrap_or(0);
    let status = if archived {
        PipelineStatus::Archived
    } else if paused {
        PipelineStatus::Paused
    } else {
        match worst {
            4 => PipelineStatus::Failed,
            3 => PipelineStatus::Errored,
            2 => PipelineStatus::Aborted,
            1 => PipelineStatus::Succeeded,
            _ => PipelineStatus::Pending,
        }
    };
    // Broken since the earliest transition among the jobs that are not green; green since
    // the latest one.
    let failing: Vec<i64> = active
        .iter()
        .filter(|j| j.finished.is_some_and(|s| s != "succeeded"))
        .filter_map(|j| j.transition_end)
        .collect();
    let transition_time = if failing.is_empty() {
        active.iter().filter_map(|j| j.transition_end).max()
    } else {
        failing.into_iter().min()
    };
    PipelineSummary {
        status,
        running,
        transition_time: transition_time.filter(|t| *t > 0),
    }
}

/// The colour of a job's box: paused wins, then its latest finished build, else pending.
pub fn job_status<'a>(job: &JobState<'a>) -> &'a str {
    if job.paused {
        "paused"
    } else {
        job.finished.unwrap_or("pending")
    }
}

/// Preview columns: a job's depth is 1 + the deepest job named in its inputs' `passed`
/// (0 without). `passed` naming an unknown job, or a cycle, counts as depth 0 there.
pub fn job_depths(jobs: &[(&str, Vec<&str>)]) -> Vec<usize> {
    let index: HashMap<&str, usize> = jobs.iter().enumerate().map(|(i, j)| (j.0, i)).collect();
    let mut depth: Vec<Option<usize>> = vec![None; jobs.len()];
    fn visit(
        i: usize,
        jobs: &[(&str, Vec<&str>)],
        index: &HashMap<&str, usize>,
        depth: &mut Vec<Option<usize>>,
        on_path: &mut Vec<bool>,
    ) -> usize {
        if let Some(d) = depth[i] {
            return d;
        }
        on_path[i] = true;
        let mut d = 0;
        for up in &jobs[i].1 {
            if let Some(&u) = index.get(up) {
                if !on_path[u] {
                    d = d.max(1 + visit(u, jobs, index, depth, on_path));
                }
            }
        }
        on_path[i] = false;
        depth[i] = Some(d);
        d
    }
    let mut on_path = vec![false; jobs.len()];
    (0..jobs.len())
        .map(|i| visit(i, jobs, &index, &mut depth, &mut on_path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(finished: Option<&str>, transition: i64) -> JobState<'_> {
        JobState {
            finished,
            transition_end: Some(transition),
            ..Default::default()
        }
    }

    #[test]
    fn archived_then_paused_win_over_jobs() {
        let jobs = [job(Some("failed"), 5)];
        assert_eq!(
            pipeline_status(true, true, &jobs).status,
            PipelineStatus::Archived
        );
        assert_eq!(
            pipeline_status(false, true, &jobs).status,
            PipelineStatus::Paused
        );
    }

    #[test]
    fn the_most_severe_finished_status_wins() {
        let cases = [
            (
                vec![Some("succeeded"), Some("failed"), Some("errored")],
                PipelineStatus::Failed,
            ),
            (
                vec![Some("succeeded"), Some("aborted"), Some("errored")],
                PipelineStatus::Errored,
            ),
            (
                vec![Some("succeeded"), Some("aborted")],
                PipelineStatus::Aborted,
            ),
            (vec![Some("succeeded"), None], PipelineStatus::Succeeded),
            (vec![None, None], PipelineStatus::Pending),
            (vec![], PipelineStatus::Pending),
        ];
        for (statuses, want) in cases {
            let jobs: Vec<JobState> = statuses.iter().map(|s| job(*s, 1)).collect();
            assert_eq!(
                pipeline_status(false, false, &jobs).status,
                want,
                "{statuses:?}"
            );
        }
    }

    #[test]
    fn paused_jobs_do_not_count() {
        let mut failed = job(Some("failed"), 3);
        failed.paused = true;
        failed.running = true;
        let jobs = [failed, job(Some("succeeded"), 4)];
        let s = pipeline_status(false, false, &jobs);
        assert_eq!(s.status, PipelineStatus::Succeeded);
        assert!(!s.running);
        assert_eq!(job_status(&jobs[0]), "paused");
        assert_eq!(job_status(&jobs[1]), "succeeded");
        assert_eq!(job_status(&JobState::default()), "pending");
    }

    #[test]
    fn running_is_any_job_with_a_next_build() {
        let mut j = job(Some("succeeded"), 1);
        j.running = true;
        assert!(pipeline_status(false, false, &[j, job(None, 0)]).running);
    }

    #[test]
    fn transition_is_earliest_breakage_else_latest_success() {
        let broken = [
            job(Some("failed"), 50),
            job(Some("errored"), 20),
            job(Some("succeeded"), 90),
        ];
        assert_eq!(
            pipeline_status(false, false, &broken).transition_time,
            Some(20)
        );
        let green = [job(Some("succeeded"), 50), job(Some("succeeded"), 90)];
        assert_eq!(
            pipeline_status(false, false, &green).transition_time,
            Some(90)
        );
        assert_eq!(
            pipeline_status(false, false, &[job(None, 0)]).transition_time,
            None
        );
    }

    #[test]
    fn depth_follows_passed_and_survives_cycles_and_unknown_jobs() {
        let jobs = vec![
            ("unit", vec![]),
            ("build", vec!["unit"]),
            ("ship", vec!["build", "unit"]),
            ("lint", vec!["nope"]),
            ("a", vec!["b"]),
            ("b", vec!["a"]),
        ];
        let d = job_depths(&jobs);
        assert_eq!(&d[..4], &[0, 1, 2, 0]);
        assert!(d[4] <= 1 && d[5] <= 1);
    }
}
