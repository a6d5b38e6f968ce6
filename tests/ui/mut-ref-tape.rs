use adjoint::prelude::*;

// The tape does not see writes through `&mut`.
#[differentiable(tape)]
fn acc(x: f64, s: &mut f64) {
    *s += x * x;
}

fn main() {}
