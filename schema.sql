-- The ATC's state in PostgreSQL: the system of record.
--
-- This file is the schema as it stands after every migration in src/db/migrations/ has been
-- applied (tests/store_conformance.rs checks that the two agree). Change the schema by adding
-- a migration, then update this file to match.
--
-- Times are Unix seconds (bigint); NULL means "never". JSON is jsonb.

-- Every pipeline save takes the next value: a version is unique across all pipelines, so
-- a stale client can never match a version that was reset and reached again.
CREATE SEQUENCE config_version_seq;

-- Names of one-off builds (`fly execute`): a global counter independent of build ids.
CREATE SEQUENCE one_off_name;

CREATE TABLE teams (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    admin boolean NOT NULL DEFAULT false,
    auth jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE users (
    id bigserial PRIMARY KEY,
    username text NOT NULL,
    connector text NOT NULL,
    sub text NOT NULL DEFAULT '',
    last_login bigint NOT NULL,
    UNIQUE (username, connector)
);

CREATE TABLE access_tokens (
    token text PRIMARY KEY,
    claims jsonb NOT NULL,
    expires_at bigint NOT NULL
);

CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

CREATE TABLE pipelines (
    id bigserial PRIMARY KEY,
    team_id bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name text NOT NULL,
    instance_vars jsonb,
    -- NULL once archived.
    config jsonb,
    config_version bigint NOT NULL DEFAULT 0,
    paused boolean NOT NULL DEFAULT false,
    paused_by text,
    paused_at bigint,
    public boolean NOT NULL DEFAULT false,
    archived boolean NOT NULL DEFAULT false,
    -- Instances of one group share `ordering`; `secondary_ordering` orders them within it.
    ordering bigint NOT NULL DEFAULT 0,
    secondary_ordering bigint NOT NULL DEFAULT 0,
    parent_job_id bigint,
    parent_build_id bigint,
    last_updated bigint
);

-- (team, name, instance_vars) is unique; NULL instance_vars (a plain pipeline) needs its own
-- index because NULLs never collide in a unique index.
CREATE UNIQUE INDEX pipelines_team_id_name_instance_vars ON pipelines (team_id, name, instance_vars);
CREATE UNIQUE INDEX pipelines_team_id_name_plain ON pipelines (team_id, name) WHERE instance_vars IS NULL;

CREATE TABLE jobs (
    id bigserial PRIMARY KEY,
    pipeline_id bigint NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    name text NOT NULL,
    -- NULL once the pipeline is archived.
    config jsonb,
    active boolean NOT NULL DEFAULT true,
    -- Position in the config's `jobs` list.
    ordering bigint NOT NULL DEFAULT 0,
    groups jsonb NOT NULL DEFAULT '[]',
    paused boolean NOT NULL DEFAULT false,
    paused_by text,
    paused_at bigint,
    has_new_inputs boolean NOT NULL DEFAULT false,
    -- The last build number handed out; the next job build is named build_number_seq + 1.
    build_number_seq bigint NOT NULL DEFAULT 0,
    first_logged_build_id bigint NOT NULL DEFAULT 0,
    -- Builds of this job (no foreign keys: builds reference jobs, and these are hints
    -- recomputed whenever a build is created or finishes).
    next_build_id bigint,
    latest_completed_build_id bigint,
    transition_build_id bigint,
    UNIQUE (pipeline_id, name)
);

CREATE TABLE resource_configs (
    id bigserial PRIMARY KEY,
    base_resource_type text NOT NULL,
    source_hash text NOT NULL,
    UNIQUE (base_resource_type, source_hash)
);

CREATE TABLE resource_config_scopes (
    id bigserial PRIMARY KEY,
    resource_config_id bigint NOT NULL REFERENCES resource_configs (id) ON DELETE CASCADE,
    -- NULL for a scope shared by every resource with the same config (global resources).
    resource_id bigint,
    last_check_start_time bigint,
    last_check_end_time bigint,
    -- Bumped whenever the scope's versions change (see the scheduler).
    versions_changed bigint NOT NULL DEFAULT 0
);

CREATE TABLE resources (
    id bigserial PRIMARY KEY,
    pipeline_id bigint NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    name text NOT NULL,
    type text NOT NULL,
    -- NULL once the pipeline is archived.
    config jsonb,
    active boolean NOT NULL DEFAULT true,
    ordering bigint NOT NULL DEFAULT 0,
    resource_config_scope_id bigint REFERENCES resource_config_scopes (id) ON DELETE SET NULL,
    last_checked bigint,
    pinned_version jsonb,
    pin_comment text,
    -- The last check: its build (manual checks) and whether it failed.
    check_build_id bigint,
    check_failed boolean NOT NULL DEFAULT false,
    UNIQUE (pipeline_id, name)
);

CREATE TABLE resource_config_versions (
    id bigserial PRIMARY KEY,
    resource_config_scope_id bigint NOT NULL REFERENCES resource_config_scopes (id) ON DELETE CASCADE,
    version jsonb NOT NULL,
    -- Hash of the canonical version JSON: the identity of a version within its scope.
    version_sha256 text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '[]',
    check_order bigint NOT NULL DEFAULT 0,
    enabled boolean NOT NULL DEFAULT true,
    UNIQUE (resource_config_scope_id, version_sha256)
);

CREATE INDEX resource_config_versions_check_order ON resource_config_versions (resource_config_scope_id, check_order DESC);

CREATE TABLE builds (
    id bigserial PRIMARY KEY,
    team_id bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    job_id bigint REFERENCES jobs (id) ON DELETE CASCADE,
    pipeline_id bigint REFERENCES pipelines (id) ON DELETE CASCADE,
    resource_id bigint REFERENCES resources (id) ON DELETE CASCADE,
    name text NOT NULL,
    status text NOT NULL,
    plan jsonb,
    created_by text,
    comment text,
    create_time bigint NOT NULL,
    start_time bigint,
    end_time bigint,
    reap_time bigint,
    rerun_of bigint REFERENCES builds (id) ON DELETE CASCADE,
    rerun_number bigint NOT NULL DEFAULT 0,
    abort_requested boolean NOT NULL DEFAULT false,
    -- The web node running the build, and until when (it renews; once lapsed, any node
    -- adopts and resumes the build).
    owner text,
    owner_expires bigint NOT NULL DEFAULT 0
);

CREATE INDEX builds_job_id ON builds (job_id, (COALESCE(rerun_of, id)) DESC, id DESC);
CREATE INDEX builds_pipeline_id ON builds (pipeline_id);
CREATE INDEX builds_team_id ON builds (team_id);
CREATE INDEX builds_status ON builds (status) WHERE status IN ('pending', 'started');

CREATE TABLE build_events (
    build_id bigint NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    event_id bigint NOT NULL,
    payload jsonb NOT NULL,
    PRIMARY KEY (build_id, event_id)
);

-- What a build's engine has done so far (see src/atc/engine/journal.rs), by key.
CREATE TABLE build_journal (
    build_id bigint NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    key text NOT NULL,
    data jsonb NOT NULL,
    PRIMARY KEY (build_id, key)
);

CREATE TABLE build_inputs (
    build_id bigint NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    name text NOT NULL,
    resource_id bigint NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    version jsonb NOT NULL,
    version_sha256 text NOT NULL,
    first_occurrence boolean NOT NULL DEFAULT false,
    PRIMARY KEY (build_id, name)
);

CREATE TABLE build_outputs (
    build_id bigint NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    name text NOT NULL,
    resource_id bigint NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    version jsonb NOT NULL,
    version_sha256 text NOT NULL,
    PRIMARY KEY (build_id, name, version_sha256)
);

CREATE TABLE workers (
    name text PRIMARY KEY,
    -- NULL for a global worker.
    team_id bigint REFERENCES teams (id) ON DELETE CASCADE,
    state text NOT NULL,
    payload jsonb NOT NULL,
    expires_at bigint NOT NULL DEFAULT 0
);

CREATE TABLE containers (
    id bigserial PRIMARY KEY,
    handle text NOT NULL UNIQUE,
    worker_name text NOT NULL REFERENCES workers (name) ON DELETE CASCADE,
    state text NOT NULL,
    build_id bigint REFERENCES builds (id) ON DELETE SET NULL,
    metadata jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE volumes (
    id bigserial PRIMARY KEY,
    handle text NOT NULL UNIQUE,
    worker_name text NOT NULL REFERENCES workers (name) ON DELETE CASCADE,
    state text NOT NULL,
    type text NOT NULL,
    container_id bigint REFERENCES containers (id) ON DELETE SET NULL,
    parent_id bigint REFERENCES volumes (id) ON DELETE CASCADE,
    path text NOT NULL DEFAULT ''
);

CREATE TABLE worker_artifacts (
    id bigserial PRIMARY KEY,
    team_id bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    build_id bigint REFERENCES builds (id) ON DELETE CASCADE,
    name text NOT NULL DEFAULT '',
    worker_name text NOT NULL,
    volume_handle text NOT NULL,
    created_at bigint NOT NULL
);

CREATE INDEX worker_artifacts_build_id ON worker_artifacts (build_id);

CREATE TABLE signing_keys (
    kid text PRIMARY KEY,
    kty text NOT NULL,
    jwk text NOT NULL,
    created_at bigint NOT NULL
);

CREATE TABLE leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    expires_at bigint NOT NULL
);

CREATE TABLE wall (
    id integer PRIMARY KEY CHECK (id = 1),
    message text NOT NULL,
    expires_at bigint
);
