-- Bumped whenever a scope's versions change (a new version, a new order, one enabled or
-- disabled): the scheduler compares it to find the pipelines with something to schedule,
-- across every pipeline sharing the scope, without reading the versions themselves.
ALTER TABLE resource_config_scopes ADD COLUMN versions_changed bigint NOT NULL DEFAULT 0;
