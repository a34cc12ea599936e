//! `resources/list`, `resources/templates/list`, `resources/read` (spec server/resources).

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::invoke::Invocation;
use super::{Call, Engine, pagination, str_param};
use crate::catalog::{Binding, Catalog};
use crate::protocol::{Request, RpcError, codes};
use crate::runtime::{FunctionError, Output};

pub fn list(catalog: &Catalog, params: &Value, page_size: usize) -> Result<Value, RpcError> {
    let items: Vec<Value> = catalog
        .resources
        .iter()
        .map(|r| r.listing.clone())
        .collect();
    pagination::page(&items, params, page_size, "resources")
}

pub fn list_templates(
    catalog: &Catalog,
    params: &Value,
    page_size: usize,
) -> Result<Value, RpcError> {
    let items: Vec<Value> = catalog
        .templates
        .iter()
        .map(|t| t.listing.clone())
        .collect();
    pagination::page(&items, params, page_size, "resourceTemplates")
}

/// Legacy-era "resource not found": -32002 with the uri in `data`.
pub fn not_found(uri: &str) -> RpcError {
    RpcError::new(
        codes::RESOURCE_NOT_FOUND,
        format!("Resource not found: {uri}"),
    )
    .with_data(json!({"uri": uri}))
}

pub async fn read(
    engine: &Engine,
    catalog: &Catalog,
    call: &Call,
    req: &Request,
    params: &Value,
    cancel: &CancellationToken,
) -> Result<Value, RpcError> {
    let uri = str_param(params, "uri")?;
    let (binding, mime, name, vars): (&Binding, _, _, _) = if let Some(r) = catalog.resource(uri) {
        (&r.binding, r.mime_type.clone(), r.uri.clone(), json!({}))
    } else if let Some((t, vars)) = catalog.match_template(uri) {
        let name = t
            .listing
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        (&t.binding, t.mime_type.clone(), name, Value::Object(vars))
    } else if call.modern.is_some() {
        // SEP-2164: the stateless era reports an unknown resource as invalid params.
        return Err(
            RpcError::invalid_params(format!("Resource not found: {uri}"))
                .with_data(json!({"uri": uri})),
        );
    } else {
        return Err(not_found(uri));
    };
    let inv = Invocation { call, req, cancel };
    let args = json!({"uri": uri, "params": vars});
    let output = match engine.invoke(&inv, &name, binding, args).await {
        Ok(output) => output,
        Err(answer) => return answer,
    };
    let output = output.map_err(|e| match e {
        FunctionError::Rpc(e) => e,
        e => RpcError::internal(format!("Reading {uri} failed: {e}")),
    })?;
    let item = |mime_default: &str, text: String| json!({"uri": uri, "mimeType": mime.as_deref().unwrap_or(mime_default), "text": text});
    let contents = match output {
        Output::Text(t) => vec![item("text/plain", t)],
        Output::Json(v) => vec![item("application/json", v.to_string())],
        Output::Content(items) => items,
        Output::Result(v) => return Ok(v),
    };
    if contents.is_empty() {
        // The spec forbids an empty `contents` for a resource that exists.
        return Err(RpcError::internal(format!(
            "Reading {uri} produced no contents"
        )));
    }
    Ok(json!({"contents": contents}))
}
