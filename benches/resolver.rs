//! Scheduling pass over a big pipeline: 500 jobs in a fan-out/fan-in lattice, 10 resources
//! with 10,000 versions each, 20 successful builds per job. Resolves every job's inputs
//! once per pass and reports the median pass. Run: `cargo bench --bench resolver`.

use concourse::atc::scheduler::resolve::{resolve, InputConfig, VersionChoice, VersionsDb};
use std::time::Instant;

const RESOURCES: i64 = 10;
const VERSIONS: i64 = 10_000;
const LAYERS: i64 = 10;
const PER_LAYER: i64 = 50;
const BUILDS: i64 = 20;

fn main() {
    let mut db = VersionsDb::default();
    for r in 0..RESOURCES {
        for v in 0..VERSIONS {
            db.add_version(r, r * VERSIONS + v);
        }
    }
    // Job (layer, i) gets resources i%R and (i+1)%R; from layer 1 on with passed on two
    // jobs of the previous layer (fan-in), each of which feeds two jobs (fan-out).
    let job_id = |layer: i64, i: i64| layer * PER_LAYER + i;
    let mut jobs: Vec<Vec<InputConfig>> = Vec::new();
    let mut build_id = 0;
    for layer in 0..LAYERS {
        for i in 0..PER_LAYER {
            let resources = [i % RESOURCES, (i + 1) % RESOURCES];
            let passed: Vec<i64> = if layer == 0 {
                vec![]
            } else {
                vec![job_id(layer - 1, i), job_id(layer - 1, (i + 1) % PER_LAYER)]
            };
            jobs.push(
                resources
                    .iter()
                    .map(|&r| InputConfig {
                        name: format!("r{r}"),
                        resource: r,
                        version: VersionChoice::Latest,
                        passed: passed.clone(),
                        last_used: None,
                    })
                    .collect(),
            );
            // Recent builds ran recent versions; every job saw the same ones so passed holds.
            for b in 0..BUILDS {
                build_id += 1;
                let v = |r: i64| r * VERSIONS + VERSIONS - BUILDS + b;
                let inputs: Vec<(i64, i64)> = (0..RESOURCES).map(|r| (r, v(r))).collect();
                db.add_successful_build(job_id(layer, i), build_id, &inputs, &[]);
            }
        }
    }
    let mut times = Vec::new();
    for _ in 0..15 {
        let start = Instant::now();
        let mut resolved = 0;
        for inputs in &jobs {
            if resolve(&db, inputs).is_ok() {
                resolved += 1;
            }
        }
        times.push(start.elapsed());
        assert_eq!(resolved, jobs.len(), "every job resolves");
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "resolver: {} jobs, {} resources x {} versions, {} builds/job: median pass {:.2} ms (min {:.2} ms, max {:.2} ms)",
        jobs.len(),
        RESOURCES,
        VERSIONS,
        BUILDS,
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
}
