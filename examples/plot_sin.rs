//! Exercise 2 of tutorial 002: plot `sin` and its derivative, the derivative computed
//! by automatic differentiation rather than from `sin' = cos`. Writes
//! target/plots/sin.png and target/plots/sin.svg.
//!
//! Run it with `cargo run --example plot_sin`.

#[path = "common/mod.rs"]
mod common;

use adjoint::prelude::*;
use plotters::style::RGBColor;
use std::f64::consts::PI;

/// The function whose derivative the macro builds.
#[differentiable]
pub fn sine(x: f64) -> f64 {
    x.sin()
}

/// `n` points of `(x, sin x, d sin x / dx)` evenly over `[-2π, 2π]`.
pub fn samples(n: usize) -> Vec<(f64, f64, f64)> {
    (0..n)
        .map(|i| {
            let x = -2.0 * PI + 4.0 * PI * i as f64 / (n - 1) as f64;
            let (y, dy) = sine_grad(x);
            (x, y, dy)
        })
        .collect()
}

/// The largest `|d sin x / dx − cos x|` over the samples (to show that the macro's
/// derivative is `cos`, which it was never told).
pub fn max_error(samples: &[(f64, f64, f64)]) -> f64 {
    samples
        .iter()
        .map(|&(x, _, dy)| (dy - x.cos()).abs())
        .fold(0.0, f64::max)
}

fn main() {
    let s = samples(801);
    println!(
        "max |sine_grad(x) - cos(x)| over [-2π, 2π]: {:e}",
        max_error(&s)
    );
    let chart = common::Chart {
        title: "f(x) = sin x and its derivative by #[differentiable]".into(),
        x_label: "x".into(),
        y_label: "y".into(),
        y_range: Some((-1.25, 1.25)),
        series: vec![
            common::Series::solid(
                "f(x) = sin x",
                s.iter().map(|p| (p.0, p.1)).collect(),
                RGBColor(31, 119, 180),
            ),
            common::Series::solid(
                "f'(x) from sine_grad",
                s.iter().map(|p| (p.0, p.2)).collect(),
                RGBColor(214, 39, 40),
            ),
        ],
    };
    match chart.write("sin") {
        Ok([png, svg]) => println!("wrote {} and {}", png.display(), svg.display()),
        Err(e) => eprintln!("could not write the plot: {e}"),
    }
}
