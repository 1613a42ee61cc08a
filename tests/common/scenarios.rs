//! Scenario suites: many independent checks against one shared server, a few at a time.
//! A failing scenario is reported by name with its message, and the others still run.

use std::sync::{Arc, Mutex};
use std::time::Instant;

pub type Check = Result<(), String>;
pub type Scenario<E> = (&'static str, fn(&E) -> Check);

/// Runs every scenario on `threads` threads and fails the test listing all failures.
/// `SCENARIOS=a,b` runs only those (while working on them; CI sets none).
pub fn run_all<E: Send + Sync + 'static>(
    env: Arc<E>,
    mut scenarios: Vec<Scenario<E>>,
    threads: usize,
) {
    if let Ok(only) = std::env::var("SCENARIOS") {
        scenarios.retain(|(name, _)| only.split(',').any(|o| o == *name));
        assert!(!scenarios.is_empty(), "SCENARIOS={only} names no scenario");
    }
    let queue = Arc::new(Mutex::new(scenarios));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (env, queue, failures) = (env.clone(), queue.clone(), failures.clone());
            std::thread::spawn(move || loop {
                let Some((name, f)) = queue.lock().expect("queue").pop() else {
                    return;
                };
                let started = Instant::now();
                let r = f(&env);
                eprintln!(
                    "scenario {name}: {} in {:?}",
                    if r.is_ok() { "ok" } else { "FAILED" },
                    started.elapsed()
                );
                if let Err(m) = r {
                    failures
                        .lock()
                        .expect("failures")
                        .push(format!("--- {name}\n{m}"));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("scenario thread");
    }
    let failures = failures.lock().expect("failures");
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A command's exit code is `want_code`, its output holds `wants` in this order and none
/// of `unwanted`.
pub fn expect(code: i32, out: &str, want_code: i32, wants: &[&str], unwanted: &[&str]) -> Check {
    if code != want_code {
        return Err(format!("exit {code}, want {want_code}; output:\n{out}"));
    }
    let mut at = 0;
    for w in wants {
        match out[at..].find(w) {
            Some(i) => at += i + w.len(),
            None => return Err(format!("missing (in order) {w:?}; output:\n{out}")),
        }
    }
    for u in unwanted {
        if out.contains(u) {
            return Err(format!("unexpected {u:?}; output:\n{out}"));
        }
    }
    Ok(())
}
