use adjoint::prelude::*;

#[differentiable(static)]
fn f(x: f64) -> f64 {
    let mut calls = 0.0;
    let mut double = |t: f64| {
        calls += 1.0;
        t * 2.0
    };
    double(x) + calls
}

fn main() {}
