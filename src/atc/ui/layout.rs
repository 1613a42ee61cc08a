// TEMPORARY placeholder until the layout lands (same API).
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, Deserialize, Default)]
pub struct JobIn {
    pub name: String,
    pub paused: bool,
    pub finished: Option<String>,
    pub next: Option<String>,
    pub inputs: Vec<InputIn>,
    pub outputs: Vec<String>,
}
#[derive(Debug, Clone, Deserialize, Default)]
pub struct InputIn {
    pub resource: String,
    pub passed: Vec<String>,
    pub trigger: bool,
}
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ResourceIn {
    pub name: String,
    pub pinned: bool,
    pub check_status: Option<String>,
    pub icon: Option<String>,
}
#[derive(Debug, Clone, Serialize)]
pub struct Graph {
    pub width: f64,
}
#[derive(Debug)]
pub struct LayoutError;
impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "cycle")
    }
}
pub fn layout(_j: &[JobIn], _r: &[ResourceIn], _c: f64) -> Result<Graph, LayoutError> {
    Ok(Graph { width: 0.0 })
}
