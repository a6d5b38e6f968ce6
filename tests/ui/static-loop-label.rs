use adjoint::prelude::*;

// Without `static` this function would run on the tape.
#[differentiable(static)]
fn f(a: f64) -> f64 {
    let mut b = 2.0 * a;
    'outer: while b.abs() < 1000.0 {
        for _ in 0..3 {
            b = b * 2.0;
            if b > 100.0 {
                break 'outer;
            }
        }
    }
    b
}

fn main() {}
