-- A change counter per table the API's cached listings read (`Store::tables_version`):
-- bumped in the transaction that changes the table, so a listing rebuilds only when what
-- it shows may have changed, not after every commit (a check's or a heartbeat's). The
-- embedded store's only: PostgreSQL's listings go by its snapshot (a counter row there
-- would make every writer of these tables wait for the others).
CREATE TABLE table_versions (
    name text PRIMARY KEY,
    version integer NOT NULL DEFAULT 0
);
INSERT INTO table_versions (name) VALUES ('teams'), ('pipelines'), ('jobs'), ('resources'), ('builds');

CREATE TRIGGER teams_insert_version AFTER INSERT ON teams
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'teams'; END;
CREATE TRIGGER teams_update_version AFTER UPDATE ON teams
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'teams'; END;
CREATE TRIGGER teams_delete_version AFTER DELETE ON teams
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'teams'; END;
CREATE TRIGGER pipelines_insert_version AFTER INSERT ON pipelines
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'pipelines'; END;
CREATE TRIGGER pipelines_update_version AFTER UPDATE ON pipelines
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'pipelines'; END;
CREATE TRIGGER pipelines_delete_version AFTER DELETE ON pipelines
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'pipelines'; END;
CREATE TRIGGER jobs_insert_version AFTER INSERT ON jobs
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'jobs'; END;
CREATE TRIGGER jobs_update_version AFTER UPDATE ON jobs
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'jobs'; END;
CREATE TRIGGER jobs_delete_version AFTER DELETE ON jobs
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'jobs'; END;
CREATE TRIGGER resources_insert_version AFTER INSERT ON resources
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'resources'; END;
CREATE TRIGGER resources_update_version AFTER UPDATE ON resources
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'resources'; END;
CREATE TRIGGER resources_delete_version AFTER DELETE ON resources
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'resources'; END;
CREATE TRIGGER builds_insert_version AFTER INSERT ON builds
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'builds'; END;
-- A build's bookkeeping (its plan, owner, reaping, abort request) is in no listing.
CREATE TRIGGER builds_update_version AFTER UPDATE OF team_id, job_id, pipeline_id, resource_id, name, status, created_by, comment, create_time, start_time, end_time, rerun_of, rerun_number ON builds
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'builds'; END;
CREATE TRIGGER builds_delete_version AFTER DELETE ON builds
BEGIN UPDATE table_versions SET version = version + 1 WHERE name = 'builds'; END;
