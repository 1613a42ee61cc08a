use super::*;
use proptest::prelude::*;
use serde_json::json;

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn origin() -> impl Strategy<Value = Origin> {
    (
        text(),
        prop_oneof![Just(""), Just("stdout"), Just("stderr")],
    )
        .prop_map(|(id, source)| Origin {
            id,
            source: source.to_string(),
        })
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        text().prop_map(Value::from),
    ]
}

fn object() -> impl Strategy<Value = serde_json::Map<String, Value>> {
    prop::collection::vec(("[a-z_]{1,6}", leaf()), 0..4).prop_map(|kv| kv.into_iter().collect())
}

fn at() -> impl Strategy<Value = At> {
    (origin(), any::<i64>()).prop_map(|(origin, time)| At { origin, time })
}

fn task_config() -> impl Strategy<Value = TaskConfigEvent> {
    let inputs = prop::option::of(prop::collection::vec(
        (text(), text()).prop_map(|(name, path)| TaskInputConfig { name, path }),
        0..3,
    ));
    (
        (
            text(),
            text(),
            text(),
            prop::collection::vec(text(), 0..3),
            text(),
        ),
        inputs,
        at(),
    )
        .prop_map(
            |((platform, image, path, args, dir), inputs, at)| TaskConfigEvent {
                config: TaskConfig {
                    platform,
                    image,
                    run: TaskRunConfig { path, args, dir },
                    inputs,
                },
                origin: at.origin,
                time: at.time,
            },
        )
}

fn finish_resource() -> impl Strategy<Value = FinishResource> {
    let metadata = prop::option::of(prop::collection::vec(
        (text(), text()).prop_map(|(name, value)| MetadataField { name, value }),
        0..3,
    ));
    (any::<i32>(), prop::option::of(object()), metadata, at()).prop_map(
        |(exit_status, version, metadata, at)| FinishResource {
            exit_status,
            version,
            metadata,
            origin: at.origin,
            time: at.time,
        },
    )
}

fn image_plan() -> impl Strategy<Value = ImagePlan> {
    (object(), at()).prop_map(|(plan, at)| ImagePlan {
        plan: Value::Object(plan),
        origin: at.origin,
        time: at.time,
    })
}

fn event() -> impl Strategy<Value = BuildEvent> {
    use BuildEvent as E;
    prop_oneof![
        (text(), any::<i64>()).prop_map(|(status, time)| E::Status(Status { status, time })),
        (text(), at()).prop_map(|(payload, a)| E::Log(Log {
            time: a.time,
            origin: a.origin,
            payload
        })),
        (text(), at()).prop_map(|(message, a)| E::Error(Error {
            message,
            origin: a.origin,
            time: a.time
        })),
        at().prop_map(E::WaitingForWorker),
        (text(), at()).prop_map(|(w, a)| E::SelectedWorker(SelectedWorker {
            selected_worker: w,
            origin: a.origin,
            time: a.time
        })),
        (text(), text(), text(), at()).prop_map(|(volume, source_worker, dest_worker, a)| {
            E::StreamingVolume(StreamingVolume {
                volume,
                source_worker,
                dest_worker,
                origin: a.origin,
                time: a.time,
            })
        }),
        (text(), text(), at()).prop_map(|(volume, dest_worker, a)| {
            E::WaitingForStreamedVolume(WaitingForStreamedVolume {
                volume,
                dest_worker,
                origin: a.origin,
                time: a.time,
            })
        }),
        task_config().prop_map(E::InitializeTask),
        task_config().prop_map(E::StartTask),
        (any::<i32>(), at()).prop_map(|(exit_status, a)| E::FinishTask(FinishTask {
            exit_status,
            origin: a.origin,
            time: a.time
        })),
        at().prop_map(E::InitializeGet),
        at().prop_map(E::StartGet),
        finish_resource().prop_map(E::FinishGet),
        at().prop_map(E::InitializePut),
        at().prop_map(E::StartPut),
        finish_resource().prop_map(E::FinishPut),
        (text(), at()).prop_map(|(name, a)| E::InitializeCheck(InitializeCheck {
            name,
            origin: a.origin,
            time: a.time
        })),
        at().prop_map(E::Initialize),
        at().prop_map(E::Start),
        (any::<bool>(), at()).prop_map(|(succeeded, a)| E::Finish(Finish {
            succeeded,
            origin: a.origin,
            time: a.time
        })),
        (any::<bool>(), at()).prop_map(|(changed, a)| E::SetPipelineChanged(SetPipelineChanged {
            changed,
            origin: a.origin,
            time: a.time
        })),
        image_plan().prop_map(E::ImageCheck),
        image_plan().prop_map(E::ImageGet),
        (
            prop::collection::vec((object(), prop::collection::vec(leaf(), 0..3)), 0..3),
            at()
        )
            .prop_map(|(subs, a)| E::AcrossSubsteps(AcrossSubsteps {
                substeps: subs
                    .into_iter()
                    .map(|(step, values)| AcrossSubstep {
                        step: Value::Object(step),
                        values
                    })
                    .collect(),
                origin: a.origin,
                time: a.time,
            })),
        // Names no variant has: a newer server's events.
        ("x-[a-z-]{1,10}", "[0-9]\\.[0-9]", object()).prop_map(|(event, version, data)| {
            E::Unknown(RawEvent {
                event,
                version,
                data: Value::Object(data),
            })
        }),
    ]
}

proptest! {
    #[test]
    fn every_event_round_trips_through_json(e in event()) {
        let text = serde_json::to_string(&e).unwrap();
        let back: BuildEvent = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&back, &e);
        prop_assert_eq!(serde_json::to_string(&back).unwrap(), text);
        prop_assert_eq!(BuildEvent::supported_version(e.name()).is_some(),
            !matches!(e, BuildEvent::Unknown(_)));
    }
}

/// One envelope per event type with upstream's field names (spec §4), as the engine
/// writes them.
fn fixtures() -> Vec<Value> {
    let o = json!({"id": "66b3c2a1"});
    let config = json!({"platform": "linux", "image": "",
        "run": {"path": "sh", "args": ["-c", "true"], "dir": ""},
        "inputs": [{"name": "repo", "path": "repo"}]});
    let plan = json!({"id": "66b3c2a1/image-get", "get": {"name": "image", "type": "mock"}});
    let e = |event: &str, version: &str, data: Value| json!({"event": event, "version": version, "data": data});
    vec![
        e("status", "1.0", json!({"status": "started", "time": 1})),
        e(
            "log",
            "5.1",
            json!({"time": 1, "origin": {"id": "66b3c2a1", "source": "stdout"}, "payload": "hi\n"}),
        ),
        e(
            "error",
            "4.1",
            json!({"message": "interrupted", "origin": o, "time": 1}),
        ),
        e("waiting-for-worker", "1.0", json!({"origin": o, "time": 1})),
        e(
            "selected-worker",
            "1.0",
            json!({"selected_worker": "w1", "origin": o, "time": 1}),
        ),
        e(
            "streaming-volume",
            "1.0",
            json!({"volume": "v", "source_worker": "w1", "dest_worker": "w2", "origin": o, "time": 1}),
        ),
        e(
            "waiting-for-streamed-volume",
            "1.0",
            json!({"volume": "v", "dest_worker": "w2", "origin": o, "time": 1}),
        ),
        e(
            "initialize-task",
            "4.0",
            json!({"config": config, "origin": o, "time": 1}),
        ),
        e(
            "start-task",
            "5.0",
            json!({"config": config, "origin": o, "time": 1}),
        ),
        e(
            "finish-task",
            "4.0",
            json!({"exit_status": 1, "origin": o, "time": 1}),
        ),
        e("initialize-get", "2.0", json!({"origin": o, "time": 1})),
        e("start-get", "1.0", json!({"origin": o, "time": 1})),
        e(
            "finish-get",
            "5.1",
            json!({"exit_status": 0, "version": {"ref": "abc"},
                "metadata": [{"name": "commit", "value": "abc"}], "origin": o, "time": 1}),
        ),
        e("initialize-put", "2.0", json!({"origin": o, "time": 1})),
        e("start-put", "1.0", json!({"origin": o, "time": 1})),
        e(
            "finish-put",
            "5.1",
            json!({"exit_status": 1, "version": null, "origin": o, "time": 1}),
        ),
        e(
            "initialize-check",
            "1.0",
            json!({"name": "image", "origin": o, "time": 1}),
        ),
        e("initialize", "1.0", json!({"origin": o, "time": 1})),
        e("start", "1.0", json!({"origin": o, "time": 1})),
        e(
            "finish",
            "1.0",
            json!({"succeeded": true, "origin": o, "time": 1}),
        ),
        e(
            "set-pipeline-changed",
            "1.0",
            json!({"changed": true, "origin": o, "time": 1}),
        ),
        e(
            "image-check",
            "1.1",
            json!({"plan": plan, "origin": o, "time": 1}),
        ),
        e(
            "image-get",
            "1.1",
            json!({"plan": plan, "origin": o, "time": 1}),
        ),
        e(
            "across-substeps",
            "1.0",
            json!({"substeps": [{"step": plan, "values": ["a", 1]}], "origin": o, "time": 1}),
        ),
    ]
}

#[test]
fn every_event_type_has_upstreams_field_names() {
    let fixtures = fixtures();
    let mut seen = std::collections::BTreeSet::new();
    for fixture in fixtures {
        let event = BuildEvent::deserialize(&fixture).unwrap();
        assert!(!matches!(event, BuildEvent::Unknown(_)), "{fixture}");
        assert_eq!(event.name(), fixture["event"]);
        assert_eq!(event.version(), fixture["version"]);
        // Same keys and values, in the order the engine has always written them.
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(text, fixture.to_string());
        seen.insert(event.name().to_string());
    }
    assert_eq!(seen.len(), 24, "one fixture per variant");
}

#[test]
fn the_engines_bytes_are_kept() {
    let log = BuildEvent::Log(Log {
        time: 5,
        origin: Origin {
            id: "p1".into(),
            source: "stderr".into(),
        },
        payload: "a \"b\"\n".into(),
    });
    assert_eq!(
        serde_json::to_string(&log).unwrap(),
        r#"{"event":"log","version":"5.1","data":{"time":5,"origin":{"id":"p1","source":"stderr"},"payload":"a \"b\"\n"}}"#
    );
    // A build-level error (a restarted web node) has an empty origin.
    let error = BuildEvent::Error(Error {
        message: "m".into(),
        origin: Origin::default(),
        time: 7,
    });
    assert_eq!(
        serde_json::to_string(&error).unwrap(),
        r#"{"event":"error","version":"4.1","data":{"message":"m","origin":{},"time":7}}"#
    );
}

#[test]
fn unknown_types_and_majors_are_kept_raw_and_minors_are_read() {
    let newer = json!({"event": "log", "version": "6.0", "data": {"payload": "x"}});
    let e = BuildEvent::deserialize(&newer).unwrap();
    assert!(matches!(&e, BuildEvent::Unknown(r) if r.version == "6.0"));
    assert_eq!(serde_json::to_value(&e).unwrap(), newer);
    let other = json!({"event": "sub-get-var", "version": "1.0", "data": {}});
    assert!(matches!(
        BuildEvent::deserialize(&other).unwrap(),
        BuildEvent::Unknown(_)
    ));
    assert_eq!(BuildEvent::supported_version("sub-get-var"), None);
    let minor = json!({"event": "log", "version": "5.0", "data": {"payload": "x"}});
    assert!(
        matches!(BuildEvent::deserialize(&minor).unwrap(), BuildEvent::Log(l) if l.payload == "x")
    );
}

#[test]
fn upstreams_omitted_and_null_fields_are_read_as_empty() {
    // Upstream omits zero times and writes nil slices as null; `event_id` rides along
    // on the events endpoint.
    let e = json!({"event": "start-task", "version": "5.0", "event_id": "3",
        "data": {"origin": {"id": "t"}, "config": {"run": {"path": "ls", "args": null}, "inputs": null}}});
    let BuildEvent::StartTask(t) = BuildEvent::deserialize(&e).unwrap() else {
        panic!("a start-task")
    };
    assert_eq!(t.time, 0);
    assert!(t.config.run.args.is_empty());
    assert_eq!(t.config.inputs, None);
    let bad = json!({"event": "finish-task", "version": "4.0", "data": {"exit_status": "x"}});
    assert!(BuildEvent::deserialize(&bad).is_err());
}

#[test]
fn origin_and_time_are_read_from_any_payload() {
    let mut e = BuildEvent::FinishTask(FinishTask::default());
    if let Some((o, t)) = e.origin_and_time_mut() {
        *o = Origin::id("t1");
        *t = 9;
    }
    assert_eq!(e.origin().map(|o| o.id.as_str()), Some("t1"));
    assert_eq!(e.time(), 9);
    let status = BuildEvent::Status(Status {
        status: "started".into(),
        time: 3,
    });
    assert_eq!((status.origin(), status.time()), (None, 3));
}
