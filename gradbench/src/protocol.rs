//! The GradBench protocol (its `CONTRIBUTING.md`, "Protocol"): every message is
//! one JSON object with an `id` and a `kind`, and gets exactly one response
//! with the same `id`.
//!
//! - `start`: the response names the tool.
//! - `define`: whether this tool has the `module`.
//! - `evaluate`: run `function` of `module` on `input`, and answer its `output`
//!   with one `"evaluate"` timing per run.
//! - anything else (`analysis`, `end`, kinds added later): the `id` alone.

use std::panic::{self, AssertUnwindSafe};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::evals::{self, Evaluation};
use crate::runs::Timing;

/// The fields of a message this tool reads; the others are ignored.
#[derive(Deserialize)]
struct Message {
    id: Value,
    kind: String,
    #[serde(default)]
    module: Option<String>,
    #[serde(default)]
    function: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Serialize)]
struct Response {
    id: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    success: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timings: Option<Vec<Timing>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Response {
    fn ack(id: Value) -> Self {
        Response {
            id,
            tool: None,
            success: None,
            output: None,
            timings: None,
            error: None,
        }
    }

    fn failure(id: Value, error: String) -> Self {
        Response {
            success: Some(false),
            error: Some(error),
            ..Response::ack(id)
        }
    }
}

/// The tool's name in `start` responses and GradBench's tables.
pub const TOOL: &str = "adjoint";

/// Reads one line of the protocol and returns the line to answer it with.
/// A line that is not a message gets a failure with a `null` id, so the eval
/// sees the error instead of waiting for an answer.
pub fn respond(line: &str) -> String {
    let response = match serde_json::from_str::<Message>(line) {
        Ok(message) => answer(message, evals::evaluate),
        Err(e) => Response::failure(Value::Null, format!("not a GradBench message: {e}")),
    };
    serde_json::to_string(&response).expect("a response is plain JSON")
}

/// What answers an `evaluate`: [`evals::evaluate`], or a stand-in in tests.
type Evaluator = fn(&str, &str, Value) -> Result<Evaluation, String>;

fn answer(message: Message, evaluate: Evaluator) -> Response {
    let Message {
        id,
        kind,
        module,
        function,
        input,
    } = message;
    match kind.as_str() {
        "start" => Response {
            tool: Some(TOOL),
            ..Response::ack(id)
        },
        "define" => {
            let Some(module) = module else {
                return Response::failure(id, "a define message names a `module`".into());
            };
            match evals::define(&module) {
                Ok(()) => Response {
                    success: Some(true),
                    ..Response::ack(id)
                },
                Err(why) => Response::failure(id, why),
            }
        }
        "evaluate" => {
            let (Some(module), Some(function), Some(input)) = (module, function, input) else {
                return Response::failure(
                    id,
                    "an evaluate message names a `module`, a `function` and an `input`".into(),
                );
            };
            // An eval may send an input the objective cannot take (a wrong
            // length, say); the runtime's shape checks panic with the shapes
            // named. That ends this evaluation, not the tool.
            let run = panic::catch_unwind(AssertUnwindSafe(|| evaluate(&module, &function, input)));
            match run {
                Ok(Ok(Evaluation { output, timings })) => Response {
                    success: Some(true),
                    output: Some(output),
                    timings: Some(timings),
                    ..Response::ack(id)
                },
                Ok(Err(why)) => Response::failure(id, why),
                Err(panic) => Response::failure(
                    id,
                    format!("`{module}::{function}` panicked: {}", panic_text(&*panic)),
                ),
            }
        }
        _ => Response::ack(id),
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(line: &str) -> Message {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn a_panicking_evaluation_is_a_failure_that_names_the_panic() {
        fn panics(_: &str, _: &str, _: Value) -> Result<Evaluation, String> {
            let shape = [2, 3];
            panic!("matmul: shapes {shape:?} and [4, 5] do not chain")
        }
        let r = answer(
            message(r#"{"id": 7, "kind": "evaluate", "module": "m", "function": "f", "input": 1}"#),
            panics,
        );
        let r = serde_json::to_value(r).unwrap();
        assert_eq!(r["id"], 7);
        assert_eq!(r["success"], false);
        let error = r["error"].as_str().unwrap();
        assert!(
            error.starts_with("`m::f` panicked: matmul: shapes [2, 3]"),
            "{error}"
        );
    }

    #[test]
    fn a_define_without_a_module_is_a_failure() {
        let r = serde_json::to_value(answer(
            message(r#"{"id": 1, "kind": "define"}"#),
            evals::evaluate,
        ))
        .unwrap();
        assert_eq!(r["success"], false);
        assert!(r["error"].as_str().unwrap().contains("`module`"));
    }
}
