-- Builds outlive the web node running them. The node running a build owns it until
-- `owner_expires` (Unix seconds) and keeps renewing that; once it lapses, any node adopts the
-- build and resumes it from its journal. Starting a build sets a short expiry, so no node
-- adopts it before its starter has claimed it.
ALTER TABLE builds ADD COLUMN owner text;
ALTER TABLE builds ADD COLUMN owner_expires integer NOT NULL DEFAULT 0;

-- What a build's engine has done so far, as JSON by key: each finished step's outcome and
-- what it left (artifacts, vars), a running task's container and process, how much of each
-- output stream is in the build log, when each timeout began.
CREATE TABLE build_journal (
    build_id integer NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    key text NOT NULL,
    data text NOT NULL,
    PRIMARY KEY (build_id, key)
);
