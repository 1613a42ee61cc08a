//! Layout of the pipeline page's graph: jobs and the resources they use, in
//! columns from left to right.
//!
//! Long edges: upstream draws copies of the resource node in every column an
//! edge skips. Here each skipped column gets an invisible one-slot placeholder
//! ("dummy") that is ordered and stacked like a node but never emitted: the
//! edge runs straight (`L`) across it and curves (`C`) only in the empty gaps
//! between columns (short `L` stubs join nodes narrower than their column), so
//! no edge is drawn over a node.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};

const MARGIN: f64 = 20.0;
const COLUMN_GAP: f64 = 50.0;
/// Vertical pitch of an edge slot: a 20 px box plus the 10 px gap below it.
const SLOT: f64 = 30.0;
const GAP: f64 = 10.0;
const PADDING: f64 = 5.0;
/// Extra width for the pin and icon badges of resource nodes.
const BADGE: f64 = 20.0;
/// Barycentre round trips (a left→right and a right→left sweep each).
const ORDER_ROUNDS: usize = 4;
const PLACE_ROUNDS: usize = 4;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct JobIn {
    pub name: String,
    pub paused: bool,
    /// status of the job's latest finished build ("succeeded","failed","errored","aborted"), None if no finished build
    pub finished: Option<String>,
    /// status of the job's next (pending/started) build, None if none
    pub next: Option<String>,
    pub inputs: Vec<InputIn>,
    /// resource names
    pub outputs: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct InputIn {
    pub resource: String,
    pub passed: Vec<String>,
    pub trigger: bool,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct ResourceIn {
    pub name: String,
    pub pinned: bool,
    /// last check build status when it did not succeed ("failed","errored","aborted"), else None
    pub check_status: Option<String>,
    pub icon: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Graph {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// x centre of columns containing a failed job (warning triangles)
    pub failed_columns: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Node {
    pub id: usize,
    /// "job" | "input" | "output" | "constrained-input"
    pub kind: &'static str,
    /// job name or resource name
    pub name: String,
    /// job name (for job nodes) or resource name: hovering highlights everything with the same key
    pub key: String,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub column: usize,
    /// CSS classes: job: "paused" or finished status or "no-builds", plus next status if any;
    /// resource: "pinned", the check_status if any
    pub classes: Vec<String>,
    pub icon: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    /// SVG path from the source's right side to the target's left side: "M x y", then Bézier
    /// segments ("C x1 y1, x2 y2, x y") between columns and straight runs ("L x y") inside them
    pub path: String,
    /// input with trigger: false
    pub dashed: bool,
    /// status class of the source (job: its status class; resource: "" or check status)
    pub class: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    Cycle,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pipeline graph has a cycle")
    }
}

impl std::error::Error for LayoutError {}

#[derive(Default)]
struct LNode {
    /// `Node::kind`; "" for dummies.
    kind: &'static str,
    name: String,
    classes: Vec<String>,
    /// Class of the edges leaving this node.
    status: String,
    icon: Option<String>,
    width: f64,
    /// Config-order tie-breaker: (job that introduced the node, creation
    /// index). Jobs are created first, in config order.
    order: (usize, usize),
    rank: usize,
    /// Distinct keys of the node's edges, in slot order (top to bottom).
    keys: Vec<String>,
}

struct LEdge {
    from: usize,
    to: usize,
    key: String,
    dashed: bool,
}

#[derive(Default)]
struct Builder<'a> {
    nodes: Vec<LNode>,
    edges: Vec<LEdge>,
    edge_ids: HashMap<(usize, usize), usize>,
    resources: HashMap<&'a str, ResourceIn>,
    char_width: f64,
}

impl Builder<'_> {
    fn node(&mut self, kind: &'static str, name: &str, anchor: usize) -> &mut LNode {
        let (order, name) = ((anchor, self.nodes.len()), name.to_string());
        let width = name.chars().count() as f64 * self.char_width + 2.0 * PADDING;
        self.nodes.push(LNode {
            kind,
            name,
            width,
            order,
            ..LNode::default()
        });
        self.nodes.last_mut().unwrap()
    }

    /// A resource node; resources missing from the list are drawn plain.
    fn resource(&mut self, kind: &'static str, name: &str, anchor: usize) -> usize {
        let res = self.resources.get(name).cloned().unwrap_or_default();
        let node = self.node(kind, name, anchor);
        node.width += BADGE * f64::from(u8::from(res.pinned) + u8::from(res.icon.is_some()));
        if res.pinned {
            node.classes.push("pinned".to_string());
        }
        node.classes.extend(res.check_status.clone());
        node.status = res.check_status.unwrap_or_default();
        node.icon = res.icon;
        self.nodes.len() - 1
    }

    fn edge(&mut self, from: usize, to: usize, key: &str, dashed: bool) {
        if let Some(&e) = self.edge_ids.get(&(from, to)) {
            // The same input listed twice: dashed only if neither triggers.
            self.edges[e].dashed &= dashed;
        } else {
            self.edge_ids.insert((from, to), self.edges.len());
            let key = key.to_string();
            self.edges.push(LEdge {
                from,
                to,
                key,
                dashed,
            });
        }
    }
}

/// Pure: same input → same output. `char_width` is the width in px of one
/// character of the node font. Fails only if `passed` constraints form a cycle.
pub fn layout(
    jobs: &[JobIn],
    resources: &[ResourceIn],
    char_width: f64,
) -> Result<Graph, LayoutError> {
    // Keeps coordinates finite whatever the caller passes.
    let char_width = if char_width.is_finite() {
        char_width.max(0.0)
    } else {
        0.0
    };
    let resources = resources.iter().map(|r| (r.name.as_str(), r.clone()));
    let mut b = Builder {
        resources: resources.collect(),
        char_width,
        ..Builder::default()
    };
    let mut job_ids = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        job_ids.entry(job.name.as_str()).or_insert(i); // job i is node i
        let status = match (job.paused, &job.finished) {
            (true, _) => "paused",
            (false, Some(finished)) => finished.as_str(),
            (false, None) => "no-builds",
        };
        let node = b.node("job", &job.name, i);
        node.classes.push(status.to_string());
        node.classes.extend(job.next.clone());
        node.status = status.to_string();
    }
    let mut outputs = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        for r in &job.outputs {
            let o = *outputs
                .entry((i, r.as_str()))
                .or_insert_with(|| b.resource("output", r, i));
            b.edge(i, o, r, false);
        }
    }
    let (mut inputs, mut constrained) = (HashMap::new(), HashMap::new());
    for (i, job) in jobs.iter().enumerate() {
        for input in &job.inputs {
            let (r, dashed) = (input.resource.as_str(), !input.trigger);
            // Jobs filtered out by group do not constrain the input.
            let passed: Vec<usize> = input
                .passed
                .iter()
                .filter_map(|p| job_ids.get(p.as_str()).copied())
                .collect();
            if passed.is_empty() {
                let n = *inputs
                    .entry((i, r))
                    .or_insert_with(|| b.resource("input", r, i));
                b.edge(n, i, r, dashed);
            }
            for u in passed {
                let src = match outputs.get(&(u, r)) {
                    Some(&o) => o,
                    None => {
                        let c = *constrained
                            .entry((u, r))
                            .or_insert_with(|| b.resource("constrained-input", r, i));
                        b.edge(u, c, r, false);
                        c
                    }
                };
                b.edge(src, i, r, dashed);
            }
        }
    }
    rank(&mut b.nodes, &b.edges)?;
    let mut nodes = merge_inputs(b.nodes, &mut b.edges);
    // Slots start in config order: inputs, then outputs.
    let ins = b.edges.iter().map(|e| (e.to, &e.key));
    for (v, key) in ins.chain(b.edges.iter().map(|e| (e.from, &e.key))) {
        if !nodes[v].keys.contains(key) {
            nodes[v].keys.push(key.clone());
        }
    }
    Ok(geometry(nodes, &b.edges))
}

/// Longest-path ranks, then a backward pass pulling every node right to just
/// before its nearest target, so edges span as few columns as possible.
/// Kahn's topological sort replaces upstream's bounded iteration: a cycle is
/// exactly "some node never becomes ready".
fn rank(nodes: &mut [LNode], edges: &[LEdge]) -> Result<(), LayoutError> {
    let mut succs = vec![Vec::new(); nodes.len()];
    let mut indegree = vec![0usize; nodes.len()];
    for e in edges {
        succs[e.from].push(e.to);
        indegree[e.to] += 1;
    }
    let mut topo: Vec<usize> = (0..nodes.len()).filter(|&v| indegree[v] == 0).collect();
    let mut i = 0;
    while let Some(&v) = topo.get(i) {
        i += 1;
        for &s in &succs[v] {
            indegree[s] -= 1;
            if indegree[s] == 0 {
                topo.push(s);
            }
        }
    }
    if topo.len() < nodes.len() {
        return Err(LayoutError::Cycle);
    }
    for &v in &topo {
        let next = nodes[v].rank + 1;
        succs[v]
            .iter()
            .for_each(|&s| nodes[s].rank = nodes[s].rank.max(next));
    }
    // Targets are final before their sources, and max() never moves a node
    // left, so every edge keeps pointing right.
    for &v in topo.iter().rev() {
        if let Some(nearest) = succs[v].iter().map(|&s| nodes[s].rank).min() {
            nodes[v].rank = nodes[v].rank.max(nearest - 1);
        }
    }
    Ok(())
}

/// Merges the unconstrained input nodes of a resource that share a column
/// into the earliest one, then renumbers the nodes densely.
fn merge_inputs(nodes: Vec<LNode>, edges: &mut [LEdge]) -> Vec<LNode> {
    let mut first = HashMap::new();
    let alias: Vec<usize> = nodes
        .iter()
        .enumerate()
        .map(|(v, n)| match n.kind {
            "input" => *first.entry((n.name.as_str(), n.rank)).or_insert(v),
            _ => v,
        })
        .collect();
    let mut new_id = vec![0; nodes.len()];
    let mut kept = Vec::new();
    for (v, node) in nodes.into_iter().enumerate() {
        if alias[v] == v {
            new_id[v] = kept.len();
            kept.push(node);
        }
    }
    for e in edges {
        (e.from, e.to) = (new_id[alias[e.from]], new_id[e.to]);
    }
    kept
}

type Adjacency = Vec<Vec<(usize, String)>>;

/// Column indices in sweep order, skipping the first column of the sweep.
fn sweep(ncols: usize, down: bool) -> impl Iterator<Item = usize> {
    (1..ncols).map(move |s| if down { s } else { ncols - 1 - s })
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0), |(sum, n), v| (sum + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// Offset of a key's attachment point from the node's top: its slot's centre.
fn slot_offset(node: &LNode, key: &str) -> f64 {
    let slot = node.keys.iter().position(|k| k == key).unwrap_or(0);
    (SLOT - GAP) / 2.0 + SLOT * slot as f64
}

/// Rounds path coordinates to 1/100 px to keep the SVG short.
fn num(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Adds dummies, orders and places every column and emits the graph. Dummies
/// are appended after the `real` nodes and dropped from the output.
fn geometry(mut nodes: Vec<LNode>, edges: &[LEdge]) -> Graph {
    let real = nodes.len();
    let (mut dummies, mut seen) = (HashMap::new(), HashSet::new());
    let (mut chains, mut segments) = (Vec::new(), Vec::new());
    for e in edges {
        let mut chain = vec![e.from];
        let order = nodes[e.from].order;
        for rank in nodes[e.from].rank + 1..nodes[e.to].rank {
            // Shared per (source, key, column): edges fanning out from one
            // source run together until they split.
            let d = *dummies.entry((e.from, &e.key, rank)).or_insert_with(|| {
                let keys = vec![e.key.clone()];
                nodes.push(LNode {
                    order,
                    rank,
                    keys,
                    ..LNode::default()
                });
                nodes.len() - 1
            });
            chain.push(d);
        }
        chain.push(e.to);
        for w in chain.windows(2) {
            if seen.insert((w[0], w[1])) {
                segments.push((w[0], w[1], e.key.clone()));
            }
        }
        chains.push(chain);
    }
    let mut preds: Adjacency = vec![Vec::new(); nodes.len()];
    let mut succs = preds.clone();
    for (a, b, key) in &segments {
        succs[*a].push((*b, key.clone()));
        preds[*b].push((*a, key.clone()));
    }
    let ncols = nodes.iter().map(|n| n.rank + 1).max().unwrap_or(0);
    let mut cols = vec![Vec::new(); ncols];
    for (v, n) in nodes.iter().enumerate() {
        cols[n.rank].push(v);
    }
    cols.iter_mut()
        .for_each(|col| col.sort_by_key(|&v| (nodes[v].order, v)));
    let pairs: Vec<(usize, usize)> = segments.iter().map(|s| (s.0, s.1)).collect();
    order_columns(&mut cols, &nodes, &preds, &succs, &pairs);
    let heights: Vec<f64> = nodes
        .iter()
        .map(|n| SLOT * n.keys.len().max(1) as f64 - GAP)
        .collect();
    let mut y = place(&cols, &mut nodes[..], real, (&preds, &succs), &heights);

    let mut col_w = vec![0.0f64; ncols];
    nodes[..real]
        .iter()
        .for_each(|n| col_w[n.rank] = col_w[n.rank].max(n.width));
    let mut col_x = vec![MARGIN; ncols];
    for c in 1..ncols {
        col_x[c] = col_x[c - 1] + col_w[c - 1] + COLUMN_GAP;
    }
    let width = col_x.last().map_or(MARGIN, |x| x + col_w[ncols - 1]) + MARGIN;
    let top = y.iter().copied().fold(f64::INFINITY, f64::min);
    let shift = if top.is_finite() { MARGIN - top } else { 0.0 };
    y.iter_mut().for_each(|v| *v += shift);
    let bottom = y
        .iter()
        .zip(&heights)
        .fold(MARGIN, |b, (y, h)| b.max(y + h));

    let node_x = |v: usize| {
        let c = nodes[v].rank;
        col_x[c] + (col_w[c] - nodes[v].width).max(0.0) / 2.0
    };
    let col_right = |v: usize| col_x[nodes[v].rank] + col_w[nodes[v].rank];
    let out_nodes = nodes[..real]
        .iter()
        .enumerate()
        .map(|(v, n)| Node {
            id: v,
            kind: n.kind,
            name: n.name.clone(),
            key: n.name.clone(),
            x: node_x(v),
            y: y[v],
            width: n.width,
            height: heights[v],
            column: n.rank,
            classes: n.classes.clone(),
            icon: n.icon.clone(),
        })
        .collect();
    let out_edges = edges
        .iter()
        .zip(&chains)
        .map(|(e, chain)| {
            // A horizontal run (x in, x out, y) per node on the chain: from the
            // source to its column's edge, across dummies, up to the target.
            let runs = chain.iter().enumerate().map(|(i, &v)| {
                let (left, y) = (
                    col_x[nodes[v].rank],
                    num(y[v] + slot_offset(&nodes[v], &e.key)),
                );
                match (i, v < real) {
                    (0, _) => (node_x(v) + nodes[v].width, col_right(v), y),
                    (_, true) => (left, node_x(v), y),
                    _ => (left, col_right(v), y),
                }
            });
            let (mut path, mut last) = (String::new(), None);
            for (x0, x1, y) in runs {
                let _ = match last {
                    None => write!(path, "M {} {y}", num(x0)),
                    Some((px, py)) => {
                        let mid = num((px + x0) / 2.0);
                        write!(path, " C {mid} {py}, {mid} {y}, {} {y}", num(x0))
                    }
                };
                let end = if x1 - x0 > 0.5 { x1 } else { x0 };
                if end > x0 {
                    let _ = write!(path, " L {} {y}", num(x1));
                }
                last = Some((end, y));
            }
            let (class, key) = (nodes[e.from].status.clone(), e.key.clone());
            Edge {
                from: e.from,
                to: e.to,
                path,
                dashed: e.dashed,
                class,
                key,
            }
        })
        .collect();
    let failed_columns = (0..ncols)
        .filter(|&c| {
            cols[c]
                .iter()
                .any(|&v| nodes[v].kind == "job" && nodes[v].status == "failed")
        })
        .map(|c| col_x[c] + col_w[c] / 2.0)
        .collect();
    Graph {
        width,
        height: bottom + MARGIN,
        nodes: out_nodes,
        edges: out_edges,
        failed_columns,
    }
}

/// Barycentre ordering from config order. Keeps the best ordering seen
/// (fewest crossings, earliest on ties), so config order wins unless
/// reordering really removes crossings.
fn order_columns(
    cols: &mut [Vec<usize>],
    nodes: &[LNode],
    preds: &Adjacency,
    succs: &Adjacency,
    segments: &[(usize, usize)],
) {
    let mut pos = vec![0usize; nodes.len()];
    let index = |cols: &[Vec<usize>], pos: &mut [usize]| {
        for col in cols {
            col.iter().enumerate().for_each(|(i, &v)| pos[v] = i);
        }
    };
    index(cols, &mut pos);
    let mut best = (crossings(segments, nodes, &pos, cols.len()), cols.to_vec());
    for round in 0..2 * ORDER_ROUNDS {
        if best.0 == 0 {
            break;
        }
        let down = round % 2 == 0;
        for c in sweep(cols.len(), down) {
            let (mut free, mut movable) = (Vec::new(), Vec::new());
            for (i, &v) in cols[c].iter().enumerate() {
                // Input nodes are satellites of their job: they follow it
                // (right→left) but never pull it around (left→right).
                let adj = if down { &preds[v] } else { &succs[v] };
                let barycentre = adj
                    .iter()
                    .filter(|(u, _)| !down || nodes[*u].kind != "input")
                    .map(|(u, _)| pos[*u] as f64);
                // Nodes without neighbours on this side keep their place.
                if let Some(bc) = mean(barycentre) {
                    free.push(i);
                    movable.push((bc, (nodes[v].order, v)));
                }
            }
            movable.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for (&i, m) in free.iter().zip(&movable) {
                cols[c][i] = m.1 .1;
            }
            index(&cols[c..=c], &mut pos);
        }
        let count = crossings(segments, nodes, &pos, cols.len());
        if count < best.0 {
            best = (count, cols.to_vec());
        }
    }
    cols.clone_from_slice(&best.1);
}

fn crossings(segments: &[(usize, usize)], nodes: &[LNode], pos: &[usize], ncols: usize) -> usize {
    let mut by_col = vec![Vec::new(); ncols];
    for &(a, b) in segments {
        by_col[nodes[a].rank].push((pos[a], pos[b]));
    }
    let crossing = |(a1, b1): (usize, usize), (a2, b2): (usize, usize)| {
        (a1 < a2 && b1 > b2) || (a1 > a2 && b1 < b2)
    };
    by_col
        .iter()
        .map(|s| {
            (0..s.len())
                .map(|i| s[i + 1..].iter().filter(|&&t| crossing(s[i], t)).count())
                .sum::<usize>()
        })
        .sum()
}

/// Vertical placement: alternately aligns each column with its left and right
/// neighbours (attachment point to attachment point, so edges run straight
/// where they can), keeping the column order and gaps, on the 30 px slot grid.
/// Returns the top of every node, before shifting to the margin.
fn place(
    cols: &[Vec<usize>],
    nodes: &mut [LNode],
    real: usize,
    (preds, succs): (&Adjacency, &Adjacency),
    heights: &[f64],
) -> Vec<f64> {
    let mut y = vec![0.0; nodes.len()];
    for col in cols {
        let mut top = 0.0;
        for &v in col {
            (y[v], top) = (top, top + heights[v] + GAP);
        }
    }
    for _ in 0..PLACE_ROUNDS {
        // Slot order: each key faces the mean height of its neighbours, so
        // edges do not cross at the node (ties keep the current order).
        for (v, node) in nodes.iter_mut().enumerate().take(real) {
            let near = |k: &String| {
                let ns = preds[v].iter().chain(&succs[v]).filter(|(_, key)| key == k);
                mean(ns.map(|&(u, _)| y[u] + heights[u] / 2.0)).unwrap_or(0.0)
            };
            let mut ranked: Vec<(f64, usize)> = node.keys.iter().map(near).zip(0..).collect();
            ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            node.keys = ranked.iter().map(|&(_, i)| node.keys[i].clone()).collect();
        }
        for down in [true, false] {
            for c in sweep(cols.len(), down) {
                let desired: Vec<f64> = cols[c]
                    .iter()
                    .map(|&v| {
                        let adj = if down { &preds[v] } else { &succs[v] };
                        let at = |(u, k): &(usize, String)| {
                            y[*u] + slot_offset(&nodes[*u], k) - slot_offset(&nodes[v], k)
                        };
                        mean(adj.iter().map(at)).unwrap_or(y[v])
                    })
                    .collect();
                stack(&cols[c], &desired, heights, &mut y);
            }
        }
    }
    y
}

/// Closest placement (least squares) to `desired` that keeps the column order
/// and gaps: subtracting the heights above each node turns the gaps into
/// "non-decreasing", solved by pool-adjacent-violators. Rounding to the slot
/// grid is monotone, so it keeps the gaps.
fn stack(col: &[usize], desired: &[f64], heights: &[f64], y: &mut [f64]) {
    let (mut offsets, mut blocks, mut offset) = (Vec::new(), Vec::<(f64, f64)>::new(), 0.0);
    for (&v, &d) in col.iter().zip(desired) {
        offsets.push(offset);
        blocks.push((d - offset, 1.0));
        offset += heights[v] + GAP;
        while let [.., (s1, n1), (s2, n2)] = blocks[..] {
            if s1 / n1 <= s2 / n2 {
                break;
            }
            blocks.pop();
            *blocks.last_mut().unwrap() = (s1 + s2, n1 + n2);
        }
    }
    let grid = blocks
        .iter()
        .flat_map(|&(s, n)| std::iter::repeat_n((s / n / SLOT).round() * SLOT, n as usize));
    for ((&v, z), off) in col.iter().zip(grid).zip(offsets) {
        y[v] = z + off;
    }
}
#[cfg(test)]
mod tests;
