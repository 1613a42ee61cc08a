use super::*;
use proptest::collection::vec;
use proptest::prelude::*;

const CW: f64 = 7.3;

fn job(name: &str, inputs: Vec<InputIn>, outputs: &[&str]) -> JobIn {
    let outputs = outputs.iter().map(|s| s.to_string()).collect();
    JobIn {
        name: name.into(),
        inputs,
        outputs,
        ..Default::default()
    }
}

fn input(resource: &str, passed: &[&str]) -> InputIn {
    let passed = passed.iter().map(|s| s.to_string()).collect();
    InputIn {
        resource: resource.into(),
        passed,
        trigger: true,
    }
}

fn find<'g>(g: &'g Graph, kind: &str, name: &str) -> Vec<&'g Node> {
    g.nodes
        .iter()
        .filter(|n| n.kind == kind && n.name == name)
        .collect()
}

fn one<'g>(g: &'g Graph, kind: &str, name: &str) -> &'g Node {
    match find(g, kind, name)[..] {
        [n] => n,
        _ => panic!("not exactly one {kind} {name}: {:#?}", g.nodes),
    }
}

fn edge<'g>(g: &'g Graph, from: &Node, to: &Node) -> &'g Edge {
    let mut found = g
        .edges
        .iter()
        .filter(|e| (e.from, e.to) == (from.id, to.id));
    found.next().expect("edge")
}

/// Lays out and checks the invariants every layout must satisfy.
fn run(jobs: &[JobIn], resources: &[ResourceIn]) -> Graph {
    let g = layout(jobs, resources, CW).unwrap();
    let eps = 0.02;
    for j in jobs {
        assert_eq!(find(&g, "job", &j.name).len(), 1, "job {}", j.name);
    }
    assert_eq!(
        g.nodes.iter().filter(|n| n.kind == "job").count(),
        jobs.len()
    );
    for (i, a) in g.nodes.iter().enumerate() {
        assert_eq!(a.id, i);
        assert!([a.x, a.y, a.width, a.height].iter().all(|v| v.is_finite()));
        assert!(a.x >= 0.0 && a.y >= 0.0, "{a:?}");
        assert!(a.x + a.width <= g.width + eps && a.y + a.height <= g.height + eps);
        for b in g.nodes[i + 1..].iter().filter(|b| b.column == a.column) {
            let apart = a.y + a.height + GAP <= b.y + eps || b.y + b.height + GAP <= a.y + eps;
            assert!(apart, "overlap {a:?} {b:?}");
        }
    }
    for e in &g.edges {
        let (from, to) = (&g.nodes[e.from], &g.nodes[e.to]);
        assert!(from.column < to.column, "{e:?}");
        let ps = pieces(&e.path);
        let ((x0, y0), (x1, y1)) = (ps[0].1, ps[ps.len() - 1].2);
        assert!((x0 - from.x - from.width).abs() < eps && (x1 - to.x).abs() < eps);
        assert!(y0 > from.y && y0 < from.y + from.height && y1 > to.y && y1 < to.y + to.height);
        for &(cmd, (x0, y0), (x1, y1)) in &ps {
            assert!([x0, x1].iter().all(|x| (0.0..=g.width).contains(x)));
            assert!([y0, y1].iter().all(|y| (0.0..=g.height).contains(y)));
            for n in &g.nodes {
                if x1.min(n.x + n.width) - x0.max(n.x) <= 0.5 {
                    continue;
                }
                // Curves stay in the gaps; straight runs never cross a node.
                assert!(cmd == "L" && y0 == y1, "curve over {n:?}: {e:?}");
                let inside = y0 >= n.y - eps && y0 <= n.y + n.height + eps;
                assert!(
                    !inside || n.id == e.from || n.id == e.to,
                    "{e:?} over {n:?}"
                );
            }
        }
    }
    g
}

/// Path pieces as (command, start, end).
type Piece<'a> = (&'a str, (f64, f64), (f64, f64));

fn pieces(path: &str) -> Vec<Piece<'_>> {
    let t: Vec<&str> = path.split([' ', ',']).filter(|s| !s.is_empty()).collect();
    let n = |i: usize| -> f64 { t[i].parse().unwrap() };
    assert_eq!(t[0], "M");
    let (mut at, mut i, mut out) = ((n(1), n(2)), 3, Vec::new());
    while i < t.len() {
        let len = match t[i] {
            "C" => 6,
            "L" => 2,
            other => panic!("{other} in {path}"),
        };
        out.push((t[i], at, (n(i + len - 1), n(i + len))));
        (at, i) = (out[out.len() - 1].2, i + len + 1);
    }
    out
}

fn get<'g, const N: usize>(g: &'g Graph, kind: &str, names: [&str; N]) -> [&'g Node; N] {
    names.map(|name| one(g, kind, name))
}

#[test]
fn single_job_and_empty_pipeline() {
    let g = run(&[job("build", vec![], &[])], &[]);
    let n = &g.nodes[0];
    assert_eq!((n.kind, n.x, n.y, n.column), ("job", 20.0, 20.0, 0));
    assert!((n.width - (5.0 * CW + 10.0)).abs() < 1e-9);
    assert_eq!(n.height, 20.0);
    assert_eq!(n.classes, ["no-builds"]);
    assert_eq!((g.width, g.height), (n.width + 40.0, 60.0));
    assert!(g.edges.is_empty() && g.failed_columns.is_empty());
    let g = run(&[], &[]);
    assert_eq!((g.width, g.height), (40.0, 40.0));
}

#[test]
fn chain() {
    let jobs = [
        job("a", vec![input("repo", &[])], &["x"]),
        job("b", vec![input("x", &["a"])], &["y"]),
        job("c", vec![input("y", &["b"])], &[]),
    ];
    let g = run(&jobs, &[]);
    let [a, b, c] = get(&g, "job", ["a", "b", "c"]);
    assert!(a.column < b.column && b.column < c.column);
    let [x, y] = get(&g, "output", ["x", "y"]);
    let repo = one(&g, "input", "repo");
    assert_eq!(repo.column + 1, a.column);
    assert_eq!(edge(&g, repo, a).class, "");
    assert_eq!(edge(&g, a, x).key, "x");
    assert_eq!(edge(&g, x, b).key, "x");
    assert_eq!(edge(&g, y, c).key, "y");
    assert_eq!(g.nodes.len(), 6, "no constrained-input nodes");
    for e in &g.edges {
        let ps = pieces(&e.path);
        assert_eq!(ps[0].1 .1, ps[ps.len() - 1].2 .1, "{}", e.path);
    }
}

#[test]
fn fan_in() {
    let jobs = [
        job("a", vec![], &["x"]),
        job("b", vec![], &["y"]),
        job("c", vec![input("x", &["a"]), input("y", &["b"])], &[]),
    ];
    let g = run(&jobs, &[]);
    let c = one(&g, "job", "c");
    let [x, y] = get(&g, "output", ["x", "y"]);
    assert!(x.column < c.column && y.column < c.column);
    assert_eq!(c.height, 50.0, "two keys, two slots");
    let end_y = |e: &Edge| pieces(&e.path).last().unwrap().2 .1 - c.y;
    assert_eq!(end_y(edge(&g, x, c)), 10.0);
    assert_eq!(end_y(edge(&g, y, c)), 40.0);
}

#[test]
fn constrained_input_when_upstream_lacks_output() {
    let jobs = [
        job("a", vec![input("repo", &[])], &[]),
        job("b", vec![input("repo", &["a"])], &[]),
    ];
    let g = run(&jobs, &[]);
    let [a, b] = get(&g, "job", ["a", "b"]);
    let c = one(&g, "constrained-input", "repo");
    assert!(a.column < c.column && c.column < b.column);
    assert_eq!(edge(&g, a, c).key, "repo");
    assert_eq!(edge(&g, c, b).key, "repo");
    assert_eq!(find(&g, "input", "repo").len(), 1);
}

#[test]
fn merges_unconstrained_inputs_in_same_column() {
    let jobs = [
        job("a", vec![input("repo", &[])], &["x"]),
        job("b", vec![input("repo", &[])], &[]),
        job("c", vec![input("repo", &[]), input("x", &["a"])], &[]),
    ];
    let g = run(&jobs, &[]);
    let [a, b, c] = get(&g, "job", ["a", "b", "c"]);
    let repos = find(&g, "input", "repo");
    assert_eq!(repos.len(), 2);
    let shared = repos.iter().find(|n| n.column == 0).unwrap();
    assert_eq!(edge(&g, shared, a).to, a.id);
    assert_eq!(edge(&g, shared, b).to, b.id);
    let own = repos.iter().find(|n| n.column != 0).unwrap();
    assert_eq!(own.column + 1, c.column);
    assert_eq!(edge(&g, own, c).to, c.id);
}

#[test]
fn passed_job_not_present_is_unconstrained() {
    let b = job("b", vec![input("repo", &["filtered-out"])], &[]);
    let g = run(&[b], &[]);
    let b = one(&g, "job", "b");
    assert_eq!(one(&g, "input", "repo").column + 1, b.column);
    assert_eq!(g.nodes.len(), 2);
}

#[test]
fn trigger_false_is_dashed() {
    let manual = InputIn {
        trigger: false,
        ..input("repo", &[])
    };
    let g = run(&[job("a", vec![manual, input("img", &[])], &[])], &[]);
    let a = one(&g, "job", "a");
    assert!(edge(&g, one(&g, "input", "repo"), a).dashed);
    assert!(!edge(&g, one(&g, "input", "img"), a).dashed);
}

#[test]
fn resource_classes_and_badges() {
    let res = |name: &str, pinned, check: Option<&str>, icon: Option<&str>| ResourceIn {
        name: name.into(),
        pinned,
        check_status: check.map(Into::into),
        icon: icon.map(Into::into),
    };
    let resources = [
        res("repo", true, None, Some("git")),
        res("img", false, Some("errored"), None),
    ];
    let inputs = ["repo", "img", "gone"].map(|r| input(r, &[]));
    let g = run(&[job("a", inputs.to_vec(), &[])], &resources);
    let a = one(&g, "job", "a");
    let [repo, img, gone] = get(&g, "input", ["repo", "img", "gone"]);
    assert_eq!(repo.classes, ["pinned"]);
    assert_eq!(repo.icon.as_deref(), Some("git"));
    assert!((repo.width - (4.0 * CW + 50.0)).abs() < 1e-9);
    assert_eq!(img.classes, ["errored"]);
    assert!(gone.classes.is_empty() && gone.icon.is_none());
    assert_eq!(edge(&g, img, a).class, "errored");
    assert_eq!(edge(&g, repo, a).class, "");
    assert_eq!(a.height, 80.0);
}

#[test]
fn job_classes_and_failed_columns() {
    let mk = |name: &str, paused, finished: Option<&str>, next: Option<&str>| JobIn {
        paused,
        finished: finished.map(Into::into),
        next: next.map(Into::into),
        ..job(name, vec![], &["out"])
    };
    let jobs = [
        mk("p", true, Some("failed"), None),
        mk("f", false, Some("failed"), Some("started")),
        mk("n", false, None, Some("pending")),
    ];
    let g = run(&jobs, &[]);
    let [p, f, n] = get(&g, "job", ["p", "f", "n"]);
    assert_eq!(p.classes, ["paused"]);
    assert_eq!(f.classes, ["failed", "started"]);
    assert_eq!(n.classes, ["no-builds", "pending"]);
    assert_eq!(g.failed_columns, [f.x + f.width / 2.0]);
    let out = g.edges.iter().find(|e| e.from == f.id).unwrap();
    assert_eq!(out.class, "failed");
}

#[test]
fn independent_jobs_keep_config_order() {
    // Not alphabetical, and a shared input that barycentres would reorder.
    let names = ["zeta", "alpha", "mike", "bravo"];
    let res = ["repo", "other", "repo", "zzz"];
    let jobs: Vec<JobIn> = names
        .iter()
        .zip(res)
        .map(|(n, r)| job(n, vec![input(r, &[])], &["out"]))
        .collect();
    let g = run(&jobs, &[]);
    let ys = get(&g, "job", names).map(|n| n.y);
    assert!(ys.windows(2).all(|w| w[0] < w[1]), "{ys:?}");
}

#[test]
fn long_edge_avoids_nodes_in_skipped_columns() {
    let long = "a-rather-long-job-name";
    let jobs = [
        job("a", vec![], &["x"]),
        job(long, vec![input("x", &["a"])], &["y"]),
        job("c", vec![input("x", &["a"]), input("y", &[long])], &[]),
    ];
    let g = run(&jobs, &[]); // run() checks that nothing is drawn over a node
    let (x, c) = (one(&g, "output", "x"), one(&g, "job", "c"));
    assert_eq!(c.column - x.column, 3);
    let ps = pieces(&edge(&g, x, c).path);
    assert_eq!(ps.iter().filter(|p| p.0 == "C").count(), 3, "{ps:?}");
}

#[test]
fn cycle_is_an_error() {
    let jobs = [
        job("a", vec![input("x", &["b"])], &["y"]),
        job("b", vec![input("y", &["a"])], &["x"]),
    ];
    assert_eq!(layout(&jobs, &[], CW), Err(LayoutError::Cycle));
    let own = [job("a", vec![input("x", &["a"])], &["x"])];
    assert_eq!(layout(&own, &[], CW), Err(LayoutError::Cycle));
    let msg = LayoutError::Cycle.to_string();
    assert_eq!(msg, "pipeline graph has a cycle");
}

#[test]
fn deserializes_with_defaults() {
    let json = r#"{"name":"a","inputs":[{"resource":"r"}]}"#;
    let j: JobIn = serde_json::from_str(json).unwrap();
    assert_eq!((j.name.as_str(), j.paused), ("a", false));
    assert!(!j.inputs[0].trigger && j.inputs[0].passed.is_empty());
}

#[test]
fn large_pipeline() {
    // Chains of ten jobs, with a fan-in from three and five jobs back.
    let jobs: Vec<JobIn> = (0..200)
        .map(|i| {
            let mut inputs = vec![input("src", &[])];
            let back = |d: usize| input(&format!("r{}", i - d), &[&format!("j{}", i - d)]);
            if i % 10 != 0 {
                inputs.push(back(1));
            }
            if i % 7 == 0 && i >= 5 {
                inputs.extend([back(3), back(5)]);
            }
            job(&format!("j{i}"), inputs, &[&format!("r{i}")])
        })
        .collect();
    let g = run(&jobs, &[]);
    assert!(g.nodes.iter().all(|n| n.kind != "constrained-input"));
}

fn pipeline() -> impl Strategy<Value = (Vec<JobIn>, Vec<ResourceIn>)> {
    let inputs = vec((0..6usize, vec(0..30usize, 0..3), any::<bool>()), 0..4);
    let job = (any::<bool>(), 0..4usize, inputs, vec(0..6usize, 0..3));
    let res = vec((any::<bool>(), any::<bool>(), any::<bool>()), 5);
    (vec(job, 1..30), res).prop_map(|(jobs, res)| {
        let name = |i: usize| format!("job{i}{}", "-x".repeat(i % 4));
        let status = [None, Some("succeeded"), Some("failed"), Some("errored")];
        let jobs = jobs
            .into_iter()
            .enumerate()
            .map(|(i, (paused, s, inputs, outputs))| JobIn {
                name: name(i),
                paused,
                finished: status[s].map(Into::into),
                next: (s == 3).then(|| "started".into()),
                // Passed only among earlier jobs keeps the pipeline acyclic.
                inputs: inputs
                    .into_iter()
                    .map(|(r, passed, trigger)| InputIn {
                        resource: format!("r{r}"),
                        passed: passed
                            .iter()
                            .filter(|_| i > 0)
                            .map(|p| name(p % i.max(1)))
                            .collect(),
                        trigger,
                    })
                    .collect(),
                outputs: outputs.into_iter().map(|r| format!("r{r}")).collect(),
            })
            .collect();
        // r5 is deliberately missing from the resource list.
        let res = res
            .into_iter()
            .enumerate()
            .map(|(i, (pinned, failing, icon))| ResourceIn {
                name: format!("r{i}"),
                pinned,
                check_status: failing.then(|| "failed".into()),
                icon: icon.then(|| "git".into()),
            })
            .collect();
        (jobs, res)
    })
}

proptest! {
    // run() checks: no overlaps, edges left to right, coordinates finite and
    // inside the graph, every job exactly once, no edge drawn over a node.
    #[test]
    fn random_pipelines_lay_out_sanely((jobs, res) in pipeline()) {
        let g = run(&jobs, &res);
        prop_assert_eq!(&g, &layout(&jobs, &res, CW).unwrap(), "deterministic");
    }
}
