//! YAML (and JSON, which is YAML) to `serde_json::Value`, resolving scalars the way go-yaml v2
//! does and converting keys the way `sigs.k8s.io/yaml` does, so a document means here what it
//! means to upstream. A side table maps JSON pointers to 1-based source lines for messages.

use super::yaml_scalar::resolve_plain;
use super::ConfigError;
use serde_json::{Map, Value};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// JSON pointer (`/jobs/0/plan/1`) to the 1-based line where that node (or its map key) starts.
#[derive(Debug, Clone, Default)]
pub struct LineMap(pub HashMap<String, usize>);

impl LineMap {
    pub fn line(&self, pointer: &str) -> Option<usize> {
        self.0.get(pointer).copied()
    }
}

/// How duplicate map keys are treated: the server (go-yaml v2, non-strict) keeps the last
/// value; fly's pre-check (go-yaml v3) rejects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    LastWins,
    Reject,
}

#[derive(Debug, Clone)]
enum Node {
    Scalar {
        text: String,
        style: TScalarStyle,
        tag: Option<Tag>,
        line: usize,
    },
    Seq {
        items: Vec<Node>,
        line: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        line: usize,
    },
}

impl Node {
    fn line(&self) -> usize {
        match self {
            Node::Scalar { line, .. } | Node::Seq { line, .. } | Node::Map { line, .. } => *line,
        }
    }
}

enum Frame {
    Seq(usize, Vec<Node>, usize),
    Map(usize, Vec<Node>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes with their size in nodes and in bytes.
    anchors: HashMap<usize, (Node, Size)>,
    /// Nodes and bytes materialized so far, aliases expanded: bounded against alias bombs,
    /// checked before an alias is copied so a bomb is refused before it is built.
    size: Size,
    max_bytes: usize,
    /// Set when the expansion bound is hit: the rest of the document is not read.
    stop: bool,
    root: Option<Node>,
    error: Option<(String, usize)>,
    /// Nesting below `MAX_DEPTH` is not built (the document is refused), so that dropping
    /// and converting the tree never recurses deeper than that.
    too_deep: usize,
}

impl Builder {
    fn push_node(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let size = node_size(&node);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            Some(Frame::Seq(_, items, _)) | Some(Frame::Map(_, items, _)) => items.push(node),
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
        }
    }
}

impl Builder {
    fn fail(&mut self, message: &str, line: usize) {
        if self.error.is_none() {
            self.error = Some((message.to_string(), line));
        }
    }
}

/// What a node costs once materialized: a node count, and bytes counted as one per node
/// plus the text of its scalars (so neither many small nor few huge scalars get through).
#[derive(Debug, Default, Clone, Copy)]
struct Size {
    nodes: usize,
    bytes: usize,
}

impl Size {
    fn scalar(text: &str) -> Size {
        Size {
            nodes: 1,
            bytes: 1 + text.len(),
        }
    }
    fn plus(self, other: Size) -> Size {
        Size {
            nodes: self.nodes.saturating_add(other.nodes),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

fn node_size(node: &Node) -> Size {
    let one = Size { nodes: 1, bytes: 1 };
    match node {
        Node::Scalar { text, .. } => Size::scalar(text),
        Node::Seq { items, .. } => items.iter().map(node_size).fold(one, Size::plus),
        Node::Map { entries, .. } => entries
            .iter()
            .map(|(k, v)| node_size(k).plus(node_size(v)))
            .fold(one, Size::plus),
    }
}

/// Upper bound on nodes after alias expansion (go-yaml refuses "excessive aliasing" too).
const MAX_NODES: usize = 1_000_000;

/// Floor of the bound on bytes after alias expansion; the bound is this or ten times the
/// input, whichever is larger. A 77 KB config using one 64 KB anchor 3,000 times would
/// otherwise grow the web node by ~800 MB.
const MIN_EXPANDED_BYTES: usize = 10 * 1024 * 1024;

/// The bound on expanded bytes for a document of `len` bytes.
pub fn max_expanded_bytes(len: usize) -> usize {
    len.saturating_mul(10).max(MIN_EXPANDED_BYTES)
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line().max(1);
        if self.too_deep > 0 {
            match ev {
                Event::SequenceStart(..) | Event::MappingStart(..) => self.too_deep += 1,
                Event::SequenceEnd | Event::MappingEnd => self.too_deep -= 1,
                _ => {}
            }
            return;
        }
        if matches!(ev, Event::SequenceStart(..) | Event::MappingStart(..))
            && self.stack.len() >= MAX_DEPTH
        {
            self.too_deep = 1;
            if self.error.is_none() {
                self.error = Some((format!("yaml: exceeded max depth of {MAX_DEPTH}"), line));
            }
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                self.size = self.size.plus(Size::scalar(&text));
                self.push_node(
                    Node::Scalar {
                        text,
                        style,
                        tag,
                        line,
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => {
                self.size = self.size.plus(Size { nodes: 1, bytes: 1 });
                self.stack.push(Frame::Seq(anchor, vec![], line))
            }
            Event::MappingStart(anchor, _) => {
                self.size = self.size.plus(Size { nodes: 1, bytes: 1 });
                self.stack.push(Frame::Map(anchor, vec![], line))
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(anchor, items, line)) => {
                    self.push_node(Node::Seq { items, line }, anchor)
                }
                Some(Frame::Map(anchor, items, line)) => {
                    let mut entries = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        entries.push((k, v));
                    }
                    self.push_node(Node::Map { entries, line }, anchor)
                }
                None => {}
            },
            Event::Alias(id) => {
                let expanded = match self.anchors.get(&id) {
                    Some((_, size)) if self.size.plus(*size).bytes > self.max_bytes => {
                        let message = format!(
                            "yaml: document expands to more than {} bytes through aliases",
                            self.max_bytes
                        );
                        self.fail(&message, line);
                        self.stop = true;
                        None
                    }
                    Some((_, size)) if self.size.plus(*size).nodes > MAX_NODES => {
                        self.fail("yaml: document contains excessive aliasing", line);
                        self.stop = true;
                        None
                    }
                    Some((node, size)) => {
                        self.size = self.size.plus(*size);
                        Some(node.clone())
                    }
                    None => {
                        self.fail("yaml: unknown anchor referenced", line);
                        None
                    }
                };
                let node = expanded.unwrap_or(Node::Scalar {
                    text: String::new(),
                    style: TScalarStyle::Plain,
                    tag: None,
                    line,
                });
                self.push_node(node, 0)
            }
            _ => {}
        }
    }
}

/// Parses the first YAML document of `doc` into a JSON value plus its line table.
pub fn parse(doc: &[u8], dups: Duplicates) -> Result<(Value, LineMap), ConfigError> {
    let text = std::str::from_utf8(doc)
        .map_err(|e| ConfigError::new(format!("yaml: invalid UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    parse_bounded(text, dups, max_expanded_bytes(doc.len()))
}

/// As [`parse`], refusing documents that aliases expand past `max_bytes`.
fn parse_bounded(
    text: &str,
    dups: Duplicates,
    max_bytes: usize,
) -> Result<(Value, LineMap), ConfigError> {
    let mut builder = Builder {
        max_bytes,
        ..Builder::default()
    };
    let mut parser = Parser::new_from_str(text);
    // Events are pulled one by one rather than through `Parser::load`, which recurses per
    // nesting level; only the first document is read (as go-yaml's `Unmarshal` does).
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| {
            let line = e.marker().line();
            ConfigError {
                message: format!("yaml: line {}: {}", line, e.info()),
                line: Some(line),
            }
        })?;
        match ev {
            Event::StreamEnd | Event::DocumentEnd => break,
            ev => builder.on_event(ev, mark),
        }
        if builder.stop {
            break;
        }
    }
    if let Some((message, line)) = builder.error {
        return Err(ConfigError::at(message, line));
    }
    let mut lines = Lines {
        map: LineMap::default(),
        left: max_bytes,
    };
    let value = match builder.root {
        None => Value::Null,
        Some(root) => {
            if dups == Duplicates::Reject {
                let mut errs = vec![];
                find_duplicates(&root, &mut errs);
                if !errs.is_empty() {
                    return Err(ConfigError {
                        message: format!("yaml: unmarshal errors:\n{}", errs.join("\n")),
                        line: first_line(&errs),
                    });
                }
            }
            let mut path = String::new();
            convert(&root, &mut path, &mut lines, 0)?
        }
    };
    Ok((value, lines.map))
}

fn first_line(errs: &[String]) -> Option<usize> {
    let e = errs.first()?;
    let rest = e.trim_start().strip_prefix("line ")?;
    rest.split(':').next()?.parse().ok()
}

fn find_duplicates(node: &Node, errs: &mut Vec<String>) {
    match node {
        Node::Scalar { .. } => {}
        Node::Seq { items, .. } => items.iter().for_each(|n| find_duplicates(n, errs)),
        Node::Map { entries, .. } => {
            let mut seen: Vec<(Value, usize)> = vec![];
            for (k, v) in entries {
                if !is_merge_key(k) {
                    if let Node::Scalar { .. } = k {
                        let key = v3_key(k);
                        if let Some((_, at)) = seen.iter().find(|(s, _)| *s == key) {
                            let shown = match &key {
                                Value::String(s) => format!("{s:?}"),
                                other => other.to_string(),
                            };
                            errs.push(format!(
                                "  line {}: mapping key {} already defined at line {}",
                                k.line(),
                                shown,
                                at
                            ));
                        } else {
                            seen.push((key, k.line()));
                        }
                    }
                }
                find_duplicates(k, errs);
                find_duplicates(v, errs);
            }
        }
    }
}

/// A key as go-yaml v3 (fly's duplicate check) resolves it: YAML 1.2, so `yes`/`on`/`y`
/// stay strings and do not collide with `true`.
fn v3_key(k: &Node) -> Value {
    if let Node::Scalar {
        text,
        style: TScalarStyle::Plain,
        tag: None,
        ..
    } = k
    {
        let yaml11_only = [
            "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off",
            "Off", "OFF",
        ];
        if yaml11_only.contains(&text.as_str()) {
            return Value::String(text.clone());
        }
    }
    scalar_value(k).unwrap_or(Value::Null)
}

fn is_merge_key(node: &Node) -> bool {
    matches!(node, Node::Scalar { text, style: TScalarStyle::Plain, tag: None, .. } if text == "<<")
}

fn is_str_tag(tag: &Option<Tag>) -> bool {
    matches!(tag, Some(t) if t.suffix == "str" || t.suffix.ends_with(":str"))
}

fn scalar_value(node: &Node) -> Result<Value, String> {
    match node {
        Node::Scalar {
            text, style, tag, ..
        } => {
            if *style != TScalarStyle::Plain || is_str_tag(tag) {
                Ok(Value::String(text.clone()))
            } else {
                resolve_plain(text)
            }
        }
        _ => Err("not a scalar".into()),
    }
}

const MAX_DEPTH: usize = 200;

/// The line table being built, and how many bytes of pointers it may still take. Every
/// node's full pointer is a key, so aliases repeating a deep subtree would cost far more
/// here than in the value (a 22 KB document reached 2 GB): past the document's expansion
/// bound, new pointers are not recorded (their messages then lack ` (line N)`).
struct Lines {
    map: LineMap,
    left: usize,
}

impl Lines {
    fn record(&mut self, path: &str, line: usize, overwrite: bool) {
        if let Some(old) = self.map.0.get_mut(path) {
            if overwrite {
                *old = line;
            }
        } else if path.len() < self.left {
            self.left -= path.len() + 1;
            self.map.0.insert(path.to_string(), line);
        }
    }
}

fn convert(
    node: &Node,
    path: &mut String,
    lines: &mut Lines,
    depth: usize,
) -> Result<Value, ConfigError> {
    if depth > MAX_DEPTH {
        return Err(ConfigError::at("yaml: exceeded max depth", node.line()));
    }
    lines.record(path, node.line(), false);
    match node {
        Node::Scalar { .. } => scalar_value(node).map_err(|m| ConfigError::at(m, node.line())),
        Node::Seq { items, .. } => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                out.push(convert(item, path, lines, depth + 1)?);
                path.truncate(len);
            }
            Ok(Value::Array(out))
        }
        Node::Map { entries, .. } => {
            let mut out = Map::new();
            for (k, v) in entries {
                if is_merge_key(k) {
                    merge(v, &mut out, path, lines, depth)?;
                    continue;
                }
                let key = key_string(k)?;
                let len = path.len();
                path.push('/');
                path.push_str(&escape_pointer(&key));
                lines.record(path, k.line(), true);
                let value = convert(v, path, lines, depth + 1)?;
                path.truncate(len);
                // go-yaml v2 (non-strict): a repeated key overwrites the earlier value.
                out.insert(key, value);
            }
            Ok(Value::Object(out))
        }
    }
}

/// go-yaml v2 merges positionally: merged keys overwrite what came before the `<<` and are
/// overwritten by what follows; in a list of maps, earlier maps win.
fn merge(
    v: &Node,
    out: &mut Map<String, Value>,
    path: &mut String,
    lines: &mut Lines,
    depth: usize,
) -> Result<(), ConfigError> {
    let want_map = || {
        ConfigError::at(
            "yaml: map merge requires map or sequence of maps as the value",
            v.line(),
        )
    };
    match v {
        Node::Map { .. } => {
            if let Value::Object(m) = convert(v, path, lines, depth + 1)? {
                out.extend(m);
            }
            Ok(())
        }
        Node::Seq { items, .. } => {
            for item in items.iter().rev() {
                if !matches!(item, Node::Map { .. }) {
                    return Err(want_map());
                }
                if let Value::Object(m) = convert(item, path, lines, depth + 1)? {
                    out.extend(m);
                }
            }
            Ok(())
        }
        _ => Err(want_map()),
    }
}

pub fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn key_string(k: &Node) -> Result<String, ConfigError> {
    let unsupported = || {
        ConfigError::at(
            "yaml: unsupported map key (only scalar keys are allowed)",
            k.line(),
        )
    };
    match k {
        Node::Scalar { .. } => match scalar_value(k).map_err(|m| ConfigError::at(m, k.line()))? {
            Value::String(s) => Ok(s),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                super::emit::go_float_g(f)
            } else {
                n.to_string()
            }),
            _ => Err(unsupported()),
        },
        _ => Err(unsupported()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Value {
        parse(s.as_bytes(), Duplicates::LastWins).unwrap().0
    }

    #[test]
    fn plain_scalars_resolve_like_go_yaml_v2() {
        assert_eq!(
            p("a: yes\nb: Off\nc: ~\nd: 0x1F\ne: 1_000\nf: 1.5\ng: '1'\nh: 017\ni: 1e3\nj: y\nk: 0o17\nl: 08\nm: 1e400\nq: .5\no: 2021-01-01\np: -0x10"),
            json!({"a": true, "b": false, "c": null, "d": 31, "e": 1000, "f": 1.5, "g": "1", "h": 15, "i": 1000.0, "j": true, "k": 15, "l": 8.0, "m": "1e400", "q": 0.5, "o": "2021-01-01", "p": -16})
        );
    }

    #[test]
    fn non_string_keys_become_strings() {
        assert_eq!(p("1: a\ntrue: b\non: c"), json!({"1": "a", "true": "c"}));
    }

    #[test]
    fn anchors_and_merge_keys_work() {
        let v = p(
            "base: &b {x: 1, z: 2}\nother:\n  <<: *b\n  z: 3\nlist:\n  <<: [{a: 1}, {a: 2, b: 2}]",
        );
        assert_eq!(v["other"], json!({"x": 1, "z": 3}));
        assert_eq!(v["list"], json!({"a": 1, "b": 2}));
    }

    #[test]
    fn duplicate_keys_are_rejected_in_strict_mode() {
        let err = parse(b"a: 1\nb: 2\na: 3\n", Duplicates::Reject).unwrap_err();
        assert_eq!(
            err.message,
            "yaml: unmarshal errors:\n  line 3: mapping key \"a\" already defined at line 1"
        );
        assert_eq!(p("a: 1\na: 2"), json!({"a": 2}));
        // go-yaml v3 (fly's check) reads `yes` as a string, so it is no duplicate of `true`.
        assert!(parse(b"yes: 1\ntrue: 2\n", Duplicates::Reject).is_ok());
        assert!(parse(b"1: a\n0x1: b\n", Duplicates::Reject).is_err());
    }

    #[test]
    fn lines_are_recorded_per_pointer() {
        let (_, lines) = parse(
            b"jobs:\n- name: a\n  plan:\n  - get: x\n",
            Duplicates::LastWins,
        )
        .unwrap();
        assert_eq!(lines.line("/jobs/0/plan/0"), Some(4));
        assert_eq!(lines.line("/jobs/0/name"), Some(2));
    }
}

#[cfg(test)]
mod alias_bound_tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nested_anchors_are_refused_before_they_expand() {
        // a0 is ten 64-byte strings; each next level is ten aliases of the one before:
        // 10^6 strings, 64 MB expanded, from a document of under 1 KB.
        let mut bomb = format!("a0: &a0 [{}]\n", vec!["x".repeat(64); 10].join(", "));
        for i in 1..6 {
            let prev = format!("*a{}", i - 1);
            bomb.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        let started = std::time::Instant::now();
        let err = parse(bomb.as_bytes(), Duplicates::LastWins).unwrap_err();
        assert_eq!(
            err.message,
            "yaml: document expands to more than 10485760 bytes through aliases"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn one_large_anchor_used_thousands_of_times_is_refused() {
        // The reported case: a 77 KB config with a 64 KB anchor used 3,000 times.
        let mut doc = format!("big: &big \"{}\"\nuses:\n", "s".repeat(64 * 1024));
        doc.push_str(&"- *big\n".repeat(3000));
        let err = parse(doc.as_bytes(), Duplicates::LastWins).unwrap_err();
        assert!(
            err.message.contains("bytes through aliases"),
            "{}",
            err.message
        );
        // 158 copies fit in 10 MB; the 159th alias, on line 161, is refused.
        assert_eq!(err.line, Some(161));
    }

    #[test]
    fn aliased_deep_subtrees_do_not_blow_up_the_line_table() {
        // Found by fuzz/fuzz_targets/yaml_parse.rs: each node's full pointer is a line-table
        // key, so 470 aliases of a 190-deep chain of 100-character keys (22 KB) took 2 GB.
        // Sixty copies stay within the expansion bound but would record 220 MB of pointers.
        let key = "~".repeat(100);
        let mut doc = String::from("a: &a ");
        for i in 0..190 {
            doc.push_str(&format!("{{{key}{i}: "));
        }
        doc.push('x');
        doc.push_str(&"}".repeat(190));
        doc.push_str(&format!("\nb: [{}]\n", vec!["*a"; 60].join(", ")));
        let (v, lines) = parse(doc.as_bytes(), Duplicates::LastWins).unwrap();
        assert_eq!(v["b"].as_array().unwrap().len(), 60);
        let recorded: usize = lines.0.keys().map(String::len).sum();
        assert!(
            recorded <= max_expanded_bytes(doc.len()),
            "{recorded} bytes"
        );
        // Lines are still known where the budget allowed.
        assert_eq!(lines.line("/a"), Some(1));
        assert_eq!(lines.line("/b"), Some(2));
    }

    #[test]
    fn a_config_with_a_few_aliases_is_accepted() {
        let doc = "params: &p {A: one, B: two}\njobs:\n- name: a\n  plan:\n  - task: t\n    params: *p\n  - task: u\n    params: *p\n";
        let (v, _) = parse(doc.as_bytes(), Duplicates::LastWins).unwrap();
        assert_eq!(v["jobs"][0]["plan"][1]["params"]["B"], "two");
    }

    #[test]
    fn the_bound_is_ten_times_the_input_above_ten_megabytes() {
        assert_eq!(max_expanded_bytes(0), 10 * 1024 * 1024);
        assert_eq!(max_expanded_bytes(2 * 1024 * 1024), 20 * 1024 * 1024);
        // With a tight bound, a document whose aliases double it is refused.
        let doc = "a: &a [xxxxxxxxxx, xxxxxxxxxx]\nb: [*a, *a, *a]\n";
        assert!(parse_bounded(doc, Duplicates::LastWins, doc.len()).is_err());
        assert!(parse_bounded(doc, Duplicates::LastWins, 10 * doc.len()).is_ok());
    }

    fn alias_free_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z*&]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Without aliases a document never expands past ten times its length, so the
        /// bound cannot refuse one, whatever its size.
        #[test]
        fn documents_without_aliases_are_unaffected(v in alias_free_value()) {
            for text in [crate::config::to_yaml(&v), v.to_string()] {
                let free = parse_bounded(&text, Duplicates::LastWins, usize::MAX);
                let bounded = parse_bounded(&text, Duplicates::LastWins, 10 * text.len());
                prop_assert_eq!(
                    free.as_ref().map(|r| &r.0).map_err(|e| &e.message),
                    bounded.as_ref().map(|r| &r.0).map_err(|e| &e.message),
                    "{}", text
                );
            }
        }
    }
}

#[cfg(test)]
mod json_input_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_documents_parse_as_yaml() {
        for doc in [
            "{\"a\": [1, 2.5, \"x\\/y\\u00e9\"], \"b\": {\"c\": null, \"d\": true}}",
            "{\n\t\"a\": [1, 2.5, \"x\\/y\\u00e9\"],\n\t\"b\": {\"c\": null, \"d\": true}\n}",
            "{\"a\":[1,2.5,\"x\\/y\\u00e9\"],\"b\":{\"c\":null,\"d\":true}}",
        ] {
            let (v, _) = parse(doc.as_bytes(), Duplicates::LastWins)
                .unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(
                v,
                json!({"a": [1, 2.5, "x/yé"], "b": {"c": null, "d": true}}),
                "{doc}"
            );
        }
    }
}
