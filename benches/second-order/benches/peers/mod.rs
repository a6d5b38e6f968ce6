//! The peers: the same two functions written once over a number type, and each peer's
//! cheapest route to a JVP and to an HVP along one direction.
//!
//! - num-dual offers forward-mode numbers only. A JVP is one pass of `Dual64`. An HVP
//!   along v by one scalar type needs n passes of `HyperDual64` with ε₁ along v and ε₂
//!   along eⱼ: pass j gives ∂ⱼf and (H v)ⱼ. Its `hessian` (one `Dual2Vec` pass, the full
//!   matrix) is measured on the seed function only: at n = 1000 every operation carries
//!   an n × n matrix. (One pass of `HyperDualVec` with ε₂ of dynamic size does the
//!   same n-fold work per operation, on the heap.)
//! - echidna: a JVP is one pass of its `Dual<f64>`. Its HVP is forward-over-reverse on a
//!   bytecode tape: `echidna::hvp` records and sweeps on every call (the contract of
//!   `_hvp`); `BytecodeTape::hvp_with_buf` replays a tape recorded once, which is valid
//!   here because neither function branches on its input. `echidna::composed_hvp` is
//!   not a row: it records `Dual<BReverse>`, a longer tape, and sweeps it twice.
//!
//! The Dual inputs are written into a buffer kept from call to call, as a user would.

#![allow(dead_code)] // the bench and the test each use part of this

use std::ops::{Add, Div, Mul, Sub};

use echidna::{BReverse, BytecodeTape};
use nalgebra::SVector;
use num_dual::{Dual2SVec64, Dual64, DualNum, HyperDual64};

/// What the two functions need of a number.
pub trait Real:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Add<f64, Output = Self>
    + Sub<f64, Output = Self>
    + Mul<f64, Output = Self>
{
    fn lit(c: f64) -> Self;
    fn sin(self) -> Self;
    fn exp(self) -> Self;
}

macro_rules! real_by_dual_num {
    ($($t:ty),*) => {$(
        impl Real for $t {
            fn lit(c: f64) -> Self {
                <$t>::from(c)
            }
            fn sin(self) -> Self {
                DualNum::sin(&self)
            }
            fn exp(self) -> Self {
                DualNum::exp(&self)
            }
        }
    )*};
}
real_by_dual_num!(Dual64, HyperDual64, Dual2SVec64<2>);

fn scalar_sin<T: echidna::Scalar>(x: T) -> T {
    x.sin()
}

fn scalar_exp<T: echidna::Scalar>(x: T) -> T {
    x.exp()
}

macro_rules! real_by_scalar {
    ($($t:ty),*) => {$(
        impl Real for $t {
            fn lit(c: f64) -> Self {
                <$t as echidna::Scalar>::from_f(c)
            }
            fn sin(self) -> Self {
                scalar_sin(self)
            }
            fn exp(self) -> Self {
                scalar_exp(self)
            }
        }
    )*};
}
real_by_scalar!(echidna::Dual<f64>, BReverse<f64>);

/// The seed function over `T`, as `adjoint_second_order::seed` writes it.
#[inline]
pub fn seed<T: Real>(x1: T, x2: T) -> T {
    (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2
}

/// Rosenbrock over `T`. `a` is xᵢ - 1 where the primal has 1 - xᵢ (a² is the same
/// number): num-dual has no `f64 - Dual`.
#[inline]
pub fn rosenbrock<T: Real>(x: &[T]) -> T {
    let mut s = T::lit(0.0);
    for i in 0..x.len() - 1 {
        let a = x[i] - 1.0;
        let b = x[i + 1] - x[i] * x[i];
        s = s + a * a + b * 100.0 * b;
    }
    s
}

// num-dual

pub fn num_dual_seed_jvp(x1: f64, x2: f64, dx1: f64, dx2: f64) -> (f64, f64) {
    let r = seed(Dual64::new(x1, dx1), Dual64::new(x2, dx2));
    (r.re, r.eps)
}

pub fn num_dual_rosenbrock_jvp(x: &[f64], dx: &[f64], buf: &mut Vec<Dual64>) -> (f64, f64) {
    buf.clear();
    buf.extend(x.iter().zip(dx).map(|(&xi, &di)| Dual64::new(xi, di)));
    let r = rosenbrock(buf);
    (r.re, r.eps)
}

/// Two `HyperDual64` passes, ε₁ along v, ε₂ along e₁ then e₂.
pub fn num_dual_seed_hvp(x1: f64, x2: f64, v1: f64, v2: f64) -> (f64, (f64, f64), (f64, f64)) {
    let a = seed(
        HyperDual64::new(x1, v1, 1.0, 0.0),
        HyperDual64::new(x2, v2, 0.0, 0.0),
    );
    let b = seed(
        HyperDual64::new(x1, v1, 0.0, 0.0),
        HyperDual64::new(x2, v2, 1.0, 0.0),
    );
    (a.re, (a.eps2, b.eps2), (a.eps1eps2, b.eps1eps2))
}

/// `num_dual::hessian` (the full 2 × 2 matrix), then H·v.
pub fn num_dual_seed_hessian_hvp(
    x1: f64,
    x2: f64,
    v1: f64,
    v2: f64,
) -> (f64, (f64, f64), (f64, f64)) {
    let (f, g, h) = num_dual::hessian(
        |x: SVector<Dual2SVec64<2>, 2>| seed(x[0], x[1]),
        &SVector::from([x1, x2]),
    );
    let hv = h * SVector::from([v1, v2]);
    (f, (g[0], g[1]), (hv[0], hv[1]))
}

/// n passes of `HyperDual64`: pass j has ε₁ along v and ε₂ along eⱼ.
pub fn num_dual_rosenbrock_hvp(
    x: &[f64],
    v: &[f64],
    buf: &mut Vec<HyperDual64>,
) -> (f64, Vec<f64>, Vec<f64>) {
    let n = x.len();
    buf.clear();
    buf.extend(
        x.iter()
            .zip(v)
            .map(|(&xi, &vi)| HyperDual64::new(xi, vi, 0.0, 0.0)),
    );
    let mut f = 0.0;
    let mut g = vec![0.0; n];
    let mut hv = vec![0.0; n];
    for j in 0..n {
        buf[j].eps2 = 1.0;
        let r = rosenbrock(buf);
        buf[j].eps2 = 0.0;
        f = r.re;
        g[j] = r.eps2;
        hv[j] = r.eps1eps2;
    }
    (f, g, hv)
}

// echidna

pub fn echidna_seed_jvp(x1: f64, x2: f64, dx1: f64, dx2: f64) -> (f64, f64) {
    let r = seed(echidna::Dual::new(x1, dx1), echidna::Dual::new(x2, dx2));
    (r.re, r.eps)
}

pub fn echidna_rosenbrock_jvp(
    x: &[f64],
    dx: &[f64],
    buf: &mut Vec<echidna::Dual<f64>>,
) -> (f64, f64) {
    buf.clear();
    buf.extend(
        x.iter()
            .zip(dx)
            .map(|(&xi, &di)| echidna::Dual::new(xi, di)),
    );
    let r = rosenbrock(buf);
    (r.re, r.eps)
}

/// Records and sweeps: `echidna::hvp`. It returns no value.
pub fn echidna_seed_hvp(x1: f64, x2: f64, v1: f64, v2: f64) -> ((f64, f64), (f64, f64)) {
    let (g, hv) = echidna::hvp(|x| seed(x[0], x[1]), &[x1, x2], &[v1, v2]);
    ((g[0], g[1]), (hv[0], hv[1]))
}

/// Records and sweeps: `echidna::hvp`. It returns no value.
pub fn echidna_rosenbrock_hvp(x: &[f64], v: &[f64]) -> (Vec<f64>, Vec<f64>) {
    echidna::hvp(rosenbrock, x, v)
}

/// Records `f` at `x` once, for [`Replay`].
pub fn echidna_record(x: &[f64], f: impl FnOnce(&[BReverse<f64>]) -> BReverse<f64>) -> Replay {
    let (tape, _) = echidna::record(f, x);
    Replay {
        tape,
        values: Vec::new(),
        adjoints: Vec::new(),
    }
}

/// A recorded tape and the buffers of its sweeps.
pub struct Replay {
    tape: BytecodeTape<f64>,
    values: Vec<echidna::Dual<f64>>,
    adjoints: Vec<echidna::Dual<f64>>,
}

impl Replay {
    /// The gradient and H·v at `x` along `v`, by replaying the tape.
    pub fn hvp(&mut self, x: &[f64], v: &[f64]) -> (Vec<f64>, Vec<f64>) {
        self.tape
            .hvp_with_buf(x, v, &mut self.values, &mut self.adjoints)
    }
}
