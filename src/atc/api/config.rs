//! `GET/PUT .../pipelines/:pipeline/config`: the pipeline config with optimistic
//! concurrency through `X-Concourse-Config-Version` (atc-api.md §4.1).

use super::error::{ApiError, ApiResult};
use super::scope;
use super::scope::{PipelineScope, TeamScope};
use super::{json, AppState};
use crate::config;
use crate::db::StoreError;
use crate::proto::api::{ConfigResponse, SaveConfigResponse, CONFIG_VERSION_HEADER};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub async fn get(State(state): State<AppState>, t: PipelineScope) -> ApiResult<Response> {
    let (config, version) = state
        .store
        .pipeline_config(t.pipeline.id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mut resp = json(&ConfigResponse { config });
    if let Ok(v) = version.to_string().parse() {
        resp.headers_mut().insert(CONFIG_VERSION_HEADER, v);
    }
    Ok(resp)
}

/// Every `((var))` named in a JSON value (strings and map keys).
fn collect_vars(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.extend(config::vars::var_names(s)),
        Value::Array(a) => a.iter().for_each(|x| collect_vars(x, out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            out.extend(config::vars::var_names(k));
            collect_vars(x, out);
        }),
        _ => {}
    }
}

/// `?check_creds`: resolves what upstream resolves at save time (resource and resource
/// type sources, webhook tokens, the params, vars and inline task configs of each job's
/// top-level steps) against the cluster's credential manager. This build has none
/// configured, so every var there is undefined; the message is upstream's.
fn check_credentials(config_json: &Value) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut check = |v: &Value| {
        let mut names = Vec::new();
        collect_vars(v, &mut names);
        names.dedup();
        if !names.is_empty() {
            errors.push(format!("undefined vars: {}", names.join(", ")));
        }
    };
    let items = |key: &str| {
        config_json
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for t in items("resource_types") {
        check(&t["source"]);
    }
    for r in items("resources") {
        check(&r["source"]);
        check(&r["webhook_token"]);
    }
    for job in items("jobs") {
        for step in job["plan"].as_array().cloned().unwrap_or_default() {
            for key in ["params", "vars", "config"] {
                check(&step[key]);
            }
        }
    }
    match errors.len() {
        0 => Ok(()),
        n => {
            let list: String = errors.iter().map(|e| format!("\t* {e}\n")).collect();
            let noun = if n == 1 { "error" } else { "errors" };
            Err(format!(
                "credential validation failed\n\n{n} {noun} occurred:\n{list}\n"
            ))
        }
    }
}

pub async fn save(
    State(state): State<AppState>,
    TeamScope { team: team_row, .. }: TeamScope,
    Path((team, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    if !matches!(
        mime,
        "application/x-yaml" | "application/json" | "application/yaml" | "text/yaml"
    ) {
        return Err(ApiError::Status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            String::new(),
        ));
    }
    let expected_version = match headers
        .get(CONFIG_VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        None | Some("") => 0,
        Some(v) => v.parse::<i64>().map_err(|e| {
            ApiError::config_errors(vec![format!("config version is malformed: {e}")], vec![])
        })?,
    };
    let instance_vars = scope::instance_vars(q.as_deref())?;

    let parsed = config::parse_pipeline(&body)
        .map_err(|e| ApiError::config_errors(vec![format!("malformed config: {e}")], vec![]))?;
    let validation = config::validate_pipeline(&parsed);
    let mut warnings = validation.warnings;
    warnings.extend(config::identifier_warning("pipeline", &name));
    // Upstream answers validation failures with the errors only.
    if !validation.errors.is_empty() {
        return Err(ApiError::config_errors(validation.errors, vec![]));
    }
    let config_json = config::to_json(&parsed);
    let check_creds = q.as_deref().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "check_creds")
    });
    if check_creds {
        check_credentials(&config_json).map_err(|e| ApiError::config_errors(vec![e], vec![]))?;
    }
    let save = crate::atc::pipelines::save_request(
        &parsed,
        team_row.id,
        &name,
        instance_vars,
        expected_version,
        crate::atc::pipelines::Parent::default(),
    );
    let saved = match state.store.save_pipeline(&save).await {
        Ok(s) => s,
        Err(StoreError::ConfigVersionConflict) => {
            return Err(ApiError::Status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to save config: comparison with existing config failed during save".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(team = %team, pipeline = %name, created = saved.created, "saved pipeline config");
    // A job removed or renamed by this save no longer sets its children.
    super::pipelines::archive_children(&state).await;
    let status = if saved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        json(&SaveConfigResponse {
            errors: vec![],
            warnings,
        }),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn check_creds_names_every_undefined_var_like_upstream() {
        let cfg = json!({
            "resources": [{"name": "r", "type": "git", "source": {"uri": "((repo))", "private_key": "((key))"}, "webhook_token": "((tok))"}],
            "jobs": [{"name": "j", "plan": [{"get": "r"}, {"task": "t", "params": {"A": "((a))"}}]}]
        });
        let err = check_credentials(&cfg).expect_err("undefined vars");
        assert_eq!(
            err,
            "credential validation failed\n\n3 errors occurred:\n\t* undefined vars: repo, key\n\t* undefined vars: tok\n\t* undefined vars: a\n\n"
        );
        assert!(check_credentials(&json!({"jobs": [{"name": "j", "plan": [{"task": "t", "config": {"run": {"path": "ls"}}}]}]})).is_ok());
    }
}
