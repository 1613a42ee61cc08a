//! Offline commands: `validate-pipeline` and `format-pipeline`. They use the same config
//! model and validator as the server, through `crate::config`.

use super::cli::{FormatPipelineArgs, ValidatePipelineArgs};
use super::client::{fail, FlyError};
use super::setpipeline::{show_errors, show_warnings};
use super::{vars, yaml};
use crate::config;
use anyhow::{anyhow, Result};

pub fn validate_pipeline(a: &ValidatePipelineArgs) -> Result<()> {
    let template = super::read_path(&a.config)?;
    let (static_vars, _) = vars::static_vars(&a.vars, &[])?;
    let rendered = config::render_template(&template, &static_vars).map_err(|e| anyhow!("{e}"))?;
    let mode = if a.strict {
        config::ParseMode::Strict
    } else {
        config::ParseMode::Lenient
    };
    let parsed = config::parse_rendered_pipeline(&rendered, &template, mode);
    let (warnings, errors) = match &parsed {
        Ok(cfg) => {
            let v = config::validate_pipeline(cfg);
            (v.warnings, v.errors)
        }
        Err(e) => (Vec::new(), vec![e.to_string()]),
    };
    show_warnings(&warnings);
    if !errors.is_empty() {
        show_errors("Error loading existing config", &errors);
    }
    if !errors.is_empty() || (a.strict && !warnings.is_empty()) {
        return Err(fail("configuration invalid"));
    }
    if a.output {
        println!("{}", String::from_utf8_lossy(&rendered));
    } else {
        println!("looks good");
    }
    Ok(())
}

pub fn format_pipeline(a: &FormatPipelineArgs) -> Result<()> {
    let source = super::read_path(&a.config)
        .map_err(|e| fail(format!("could not read config file: {e}")))?;
    let cfg = config::parse_pipeline_with(&source, config::ParseMode::Lenient)
        .map_err(|e| fail(format!("could not unmarshal config: {e}")))?;
    let formatted = yaml::emit(&config::to_json(&cfg));
    if a.write && a.config != "-" {
        let path = std::path::Path::new(&a.config);
        let mode = std::fs::metadata(path)
            .map_err(|e| fail(format!("could not stat config file: {e}")))?
            .permissions();
        std::fs::write(path, formatted.as_bytes()).map_err(|e| {
            fail(format!(
                "could not write formatted config to {}: {e}",
                a.config
            ))
        })?;
        std::fs::set_permissions(path, mode)
            .map_err(|e| FlyError::Fail(format!("could not set permissions: {e}")))?;
    } else {
        print!("{formatted}");
    }
    Ok(())
}
