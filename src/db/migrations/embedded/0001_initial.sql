-- 0001: the initial schema, translated from PostgreSQL's src/db/migrations/0001_initial.sql
-- table for table: jsonb is text (canonical JSON where it is compared), boolean is 0/1,
-- bigserial is an AUTOINCREMENT key (ids are never reused, as with a sequence).

-- PostgreSQL's sequences (config_version_seq, one_off_name): the last value handed out.
CREATE TABLE sequences (
    name text PRIMARY KEY,
    value integer NOT NULL
);

INSERT INTO sequences (name, value) VALUES ('config_version_seq', 0), ('one_off_name', 0);

CREATE TABLE teams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name text NOT NULL UNIQUE,
    admin integer NOT NULL DEFAULT 0,
    auth text NOT NULL DEFAULT '{}'
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username text NOT NULL,
    connector text NOT NULL,
    sub text NOT NULL DEFAULT '',
    last_login integer NOT NULL,
    UNIQUE (username, connector)
);

CREATE TABLE access_tokens (
    token text PRIMARY KEY,
    claims text NOT NULL,
    expires_at integer NOT NULL
);

CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

CREATE TABLE pipelines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id integer NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name text NOT NULL,
    instance_vars text,
    -- NULL once archived.
    config text,
    config_version integer NOT NULL DEFAULT 0,
    paused integer NOT NULL DEFAULT 0,
    paused_by text,
    paused_at integer,
    public integer NOT NULL DEFAULT 0,
    archived integer NOT NULL DEFAULT 0,
    -- Instances of one group share `ordering`; `secondary_ordering` orders them within it.
    ordering integer NOT NULL DEFAULT 0,
    secondary_ordering integer NOT NULL DEFAULT 0,
    parent_job_id integer,
    parent_build_id integer,
    last_updated integer
);

-- (team, name, instance_vars) is unique; NULL instance_vars (a plain pipeline) needs its own
-- index because NULLs never collide in a unique index.
CREATE UNIQUE INDEX pipelines_team_id_name_instance_vars ON pipelines (team_id, name, instance_vars);
CREATE UNIQUE INDEX pipelines_team_id_name_plain ON pipelines (team_id, name) WHERE instance_vars IS NULL;

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline_id integer NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    name text NOT NULL,
    -- NULL once the pipeline is archived.
    config text,
    active integer NOT NULL DEFAULT 1,
    -- Position in the config's `jobs` list.
    ordering integer NOT NULL DEFAULT 0,
    groups text NOT NULL DEFAULT '[]',
    paused integer NOT NULL DEFAULT 0,
    paused_by text,
    paused_at integer,
    has_new_inputs integer NOT NULL DEFAULT 0,
    -- The last build number handed out; the next job build is named build_number_seq + 1.
    build_number_seq integer NOT NULL DEFAULT 0,
    first_logged_build_id integer NOT NULL DEFAULT 0,
    -- Builds of this job (no foreign keys: builds reference jobs, and these are hints
    -- recomputed whenever a build is created or finishes).
    next_build_id integer,
    latest_completed_build_id integer,
    transition_build_id integer,
    UNIQUE (pipeline_id, name)
);

CREATE TABLE resource_configs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    base_resource_type text NOT NULL,
    source_hash text NOT NULL,
    UNIQUE (base_resource_type, source_hash)
);

CREATE TABLE resource_config_scopes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_config_id integer NOT NULL REFERENCES resource_configs (id) ON DELETE CASCADE,
    -- NULL for a scope shared by every resource with the same config (global resources).
    resource_id integer,
    last_check_start_time integer,
    last_check_end_time integer
);

CREATE TABLE resources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline_id integer NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    name text NOT NULL,
    type text NOT NULL,
    -- NULL once the pipeline is archived.
    config text,
    active integer NOT NULL DEFAULT 1,
    ordering integer NOT NULL DEFAULT 0,
    resource_config_scope_id integer REFERENCES resource_config_scopes (id) ON DELETE SET NULL,
    last_checked integer,
    pinned_version text,
    pin_comment text,
    UNIQUE (pipeline_id, name)
);

CREATE TABLE resource_config_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_config_scope_id integer NOT NULL REFERENCES resource_config_scopes (id) ON DELETE CASCADE,
    version text NOT NULL,
    -- Hash of the canonical version JSON: the identity of a version within its scope.
    version_sha256 text NOT NULL,
    metadata text NOT NULL DEFAULT '[]',
    check_order integer NOT NULL DEFAULT 0,
    enabled integer NOT NULL DEFAULT 1,
    UNIQUE (resource_config_scope_id, version_sha256)
);

CREATE INDEX resource_config_versions_check_order ON resource_config_versions (resource_config_scope_id, check_order DESC);

CREATE TABLE builds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id integer NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    job_id integer REFERENCES jobs (id) ON DELETE CASCADE,
    pipeline_id integer REFERENCES pipelines (id) ON DELETE CASCADE,
    resource_id integer REFERENCES resources (id) ON DELETE CASCADE,
    name text NOT NULL,
    status text NOT NULL,
    plan text,
    created_by text,
    comment text,
    create_time integer NOT NULL,
    start_time integer,
    end_time integer,
    reap_time integer,
    rerun_of integer REFERENCES builds (id) ON DELETE CASCADE,
    rerun_number integer NOT NULL DEFAULT 0
);

CREATE INDEX builds_job_id ON builds (job_id, COALESCE(rerun_of, id) DESC, id DESC);
CREATE INDEX builds_pipeline_id ON builds (pipeline_id);
CREATE INDEX builds_team_id ON builds (team_id);
CREATE INDEX builds_status ON builds (status) WHERE status IN ('pending', 'started');

CREATE TABLE build_events (
    build_id integer NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    event_id integer NOT NULL,
    payload text NOT NULL,
    PRIMARY KEY (build_id, event_id)
);

CREATE TABLE build_inputs (
    build_id integer NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    name text NOT NULL,
    resource_id integer NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    version text NOT NULL,
    version_sha256 text NOT NULL,
    first_occurrence integer NOT NULL DEFAULT 0,
    PRIMARY KEY (build_id, name)
);

CREATE TABLE build_outputs (
    build_id integer NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    name text NOT NULL,
    resource_id integer NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    version text NOT NULL,
    version_sha256 text NOT NULL,
    PRIMARY KEY (build_id, name, version_sha256)
);

CREATE TABLE workers (
    name text PRIMARY KEY,
    -- NULL for a global worker.
    team_id integer REFERENCES teams (id) ON DELETE CASCADE,
    state text NOT NULL,
    payload text NOT NULL,
    expires_at integer NOT NULL DEFAULT 0
);

CREATE TABLE containers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    handle text NOT NULL UNIQUE,
    worker_name text NOT NULL REFERENCES workers (name) ON DELETE CASCADE,
    state text NOT NULL,
    build_id integer REFERENCES builds (id) ON DELETE SET NULL,
    metadata text NOT NULL DEFAULT '{}'
);

CREATE TABLE volumes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    handle text NOT NULL UNIQUE,
    worker_name text NOT NULL REFERENCES workers (name) ON DELETE CASCADE,
    state text NOT NULL,
    type text NOT NULL,
    container_id integer REFERENCES containers (id) ON DELETE SET NULL,
    parent_id integer REFERENCES volumes (id) ON DELETE CASCADE,
    path text NOT NULL DEFAULT ''
);
