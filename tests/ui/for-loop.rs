use adjoint::prelude::*;

#[differentiable(static)]
fn f(x: f64, n: usize) -> f64 {
    let mut s = 0.0;
    for _ in 0..n {
        s += x;
    }
    s
}

fn main() {}
