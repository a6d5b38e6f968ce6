use adjoint::prelude::*;

#[differentiable(order = 3)]
fn third(x: f64) -> f64 {
    x * x * x
}

#[differentiable(tape, order = 2)]
fn on_tape(x: f64) -> f64 {
    x.sin()
}

#[differentiable(order = 2)]
fn vector(x: &[f64]) -> Vec<f64> {
    vec![x[0] * x[1]]
}

fn main() {}

#[differentiable(tape, order = 2)]
fn tape_vector(x: &[f64]) -> Vec<f64> {
    vec![x[0] * x[1]]
}
