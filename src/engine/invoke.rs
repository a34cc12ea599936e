//! Running one function for a request: the one pipeline every bound tool, resource and prompt
//! goes through (`Engine::invoke`), the context it gets (legacy era: the session and the
//! request's stream; stateless era: `_meta` and the round of client input), and how a
//! client-input outcome ends the call in each era.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::peer::RequestPeer;
use super::request_state::Binding as StateBinding;
use super::{Call, Engine};
use crate::catalog::Binding;
use crate::protocol::{Request, RpcError, codes};
use crate::runtime::{ClientRequestError, Ctx, FunctionError, InputRound, Output, TaskLink};
use crate::state::JsonText;

/// Everything a request carries into a function call.
pub(super) struct Invocation<'a> {
    pub call: &'a Call,
    pub req: &'a Request,
    pub cancel: &'a CancellationToken,
}

/// A function's own outcome, or the request's answer already settled by a client-input
/// outcome (`input_required`, a missing client capability, a malformed `requestState`).
pub(super) type Invoked = Result<Result<Output, FunctionError>, Result<Value, RpcError>>;

impl Engine {
    /// Runs one bound function: builds its `Ctx` and calls it. `Ok(outcome)` is the function's
    /// own result, left for the caller to shape (tool result, resource contents, prompt
    /// messages); `Err(answer)` is the request's answer.
    pub(super) async fn invoke(
        &self,
        inv: &Invocation<'_>,
        entry: &str,
        binding: &Binding,
        args: Value,
    ) -> Invoked {
        let ctx = self
            .ctx(inv.call, inv.req, inv.cancel, entry, &binding.setting)
            .map_err(Err)?;
        let output = binding.function.call(ctx.clone(), args).await;
        if let Some(answer) = self.client_outcome(inv.call, inv.req, entry, &ctx, &output) {
            return Err(answer);
        }
        Ok(output)
    }

    /// Builds the context a function runs with. Fails (-32602) when a stateless request
    /// carries malformed input or a `requestState` that does not verify.
    pub(super) fn ctx(
        &self,
        call: &Call,
        req: &Request,
        cancel: &CancellationToken,
        entry: &str,
        setting: &Value,
    ) -> Result<Arc<Ctx>, RpcError> {
        self.ctx_with_task(call, req, cancel, entry, setting, None)
    }

    /// `ctx` for a call that may turn into a task through `task`.
    pub(super) fn ctx_with_task(
        &self,
        call: &Call,
        req: &Request,
        cancel: &CancellationToken,
        entry: &str,
        setting: &Value,
        task: Option<Arc<dyn TaskLink>>,
    ) -> Result<Arc<Ctx>, RpcError> {
        let (capabilities, log_level) = match (&call.modern, &call.session) {
            (Some(m), _) => (JsonText::from_value(&m.client_capabilities), m.log_level),
            (None, Some(s)) => (s.client_capabilities.clone(), s.log_level),
            (None, None) => (JsonText::empty_object(), None),
        };
        let peer = RequestPeer {
            partition: call.partition.clone(),
            session: call.session.as_ref().map(|s| s.id.clone()),
            capabilities,
            drop_logs: call.modern.as_ref().is_some_and(|m| m.log_level.is_none()),
            out: call.out.clone(),
            pending: self.pending.clone(),
            bus: self.backends.bus.clone(),
            timeout: self.settings.client_request_timeout,
            id_prefix: self.id_prefix.clone(),
        };
        let mut ctx = Ctx::new(
            call.session.as_ref().map(|s| s.id.clone()),
            call.principal.clone(),
            cancel.clone(),
            req.progress_token(),
            log_level,
            Arc::new(peer),
        );
        if call.modern.is_some() {
            ctx = ctx.with_input(self.input_round(call, req, entry)?);
        }
        if let Some(task) = task {
            ctx = ctx.with_task(task);
        }
        Ok(Arc::new(ctx.for_entry(entry, setting.clone())))
    }

    fn input_round(&self, call: &Call, req: &Request, entry: &str) -> Result<InputRound, RpcError> {
        let params = req.params.as_ref();
        let responses = match params.and_then(|p| p.get("inputResponses")) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "Invalid params: inputResponses must be an object",
                ));
            }
        };
        let state = match params.and_then(|p| p.get("requestState")) {
            None | Some(Value::Null) => None,
            Some(Value::String(token)) => {
                let binding = binding(call, req, entry);
                Some(
                    self.sealer
                        .open(token, &binding)
                        .map_err(|e| RpcError::invalid_params(format!("Invalid params: {e}")))?,
                )
            }
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "Invalid params: requestState must be a string",
                ));
            }
        };
        Ok(InputRound::new(responses, state))
    }

    /// Client-input outcomes that end a call other than as a function error: stateless era
    /// `input_required` results and -32021 for an undeclared capability. `None`: shape the
    /// output normally.
    pub(super) fn client_outcome(
        &self,
        call: &Call,
        req: &Request,
        entry: &str,
        ctx: &Ctx,
        output: &Result<Output, FunctionError>,
    ) -> Option<Result<Value, RpcError>> {
        let Err(FunctionError::Client(e)) = output else {
            return None;
        };
        call.modern.as_ref()?;
        match e {
            ClientRequestError::InputRequired => {
                let round = ctx.input()?;
                let (asked, state) = round.outcome();
                let mut result = json!({"resultType": "input_required", "inputRequests": asked});
                if let Some(state) = state {
                    result["requestState"] = json!(self.sealer.seal(&state, &binding(call, req, entry)));
                }
                Some(Ok(result))
            }
            ClientRequestError::NotSupported(capability) => Some(Err(RpcError::new(
                codes::MISSING_REQUIRED_CLIENT_CAPABILITY,
                format!("This request needs the client capability '{capability}', which the request did not declare"),
            )
            .with_data(json!({"requiredCapabilities": {*capability: {}}})))),
            _ => None,
        }
    }
}

fn binding<'a>(call: &'a Call, req: &'a Request, entry: &'a str) -> StateBinding<'a> {
    StateBinding {
        subject: &call.principal.subject,
        method: &req.method,
        name: entry,
    }
}
