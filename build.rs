//! Writes the random-program tester's programs (`tests/differential.rs`) into
//! `OUT_DIR`. The generator is `tests/differential/gen.rs`; this script only reads the
//! environment and writes its output, so the library itself does not depend on it.
//!
//! - `ADJOINT_DIFF_SEED`: the seed (default 10), a different set of programs each;
//! - `ADJOINT_DIFF_COUNT`: how many programs (default 520);
//!
//! Switches (`=1` on, `=0` off), each a construct that once hit a bug the tester
//! found; all on by default but the last, which is a compile error by design:
//! - `ADJOINT_DIFF_SLICE_CALLS`: calls of helpers with slice, `Vec` and array
//!   parameters, and array literals;
//! - `ADJOINT_DIFF_TAPE_CONSTS`: constant expressions such as `2.0f64.ln()` or
//!   `0.0f64.max(x)` (the tape did not compile them);
//! - `ADJOINT_DIFF_TENSOR_CONST`: `Tensor::ones(..)` in bodies;
//! - `ADJOINT_DIFF_LOOP_BROADCAST`: tensor `+=`/`-=` with a scalar or broadcast
//!   operand inside loops (its gradient was not reduced);
//! - `ADJOINT_DIFF_DEAD_NAN`: unused locals with a NaN derivative inside branches and
//!   loops (0 · NaN);
//! - `ADJOINT_DIFF_MIXED_TENSOR_CALLS`: calls of helpers with tensor and scalar
//!   parameters (the static caller lost gradients);
//! - `ADJOINT_DIFF_WRT_CALLS` (off): calls of helpers with a `wrt(..)` subset that
//!   leaves out a float argument, now a compile error at the call.
//!
//! Switches for the constructs of real numerical code (issue 11), on by default unless
//! marked:
//! - `ADJOINT_DIFF_BUFFERS`: local `Vec` buffers written element by element in
//!   (nested) loops, `swap`, `fill`, `copy_from_slice`, element-loop copies, `len()`;
//! - `ADJOINT_DIFF_ARRAY_BUFFERS`: the same on local arrays (`[c; N]`, `[e1, e2]`);
//! - `ADJOINT_DIFF_ITER_CHAINS`: iterator chains (`sum map zip enumerate fold rev
//!   windows chunks skip take step_by product`) and `for (i, &e) in v.iter().enumerate()`;
//! - `ADJOINT_DIFF_VALUES`: `to_vec`/`clone`/`&*` of sequences, tuples and their
//!   destructuring, `match` on an integer, closures defined and called in the body;
//! - `ADJOINT_DIFF_VALUE_CONSTS` (off): constant `match` arms and tuple elements
//!   (`(0.5f64, x)`): the tape leaves them `f64` beside `Var`s (a compile error);
//! - `ADJOINT_DIFF_DEBUG_STMTS`: `assert!`/`debug_assert!` that always hold;
//! - `ADJOINT_DIFF_VECTOR_RESULTS` (off): roots with a `[f64; 2]` result, checked
//!   through `f_vjp` with a random seed of each program's own, without a tape twin;
//!   the bodies use constructs the one IR does not take yet (`while`, tuples, field
//!   access, tensors in loops, ...), and a vector result has no tape fallback.

#[path = "tests/differential/gen.rs"]
#[allow(dead_code)]
mod gen;

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=tests/differential/gen.rs");
    for var in [
        "ADJOINT_DIFF_SEED",
        "ADJOINT_DIFF_COUNT",
        "ADJOINT_DIFF_SLICE_CALLS",
        "ADJOINT_DIFF_TAPE_CONSTS",
        "ADJOINT_DIFF_TENSOR_CONST",
        "ADJOINT_DIFF_WRT_CALLS",
        "ADJOINT_DIFF_LOOP_BROADCAST",
        "ADJOINT_DIFF_DEAD_NAN",
        "ADJOINT_DIFF_MIXED_TENSOR_CALLS",
        "ADJOINT_DIFF_BUFFERS",
        "ADJOINT_DIFF_ARRAY_BUFFERS",
        "ADJOINT_DIFF_VALUE_CONSTS",
        "ADJOINT_DIFF_ITER_CHAINS",
        "ADJOINT_DIFF_VALUES",
        "ADJOINT_DIFF_DEBUG_STMTS",
        "ADJOINT_DIFF_VECTOR_RESULTS",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let number = |var: &str, default: u64| -> u64 {
        match env::var(var) {
            Ok(s) => s
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{var} must be a number, not {s:?}")),
            Err(_) => default,
        }
    };
    let seed = number("ADJOINT_DIFF_SEED", 10);
    let count = number("ADJOINT_DIFF_COUNT", 520) as usize;
    // `1` turns a switch on, `0` off; unset, the default below.
    let switch = |var: &str, default: bool| match env::var(var) {
        Ok(v) => v.trim() == "1",
        Err(_) => default,
    };
    let opts = gen::Opts {
        slice_calls: switch("ADJOINT_DIFF_SLICE_CALLS", true),
        tape_consts: switch("ADJOINT_DIFF_TAPE_CONSTS", true),
        tensor_const: switch("ADJOINT_DIFF_TENSOR_CONST", true),
        // A callee's `wrt(..)` that leaves out a float argument is a compile error at
        // the call (the caller cannot see it); on, the set does not compile.
        wrt_calls: switch("ADJOINT_DIFF_WRT_CALLS", false),
        loop_broadcast: switch("ADJOINT_DIFF_LOOP_BROADCAST", true),
        dead_nan: switch("ADJOINT_DIFF_DEAD_NAN", true),
        mixed_tensor_calls: switch("ADJOINT_DIFF_MIXED_TENSOR_CALLS", true),
        buffers: switch("ADJOINT_DIFF_BUFFERS", true),
        array_buffers: switch("ADJOINT_DIFF_ARRAY_BUFFERS", true),
        // The tape leaves a constant `match` arm or tuple element an `f64`; on, the
        // set does not compile.
        value_consts: switch("ADJOINT_DIFF_VALUE_CONSTS", false),
        iter_chains: switch("ADJOINT_DIFF_ITER_CHAINS", true),
        values: switch("ADJOINT_DIFF_VALUES", true),
        debug_stmts: switch("ADJOINT_DIFF_DEBUG_STMTS", true),
        // A vector result takes the one IR only, which does not take every generated
        // body yet: on, the set does not compile.
        vector_results: switch("ADJOINT_DIFF_VECTOR_RESULTS", false),
    };
    let out = env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    let path = Path::new(&out).join("differential_programs.rs");
    let text = gen::generate(seed, count, opts);
    // Rewrite only on change, so that an unchanged set does not rebuild the test.
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&path, text).expect("write the generated programs");
    }
}
