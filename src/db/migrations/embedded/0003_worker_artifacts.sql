-- See ../0003_worker_artifacts.sql.
CREATE TABLE worker_artifacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id integer NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    build_id integer REFERENCES builds (id) ON DELETE CASCADE,
    name text NOT NULL DEFAULT '',
    worker_name text NOT NULL,
    volume_handle text NOT NULL,
    created_at integer NOT NULL
);

CREATE INDEX worker_artifacts_build_id ON worker_artifacts (build_id);
