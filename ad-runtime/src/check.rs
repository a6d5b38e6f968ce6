//! Finite-difference checks of gradients and Jacobians.
//!
//! Every check perturbs one input at a time by `±eps` and takes the central
//! difference `(f(x + eps·eᵢ) − f(x − eps·eᵢ)) / 2eps`, whose error is
//! `O(eps²)`. An analytic entry `a` passes against the numeric `n` when
//! `|a − n| ≤ atol + rtol·|n|` (PyTorch's `gradcheck` rule), and a check
//! returns a [`Report`] naming the worst entry either way.
//!
//! ```
//! use ad_runtime::check::{self, Tolerance};
//!
//! // f(x, y) = x²·y, ∇f = (2xy, x²)
//! let f = |x: &[f64]| x[0] * x[0] * x[1];
//! let grad = |x: &[f64]| vec![2.0 * x[0] * x[1], x[0] * x[0]];
//! check::assert_gradcheck(f, grad, &[1.5, -0.5], Tolerance::default());
//!
//! // A wrong gradient is caught, and the report says where.
//! let wrong = |x: &[f64]| vec![2.0 * x[0] * x[1], x[0]];
//! let report = check::gradcheck(f, wrong, &[1.5, -0.5], Tolerance::default()).unwrap_err();
//! assert_eq!(report.worst().unwrap().index, 1);
//! ```

use crate::float::Float;
use crate::tensor::Tensor;
use std::fmt;

/// The finite-difference step and the tolerances of a check.
///
/// The default is PyTorch's `gradcheck`: `eps = 1e-6`, `atol = 1e-5`,
/// `rtol = 1e-3`, meant for `f64`; use [`Tolerance::f32`] for `f32`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// The step of the central difference.
    pub eps: f64,
    /// The absolute tolerance.
    pub atol: f64,
    /// The tolerance relative to the numeric derivative.
    pub rtol: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
        }
    }
}

impl Tolerance {
    /// Settings for `f32` functions: `eps = 1e-3`, `atol = 1e-3`, `rtol = 1e-2`.
    pub fn f32() -> Self {
        Tolerance {
            eps: 1e-3,
            atol: 1e-3,
            rtol: 1e-2,
        }
    }

    /// The same tolerances with step `eps`.
    pub fn eps(self, eps: f64) -> Self {
        Tolerance { eps, ..self }
    }

    /// The same settings with absolute tolerance `atol`.
    pub fn atol(self, atol: f64) -> Self {
        Tolerance { atol, ..self }
    }

    /// The same settings with relative tolerance `rtol`.
    pub fn rtol(self, rtol: f64) -> Self {
        Tolerance { rtol, ..self }
    }

    /// The largest error allowed against the numeric value `numeric`.
    pub fn allowed(&self, numeric: f64) -> f64 {
        self.atol + self.rtol * numeric.abs()
    }
}

/// One compared entry of a gradient.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    /// The entry's position among the inputs, in row-major order.
    pub index: usize,
    /// The value the gradient function gave.
    pub analytic: f64,
    /// The central-difference estimate.
    pub numeric: f64,
    /// `|analytic − numeric|`.
    pub error: f64,
    /// The error the tolerance allows here: `atol + rtol·|numeric|`.
    pub allowed: f64,
}

impl Entry {
    /// Whether the entry is within tolerance (a NaN never is).
    pub fn passed(&self) -> bool {
        self.error <= self.allowed
    }

    /// `error / allowed`, the measure by which entries are ranked.
    fn badness(&self) -> f64 {
        if self.error.is_nan() {
            f64::INFINITY
        } else {
            self.error / self.allowed
        }
    }
}

/// The outcome of a gradient check: every entry, and the worst of them.
///
/// A failed check returns the report as the error; it implements
/// [`std::error::Error`], and its `Display` (also used by `Debug`, so that
/// `unwrap()` prints it) names the worst entry.
#[derive(Clone, PartialEq)]
pub struct Report {
    /// The shape of the input (`[n]` for slices, `[]` for a scalar).
    pub shape: Vec<usize>,
    /// Every entry, in input order.
    pub entries: Vec<Entry>,
    /// How many entries are outside the tolerance.
    pub n_failed: usize,
    /// The settings used.
    pub tolerance: Tolerance,
}

impl Report {
    fn new(shape: &[usize], analytic: &[f64], numeric: &[f64], tolerance: Tolerance) -> Report {
        let entries: Vec<Entry> = analytic
            .iter()
            .zip(numeric)
            .enumerate()
            .map(|(index, (&a, &n))| Entry {
                index,
                analytic: a,
                numeric: n,
                error: (a - n).abs(),
                allowed: tolerance.allowed(n),
            })
            .collect();
        let n_failed = entries.iter().filter(|e| !e.passed()).count();
        Report {
            shape: shape.to_vec(),
            entries,
            n_failed,
            tolerance,
        }
    }

    /// Whether every entry is within tolerance.
    pub fn passed(&self) -> bool {
        self.n_failed == 0
    }

    /// The entry with the largest `error / allowed`; `None` without inputs.
    pub fn worst(&self) -> Option<&Entry> {
        self.entries
            .iter()
            .max_by(|p, q| p.badness().total_cmp(&q.badness()))
    }

    fn into_result(self) -> Result<Report, Report> {
        if self.passed() {
            Ok(self)
        } else {
            Err(self)
        }
    }

    /// The index of flat entry `i` in the input's shape, e.g. `[1, 2]`.
    fn position(&self, i: usize) -> String {
        if self.shape.len() <= 1 {
            return format!("{i}");
        }
        let mut rest = i;
        let mut idx = vec![0; self.shape.len()];
        for (d, &n) in self.shape.iter().enumerate().rev() {
            idx[d] = rest % n.max(1);
            rest /= n.max(1);
        }
        format!("{idx:?} (flat {i})")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "passed" } else { "failed" };
        write!(
            f,
            "gradcheck {verdict}: {} of {} entries outside tolerance",
            self.n_failed,
            self.entries.len()
        )?;
        if let Some(w) = self.worst() {
            write!(
                f,
                "; worst at {}: analytic {:e}, numeric {:e}, error {:e} (allowed {:e})",
                self.position(w.index),
                w.analytic,
                w.numeric,
                w.error,
                w.allowed
            )?;
        }
        let t = &self.tolerance;
        write!(
            f,
            " [eps {:e}, atol {:e}, rtol {:e}]",
            t.eps, t.atol, t.rtol
        )
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Report {}

/// A value that flattens to a list of `T`: what gradient and vector-valued
/// functions may return to a check.
///
/// Implemented for `f32`/`f64` themselves, slices, `Vec`s, arrays, tensors,
/// references to these, and tuples of up to four of them (concatenated, so a
/// `(dx, dy)` gradient tuple works as it is).
pub trait Flat<T: Float> {
    /// Appends the elements in order.
    fn flat_into(&self, out: &mut Vec<T>);

    /// The elements in order.
    fn flat(&self) -> Vec<T> {
        let mut v = Vec::new();
        self.flat_into(&mut v);
        v
    }
}

impl Flat<f32> for f32 {
    fn flat_into(&self, out: &mut Vec<f32>) {
        out.push(*self);
    }
}

impl Flat<f64> for f64 {
    fn flat_into(&self, out: &mut Vec<f64>) {
        out.push(*self);
    }
}

impl<T: Float> Flat<T> for [T] {
    fn flat_into(&self, out: &mut Vec<T>) {
        out.extend_from_slice(self);
    }
}

impl<T: Float> Flat<T> for Vec<T> {
    fn flat_into(&self, out: &mut Vec<T>) {
        out.extend_from_slice(self);
    }
}

impl<T: Float, const N: usize> Flat<T> for [T; N] {
    fn flat_into(&self, out: &mut Vec<T>) {
        out.extend_from_slice(self);
    }
}

impl<T: Float> Flat<T> for Tensor<T> {
    fn flat_into(&self, out: &mut Vec<T>) {
        out.extend_from_slice(self.as_slice());
    }
}

impl<T: Float, X: Flat<T> + ?Sized> Flat<T> for &X {
    fn flat_into(&self, out: &mut Vec<T>) {
        (**self).flat_into(out);
    }
}

macro_rules! flat_tuple {
    ($($name:ident)+) => {
        impl<T: Float, $($name: Flat<T>),+> Flat<T> for ($($name,)+) {
            #[allow(non_snake_case)]
            fn flat_into(&self, out: &mut Vec<T>) {
                let ($($name,)+) = self;
                $($name.flat_into(out);)+
            }
        }
    };
}

flat_tuple!(A B);
flat_tuple!(A B C);
flat_tuple!(A B C D);

/// Central differences of `f` at `x0`, one per input: `∂f/∂xᵢ`.
fn numeric_gradient<T: Float>(f: &impl Fn(&[T]) -> T, x0: &[T], eps: T) -> Vec<f64> {
    let mut x = x0.to_vec();
    let two_eps = Float::to_f64(eps + eps);
    (0..x0.len())
        .map(|i| {
            x[i] = x0[i] + eps;
            let hi = f(&x);
            x[i] = x0[i] - eps;
            let lo = f(&x);
            x[i] = x0[i];
            Float::to_f64(hi - lo) / two_eps
        })
        .collect()
}

#[track_caller]
fn check_len(what: &str, got: usize, want: usize) {
    assert!(
        got == want,
        "{what} has {got} entries, but the input has {want}"
    );
}

/// Checks `grad` (the gradient of the scalar function `f` of a slice) against
/// central differences at `x0`.
///
/// `grad` may return anything [`Flat`]: a `Vec`, an array, a tuple of scalars.
/// Returns the [`Report`] as `Ok` when every entry is within tolerance and as
/// `Err` otherwise.
///
/// # Panics
/// If `grad` returns a different number of entries than `x0` has.
#[track_caller]
pub fn gradcheck<T: Float, G: Flat<T>>(
    f: impl Fn(&[T]) -> T,
    grad: impl Fn(&[T]) -> G,
    x0: &[T],
    tol: Tolerance,
) -> Result<Report, Report> {
    let analytic: Vec<f64> = grad(x0).flat().into_iter().map(Float::to_f64).collect();
    check_len("the gradient", analytic.len(), x0.len());
    let numeric = numeric_gradient(&f, x0, T::from_f64(tol.eps));
    Report::new(&[x0.len()], &analytic, &numeric, tol).into_result()
}

/// [`gradcheck`] that panics with the report when the check fails.
#[track_caller]
pub fn assert_gradcheck<T: Float, G: Flat<T>>(
    f: impl Fn(&[T]) -> T,
    grad: impl Fn(&[T]) -> G,
    x0: &[T],
    tol: Tolerance,
) -> Report {
    match gradcheck(f, grad, x0, tol) {
        Ok(r) => r,
        Err(r) => panic!("{r}"),
    }
}

/// Checks the derivative `df` of a scalar function `f` of one scalar at `x0`.
///
/// ```
/// use ad_runtime::check::{self, Tolerance};
/// check::gradcheck_scalar(|x: f64| x.sin(), |x| x.cos(), 0.3, Tolerance::default()).unwrap();
/// ```
pub fn gradcheck_scalar<T: Float>(
    f: impl Fn(T) -> T,
    df: impl Fn(T) -> T,
    x0: T,
    tol: Tolerance,
) -> Result<Report, Report> {
    let numeric = numeric_gradient(&|x: &[T]| f(x[0]), &[x0], T::from_f64(tol.eps));
    Report::new(&[], &[Float::to_f64(df(x0))], &numeric, tol).into_result()
}

/// [`gradcheck_scalar`] that panics with the report when the check fails.
#[track_caller]
pub fn assert_gradcheck_scalar<T: Float>(
    f: impl Fn(T) -> T,
    df: impl Fn(T) -> T,
    x0: T,
    tol: Tolerance,
) -> Report {
    match gradcheck_scalar(f, df, x0, tol) {
        Ok(r) => r,
        Err(r) => panic!("{r}"),
    }
}

/// Checks the gradient `grad` (a tensor of the input's shape) of a scalar
/// function `f` of a tensor at `x0`. The report names entries by their index
/// in `x0`'s shape.
///
/// ```
/// use ad_runtime::{check::{self, Tolerance}, Tensor};
/// // f(x) = Σ x², ∇f = 2x
/// let x0 = Tensor::from_vec(vec![1.0, -2.0, 0.5, 3.0], &[2, 2]);
/// check::gradcheck_tensor(|x| x.powi(2).sum(), |x| x * 2.0, &x0, Tolerance::default()).unwrap();
/// ```
///
/// # Panics
/// If `grad` returns a tensor of a different number of elements.
#[track_caller]
pub fn gradcheck_tensor<T: Float>(
    f: impl Fn(&Tensor<T>) -> T,
    grad: impl Fn(&Tensor<T>) -> Tensor<T>,
    x0: &Tensor<T>,
    tol: Tolerance,
) -> Result<Report, Report> {
    let shape = x0.shape();
    let analytic: Vec<f64> = grad(x0)
        .as_slice()
        .iter()
        .map(|&v| Float::to_f64(v))
        .collect();
    check_len("the gradient", analytic.len(), x0.len());
    let f_flat = |x: &[T]| f(&Tensor::from_vec(x.to_vec(), shape));
    let numeric = numeric_gradient(&f_flat, x0.as_slice(), T::from_f64(tol.eps));
    Report::new(shape, &analytic, &numeric, tol).into_result()
}

/// [`gradcheck_tensor`] that panics with the report when the check fails.
#[track_caller]
pub fn assert_gradcheck_tensor<T: Float>(
    f: impl Fn(&Tensor<T>) -> T,
    grad: impl Fn(&Tensor<T>) -> Tensor<T>,
    x0: &Tensor<T>,
    tol: Tolerance,
) -> Report {
    match gradcheck_tensor(f, grad, x0, tol) {
        Ok(r) => r,
        Err(r) => panic!("{r}"),
    }
}

/// Checks a vector-Jacobian product: `vjp(x)` must equal `seedᵀ·J(x0)`, the
/// gradient of `x ↦ ⟨seed, f(x)⟩`, for a vector-valued `f` (anything [`Flat`]).
///
/// ```
/// use ad_runtime::check::{self, Tolerance};
/// // f(x) = (x₀x₁, sin x₀); with seed s, sᵀJ = (s₀x₁ + s₁cos x₀, s₀x₀)
/// let s = [2.0, -1.0];
/// let f = |x: &[f64]| vec![x[0] * x[1], x[0].sin()];
/// let vjp = |x: &[f64]| vec![s[0] * x[1] + s[1] * x[0].cos(), s[0] * x[0]];
/// check::vjpcheck(f, vjp, &[0.7, 1.2], &s, Tolerance::default()).unwrap();
/// ```
///
/// # Panics
/// If `seed` and `f`'s output differ in length, or `vjp`'s result and `x0` do.
#[track_caller]
pub fn vjpcheck<T: Float, Y: Flat<T>, G: Flat<T>>(
    f: impl Fn(&[T]) -> Y,
    vjp: impl Fn(&[T]) -> G,
    x0: &[T],
    seed: &[T],
    tol: Tolerance,
) -> Result<Report, Report> {
    check_len("the seed", seed.len(), f(x0).flat().len());
    let inner = |x: &[T]| {
        f(x).flat()
            .iter()
            .zip(seed)
            .fold(T::zero(), |s, (&y, &w)| s + y * w)
    };
    gradcheck(inner, vjp, x0, tol)
}

/// The Jacobian of `f` at `x0` by central differences with step `eps`: a
/// tensor of shape `[n_out, n_in]` whose row `i` is `∇fᵢ`.
///
/// ```
/// use ad_runtime::check;
/// let j = check::jacobian(|x: &[f64]| [x[0] * x[1], x[0] + 2.0 * x[1]], &[3.0, 4.0], 1e-6);
/// assert_eq!(j.shape(), &[2, 2]);
/// let want = [4.0, 3.0, 1.0, 2.0];
/// assert!(j.as_slice().iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-8));
/// ```
pub fn jacobian<T: Float, Y: Flat<T>>(f: impl Fn(&[T]) -> Y, x0: &[T], eps: T) -> Tensor<T> {
    let n_in = x0.len();
    let n_out = f(x0).flat().len();
    // Through `zeros`, so that an `n_out × n_in` that overflows is a clean panic.
    let mut jac = Tensor::<T>::zeros(&[n_out, n_in]).into_vec();
    let mut x = x0.to_vec();
    for i in 0..n_in {
        x[i] = x0[i] + eps;
        let hi = f(&x).flat();
        x[i] = x0[i] - eps;
        let lo = f(&x).flat();
        x[i] = x0[i];
        for (o, (h, l)) in hi.iter().zip(&lo).enumerate() {
            jac[o * n_in + i] = (*h - *l) / (eps + eps);
        }
    }
    Tensor::from_vec(jac, &[n_out, n_in])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_name_the_worst_entry_by_its_index() {
        let x0 = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        // The true gradient of Σ x³ is 3x²; break entry [1, 2].
        let wrong = |x: &Tensor| {
            let mut g = x.powi(2) * 3.0;
            g.as_mut_slice()[5] += 0.5;
            g
        };
        let r =
            gradcheck_tensor(|x| x.powi(3).sum(), wrong, &x0, Tolerance::default()).unwrap_err();
        let w = r.worst().unwrap();
        assert_eq!((w.index, r.n_failed), (5, 1));
        assert!((w.numeric - 108.0).abs() < 1e-4 && w.analytic == 108.5);
        let msg = r.to_string();
        assert!(
            msg.contains("failed") && msg.contains("[1, 2] (flat 5)"),
            "{msg}"
        );
    }

    #[test]
    fn nan_gradients_fail() {
        let r = gradcheck(
            |x: &[f64]| x[0],
            |_| [f64::NAN],
            &[1.0],
            Tolerance::default(),
        );
        assert!(r.is_err());
    }

    #[test]
    fn tuples_and_f32_work() {
        let f = |x: &[f32]| x[0] * x[1].exp();
        let g = |x: &[f32]| (x[1].exp(), x[0] * x[1].exp());
        assert_gradcheck(f, g, &[0.5, 0.25], Tolerance::f32());
        assert_gradcheck_scalar(|x: f32| x * x, |x| 2.0 * x, 3.0, Tolerance::f32());
    }

    #[test]
    #[should_panic(expected = "the gradient has 1 entries, but the input has 2")]
    fn a_gradient_of_the_wrong_length_panics() {
        let _ = gradcheck(
            |x: &[f64]| x[0],
            |_| vec![1.0],
            &[1.0, 2.0],
            Tolerance::default(),
        );
    }
}
