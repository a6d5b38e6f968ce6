//! The gradient descent of GradBench's `particle` and `saddle` (the same step
//! and stopping rules for every tool): from x, step to x′ = x − η ∇f(x); keep x′
//! if f(x′) < f(x), else halve η; after ten kept steps in a row, double η. Stop
//! when |∇f(x)| or |x′ − x| is at most 10⁻⁵. Plain Rust: the gradient comes
//! from the caller, by whichever mode of AD it picks.

const TOLERANCE: f64 = 1e-5;

fn norm<const N: usize>(v: &[f64; N]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// The point where descent on `f` from `start` stops.
pub fn argmin<const N: usize>(
    f: impl Fn(&[f64; N]) -> f64,
    grad: impl Fn(&[f64; N]) -> [f64; N],
    start: [f64; N],
) -> [f64; N] {
    let mut x = start;
    let mut fx = f(&x);
    let mut gx = grad(&x);
    let mut kept = 0;
    let mut eta = 1e-5;
    loop {
        if norm(&gx) <= TOLERANCE {
            return x;
        }
        if kept == 10 {
            eta *= 2.0;
            kept = 0;
            continue;
        }
        let next: [f64; N] = std::array::from_fn(|j| x[j] - eta * gx[j]);
        let step: [f64; N] = std::array::from_fn(|j| next[j] - x[j]);
        if norm(&step) <= TOLERANCE {
            return x;
        }
        let f_next = f(&next);
        if f_next < fx {
            x = next;
            fx = f_next;
            gx = grad(&x);
            kept += 1;
        } else {
            eta /= 2.0;
            kept = 0;
        }
    }
}

/// The point where ascent on `f` from `start` stops: descent on −f.
pub fn argmax<const N: usize>(
    f: impl Fn(&[f64; N]) -> f64,
    grad: impl Fn(&[f64; N]) -> [f64; N],
    start: [f64; N],
) -> [f64; N] {
    argmin(|x| -f(x), |x| grad(x).map(|g| -g), start)
}
