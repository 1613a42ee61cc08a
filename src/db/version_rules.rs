//! Version rules both backends apply around their statements (`sql::ResourceSql`).

use super::*;

/// Whether a checked version came with metadata (an update only overwrites with some).
pub(crate) fn has_metadata(metadata: &Value) -> bool {
    metadata.as_array().is_some_and(|a| !a.is_empty())
}

/// Metadata as stored: an empty list when there is none.
pub(crate) fn stored_metadata(metadata: &Value) -> Value {
    if has_metadata(metadata) {
        metadata.clone()
    } else {
        Value::Array(vec![])
    }
}

impl BuildOutputRow {
    /// The version an output names, to record in its resource's scope.
    pub(crate) fn as_version(&self) -> NewVersion {
        NewVersion {
            version: self.version.clone(),
            metadata: self.metadata.clone(),
        }
    }
}

/// The check-order window one page of versions covers.
pub(crate) struct VersionWindow {
    /// Only `from` is set: query upwards from it (oldest first) and reverse.
    pub anchored_at_from: bool,
    pub from: i64,
    pub to: i64,
    pub limit: i64,
}

impl VersionWindow {
    /// `from_order` and `to_order` are the check orders of the page's bounds (None when
    /// unbounded or unknown).
    pub(crate) fn new(page: &Page, from_order: Option<i64>, to_order: Option<i64>) -> Self {
        VersionWindow {
            anchored_at_from: page.from.is_some() && page.to.is_none(),
            from: from_order.unwrap_or(i64::MIN),
            to: to_order.unwrap_or(i64::MAX),
            limit: if page.limit <= 0 {
                i64::MAX
            } else {
                page.limit
            },
        }
    }

    /// The queried rows, newest first.
    pub(crate) fn newest_first(&self, mut rows: Vec<VersionRow>) -> Vec<VersionRow> {
        if self.anchored_at_from {
            rows.reverse();
        }
        rows
    }
}
