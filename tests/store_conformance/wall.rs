//! The wall message, and the builds that used or produced a version.

use super::*;

pub async fn the_wall_is_set_replaced_and_cleared_for_every_node(h: &Harness) {
    let store = &h.store;
    assert_eq!(store.wall().await.unwrap(), None);
    let w = WallRow {
        message: "maintenance".into(),
        expires_at: Some(100),
    };
    store.set_wall(&w).await.unwrap();
    assert_eq!(store.wall().await.unwrap(), Some(w));
    let forever = WallRow {
        message: "hello".into(),
        expires_at: None,
    };
    store.set_wall(&forever).await.unwrap();
    // Another web node on the same database sees it.
    let other = h.reopen().await;
    assert_eq!(other.wall().await.unwrap(), Some(forever));
    other.clear_wall().await.unwrap();
    assert_eq!(store.wall().await.unwrap(), None);
    store.clear_wall().await.unwrap();
}

pub async fn builds_of_a_version_are_its_inputs_and_outputs(h: &Harness) {
    let store = &h.store;
    let (team, pipeline, job) = pipeline_with_job(store).await;
    let r = store.resource(pipeline.id, "r").await.unwrap().unwrap();
    let scope = store.resource_scope("git", "k", Some(r.id)).await.unwrap();
    store.set_resource_scope(r.id, scope).await.unwrap();
    let nv = |s: &str| NewVersion {
        version: json!({ "v": s }),
        metadata: json!([]),
    };
    store
        .save_versions(scope, &[nv("a"), nv("b")])
        .await
        .unwrap();
    let id_of = |all: &[VersionRow], s: &str| {
        all.iter()
            .find(|v| v.version["v"] == s)
            .map(|v| v.id)
            .unwrap()
    };
    let b1 = job_build(store, &team, &job).await;
    let b2 = job_build(store, &team, &job).await;
    for b in [&b1, &b2] {
        let input = BuildInputRow {
            name: "r".into(),
            resource_id: r.id,
            version: json!({"v": "a"}),
            first_occurrence: b.id == b1.id,
        };
        store.save_build_inputs(b.id, &[input]).await.unwrap();
    }
    let output = BuildOutputRow {
        name: "r".into(),
        resource_id: r.id,
        version: json!({"v": "c"}),
        metadata: json!([]),
    };
    store.save_build_output(b2.id, &output).await.unwrap();
    let all = store.versions(scope, &Page::default()).await.unwrap();
    let (a, b, c) = (id_of(&all, "a"), id_of(&all, "b"), id_of(&all, "c"));
    let ids = |rows: Vec<BuildRow>| rows.iter().map(|b| b.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.version_builds(r.id, a, false).await.unwrap()),
        vec![b2.id, b1.id],
        "newest first"
    );
    assert!(store
        .version_builds(r.id, a, true)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .version_builds(r.id, b, false)
        .await
        .unwrap()
        .is_empty());
    let out = store.version_builds(r.id, c, true).await.unwrap();
    assert_eq!(ids(out.clone()), vec![b2.id]);
    assert_eq!(out[0].job_name, job.name);
    assert!(store
        .version_builds(r.id, 999_999, false)
        .await
        .unwrap()
        .is_empty());
}
