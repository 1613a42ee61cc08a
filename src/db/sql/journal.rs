//! Statements of build ownership and the build journal (see migration 0007).

use super::Dialect;

pub(crate) struct JournalSql {
    /// Build `$1` for holder `$2` until `$3`, when it is started and free: unowned (its
    /// starter claiming it, or started before ownership existed), lapsed before `$4`, or
    /// already the holder's.
    pub claim: String,
    /// Extends to `$2` every started build holder `$1` owns; returns their ids.
    pub renew: String,
    /// Started builds whose owner lapsed before `$1`.
    pub orphans: String,
    /// Lets go of holder `$1`'s builds among the ids bound at `$2` (a drain hands them over).
    /// The owner goes too: a renewal racing the drain must not take them back.
    pub release: String,
    pub put: String,
    pub entries: String,
}

impl JournalSql {
    pub(crate) fn new(d: Dialect) -> Self {
        let s = |sql: String| d.stmt(&sql);
        JournalSql {
            claim: s("UPDATE builds SET owner = $2, owner_expires = $3 \
                 WHERE id = $1 AND status = 'started' \
                 AND (owner = $2 OR owner IS NULL OR owner_expires < $4)"
                .into()),
            renew: s("UPDATE builds SET owner_expires = $2 \
                 WHERE owner = $1 AND status = 'started' RETURNING id"
                .into()),
            orphans: s(
                "SELECT id FROM builds WHERE status = 'started' AND owner_expires < $1 ORDER BY id"
                    .into(),
            ),
            release: s(format!(
                "UPDATE builds SET owner = NULL, owner_expires = 0 WHERE owner = $1 AND {}",
                d.in_ids("id", "$2")
            )),
            put: s(
                "INSERT INTO build_journal (build_id, key, data) VALUES ($1, $2, $3) \
                 ON CONFLICT (build_id, key) DO UPDATE SET data = excluded.data"
                    .into(),
            ),
            entries: s("SELECT key, data FROM build_journal WHERE build_id = $1".into()),
        }
    }
}
