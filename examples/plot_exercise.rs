//! Exercise 5 of tutorial 002: `f(x) = ln(x^2) sin x + 1/x`. The derivative from
//! `#[differentiable]` is drawn solid, and the chain-rule derivative by hand,
//! `f'(x) = 2 sin(x)/x + ln(x^2) cos x - 1/x^2`, dashed over it: the two overlap.
//! Both branches, `[-10, -0.1]` and `[0.1, 10]`, avoid the pole at 0. Writes
//! target/plots/exercise.png and target/plots/exercise.svg.
//!
//! The dependency graph from `x` to `f(x)`: `x -> x^2 -> ln(x^2)`, `x -> sin x`, both
//! into `ln(x^2) · sin x`; `x -> 1/x`; the product and `1/x` into the sum.
//!
//! Run it with `cargo run --example plot_exercise`.

#[path = "common/mod.rs"]
mod common;

use adjoint::prelude::*;
use plotters::style::RGBColor;

/// The exercise's function.
#[differentiable]
pub fn f(x: f64) -> f64 {
    x.powi(2).ln() * x.sin() + 1.0 / x
}

/// The derivative by hand (chain and product rules).
pub fn by_hand(x: f64) -> f64 {
    2.0 * x.sin() / x + x.powi(2).ln() * x.cos() - 1.0 / (x * x)
}

/// `(x, f(x), f'(x) by the macro, f'(x) by hand)` on both branches, with a NaN row at
/// 0 that breaks the curves at the pole.
pub fn samples(n_per_branch: usize) -> Vec<(f64, f64, f64, f64)> {
    let branch = |lo: f64, hi: f64| {
        (0..n_per_branch).map(move |i| lo + (hi - lo) * i as f64 / (n_per_branch - 1) as f64)
    };
    let row = |x: f64| {
        let (y, dy) = f_grad(x);
        (x, y, dy, by_hand(x))
    };
    let mut out: Vec<_> = branch(-10.0, -0.1).map(row).collect();
    out.push((0.0, f64::NAN, f64::NAN, f64::NAN));
    out.extend(branch(0.1, 10.0).map(row));
    out
}

/// The largest relative difference between the two derivatives.
pub fn max_rel_error(samples: &[(f64, f64, f64, f64)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.0 != 0.0)
        .map(|&(_, _, ad, hand)| (ad - hand).abs() / hand.abs().max(1.0))
        .fold(0.0, f64::max)
}

fn main() {
    let s = samples(500);
    println!(
        "max relative difference, autodiff vs by hand, on [-10, -0.1] and [0.1, 10]: {:e}",
        max_rel_error(&s)
    );
    for x in [0.5, 1.0, 2.0, 5.0] {
        let (_, d) = f_grad(x);
        println!("f'({x}) = {d:.12} (by hand {:.12})", by_hand(x));
    }
    let chart = common::Chart {
        title: "f(x) = ln(x²) sin x + 1/x: autodiff f' (solid) over f' by hand (dashed)".into(),
        x_label: "x".into(),
        y_label: "y".into(),
        y_range: Some((-12.0, 12.0)),
        series: vec![
            common::Series::solid(
                "f(x)",
                s.iter().map(|p| (p.0, p.1)).collect(),
                RGBColor(31, 119, 180),
            ),
            common::Series::solid(
                "f'(x) by #[differentiable]",
                s.iter().map(|p| (p.0, p.2)).collect(),
                RGBColor(214, 39, 40),
            ),
            common::Series::dashed(
                "f'(x) by hand",
                s.iter().map(|p| (p.0, p.3)).collect(),
                RGBColor(20, 20, 20),
            ),
        ],
    };
    match chart.write("exercise") {
        Ok([png, svg]) => println!("wrote {} and {}", png.display(), svg.display()),
        Err(e) => eprintln!("could not write the plot: {e}"),
    }
}
