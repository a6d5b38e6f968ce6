use adjoint::prelude::*;

#[differentiable]
fn f(x: f64) -> f64 {
    fn twice(t: f64) -> f64 {
        t * 2.0
    }
    for _ in 0..3 {}
    twice(x)
}

fn main() {}
