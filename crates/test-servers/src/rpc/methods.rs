//! The methods of the `rpc` server: test helpers (`echo`, `add`, `sleep`, `fail`, ticks...)
//! and the ones the JSON-RPC 2.0 specification's examples call (`subtract`, `sum`, ...).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Number, Value, json};

use crate::rpc::params::Params;
use crate::rpc::protocol::{Framing, METHOD_NOT_FOUND, Output, RpcFailure};
use crate::rpc::ticks::Ticks;

/// Longest `sleep` accepted, so a call cannot pin a task for long.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Most ticks one subscription may ask for.
const MAX_TICKS: u64 = 1_000_000;

/// Every method, with what it does (the answer of `list_methods`).
pub const METHODS: &[(&str, &str)] = &[
    ("echo", "returns its params"),
    ("add", "{\"a\":5,\"b\":3} or [5,3] gives {\"result\":8}"),
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
    Done(Result<Output, RpcFailure>),
    /// Answered when the future completes.
    Later {
        /// The work.
        work: Pin<Box<dyn Future<Output = Result<Output, RpcFailure>> + Send>>,
        /// Bytes the work keeps until it is done (counted against the connection's limit).
        retained: usize,
    },
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
pub fn dispatch(method: &str, params: Params<'_>, context: &MethodContext) -> Work {
    let done = |outcome: Result<Value, RpcFailure>| Work::Done(outcome.map(Output::Value));
    match method {
        "echo" => Work::Done(Ok(params.into_output())),
        // As the original design's handler: the sum wrapped in an object.
        "add" => done(
            pair(&params, ["a", "b"])
                .and_then(|(a, b)| arithmetic(&a, &b, i64::checked_add, |x, y| x + y))
                .map(|sum| json!({ "result": sum })),
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
        "fail" => Work::Done(Err(requested_failure(&params))),
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

/// Two numbers, by name or by position.
fn pair(params: &Params<'_>, names: [&str; 2]) -> Result<(Number, Number), RpcFailure> {
    let number = |i: usize| {
        params.member::<Number>(names[i], i).ok_or_else(|| {
            RpcFailure::invalid_params(format!(
                "expected two numbers, as {{\"{}\": x, \"{}\": y}} or [x, y]",
                names[0], names[1]
            ))
        })
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

/// The sum of an array of numbers, added up as they are read.
fn sum(params: &Params<'_>) -> Result<Value, RpcFailure> {
    let add =
        |total: &Number, n: &Number| match arithmetic(total, n, i64::checked_add, |x, y| x + y)? {
            Value::Number(total) => Ok(total),
            _ => Err(RpcFailure::invalid_params("result is not a number")),
        };
    let not_numbers = || RpcFailure::invalid_params("expected an array of numbers");
    params
        .fold_numbers(Number::from(0), add, not_numbers)
        .map(Value::Number)
}

/// Answers its params after `ms`. Only the params' text is kept while it waits (not a
/// tree), and the connection counts it against its limit of retained bytes.
fn sleep(params: Params<'_>) -> Work {
    let ms = match params.member::<u64>("ms", 0) {
        Some(ms) if Duration::from_millis(ms) <= MAX_SLEEP => ms,
        _ => {
            return Work::Done(Err(RpcFailure::invalid_params(
                "expected {\"ms\": N} with N from 0 to 60000",
            )));
        }
    };
    let text = params.into_text();
    let retained = text.get().len();
    Work::Later {
        work: Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(Output::Raw(text))
        }),
        retained,
    }
}

fn requested_failure(params: &Params<'_>) -> RpcFailure {
    RpcFailure {
        code: params.member::<i64>("code", 0).unwrap_or(-32000),
        message: params
            .member::<String>("message", 1)
            .unwrap_or_else(|| "failure requested".to_owned()),
        data: params.member_output("data", 2),
    }
}

fn subscribe_ticks(params: &Params<'_>, context: &MethodContext) -> Result<Value, RpcFailure> {
    let count = params.member::<u64>("count", 0).unwrap_or(10);
    let interval_ms = params.member::<u64>("interval_ms", 1).unwrap_or(100);
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

fn unsubscribe(params: &Params<'_>, context: &MethodContext) -> Result<Value, RpcFailure> {
    match params.member::<u64>("subscription", 0) {
        Some(id) => Ok(Value::Bool(context.ticks.stop(id))),
        None => Err(RpcFailure::invalid_params("expected [subscription_id]")),
    }
}
