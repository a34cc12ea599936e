//! Running a request on a transport that has one ordered outgoing channel (legacy SSE, stdio):
//! related messages first, in order, then the response; early-close requests do not apply.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::{Call, Engine, Outgoing};
use crate::auth::Principal;
use crate::protocol::Request;
use crate::state::SessionRecord;

impl Engine {
    /// Runs `req` and hands every message it produces, then its response (unless cancelled),
    /// to `emit` in order.
    pub async fn run_ordered<F, Fut>(
        self: Arc<Self>,
        principal: Principal,
        session: SessionRecord,
        req: Request,
        mut emit: F,
    ) where
        F: FnMut(Value) -> Fut,
        Fut: Future<Output = ()>,
    {
        let (tx, mut rx) = mpsc::channel::<Outgoing>(64);
        let partition = session.partition.clone();
        let call = Call::legacy(principal, partition, Some(session), Some(tx));
        let work = self.handle_request(call, req);
        tokio::pin!(work);
        let response = loop {
            tokio::select! {
                biased;
                Some(item) = rx.recv() => {
                    if let Outgoing::Message(m) = item {
                        emit(m).await;
                    }
                }
                r = &mut work => break r,
            }
        };
        while let Ok(item) = rx.try_recv() {
            if let Outgoing::Message(m) = item {
                emit(m).await;
            }
        }
        if let Some(r) = response {
            emit(r.to_value()).await;
        }
    }
}
