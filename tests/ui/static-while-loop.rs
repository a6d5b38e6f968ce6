use adjoint::prelude::*;

// Without `static` this function would run on the tape.
#[differentiable(static)]
fn f(a: f64) -> f64 {
    let mut b = 2.0 * a;
    while b.abs() < 1000.0 {
        b = b * 2.0;
    }
    b
}

fn main() {}
