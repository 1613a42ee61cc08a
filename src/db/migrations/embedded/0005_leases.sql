-- Coordination of several web nodes on one database. A lease names the node (a random id
-- per process) that does a singleton job, such as scheduling, until it expires (Unix
-- seconds); its holder renews it, anyone takes it over once expired.
CREATE TABLE leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    expires_at bigint NOT NULL
);

-- Set by an abort received on a node that does not run the build: the node running it
-- notices, stops its processes and finishes it as aborted (with its hooks).
ALTER TABLE builds ADD COLUMN abort_requested integer NOT NULL DEFAULT 0;
