//! The set_pipeline step: renders a config file from an artifact with the step's vars and
//! var files, validates it and saves it (unpaused) as a child of this build's job.

use super::exec::{Build, Scope};
use super::plan::{Plan, SetPipelinePlan};
use super::runtime::{errored, StepResult};
use super::steps::read_artifact_file;
use crate::db::StoreError;
use crate::proto::event::{self as ev, BuildEvent};
use serde_json::Value;
use std::sync::Arc;

pub async fn run(
    b: &Arc<Build>,
    scope: &Arc<Scope>,
    plan: &Plan,
    s: &SetPipelinePlan,
) -> StepResult {
    let origin = b.origin(plan);
    origin.emit(BuildEvent::Initialize(Default::default()));
    origin.emit(BuildEvent::Start(Default::default()));
    let store = &b.rt.store;
    let (name, mut instance_vars) = if s.name == "self" {
        (
            b.row.pipeline_name.clone(),
            b.row.pipeline_instance_vars.clone(),
        )
    } else {
        (s.name.clone(), None)
    };
    if !s.instance_vars.is_empty() {
        instance_vars = Some(Value::Object(s.instance_vars.clone()));
    }
    let team_name = if s.team.is_empty() {
        b.row.team_name.clone()
    } else {
        s.team.clone()
    };
    let current = store.team(&b.row.team_name).await.map_err(errored)?;
    if team_name != b.row.team_name && !current.as_ref().is_some_and(|t| t.admin) {
        return Err(errored("only main team can set another team's pipeline"));
    }
    let team = store
        .team(&team_name)
        .await
        .map_err(errored)?
        .ok_or_else(|| errored(format!("team {team_name} not found")))?;

    let mut vars = crate::config::StaticVars::builder();
    for f in &s.var_files {
        let bytes = read_artifact_file(b, scope, f).await?;
        vars.var_file(&bytes).map_err(errored)?;
    }
    let mut all = vars.build().0;
    all.extend(s.vars.clone());
    if let Some(Value::Object(iv)) = &instance_vars {
        for (k, v) in iv {
            all.entry(k.clone()).or_insert(v.clone());
        }
    }
    let bytes = read_artifact_file(b, scope, &s.file).await?;
    let rendered = crate::config::render_template_with(&bytes, &all).map_err(errored)?;
    let parsed = crate::config::parse_pipeline(&rendered).map_err(errored)?;
    let validation = crate::config::validate_pipeline(&parsed);
    if !validation.errors.is_empty() {
        return Err(errored(format!(
            "invalid pipeline:\n{}",
            validation.errors.join("\n")
        )));
    }
    let display = match &instance_vars {
        Some(Value::Object(iv)) if !iv.is_empty() => {
            let parts: Vec<String> = iv
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}:{}",
                        v.as_str().map(String::from).unwrap_or(v.to_string())
                    )
                })
                .collect();
            format!("{name}/{}", parts.join(","))
        }
        _ => name.clone(),
    };
    origin.say(&format!("setting pipeline: {display}"));
    let existing = store
        .pipeline(&team.name, &name, instance_vars.as_ref())
        .await
        .map_err(errored)?;
    let new_json = crate::config::to_json(&parsed);
    let (expected, changed) = match &existing {
        Some(p) => {
            let old = store.pipeline_config(p.id).await.map_err(errored)?;
            let changed = old.as_ref().map(|(c, _)| c != &new_json).unwrap_or(true) || p.archived;
            (old.map(|(_, v)| v).unwrap_or(0), changed)
        }
        None => (0, true),
    };
    origin.emit(BuildEvent::SetPipelineChanged(ev::SetPipelineChanged {
        changed,
        ..Default::default()
    }));
    if !changed {
        origin.say("no changes to apply.");
    } else {
        let save = crate::atc::pipelines::save_request(
            &parsed,
            team.id,
            &name,
            instance_vars.clone(),
            expected,
            crate::atc::pipelines::Parent {
                job_id: b.row.job_id.unwrap_or(0),
                build_id: b.row.id,
            },
        );
        match store.save_pipeline(&save).await {
            // A job removed from the set pipeline no longer sets its own children.
            Ok(_) => {
                if let Err(e) = crate::atc::gc::archive_orphaned_children(store.as_ref()).await {
                    tracing::warn!(error = %e, "archiving child pipelines");
                }
            }
            Err(StoreError::ConfigVersionConflict) => {
                return Err(errored("pipeline config changed while saving; try again"))
            }
            Err(e) => return Err(errored(e)),
        }
        origin.say("done");
    }
    origin.emit(BuildEvent::Finish(ev::Finish {
        succeeded: true,
        ..Default::default()
    }));
    Ok(true)
}
