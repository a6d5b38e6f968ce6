use adjoint::prelude::*;

// A body the static path does not take yet has no second-order companions: the tape
// has none to fall back on.
#[differentiable(order = 2)]
fn needs_tape(x: f64, v: &[f64]) -> f64 {
    let m = v.iter().copied().filter(|e| *e > x).count();
    x * m as f64
}

fn main() {}
