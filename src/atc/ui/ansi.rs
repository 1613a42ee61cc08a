// TEMPORARY placeholder until the renderer lands (same API).
#[derive(Default)]
pub struct Terminal {
    lines: Vec<String>,
}
impl Terminal {
    pub fn feed(&mut self, chunk: &str) -> Vec<usize> {
        let mut changed = vec![];
        for (i, part) in chunk.split('\n').enumerate() {
            if i > 0 || self.lines.is_empty() {
                self.lines.push(String::new());
            }
            let n = self.lines.len() - 1;
            self.lines[n].push_str(part);
            changed.push(n);
        }
        changed
    }
    pub fn line_json(&self, i: usize) -> serde_json::Value {
        serde_json::json!([{"text": self.lines[i]}])
    }
}
pub fn plain_text(t: &str) -> String {
    t.to_string()
}
