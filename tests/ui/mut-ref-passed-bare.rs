use adjoint::prelude::*;

#[differentiable]
fn fill(x: f64, out: &mut [f64]) {
    for i in 0..out.len() {
        out[i] = x;
    }
}

// A `&mut` parameter passed on without `&mut` written: the call is not seen to write.
#[differentiable]
fn outer(x: f64, out: &mut [f64]) {
    fill(x, out);
}

fn main() {}
