use adjoint::prelude::*;

#[differentiable(static)]
fn f(x: f64) -> f64 {
    let y = x * 2.0;
    println!("y = {y}");
    y
}

fn main() {}
