use adjoint::prelude::*;

// `match` on a float: neither path takes it, so the function does not fall back to
// the tape, and the error does not advise it.
#[differentiable]
fn f(x: f64) -> f64 {
    match x {
        0.0 => 1.0,
        _ => x * x,
    }
}

fn main() {}
