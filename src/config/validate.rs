use super::*;
pub fn validate(_c: &Config) -> Validation { Validation::default() }
pub fn validate_identifier(_ctx: &str, _name: &str) -> Result<Option<ConfigWarning>, String> { Ok(None) }
pub fn validate_pipeline_strict(c: &Config) -> Validation { validate(c) }
