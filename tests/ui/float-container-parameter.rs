use adjoint::prelude::*;

// A parameter of another type is a constant (`idx: &[usize]`, an enum, a struct), but
// not one whose type names a float: its gradient would be lost without a word.
#[differentiable]
fn f(x: f64, w: Option<f64>) -> f64 {
    x * w.unwrap_or(1.0)
}

fn main() {}
