//! adjoint as a [GradBench](https://github.com/gradbench/gradbench) tool.
//!
//! GradBench runs an *eval* (a Python program that sends inputs and checks the
//! answers) against a *tool* over JSON lines on stdin and stdout. This crate is
//! the tool: [`protocol`] reads one message and builds its response, and
//! [`evals`] holds one module per eval. Each eval's objective is ordinary Rust
//! under `#[differentiable]`; the same function is the primal, and every
//! derivative comes from its `_grad` or `_vjp`. Nothing is differentiated by
//! hand.
//!
//! ```
//! let response = adjoint_gradbench::protocol::respond(
//!     r#"{"id": 2, "kind": "evaluate", "module": "hello", "function": "double", "input": 3.0}"#,
//! );
//! let response: serde_json::Value = serde_json::from_str(&response).unwrap();
//! assert_eq!(response["success"], true);
//! assert_eq!(response["output"], 6.0);
//! assert_eq!(response["timings"].as_array().unwrap().len(), 1);
//! ```

// The objectives are written as ports of ADBench's C++ are: indexed loops over
// slices, which is also how the static path reads them best.
#![allow(clippy::needless_range_loop)]

pub mod evals;
pub mod protocol;
pub mod runs;
