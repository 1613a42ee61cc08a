//! How the ATC reaches workers: HTTP clients at the registered addresses, or quickstart's
//! in-process Garden and Baggageclaim for its own worker (no network at all).

use super::quickstart::{IN_PROCESS_BAGGAGECLAIM, IN_PROCESS_GARDEN};
use crate::baggageclaim::client::BaggageclaimClient;
use crate::garden::client::GardenClient;
use crate::proto::baggageclaim::Baggageclaim;
use crate::proto::garden::Garden;
use crate::proto::worker::{Worker, WorkerConnector};
use std::sync::Arc;

#[derive(Default)]
pub struct Connector {
    pub in_process: Option<(Arc<dyn Garden>, Arc<dyn Baggageclaim>)>,
}

impl WorkerConnector for Connector {
    fn connect(&self, w: &Worker) -> (Arc<dyn Garden>, Arc<dyn Baggageclaim>) {
        if let Some((g, b)) = &self.in_process {
            if w.garden_addr == IN_PROCESS_GARDEN && w.baggageclaim_url == IN_PROCESS_BAGGAGECLAIM {
                return (g.clone(), b.clone());
            }
        }
        let garden = if w.garden_addr.contains("://") {
            w.garden_addr.clone()
        } else {
            format!("http://{}", w.garden_addr)
        };
        (
            Arc::new(GardenClient::new(garden)),
            Arc::new(BaggageclaimClient::new(w.baggageclaim_url.clone())),
        )
    }
}
