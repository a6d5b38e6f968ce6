use adjoint::prelude::*;

#[differentiable]
fn fill(x: f64, out: &mut [f64]) {
    for i in 0..out.len() {
        out[i] = x;
    }
}

// The tape does not see what `fill` writes into `b`.
#[differentiable(tape)]
fn first(x: f64) -> f64 {
    let mut b = vec![0.0; 2];
    fill(x, &mut b);
    b[0]
}

fn main() {}
