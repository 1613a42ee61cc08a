//! Worker artifacts: `fly execute` uploads (team-owned, no build) and one-off build outputs.

use super::*;

fn new_artifact(team_id: i64, build_id: Option<i64>, name: &str) -> NewArtifact {
    NewArtifact {
        team_id,
        build_id,
        name: name.into(),
        worker_name: "w1".into(),
        volume_handle: format!("vol-{name}"),
        created_at: 100,
    }
}

pub async fn artifacts_are_team_scoped_and_attached_to_builds(h: &Harness) {
    let store = &h.store;
    let main = team(store, "main").await;
    let other = team(store, "other").await;

    let uploaded = store
        .create_artifact(&new_artifact(main.id, None, ""))
        .await
        .unwrap();
    assert_eq!(
        (uploaded.team_id, uploaded.build_id, uploaded.name.as_str()),
        (main.id, None, "")
    );
    assert_eq!(
        (
            uploaded.worker_name.as_str(),
            uploaded.volume_handle.as_str()
        ),
        ("w1", "vol-")
    );
    assert_eq!(uploaded.created_at, 100);
    assert_eq!(
        store.artifact(main.id, uploaded.id).await.unwrap(),
        Some(uploaded.clone())
    );
    assert_eq!(
        store.artifact(other.id, uploaded.id).await.unwrap(),
        None,
        "another team's artifact is invisible"
    );
    assert_eq!(
        store.artifact(main.id, uploaded.id + 100).await.unwrap(),
        None
    );

    let build = store
        .create_build(&NewBuild {
            team_id: main.id,
            at: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(store.build_artifacts(build.id).await.unwrap().is_empty());
    let out = store
        .create_artifact(&new_artifact(main.id, Some(build.id), "out"))
        .await
        .unwrap();
    assert!(store
        .set_artifact_build(uploaded.id, build.id, "in")
        .await
        .unwrap());
    assert!(!store
        .set_artifact_build(uploaded.id + 100, build.id, "x")
        .await
        .unwrap());
    let listed: Vec<(i64, String)> = store
        .build_artifacts(build.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    assert_eq!(
        listed,
        vec![(uploaded.id, "in".to_string()), (out.id, "out".to_string())]
    );

    // The survivors of a restart are the same rows.
    let again = h.reopen().await;
    assert_eq!(again.build_artifacts(build.id).await.unwrap().len(), 2);
}

pub async fn artifacts_of_unknown_teams_or_builds_are_refused(h: &Harness) {
    let store = &h.store;
    let main = team(store, "main").await;
    let err = store
        .create_artifact(&new_artifact(main.id + 99, None, ""))
        .await
        .expect_err("unknown team");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let err = store
        .create_artifact(&new_artifact(main.id, Some(12345), "x"))
        .await
        .expect_err("unknown build");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let a = store
        .create_artifact(&new_artifact(main.id, None, ""))
        .await
        .unwrap();
    let err = store
        .set_artifact_build(a.id, 12345, "x")
        .await
        .expect_err("unknown build");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert_eq!(
        store.artifact(main.id, a.id).await.unwrap(),
        Some(a),
        "a refused change leaves the row as it was"
    );
    // Destroying the team takes its artifacts along.
    assert!(store.destroy_team("main").await.unwrap());
}
