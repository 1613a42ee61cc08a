use super::*;
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StaticVars(pub serde_json::Map<String, Value>);
pub fn render_template(_doc: &[u8], _vars: &StaticVars) -> Result<Vec<u8>, ConfigError> { todo!() }
