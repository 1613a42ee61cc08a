//! The across step: runs its step once per combination of the vars' values (the first
//! var outermost), each in a child scope holding the values as local vars.

use super::exec::{Build, Scope};
use super::plan::{public_plan, AcrossNode, BuildPlan, Plan};
use super::runtime::{errored, Cancel, Fail, StepResult};
use crate::proto::event::{self as ev, BuildEvent};
use serde_json::Value;
use std::sync::Arc;

pub async fn run(
    b: &Arc<Build>,
    scope: &Arc<Scope>,
    plan: &Plan,
    a: &AcrossNode,
    cancel: &Cancel,
) -> StepResult {
    let origin = b.origin(plan);
    origin.emit(BuildEvent::Initialize(Default::default()));
    origin.emit(BuildEvent::Start(Default::default()));
    let r = run_inner(b, scope, plan, a, cancel).await;
    match &r {
        Ok(ok) => origin.emit(BuildEvent::Finish(ev::Finish {
            succeeded: *ok,
            ..Default::default()
        })),
        Err(Fail::Errored(m)) => origin.error(m),
        Err(Fail::Interrupted) => {}
    }
    r
}

async fn run_inner(
    b: &Arc<Build>,
    scope: &Arc<Scope>,
    plan: &Plan,
    a: &AcrossNode,
    cancel: &Cancel,
) -> StepResult {
    let mut vars = Vec::new();
    for v in &a.vars {
        vars.push(b.interpolate_with(scope, &v.values, false).await?);
    }
    let names: Vec<String> = a.vars.iter().map(|v| v.var.clone()).collect();
    let mut lists = Vec::new();
    for values in vars {
        match values {
            Value::Array(vs) => lists.push(vs),
            other => {
                return Err(errored(format!(
                    "across values must be a list, got {other}"
                )))
            }
        }
    }
    let limit = match a.vars.first().and_then(|v| v.max_in_flight.as_ref()) {
        Some(Value::String(s)) if s == "all" => usize::MAX,
        Some(Value::Number(n)) => n.as_u64().unwrap_or(1).max(1) as usize,
        _ => 1,
    };
    let mut combos: Vec<Vec<Value>> = vec![vec![]];
    for list in &lists {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                list.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push(v.clone());
                    c
                })
            })
            .collect();
    }
    let substeps: Vec<Plan> = (0..combos.len()).map(|i| a.step.derived(i)).collect();
    let substeps_shown = substeps
        .iter()
        .zip(&combos)
        .map(|(p, values)| {
            let bp = BuildPlan {
                plan: p.clone(),
                ..b.plan.clone()
            };
            ev::AcrossSubstep {
                step: public_plan(&bp),
                values: values.clone(),
            }
        })
        .collect();
    b.origin(plan)
        .emit(BuildEvent::AcrossSubsteps(ev::AcrossSubsteps {
            substeps: substeps_shown,
            ..Default::default()
        }));
    let limit = limit.min(combos.len().max(1));
    let sem = Arc::new(tokio::sync::Semaphore::new(limit));
    let group = cancel.group();
    let runs = substeps.iter().zip(&combos).map(|(p, values)| {
        let (sem, group) = (sem.clone(), group.clone());
        let child = Scope::child(scope);
        for (n, v) in names.iter().zip(values) {
            child.set_var(n, v.clone());
        }
        async move {
            let _permit = sem.acquire().await;
            if group.is_cancelled() {
                return Err(Fail::Interrupted);
            }
            let r = b.exec(&child, p, &group).await;
            if a.fail_fast && !matches!(r, Ok(true)) {
                group.token.cancel();
            }
            r
        }
    });
    let results = futures::future::join_all(runs).await;
    let mut ok = true;
    let mut err = None;
    for r in results {
        match r {
            Ok(v) => ok &= v,
            Err(Fail::Interrupted) if !cancel.is_cancelled() => ok = false,
            Err(e) => err = err.or(Some(e)),
        }
    }
    match err {
        Some(e) => Err(e),
        None => Ok(ok),
    }
}
