//! Teams, access tokens, users and workers.

use super::*;

pub async fn teams_are_created_renamed_and_destroyed(h: &Harness) {
    let store = &h.store;
    let (main, created) = store
        .upsert_team("main", &owner_auth("admin"), true)
        .await
        .unwrap();
    assert!(created);
    assert!(main.admin);
    assert_eq!(main.auth, owner_auth("admin"));

    let (again, created) = store
        .upsert_team("main", &owner_auth("other"), false)
        .await
        .unwrap();
    assert!(!created, "an existing team is updated, not created");
    assert_eq!(again.id, main.id);
    assert_eq!(again.auth, owner_auth("other"), "auth is replaced");
    assert!(again.admin, "admin stays as created");

    team(store, "other").await;
    team(store, "Zebra").await;
    let all: Vec<String> = store
        .teams()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(all, vec!["Zebra", "main", "other"], "byte order");

    assert!(store.rename_team("other", "renamed").await.unwrap());
    assert!(!store.rename_team("missing", "x").await.unwrap());
    assert!(matches!(
        store.rename_team("renamed", "main").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.team("other").await.unwrap().is_none());
    let renamed = store.team("renamed").await.unwrap().expect("renamed team");

    // Destroying a team takes its pipelines, builds and workers with it.
    let saved = save(store, &config_save(renamed.id, "p", vec![job("j")], vec![])).await;
    store
        .register_worker(
            &Worker {
                name: "w".into(),
                team: "renamed".into(),
                ..Worker::default()
            },
            None,
            0,
        )
        .await
        .unwrap();
    assert!(store.destroy_team("renamed").await.unwrap());
    assert!(!store.destroy_team("renamed").await.unwrap());
    assert!(store
        .pipeline_by_id(saved.pipeline.id)
        .await
        .unwrap()
        .is_none());
    assert!(store.workers().await.unwrap().is_empty());
}

pub async fn access_tokens_are_saved_looked_up_and_expired(h: &Harness) {
    let store = &h.store;
    let claims = json!({"sub": "admin", "aud": ["concourse-worker"]});
    store.save_access_token("old", &claims, 100).await.unwrap();
    store.save_access_token("new", &claims, 300).await.unwrap();
    assert_eq!(
        store.access_token("old").await.unwrap(),
        Some(claims.clone())
    );
    assert_eq!(store.access_token("missing").await.unwrap(), None);

    assert_eq!(store.delete_expired_access_tokens(200).await.unwrap(), 1);
    assert_eq!(store.access_token("old").await.unwrap(), None);
    assert_eq!(store.access_token("new").await.unwrap(), Some(claims));

    store.delete_access_token("new").await.unwrap();
    assert_eq!(store.access_token("new").await.unwrap(), None);
}

pub async fn user_logins_are_recorded_once_per_user(h: &Harness) {
    let store = &h.store;
    let login = |name: &str, at| UserLogin {
        username: name.into(),
        connector: "local".into(),
        sub: format!("sub-{name}"),
        at,
    };
    store.record_user_login(&login("alice", 100)).await.unwrap();
    store.record_user_login(&login("bob", 200)).await.unwrap();
    store.record_user_login(&login("alice", 300)).await.unwrap();

    let users = store.users_since(0).await.unwrap();
    assert_eq!(users.len(), 2, "one row per user: {users:?}");
    let alice = users.iter().find(|u| u.username == "alice").expect("alice");
    assert_eq!(
        (
            alice.last_login,
            alice.connector.as_str(),
            alice.sub.as_str()
        ),
        (300, "local", "sub-alice")
    );

    let recent: Vec<String> = store
        .users_since(250)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(recent, vec!["alice"]);
}

/// `concourse_db_queries_total`: each statement the store runs counts once, on its own
/// store only, whether it found a row or not.
pub async fn every_statement_a_store_runs_is_counted_once(h: &Harness) {
    let store = &h.store;
    team(store, "counted").await;
    let other = h.reopen().await;
    let (before, other_before) = (store.queries(), other.queries());

    assert!(store.team("counted").await.unwrap().is_some());
    assert_eq!(store.queries() - before, 1, "one lookup, one statement");
    assert!(store.team("missing").await.unwrap().is_none());
    assert_eq!(store.queries() - before, 2, "a lookup that finds nothing");
    store.teams().await.unwrap();
    assert_eq!(store.queries() - before, 3, "a list is one statement");

    team(store, "written").await;
    let write = store.queries() - before - 3;
    // One upsert on PostgreSQL; a transaction of four statements on SQLite.
    assert!(write >= 1, "a write is counted");
    assert_eq!(
        other.queries(),
        other_before,
        "another store counts its own"
    );
}
