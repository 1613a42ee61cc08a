-- The embedded store's per-table change counters (embedded/0009_table_versions.sql) have
-- no PostgreSQL counterpart: its listings go by its snapshot. Recorded so that both
-- backends number their migrations alike.
SELECT 1;
