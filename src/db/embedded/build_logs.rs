//! Build logs in bounded pages, on the embedded store.

use super::super::sql::{self, sqlite};
use super::super::*;
use super::EmbeddedStore;

#[async_trait]
impl BuildLogStore for EmbeddedStore {
    async fn build_events_page(
        &self,
        build_id: i64,
        after: i64,
        max_events: i64,
        max_bytes: usize,
    ) -> Result<Vec<(i64, Value)>> {
        let limit = if max_events <= 0 {
            i64::MAX
        } else {
            max_events
        };
        self.call(move |conn| {
            let mut statement = conn.prepare_cached(&sqlite(sql::BUILD_EVENTS))?;
            let mut rows = statement.query([build_id, after, limit])?;
            let (mut page, mut bytes) = (Vec::new(), 0);
            // Rows are stepped one by one: the rest of the log is never read.
            while let Some(row) = rows.next()? {
                let event = super::rows::json(row, 1)?;
                bytes += approx_size(&event);
                page.push((row.get(0)?, event));
                if bytes >= max_bytes {
                    break;
                }
            }
            Ok(page)
        })
        .await
    }
}
