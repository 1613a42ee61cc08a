-- Artifacts uploaded by `fly execute` (inputs) or registered by a one-off build for
-- download (outputs): a volume on a worker, owned by a team.
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
