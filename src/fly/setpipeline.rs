//! `set-pipeline`: render vars locally, diff against the stored config, confirm, upload
//! the rendered YAML with the remembered config version (spec fly-cli.md §4.2).

use super::cli::SetPipelineArgs;
use super::client::{check_status, pipeline_path, FlyError, Target};
use super::diff::diff_configs;
use super::{ui, vars, yaml, Global};
use crate::config;
use crate::config::refs::PipelineRef;
use crate::proto::api::{self, ConfigWarning, CONFIG_VERSION_HEADER};
use anyhow::{anyhow, bail, Result};
use serde_json::Value;

/// Upstream's `displayhelpers.ShowWarnings`, to stderr.
pub fn show_warnings(warnings: &[ConfigWarning]) {
    if warnings.is_empty() {
        return;
    }
    let tty = ui::stderr_is_tty();
    eprintln!();
    eprintln!("{}", ui::paint("DEPRECATION WARNING:", ui::BOLD_RED, tty));
    for w in warnings {
        eprintln!("  - {}", w.message);
    }
    eprintln!();
    if warnings.iter().any(|w| w.kind == "invalid_identifier") {
        eprintln!("identifier schema documentation: https://concourse-ci.org/config-basics.html#schema.identifier");
        eprintln!();
    }
}

/// Upstream's `displayhelpers.ShowErrors`, to stderr.
pub fn show_errors(header: &str, errors: &[String]) {
    let tty = ui::stderr_is_tty();
    eprintln!();
    eprintln!("{}", ui::paint("WARNING:", ui::BLINK_WHITE_ON_RED, tty));
    eprintln!("{header}:");
    for e in errors {
        eprintln!("  - {e}");
    }
    eprintln!();
}

/// `?vars...` for the web URL of an instanced pipeline, like Go's `url.Values.Encode()`.
pub fn web_query(pipeline: &PipelineRef) -> String {
    let pairs = pipeline.query();
    if pairs.is_empty() {
        return String::new();
    }
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        ser.append_pair(k, v);
    }
    format!("?{}", ser.finish())
}

pub async fn set_pipeline(g: &Global, a: &SetPipelineArgs) -> Result<()> {
    if a.pipeline.contains('/') {
        bail!("pipeline name cannot contain '/'");
    }
    let target = Target::load(g.target.as_deref(), g.verbose)?;
    target.validate().await?;
    let team = target.resolve_team(a.team.as_deref()).await?;
    let mut warnings: Vec<ConfigWarning> = Vec::new();
    if let Some(t) = a.team.as_deref() {
        warnings.extend(config::identifier_warning("team", t));
    }

    let non_interactive = a.non_interactive || a.config == "-";
    let template = super::read_path(&a.config)?;
    let (static_vars, instance_vars) = vars::static_vars(&a.vars, &a.instance_var)?;
    let pipeline = PipelineRef {
        name: a.pipeline.clone(),
        instance_vars: (!instance_vars.is_empty()).then_some(instance_vars),
    };
    let rendered = config::render_template(&template, &static_vars).map_err(|e| anyhow!("{e}"))?;
    // Like upstream's `yaml.Unmarshal`: unknown keys are the server's to refuse.
    let new_config =
        config::parse_rendered_pipeline(&rendered, &template, config::ParseMode::Lenient)
            .map_err(|e| anyhow!("{e}"))?;
    let new_json = config::to_json(&new_config);
    warnings.extend(config::validate_pipeline(&new_config).warnings);

    let c = &target.client;
    let path = pipeline_path(&team, &pipeline);
    let query = pipeline.query();
    let (existing, version) = match c.send(c.get(&format!("{path}/config")).query(&query)).await {
        Ok(resp) => {
            let version = resp
                .headers
                .get(CONFIG_VERSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            (resp.json::<api::ConfigResponse>()?.config, version)
        }
        Err(FlyError::NotFound(_)) => (Value::Null, String::new()),
        Err(e) => return Err(e.into()),
    };

    let color = ui::stdout_is_tty() && !a.no_color;
    let (diff_text, changed) = diff_configs(&existing, &new_json, color);
    print!("{diff_text}");
    show_warnings(&warnings);
    if !changed {
        println!("no changes to apply");
        return Ok(());
    }

    println!(
        "{}{}",
        ui::paint("pipeline name: ", ui::BOLD, ui::stdout_is_tty()),
        pipeline.name
    );
    if let Some(iv) = &pipeline.instance_vars {
        println!(
            "{}",
            ui::paint("pipeline instance vars:", ui::BOLD, ui::stdout_is_tty())
        );
        let text = yaml::emit(&Value::Object(iv.clone()));
        for line in text.trim_end().lines() {
            println!("  {line}");
        }
    }
    println!();
    if a.dry_run {
        println!("Dry-run mode was set, exiting.");
        return Ok(());
    }
    if let Ok(resp) = c.send(c.get(&path).query(&query)).await {
        let p: api::Pipeline = resp.json()?;
        if p.parent_job_id != 0 && p.parent_build_id != 0 {
            println!(
                "{}",
                ui::paint(
                    "WARNING: pipeline has been configured through the 'set_pipeline' step, your changes may be overwritten on the next 'set_pipeline' step execution",
                    "1;33",
                    true
                )
            );
            println!();
        }
    }
    if !non_interactive && !ui::confirm("apply configuration?") {
        println!("bailing out");
        return Ok(());
    }

    let mut q = query.clone();
    if a.check_creds {
        q.push(("check_creds".into(), String::new()));
    }
    let put = c
        .put(&format!("{path}/config"))
        .query(&q)
        .header("Content-Type", "application/x-yaml")
        .header(CONFIG_VERSION_HEADER, version)
        .body(rendered);
    // Upstream's `CreateOrUpdatePipelineConfig`: success and validation errors must be JSON.
    let resp = c.send_raw(put).await?;
    match resp.status.as_u16() {
        200 | 201 if resp.content_type() == "application/json" => {}
        200 | 201 => return Err(resp.unexpected().into()),
        400 if resp.content_type() == "application/json" => {
            let errors = resp.json::<api::SaveConfigResponse>()?.errors;
            bail!("invalid pipeline config:\n{}", errors.join("\n"));
        }
        400 => return Err(resp.unexpected().into()),
        _ => {
            check_status(resp.status, &resp.body)?;
            return Err(resp.unexpected().into());
        }
    }
    let created = resp.status.as_u16() == 201;
    let saved: api::SaveConfigResponse = serde_json::from_slice(&resp.body).unwrap_or_default();
    let updated: api::Pipeline = c.get_json(&path, &query).await?;
    show_warnings(&saved.warnings);
    if created {
        println!("pipeline created!");
        println!(
            "you can view your pipeline here: {}/teams/{}/pipelines/{}{}",
            c.url,
            team,
            pipeline.name,
            web_query(&pipeline)
        );
    } else {
        println!("configuration updated");
    }
    if updated.paused {
        let mut flag = pipeline.display();
        if flag.contains('"') {
            flag = serde_json::to_string(&flag)?;
        }
        let mut cmd = format!("fly -t {} unpause-pipeline -p {flag}", target.name);
        if let Some(t) = a.team.as_deref() {
            cmd.push_str(&format!(" --team {t}"));
        }
        println!();
        println!("the pipeline is currently paused. to unpause, either:");
        println!("  - run the unpause-pipeline command:");
        println!("    {cmd}");
        println!("  - click play next to the pipeline in the web ui");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instanced_pipelines_get_a_vars_query_in_their_web_url() {
        assert_eq!(web_query(&PipelineRef::named("p")), "");
        let p = PipelineRef::parse("p/branch:main").unwrap();
        assert_eq!(web_query(&p), "?vars.branch=%22main%22");
    }
}
