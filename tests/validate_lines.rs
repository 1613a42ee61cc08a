//! `fly validate-pipeline`'s ` (line N)` names the line the author wrote, not a line of the
//! rendered (key-sorted) document: every corpus pipeline, broken on purpose by pointing one
//! `get` at a resource that does not exist, gets messages whose line holds the name they
//! quote.

use concourse::config::{
    parse_rendered_pipeline, render_template, validate_pipeline, ParseMode, StaticVars,
};
use std::path::Path;

/// (names quoted in the message, line, message) for each message that names a line.
fn named_lines(errors: &[String]) -> Vec<(Vec<String>, usize, String)> {
    let mut out = Vec::new();
    for e in errors.iter().flat_map(|e| e.lines()) {
        let Some((msg, rest)) = e.rsplit_once(" (line ") else {
            continue;
        };
        let Ok(line) = rest.trim_end_matches(')').parse::<usize>() else {
            continue;
        };
        // Quoted names are the odd pieces: `job 'a' does not use resource 'b'`.
        let names: Vec<String> = msg
            .split('\'')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        if !names.is_empty() {
            out.push((names, line, e.trim().to_string()));
        }
    }
    out
}

#[test]
fn broken_corpus_pipelines_name_the_lines_their_authors_wrote() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/pipelines");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        // Break the first `- get: NAME` (a plain one) into an unknown resource.
        let Some((at, line)) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.trim_start().starts_with("- get: ") && !l.contains('{'))
        else {
            continue;
        };
        let broken: String = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == at {
                    format!(
                        "{}- get: no-such-resource-here\n",
                        &line[..line.len() - line.trim_start().len()]
                    )
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let Ok(rendered) = render_template(broken.as_bytes(), &StaticVars::default()) else {
            continue;
        };
        let Ok(cfg) = parse_rendered_pipeline(&rendered, broken.as_bytes(), ParseMode::Lenient)
        else {
            continue;
        };
        let errors = validate_pipeline(&cfg).errors;
        let lines: Vec<&str> = broken.lines().collect();
        let named = named_lines(&errors);
        // A `get` renamed by its `resource:` stays valid: nothing to point at.
        if !errors.iter().any(|e| e.contains("no-such-resource-here")) {
            continue;
        }
        assert!(
            named
                .iter()
                .any(|(n, l, _)| n.iter().any(|n| n == "no-such-resource-here") && *l == at + 1),
            "{}: the broken get is on line {}: {errors:?}",
            path.display(),
            at + 1
        );
        for (names, l, message) in named {
            let source = lines.get(l - 1).copied().unwrap_or_default();
            assert!(
                names.iter().any(|n| source.contains(n.as_str())),
                "{}: `{message}` names line {l}, which is `{source}`",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(
        checked > 20,
        "only {checked} corpus pipelines had a get to break"
    );
}
