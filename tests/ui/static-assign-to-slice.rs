use adjoint::prelude::*;

#[differentiable(static)]
fn f(mut x: Vec<f64>) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        x[i] = 2.0 * x[i];
        s += x[i];
    }
    s
}

fn main() {}
