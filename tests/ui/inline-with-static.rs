use adjoint::prelude::*;

fn sq<V: Copy + std::ops::Mul<Output = V>>(v: V) -> V {
    v * v
}

#[differentiable(static, inline(sq))]
fn f(x: f64) -> f64 {
    sq(x)
}

fn main() {}
