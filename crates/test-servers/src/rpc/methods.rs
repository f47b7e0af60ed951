//! The methods of the `rpc` server: test helpers (`echo`, `add`, `sleep`, `fail`, ticks...)
//! and the ones the JSON-RPC 2.0 specification's examples call (`subtract`, `sum`, ...).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Number, Value, json};

use crate::rpc::protocol::{Framing, METHOD_NOT_FOUND, RpcFailure};
use crate::rpc::ticks::Ticks;

/// Longest `sleep` accepted, so a call cannot pin a task for long.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Most ticks one subscription may ask for.
const MAX_TICKS: u64 = 1_000_000;

/// Every method, with what it does (the answer of `list_methods`).
pub const METHODS: &[(&str, &str)] = &[
    ("echo", "returns its params"),
    ("add", "{\"a\":5,\"b\":3} or [5,3] gives 8"),
    (
        "subtract",
        "[42,23] or {\"minuend\":42,\"subtrahend\":23} gives 19",
    ),
    ("sum", "[1,2,4] gives 7"),
    ("get_time", "the server's clock: {\"unix_ms\": N}"),
    (
        "sleep",
        "{\"ms\":N}: answers its params after N ms (at most 60000)",
    ),
    (
        "fail",
        "{\"code\":C,\"message\":M,\"data\":D}: answers with that error",
    ),
    (
        "subscribe_ticks",
        "{\"count\":N,\"interval_ms\":M}: returns an id, then N notifications \"tick\"",
    ),
    (
        "unsubscribe",
        "[id]: stops a subscription; true if it was active",
    ),
    ("list_methods", "these names"),
    ("get_data", "[\"hello\", 5]"),
    ("update", "accepts anything, returns null"),
    ("notify_hello", "accepts anything, returns null"),
    ("notify_sum", "accepts anything, returns null"),
];

/// The outcome of a method: an answer now, or one that takes time.
#[allow(missing_debug_implementations)] // holds a boxed future
pub enum Work {
    /// Answered at once.
    Done(Result<Value, RpcFailure>),
    /// Answered when the future completes.
    Later(Pin<Box<dyn Future<Output = Result<Value, RpcFailure>> + Send>>),
}

/// What methods may use of their connection.
#[derive(Debug, Clone)]
pub struct MethodContext {
    /// The connection's tick subscriptions.
    pub ticks: Arc<Ticks>,
    /// How the request arrived (ticks are framed the same way).
    pub framing: Framing,
}

/// Runs `method` with `params`.
pub fn dispatch(method: &str, params: Value, context: &MethodContext) -> Work {
    let done = Work::Done;
    match method {
        "echo" => done(Ok(params)),
        "add" => done(
            pair(&params, ["a", "b"])
                .and_then(|(a, b)| arithmetic(&a, &b, i64::checked_add, |x, y| x + y)),
        ),
        "subtract" => done(
            pair(&params, ["minuend", "subtrahend"])
                .and_then(|(a, b)| arithmetic(&a, &b, i64::checked_sub, |x, y| x - y)),
        ),
        "sum" => done(sum(&params)),
        "get_time" => {
            let unix_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            done(Ok(json!({ "unix_ms": unix_ms })))
        }
        "sleep" => sleep(params),
        "fail" => done(Err(requested_failure(&params))),
        "subscribe_ticks" => done(subscribe_ticks(&params, context)),
        "unsubscribe" => done(unsubscribe(&params, context)),
        "list_methods" => done(Ok(METHODS
            .iter()
            .map(|(name, _)| Value::from(*name))
            .collect())),
        "get_data" => done(Ok(json!(["hello", 5]))),
        "update" | "notify_hello" | "notify_sum" => done(Ok(Value::Null)),
        _ => done(Err(RpcFailure::standard(METHOD_NOT_FOUND))),
    }
}

/// Reads the named member `key` of an object, or position `index` of an array.
fn param<'a>(params: &'a Value, key: &str, index: usize) -> Option<&'a Value> {
    match params {
        Value::Object(map) => map.get(key),
        Value::Array(items) => items.get(index),
        _ => None,
    }
}

/// Two numbers, by name or by position.
fn pair(params: &Value, names: [&str; 2]) -> Result<(Number, Number), RpcFailure> {
    let number = |i: usize| match param(params, names[i], i) {
        Some(Value::Number(n)) => Ok(n.clone()),
        _ => Err(RpcFailure::invalid_params(format!(
            "expected two numbers, as {{\"{}\": x, \"{}\": y}} or [x, y]",
            names[0], names[1]
        ))),
    };
    Ok((number(0)?, number(1)?))
}

/// Integer arithmetic when both are integers (overflow is an error), floating otherwise.
fn arithmetic(
    a: &Number,
    b: &Number,
    integer: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
) -> Result<Value, RpcFailure> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return integer(x, y)
            .map(Value::from)
            .ok_or_else(|| RpcFailure::invalid_params("integer overflow"));
    }
    let (x, y) = (
        a.as_f64().unwrap_or(f64::NAN),
        b.as_f64().unwrap_or(f64::NAN),
    );
    Number::from_f64(float(x, y))
        .map(Value::Number)
        .ok_or_else(|| RpcFailure::invalid_params("result is not a finite number"))
}

fn sum(params: &Value) -> Result<Value, RpcFailure> {
    let Value::Array(items) = params else {
        return Err(RpcFailure::invalid_params("expected an array of numbers"));
    };
    let mut total = Value::from(0);
    for item in items {
        let (Value::Number(acc), Value::Number(n)) = (&total, item) else {
            return Err(RpcFailure::invalid_params("expected an array of numbers"));
        };
        total = arithmetic(acc, n, i64::checked_add, |x, y| x + y)?;
    }
    Ok(total)
}

fn sleep(params: Value) -> Work {
    let ms = match param(&params, "ms", 0).and_then(Value::as_u64) {
        Some(ms) if Duration::from_millis(ms) <= MAX_SLEEP => ms,
        _ => {
            return Work::Done(Err(RpcFailure::invalid_params(
                "expected {\"ms\": N} with N from 0 to 60000",
            )));
        }
    };
    Work::Later(Box::pin(async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(params)
    }))
}

fn requested_failure(params: &Value) -> RpcFailure {
    RpcFailure {
        code: param(params, "code", 0)
            .and_then(Value::as_i64)
            .unwrap_or(-32000),
        message: param(params, "message", 1)
            .and_then(Value::as_str)
            .unwrap_or("failure requested")
            .to_owned(),
        data: param(params, "data", 2).cloned(),
    }
}

fn subscribe_ticks(params: &Value, context: &MethodContext) -> Result<Value, RpcFailure> {
    let count = param(params, "count", 0)
        .and_then(Value::as_u64)
        .unwrap_or(10);
    let interval_ms = param(params, "interval_ms", 1)
        .and_then(Value::as_u64)
        .unwrap_or(100);
    if count == 0 || count > MAX_TICKS || Duration::from_millis(interval_ms) > MAX_SLEEP {
        return Err(RpcFailure::invalid_params(
            "expected {\"count\": 1..1000000, \"interval_ms\": 0..60000}",
        ));
    }
    let id = context
        .ticks
        .start(count, Duration::from_millis(interval_ms), context.framing)?;
    Ok(Value::from(id))
}

fn unsubscribe(params: &Value, context: &MethodContext) -> Result<Value, RpcFailure> {
    match param(params, "subscription", 0).and_then(Value::as_u64) {
        Some(id) => Ok(Value::Bool(context.ticks.stop(id))),
        None => Err(RpcFailure::invalid_params("expected [subscription_id]")),
    }
}
