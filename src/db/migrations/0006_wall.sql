-- The wall message (`fly set-wall`): at most one row; shown to every user until it
-- expires (Unix seconds; NULL = never) or is cleared. Kept in the database, as upstream
-- does, so every web node shows the same message and it survives restarts.
CREATE TABLE wall (
    id integer PRIMARY KEY CHECK (id = 1),
    message text NOT NULL,
    expires_at bigint
);
