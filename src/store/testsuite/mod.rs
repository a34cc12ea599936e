//! The contract every `CatalogStore` must meet (see the trait's docs), run on SQLite in every
//! test run and on DynamoDB against moto's server: round trips, partition isolation, paging,
//! conditional and concurrent writes, versions and rollback, the audit trail, batch call
//! writes, the item limit and the original's "Cannot find" rule.

mod calls;
mod listing;
mod records;
mod writes;

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::protocol::PartitionKey;
use calls::{calls, limits};
use listing::paging_and_filters;
use records::{isolation, round_trips};
use writes::{concurrent_writers, conditional_writes, versions_and_rollback};

pub fn pk(s: &str) -> PartitionKey {
    PartitionKey::parse(s).unwrap()
}

pub fn tool(name: &str) -> FunctionDraft {
    FunctionDraft {
        name: name.into(),
        mcp_type: McpType::Tool,
        description: Some(format!("the {name} tool")),
        data: json!({"input_schema": {"type": "object", "properties": {"x": {"type": "integer", "minimum": 1.5}}}, "n": 3}),
        annotations: Some("{\"readOnlyHint\": true}".into()),
        module_name: Some("demo_module".into()),
        class_name: Some("Demo".into()),
        function_name: Some(name.into()),
        return_type: Some("text".into()),
        is_async: Some(false),
        enabled: true,
    }
}

pub fn call(p: &PartitionKey, uuid: &str, at_ms: u64) -> CallRecord {
    CallRecord {
        partition_key: p.clone(),
        mcp_function_call_uuid: uuid.into(),
        name: "get_weather".into(),
        mcp_type: McpType::Tool,
        arguments: json!({"city": "Oslo", "days": 3, "nested": {"deep": [1, 2.5, "x"]}}),
        content: Some("sunny".into()),
        content_in_s3: false,
        status: CallStatus::Completed,
        notes: None,
        time_spent: Some(1000),
        updated_by: "mcp_daemon_engine".into(),
        created_at: Timestamp::from_millis(at_ms),
        updated_at: Timestamp::from_millis(at_ms),
    }
}

/// Runs every part of the contract on `store` (which must start empty).
pub async fn catalog_store_contract(store: Arc<dyn CatalogStore>) {
    round_trips(store.as_ref()).await;
    isolation(store.as_ref()).await;
    paging_and_filters(store.as_ref()).await;
    conditional_writes(store.as_ref()).await;
    concurrent_writers(store.clone()).await;
    versions_and_rollback(store.as_ref()).await;
    calls(store.as_ref()).await;
    limits(store.as_ref()).await;
}
