//! Writes the random-program tester's programs (`tests/differential.rs`) into
//! `OUT_DIR`. The generator is `tests/differential/gen.rs`; this script only reads the
//! environment and writes its output, so the library itself does not depend on it.
//!
//! - `ADJOINT_DIFF_SEED`: the seed (default 10), a different set of programs each;
//! - `ADJOINT_DIFF_COUNT`: how many programs (default 520);
//! - `ADJOINT_DIFF_SLICE_CALLS=1`: also generate calls of helpers with slice, `Vec`
//!   and array parameters, and array literals (off until the macro takes them);
//! - `ADJOINT_DIFF_TAPE_CONSTS=1`: constant expressions such as `2.0f64.ln()` or
//!   `0.0f64.max(x)`, which the tape expansion does not compile yet;
//! - `ADJOINT_DIFF_TENSOR_CONST=1`: `Tensor::ones(..)` in bodies, which the default
//!   routing sends to a static path that rejects it;
//! - `ADJOINT_DIFF_WRT_CALLS=1`: calls of helpers that have a `wrt(..)` subset, whose
//!   gradients the caller reads shifted (a wrong gradient or a type error);
//! - `ADJOINT_DIFF_LOOP_BROADCAST=1`: tensor `+=`/`-=` with a scalar or broadcast
//!   operand, whose gradient the statement-level static path (bodies with loops or
//!   slices) does not reduce;
//! - `ADJOINT_DIFF_DEAD_NAN=1`: unused locals with a NaN derivative inside branches
//!   and loops, which make the static path's gradient NaN;
//! - `ADJOINT_DIFF_MIXED_TENSOR_CALLS=1`: calls of helpers with a tensor parameter and
//!   scalar parameters, whose scalar gradients the static caller loses.

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
    let switch = |var: &str| env::var(var).is_ok_and(|v| v.trim() == "1");
    let opts = gen::Opts {
        slice_calls: switch("ADJOINT_DIFF_SLICE_CALLS"),
        tape_consts: switch("ADJOINT_DIFF_TAPE_CONSTS"),
        tensor_const: switch("ADJOINT_DIFF_TENSOR_CONST"),
        wrt_calls: switch("ADJOINT_DIFF_WRT_CALLS"),
        loop_broadcast: switch("ADJOINT_DIFF_LOOP_BROADCAST"),
        dead_nan: switch("ADJOINT_DIFF_DEAD_NAN"),
        mixed_tensor_calls: switch("ADJOINT_DIFF_MIXED_TENSOR_CALLS"),
    };
    let out = env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    let path = Path::new(&out).join("differential_programs.rs");
    let text = gen::generate(seed, count, opts);
    // Rewrite only on change, so that an unchanged set does not rebuild the test.
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&path, text).expect("write the generated programs");
    }
}
