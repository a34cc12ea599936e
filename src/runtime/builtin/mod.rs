//! Builtin modules: functions written in Rust and shipped in the binary, addressed from the
//! config file by `module_name` + `function_name` exactly like Python modules will be.

mod bench;
mod conformance;
mod conformance_modern;
mod demo;
mod media;
mod testkit;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::{Ctx, Function, FunctionError, Output};

pub(crate) type CallFuture = Pin<Box<dyn Future<Output = Result<Output, FunctionError>> + Send>>;

/// A builtin function: any `Fn(ctx, args) -> future` closure.
pub struct Builtin<F>(pub F);

#[async_trait]
impl<F> Function for Builtin<F>
where
    F: Fn(Arc<Ctx>, Value) -> CallFuture + Send + Sync + 'static,
{
    async fn call(&self, ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
        (self.0)(ctx, args).await
    }
}

/// Wraps an `async fn(Arc<Ctx>, Value) -> Result<Output, FunctionError>` as a `Function`.
pub fn func<Fut>(f: fn(Arc<Ctx>, Value) -> Fut) -> Arc<dyn Function>
where
    Fut: Future<Output = Result<Output, FunctionError>> + Send + 'static,
{
    Arc::new(Builtin(move |c, a| Box::pin(f(c, a)) as CallFuture))
}

/// One loaded builtin module. A module is instantiated once per catalog, so state it keeps
/// (counters) belongs to that server instance only.
pub trait Module: Send + Sync {
    fn function(&self, name: &str) -> Option<Arc<dyn Function>>;
}

/// The builtin module called `name`, freshly instantiated, or `None` if no such module is built
/// in (the caller then needs another runtime).
pub fn module(name: &str) -> Option<Box<dyn Module>> {
    match name {
        demo::MODULE => Some(Box::new(demo::Demo)),
        bench::MODULE => Some(Box::new(bench::Bench)),
        conformance::MODULE => Some(Box::new(conformance::Conformance)),
        testkit::MODULE => Some(Box::new(testkit::Testkit::default())),
        _ => None,
    }
}

/// Names of every builtin module, for error messages.
pub const MODULES: [&str; 4] = [
    demo::MODULE,
    bench::MODULE,
    conformance::MODULE,
    testkit::MODULE,
];

pub(crate) fn str_arg<'a>(args: &'a Value, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str)
}

pub(crate) fn required_str(args: &Value, name: &str) -> Result<String, FunctionError> {
    str_arg(args, name)
        .map(str::to_string)
        .ok_or_else(|| FunctionError::InvalidArguments(format!("'{name}' must be a string")))
}
