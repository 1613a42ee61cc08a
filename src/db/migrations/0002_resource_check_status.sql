-- The last check of each resource: its check build and whether it failed (`fly resources`).
-- Plain ALTERs, valid in PostgreSQL and SQLite alike.
ALTER TABLE resources ADD COLUMN check_build_id bigint;
ALTER TABLE resources ADD COLUMN check_failed boolean NOT NULL DEFAULT false;
