//! Pins the wording of every rejection and warning (upstream's text, plus ` (line N)`).

use concourse::config::{
    parse_pipeline, parse_pipeline_strict, validate_identifier, validate_pipeline, Validation,
};

fn validate(doc: &str) -> Validation {
    let config =
        parse_pipeline(doc.as_bytes()).unwrap_or_else(|e| panic!("parse failed: {e}\n{doc}"));
    validate_pipeline(&config)
}

fn errors(doc: &str) -> Vec<String> {
    validate(doc).errors
}

fn warnings(doc: &str) -> Vec<String> {
    validate(doc)
        .warnings
        .into_iter()
        .map(|w| format!("{}: {}", w.kind, w.message))
        .collect()
}

fn parse_error(doc: &str) -> String {
    parse_pipeline(doc.as_bytes()).unwrap_err().to_string()
}

const JOB: &str = "jobs:\n- name: j\n  plan:\n  - get: r\nresources:\n- {name: r, type: mock}\n";

#[test]
fn a_valid_pipeline_has_no_errors_or_warnings() {
    let v = validate(JOB);
    assert_eq!(v, Validation::default());
}

#[test]
fn group_errors_use_upstream_wording() {
    let doc = format!(
        "{JOB}- {{name: other, type: mock}}\ngroups:\n- {{name: g, jobs: ['[', nope], resources: [other, missing]}}\n- {{name: g}}\n"
    );
    assert_eq!(
        errors(&doc),
        vec![
            "invalid groups:\n\tinvalid glob expression '[' for group 'g' (line 9)\n\tno jobs match 'nope' for group 'g' (line 9)\n\tgroup 'g' has unknown resource 'missing' (line 9)\n\tgroup 'g' appears 2 times. Duplicate names are not allowed.\n\tjob 'j' belongs to no group (line 2)\n",
            "invalid resources:\n\tresource 'other' is not used (line 7)\n",
        ]
    );
}

#[test]
fn resource_and_type_errors_use_upstream_wording() {
    let doc = format!(
        "{JOB}- {{name: r, type: mock}}\n- {{type: mock}}\n- {{name: notype}}\nresource_types:\n- {{name: t, type: mock}}\nprototypes:\n- {{name: t, type: mock}}\n- {{name: p}}\n"
    );
    assert_eq!(
        errors(&doc),
        vec![
            "invalid resources:\n\tresources[0] and resources[1] have the same name ('r') (line 7)\n\tresources[2]: identifier cannot be an empty string (line 8)\n\tresources[2] has no name (line 8)\n\tresources.notype has no type (line 9)\n\tresource '' is not used (line 8)\n\tresource 'notype' is not used (line 9)\n",
            "invalid prototypes:\n\tresource_types[0] and prototypes[0] have the same name ('t') (line 13)\n\tprototypes.p has no type (line 14)\n",
        ]
    );
}

#[test]
fn var_source_errors_use_upstream_wording() {
    let doc = format!(
        "{JOB}var_sources:\n- {{name: a, type: nope}}\n- {{name: b, type: credhub, config: {{}}}}\n- {{name: c, type: dummy, config: {{vars: 1}}}}\n- {{name: c, type: vault, config: {{url: 'ftp://x'}}}}\n- {{name: d, type: dummy, config: {{vars: {{x: ((e:y))}}}}}}\n- {{name: e, type: dummy, config: {{vars: {{x: ((d:y))}}}}}}\n"
    );
    assert_eq!(
        errors(&doc),
        vec![
            "invalid variable sources:\n\tunknown credential manager type: nope (line 8)\n\tcredential manager type credhub is not supported in pipeline yet (line 9)\n\tfailed to create credential manager c: invalid vars config: float64 (line 10)\n\tvar_sources[2] and var_sources[3] have the same name ('c') (line 11)\n\tcredential manager c is invalid: invalid scheme \"ftp\": must be http or https (line 11)\n\tfailed to order by dependency: could not resolve inter-dependent var sources: d, e\n",
        ]
    );
}

#[test]
fn aws_and_vault_var_source_configs_are_checked() {
    let doc = format!(
        "{JOB}var_sources:\n- {{name: a, type: ssm, config: {{region: us-east-1, access_key: x}}}}\n- {{name: b, type: secretsmanager, config: {{regoin: x}}}}\n- {{name: c, type: vault, config: {{url: 'https://vault:8200', client_token: t, CA_Cert: x}}}}\n- {{name: d, type: vault, config: {{url: 'https://vault:8200'}}}}\n"
    );
    assert_eq!(
        errors(&doc),
        vec![
            "invalid variable sources:\n\tcredential manager a is invalid: must provide aws secret access key (line 8)\n\tfailed to create credential manager b: decoding failed due to the following error(s):\n\t\n\t'' has invalid keys: regoin (line 9)\n\tcredential manager d is invalid: must configure client token or auth backend (line 11)\n"
        ]
    );
}

#[test]
fn job_errors_use_upstream_wording() {
    assert_eq!(
        errors("resources: []\n"),
        vec!["invalid jobs:\n\tjobs: pipeline must contain at least one job\n"]
    );
    let doc = "jobs:\n- name: a\n  build_logs_to_retain: 3\n  build_log_retention: {builds: 1}\n- name: a\n  build_logs_to_retain: -1\n- plan: []\n- name: b\n  build_log_retention: {builds: -1, days: -2, minimum_succeeded_builds: -3}\n- name: c\n  build_log_retention: {builds: 2, minimum_succeeded_builds: 5}\n";
    assert_eq!(
        errors(doc),
        vec![
            "invalid jobs:\n\tjobs.a can't use both build_log_retention and build_logs_to_retain (line 2)\n\tjobs[0] and jobs[1] have the same name ('a') (line 5)\n\tjobs.a has negative build_logs_to_retain: -1 (line 5)\n\tjobs[2]: identifier cannot be an empty string (line 7)\n\tjobs[2] has no name (line 7)\n\tjobs.b has negative build_log_retention.builds: -1 (line 8)\n\tjobs.b has negative build_log_retention.days: -2 (line 8)\n\tjobs.b has negative build_log_retention.min_success_builds: -3 (line 8)\n\tjobs.c has build_log_retention.min_success_builds: 5 greater than build_log_retention.min_success_builds: 2 (line 10)\n"
        ]
    );
    assert_eq!(
        warnings(doc),
        vec![
            "deprecated_field: jobs.a.build_logs_to_retain is deprecated. Use build_log_retention instead.",
            "deprecated_field: jobs.a.build_logs_to_retain is deprecated. Use build_log_retention instead."
        ]
    );
}

#[test]
fn passed_cycles_are_rejected() {
    let doc = "resources:\n- {name: r, type: mock}\njobs:\n- name: a\n  plan:\n  - {get: r, passed: [b]}\n- name: b\n  plan:\n  - {get: r, passed: [a]}\n";
    assert_eq!(
        errors(doc),
        vec!["invalid jobs:\n\tpipeline contains a cycle that starts at Job 'a' (line 4)\n"]
    );
}

#[test]
fn get_and_put_errors_use_upstream_wording() {
    let doc = "resources:\n- {name: r, type: mock}\njobs:\n- name: a\n  plan:\n  - {get: r}\n  - {get: r, bogus: 1, other: 2}\n  - {get: x, resource: nope, passed: [b, none*]}\n  - {put: nope}\n- name: b\n  plan:\n  - {put: r}\n  - task: t\n    file: x/y.yml\n";
    assert_eq!(
        errors(doc),
        vec![
            "invalid jobs:\n\tjobs.a.plan.do[1]: unknown fields [\"bogus\" \"other\"] (line 7)\n\tjobs.a.plan.do[1].get(r): repeated name (line 7)\n\tjobs.a.plan.do[2].get(x): unknown resource 'nope' (line 8)\n\tjobs.a.plan.do[2].get(x).passed: job 'b' does not interact with resource 'nope' (line 8)\n\tjobs.a.plan.do[2].get(x).passed: no matching job(s) for 'none*' (line 8)\n\tjobs.a.plan.do[3].put(nope): unknown resource 'nope' (line 9)\n"
        ]
    );
}

#[test]
fn task_errors_and_warnings_use_upstream_wording() {
    let doc = "jobs:\n- name: a\n  plan:\n  - task: none\n  - task: both\n    file: x/y.yml\n    config: {platform: linux}\n  - task: bad-config\n    hermetic: true\n    image: img\n    config:\n      rootfs_uri: docker:///busybox\n      inputs: [{path: x}]\n      outputs: [{path: out}]\n      extra: 1\n";
    assert_eq!(
        errors(doc),
        vec![
            "invalid jobs:\n\tjobs.a.plan.do[0].task(none): must specify either `file:` or `config:` (line 4)\n\tjobs.a.plan.do[1].task(both): must specify one of `file:` or `config:`, not both (line 5)\n\tjobs.a.plan.do[2].task(bad-config).config: unknown fields [\"extra\"] (line 8)\n\tjobs.a.plan.do[2].task(bad-config).config: missing 'platform' (line 8)\n\tjobs.a.plan.do[2].task(bad-config).config:   input in position 0 is missing a name (line 8)\n\tjobs.a.plan.do[2].task(bad-config).config:   output in position 0 is missing a name (line 8)\n"
        ]
    );
    assert_eq!(
        warnings(doc),
        vec![
            "pipeline: jobs.a.plan.do[2].task(bad-config): specifies image: on the step but also specifies an image under config: - the image: on the step takes precedence",
            "pipeline: jobs.a.plan.do[2].task(bad-config): specifies `hermetic:` only works against worker containerd runtime",
        ]
    );
}

#[test]
fn set_pipeline_load_var_across_timeout_attempts_errors() {
    let doc = "jobs:\n- name: a\n  plan:\n  - set_pipeline: p\n  - load_var: v\n  - load_var: v\n    file: x/v\n  - across: []\n    load_var: w\n    file: x/w\n  - across:\n    - {var: v, max_in_flight: 0}\n    - {var: z, max_in_flight: all}\n    do: []\n  - get: r\n    attempts: 0\n  - do: []\n    timeout: soon\n  - in_parallel: []\n    timeout: ((t))\nresources:\n- {name: r, type: mock}\n";
    assert_eq!(
        errors(doc),
        vec![
            "invalid jobs:\n\tjobs.a.plan.do[0].set_pipeline(p): no file specified (line 4)\n\tjobs.a.plan.do[1].load_var(v): no file specified (line 5)\n\tjobs.a.plan.do[2].load_var(v): repeated var name (line 6)\n\tjobs.a.plan.do[3].across: no vars specified (line 8)\n\tjobs.a.plan.do[4].across[0].max_in_flight: must be greater than 0 (line 11)\n\tjobs.a.plan.do[5].attempts: must be greater than 0 (line 15)\n\tjobs.a.plan.do[6].timeout: invalid duration 'soon' (line 17)\n\tjobs.a.plan.do[7].timeout: invalid duration '((t))' (line 19)\n"
        ]
    );
    assert_eq!(
        warnings(doc),
        vec!["var_shadowed: jobs.a.plan.do[4].across[0]: shadows local var 'v'"]
    );
}

#[test]
fn run_step_identifiers_are_errors_and_prototypes_must_exist() {
    let doc = "prototypes:\n- {name: proto, type: mock}\njobs:\n- name: a\n  plan:\n  - {run: Bad, type: proto}\n  - {run: ok, type: nope}\n";
    assert_eq!(
        errors(doc),
        vec![
            "invalid jobs:\n\tjobs.a.plan.do[0].run(proto.Bad): jobs.a.plan.do[0].run(proto.Bad): 'Bad' is not a valid identifier: must start with a lowercase letter or a number (line 6)\n\tjobs.a.plan.do[1].run(nope.ok): unknown prototype 'nope' (line 7)\n"
        ]
    );
}

#[test]
fn hooks_are_validated_with_their_context() {
    let doc = "jobs:\n- name: a\n  plan:\n  - get: r\n    on_failure: {put: nope}\n  ensure: {get: other}\nresources:\n- {name: r, type: mock}\n";
    assert_eq!(
        errors(doc),
        vec![
            "invalid jobs:\n\tjobs.a.plan.do[0].on_failure.put(nope): unknown resource 'nope' (line 5)\n\tjobs.a.plan.ensure.get(other): unknown resource 'other' (line 6)\n"
        ]
    );
}

#[test]
fn display_errors_use_upstream_wording() {
    assert_eq!(
        errors(&format!("{JOB}display: {{background_image: 'ftp://x/y.png'}}\n")),
        vec!["invalid display config:\n\tbackground_image scheme must be either http, https or relative (line 7)\n"]
    );
    assert_eq!(
        errors(&format!("{JOB}display: {{background_image: ':nope'}}\n")),
        vec!["invalid display config:\n\tbackground_image is not a valid URL: :nope (line 7)\n"]
    );
    assert!(errors(&format!(
        "{JOB}display: {{background_image: /public/bg.png, background_filter: 'blur(5px)'}}\n"
    ))
    .is_empty());
}

#[test]
fn identifiers_warn_with_upstream_reasons() {
    let doc = "jobs:\n- name: Build\n  plan:\n  - get: r_1\n  - get: '123'\n  - task: bad!name\n    file: r_1/t.yml\nresources:\n- {name: r_1, type: mock}\n- {name: '123', type: mock}\n";
    assert_eq!(
        warnings(doc),
        vec![
            "invalid_identifier: resources.123: '123' is not a valid identifier: cannot be just numbers",
            "invalid_identifier: jobs.Build: 'Build' is not a valid identifier: must start with a lowercase letter or a number",
            "invalid_identifier: jobs.Build.plan.do[1].get(123): '123' is not a valid identifier: cannot be just numbers",
            "invalid_identifier: jobs.Build.plan.do[2].task(bad!name): 'bad!name' is not a valid identifier: illegal character '!'",
        ]
    );
    assert_eq!(
        validate_identifier("pipeline", ""),
        Err("pipeline: identifier cannot be an empty string".to_string())
    );
    assert_eq!(validate_identifier("team", "ok-name_1.x").unwrap(), None);
    assert_eq!(validate_identifier("team", "ünïcode").unwrap(), None);
    assert!(validate_identifier("team", "aB").unwrap().is_some());
    assert!(validate_identifier("team", "日本").unwrap().is_none());
    // A combining mark is no letter (Mn), nor is a letter number (Nl).
    assert!(validate_identifier("team", "a\u{301}").unwrap().is_some());
    assert!(validate_identifier("team", "\u{3007}").unwrap().is_some());
}

#[test]
fn identifier_checks_are_skipped_for_task_names_inside_across() {
    let doc = "jobs:\n- name: a\n  plan:\n  - across: [{var: x, values: [A]}]\n    task: t-((.:x))\n    file: f/t.yml\n";
    assert!(warnings(doc).is_empty());
}

#[test]
fn step_parse_errors_use_upstream_wording() {
    let prefix = "error unmarshaling JSON: while decoding JSON: ";
    assert_eq!(
        parse_error("jobs:\n- name: a\n  plan:\n  - {}\n"),
        format!("{prefix}no step configured (line 4)")
    );
    assert_eq!(
        parse_error("jobs:\n- name: a\n  plan:\n  - {attempts: 2}\n"),
        format!("{prefix}no core step type declared (e.g. get, put, task, etc.) (line 4)")
    );
    assert_eq!(
        parse_error("jobs:\n- name: a\n  plan:\n  - {get: r, trigger: 'yes'}\n"),
        format!("{prefix}malformed get step: json: cannot unmarshal string into Go struct field GetStep.trigger of type bool (line 4)")
    );
    assert_eq!(
        parse_error("jobs:\n- name: a\n  plan:\n  - do:\n    - {}\n"),
        format!("{prefix}malformed do step: no step configured (line 5)")
    );
    assert_eq!(
        parse_error("jobs:\n- name: a\n  plan:\n  - in_parallel: [{}]\n"),
        format!("{prefix}malformed in_parallel step: failed to unmarshal parallel steps: no step configured (line 4)")
    );
    assert_eq!(
        parse_error("jobs:\n- name: a\n  plan:\n  - {across: [{var: x, bogus: 1}], get: r}\n"),
        format!("{prefix}malformed across step: json: unknown field \"bogus\" (line 4)")
    );
    assert_eq!(
        parse_error("jobs:\n- name: a\n  plan:\n  - {in_parallel: ~}\n"),
        format!(
            "{prefix}malformed in_parallel step: wrong type for parallel config: <nil> (line 4)"
        )
    );
    assert_eq!(
        parse_error("jobs:\n- name: a\n  plan:\n  - {try: ~}\n"),
        format!("{prefix}malformed try step: no step configured (line 4)")
    );
    assert_eq!(
        parse_error("jobs:\n- name: a\n  plan:\n  - {get: r, attempts: 2.5}\n"),
        format!("{prefix}malformed attempts step: json: cannot unmarshal number 2.5 into Go struct field RetryStep.attempts of type int (line 4)")
    );
    assert_eq!(
        parse_error("jobs:\n- name: a\n  plan:\n  - {get: r, version: {v: 1}}\n"),
        format!("{prefix}malformed get step: the value 1 of v is not a string (line 4)")
    );
}

#[test]
fn yaml_syntax_errors_name_their_line_once() {
    let err = parse_pipeline(b"jobs:\n- name: a\n  plan: [\n").unwrap_err();
    assert!(
        err.message
            .starts_with("error converting YAML to JSON: yaml: line "),
        "{err}"
    );
    assert!(err.line.is_some());
    assert_eq!(err.to_string(), err.message);
}

#[test]
fn unknown_fields_outside_steps_are_decode_errors() {
    let prefix = "error unmarshaling JSON: while decoding JSON: ";
    assert_eq!(
        parse_error("resources:\n- name: r\n  type: mock\n  sorce: {}\n"),
        format!("{prefix}json: unknown field \"sorce\" (line 4)")
    );
    assert_eq!(
        parse_error("jobs:\n- name: a\n  serial: ((serial))\n"),
        format!("{prefix}json: cannot unmarshal string into Go struct field JobConfig.jobs.serial of type bool (line 3)")
    );
    // Unknown top-level keys are dropped by the server but refused by `--strict`; fly's
    // non-strict validate ignores unknown keys everywhere.
    assert!(parse_pipeline(b"anchors: {a: 1}\njobs: []\n").is_ok());
    let lenient = concourse::config::parse_pipeline_with(
        b"resources:\n- {name: r, type: mock, sorce: {}}\n",
        concourse::config::ParseMode::Lenient,
    );
    assert_eq!(lenient.unwrap().resources[0].name, "r");
    assert_eq!(
        parse_pipeline_strict(b"anchors: {a: 1}\njobs: []\n")
            .unwrap_err()
            .to_string(),
        format!("{prefix}json: unknown field \"anchors\" (line 1)")
    );
    assert_eq!(
        parse_pipeline_strict(b"jobs: []\njobs: []\n").unwrap_err().message,
        "error converting YAML to JSON: yaml: unmarshal errors:\n  line 2: mapping key \"jobs\" already defined at line 1"
    );
}

#[test]
fn step_precedence_wraps_modifiers_and_leaves_second_core_key_unknown() {
    use concourse::config::StepConfig;
    let doc = "resources:\n- {name: r, type: mock}\njobs:\n- name: a\n  plan:\n  - {get: r, put: r, timeout: 5m, attempts: 2, ensure: {get: r2, resource: r}}\n";
    let c = parse_pipeline(doc.as_bytes()).unwrap();
    let step = &c.jobs[0].plan[0];
    let StepConfig::Ensure(ensure) = &step.config else {
        panic!("{:?}", step.config)
    };
    let StepConfig::Retry(retry) = &*ensure.step else {
        panic!()
    };
    assert_eq!(retry.attempts, 2);
    let StepConfig::Put(put) = &*retry.step else {
        panic!("{:?}", retry.step)
    };
    assert_eq!(put.timeout, "5m");
    assert_eq!(step.unknown_fields.keys().collect::<Vec<_>>(), vec!["get"]);
    assert_eq!(
        validate_pipeline(&c).errors,
        vec!["invalid jobs:\n\tjobs.a.plan.do[0]: unknown fields [\"get\"] (line 6)\n"]
    );
    let json = concourse::config::to_json(&c);
    assert_eq!(
        json["jobs"][0]["plan"][0],
        serde_json::json!({"attempts": 2, "ensure": {"get": "r2", "resource": "r"}, "get": "r", "put": "r", "timeout": "5m"})
    );
}

#[test]
fn upstream_json_shapes_are_kept() {
    let doc = "resources:\n- {name: r, type: mock, check_every: 1m}\njobs:\n- name: a\n  plan:\n  - in_parallel: [{get: r, version: foo}]\n  - put: r\n    inputs: detect\n  - task: t\n    container_limits: {memory: 1GB, cpu: 512}\n    config:\n      platform: linux\n      params: {NUM: 1}\n";
    let c = parse_pipeline(doc.as_bytes()).unwrap();
    let json = concourse::config::to_json(&c);
    assert_eq!(
        json,
        serde_json::json!({
            "resources": [{"name": "r", "type": "mock", "source": null, "check_every": "1m0s"}],
            "jobs": [{"name": "a", "plan": [
                {"in_parallel": {"steps": [{"get": "r", "version": ""}]}},
                {"inputs": "detect", "put": "r"},
                {"config": {"platform": "linux", "params": {"NUM": "1"}}, "container_limits": {"cpu": 512, "memory": 1073741824u64}, "task": "t"}
            ]}]
        })
    );
}

#[test]
fn steps_parse_back_from_their_json() {
    let doc = "resources:\n- {name: r, type: mock}\njobs:\n- name: a\n  plan:\n  - across: [{var: v, values: [1, 2], max_in_flight: all}]\n    fail_fast: true\n    put: r\n    inputs: [a, b]\n    get_params: {x: 1}\n    no_get: true\n  - in_parallel: {steps: [{try: {load_var: x, file: f/x, reveal: true}}], limit: 2, fail_fast: true}\n    tags: [t]\n  - set_pipeline: self\n    file: f/p.yml\n    instance_vars: {b: main}\n    var_files: [f/v.yml]\n";
    let c = parse_pipeline(doc.as_bytes()).unwrap();
    for step in &c.jobs[0].plan {
        let again = concourse::config::parse_step(&step.to_value()).unwrap();
        assert_eq!(&again, step);
    }
    assert!(
        validate_pipeline(&c).errors.is_empty(),
        "{:?}",
        validate_pipeline(&c).errors
    );
}

#[test]
fn keys_differing_in_case_fill_fields_like_gos_decoder() {
    let doc = "resources:\n- {Name: r, TYPE: mock}\njobs:\n- name: a\n  plan:\n  - {get: x, Resource: r}\n";
    let c = parse_pipeline(doc.as_bytes()).unwrap();
    assert_eq!(c.resources[0].name, "r");
    assert_eq!(c.resources[0].type_, "mock");
    let upper = parse_pipeline(b"Jobs:\n- {name: a, plan: []}\n").unwrap();
    assert_eq!(upper.jobs[0].name, "a");
    // In a step the value is decoded, but upstream's exact-name bookkeeping still reports it.
    assert_eq!(
        validate_pipeline(&c).errors,
        vec!["invalid jobs:\n\tjobs.a.plan.do[0]: unknown fields [\"Resource\"] (line 6)\n"]
    );
}

#[test]
fn resource_fields_decode_like_upstream() {
    use concourse::config::CheckEvery;
    let doc = "resources:\n- name: r\n  type: mock\n  check_every: 1h30m\n  version: {ref: 123, ok: true}\n  tags: [1, x]\n- {name: s, type: mock, check_every: never, check_timeout: 10s, webhook_token: ((tok)), public: yes}\njobs:\n- name: a\n  plan:\n  - get: r\n  - get: s\n";
    let c = parse_pipeline(doc.as_bytes()).unwrap();
    let r = &c.resources[0];
    assert_eq!(r.check_every, Some(CheckEvery::Interval(5_400_000_000_000)));
    assert_eq!(
        r.check_every.unwrap().interval(),
        Some(std::time::Duration::from_secs(5400))
    );
    // Outside steps, sigs.k8s.io/yaml turns scalars into strings for string fields.
    assert_eq!(r.version.get("ref").map(String::as_str), Some("123"));
    assert_eq!(r.version.get("ok").map(String::as_str), Some("true"));
    assert_eq!(r.tags, vec!["1", "x"]);
    let s = &c.resources[1];
    assert_eq!(s.check_every, Some(CheckEvery::Never));
    assert!(s.public);
    assert_eq!(s.webhook_token, "((tok))");
    let json = concourse::config::to_json(&c);
    assert_eq!(json["resources"][0]["check_every"], "1h30m0s");
    assert_eq!(
        json["resources"][0]["version"],
        serde_json::json!({"ok": "true", "ref": "123"})
    );
    assert_eq!(
        parse_error("resources:\n- {name: r, type: mock, check_every: 5}\n"),
        "error unmarshaling JSON: while decoding JSON: non-string value provided (line 2)"
    );
    assert_eq!(
        parse_error("resources:\n- {name: r, type: mock, check_every: 5x}\n"),
        "error unmarshaling JSON: while decoding JSON: time: unknown unit \"x\" in duration \"5x\" (line 2)"
    );
}

#[test]
fn job_inputs_outputs_and_limits() {
    let doc = "resources:\n- {name: r, type: mock}\n- {name: s, type: mock}\njobs:\n- name: a\n  serial_groups: [g]\n  max_in_flight: 3\n  plan:\n  - in_parallel:\n    - {get: r, trigger: true, passed: [b]}\n    - try: {get: alias, resource: s}\n  - put: s\n  ensure: {put: r}\n- name: b\n  max_in_flight: 2\n  plan: [{put: r}]\n";
    let c = parse_pipeline(doc.as_bytes()).unwrap();
    let a = c.job("a").unwrap();
    let inputs: Vec<(&str, &str)> = a
        .inputs()
        .iter()
        .map(|g| (g.name.as_str(), g.resource_name()))
        .collect();
    assert_eq!(inputs, vec![("r", "r"), ("alias", "s")]);
    let outputs: Vec<&str> = a.outputs().iter().map(|p| p.resource_name()).collect();
    assert_eq!(outputs, vec!["s", "r"]);
    assert_eq!(a.max_in_flight(), 1);
    assert_eq!(c.job("b").unwrap().max_in_flight(), 2);
    assert!(
        validate_pipeline(&c).errors.is_empty(),
        "{:?}",
        validate_pipeline(&c).errors
    );
}
