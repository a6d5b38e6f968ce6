use adjoint::prelude::*;

macro_rules! twice {
    ($e:expr) => {
        2.0 * $e
    };
}

#[differentiable(static)]
fn f(x: f64) -> f64 {
    let y = x * 2.0;
    twice!(y)
}

fn main() {}
