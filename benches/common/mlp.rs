//! The two 64×1000×100×10 networks of the tensor tutorials and their gradient
//! computed every way the project measures, shared by `benches/mlp.rs`,
//! `tests/mlp_grads.rs` and `tests/alloc_count.rs` (each includes this file).
//!
//! - tanh network: `loss = mean((tanh(tanh(X W1 + b1) W2 + b2) - Y)²)`,
//!   gradients for `W1, b1, W2, b2`;
//! - ReLU network: `loss = sum(((X W1).clamp(0, ∞) W2 - Y)²)`, gradients for
//!   `W1, W2`.
//!
//! `X` and `Y` are data (no gradient). Per precision (module [`single`] for
//! `f32`, [`double`] for `f64`, the same code) there are: the primal loss; a
//! backward pass written op by op with the tensor operations (`hand`); the same
//! pass with the fused kernels and in-place products (`fused`: what the
//! macro's static emission should produce); and the dynamic tape recording
//! anew on every call (`tape`). `tanh_rows`/`relu_rows` list the gradients
//! by name; the benches and tests iterate them.
#![allow(dead_code)] // each includer uses a different part

use adjoint::{Float, Tensor};

/// N, the batch.
pub const N: usize = 64;
/// D_in, the input width.
pub const D_IN: usize = 1000;
/// H, the hidden width.
pub const H: usize = 100;
/// D_out, the output width.
pub const D_OUT: usize = 10;

/// A normal tensor scaled by `scale`.
fn normal<T: Float>(shape: &[usize], seed: u64, scale: f64) -> Tensor<T> {
    Tensor::randn(shape, seed) * T::from_f64(scale)
}

/// The inputs of the tanh network.
#[derive(Clone, Debug)]
pub struct TanhNet<T: Float> {
    /// The batch, `[N, D_IN]`.
    pub x: Tensor<T>,
    /// The first layer's weights, `[D_IN, H]`.
    pub w1: Tensor<T>,
    /// The first layer's bias, `[H]`.
    pub b1: Tensor<T>,
    /// The second layer's weights, `[H, D_OUT]`.
    pub w2: Tensor<T>,
    /// The second layer's bias, `[D_OUT]`.
    pub b2: Tensor<T>,
    /// The targets, `[N, D_OUT]`, in (-1, 1).
    pub y: Tensor<T>,
}

impl<T: Float> TanhNet<T> {
    /// Seeded inputs; weights scaled by `1/√fan_in` so that no tanh saturates.
    pub fn new(seed: u64) -> Self {
        TanhNet {
            x: normal(&[N, D_IN], seed, 1.0),
            w1: normal(&[D_IN, H], seed + 1, (D_IN as f64).powf(-0.5)),
            b1: normal(&[H], seed + 2, 0.1),
            w2: normal(&[H, D_OUT], seed + 3, (H as f64).powf(-0.5)),
            b2: normal(&[D_OUT], seed + 4, 0.1),
            y: Tensor::rand(&[N, D_OUT], seed + 5) * T::from_f64(1.6) - T::from_f64(0.8),
        }
    }
}

/// The gradient of the tanh network's loss.
#[derive(Clone, Debug)]
pub struct TanhGrads<T: Float> {
    /// d loss / d W1.
    pub w1: Tensor<T>,
    /// d loss / d b1.
    pub b1: Tensor<T>,
    /// d loss / d W2.
    pub w2: Tensor<T>,
    /// d loss / d b2.
    pub b2: Tensor<T>,
}

impl<T: Float> TanhGrads<T> {
    /// The gradients in parameter order, with their names.
    pub fn parts(&self) -> [(&'static str, &Tensor<T>); 4] {
        [
            ("W1", &self.w1),
            ("b1", &self.b1),
            ("W2", &self.w2),
            ("b2", &self.b2),
        ]
    }
}

/// The inputs of the ReLU network.
#[derive(Clone, Debug)]
pub struct ReluNet<T: Float> {
    /// The batch, `[N, D_IN]`.
    pub x: Tensor<T>,
    /// The first layer's weights, `[D_IN, H]`.
    pub w1: Tensor<T>,
    /// The second layer's weights, `[H, D_OUT]`.
    pub w2: Tensor<T>,
    /// The targets, `[N, D_OUT]`.
    pub y: Tensor<T>,
}

impl<T: Float> ReluNet<T> {
    /// Seeded inputs; weights scaled by `1/√fan_in`.
    pub fn new(seed: u64) -> Self {
        ReluNet {
            x: normal(&[N, D_IN], seed, 1.0),
            w1: normal(&[D_IN, H], seed + 1, (D_IN as f64).powf(-0.5)),
            w2: normal(&[H, D_OUT], seed + 2, (H as f64).powf(-0.5)),
            y: normal(&[N, D_OUT], seed + 3, 1.0),
        }
    }
}

/// The gradient of the ReLU network's loss.
#[derive(Clone, Debug)]
pub struct ReluGrads<T: Float> {
    /// d loss / d W1.
    pub w1: Tensor<T>,
    /// d loss / d W2.
    pub w2: Tensor<T>,
}

impl<T: Float> ReluGrads<T> {
    /// The gradients in parameter order, with their names.
    pub fn parts(&self) -> [(&'static str, &Tensor<T>); 2] {
        [("W1", &self.w1), ("W2", &self.w2)]
    }
}

/// A gradient of the tanh network: the loss and its gradient.
pub type TanhGradFn<T> = fn(&TanhNet<T>) -> (T, TanhGrads<T>);
/// A gradient of the ReLU network: the loss and its gradient.
pub type ReluGradFn<T> = fn(&ReluNet<T>) -> (T, ReluGrads<T>);

/// Defines the losses and gradients for one float type, so that the code reads
/// as a user writes it for that type (`1.0 - &h * &h` needs a concrete float).
macro_rules! nets {
    ($(#[$doc:meta])* $module:ident, $float:ident) => {
        $(#[$doc])*
        pub mod $module {
            use super::*;
            use adjoint::kernels::fused;
            use adjoint::tape::Tape;

            /// The float type of this module.
            pub type T = $float;

            // ----- tanh network -------------------------------------------------

            /// (a) The primal loss, as the user writes it.
            pub fn tanh_loss(n: &TanhNet<T>) -> T {
                let h = (n.x.matmul(&n.w1) + &n.b1).tanh();
                let o = (h.matmul(&n.w2) + &n.b2).tanh();
                (&o - &n.y).powi(2).mean()
            }

            /// (b) The backward pass written op by op with the tensor operations.
            pub fn tanh_hand_grad(n: &TanhNet<T>) -> (T, TanhGrads<T>) {
                let h = (n.x.matmul(&n.w1) + &n.b1).tanh();
                let o = (h.matmul(&n.w2) + &n.b2).tanh();
                let diff = &o - &n.y;
                let loss = diff.powi(2).mean();
                // d mean(diff²) / d o = 2 diff / len
                let d_o = &diff * (2.0 / n.y.len() as T);
                // tanh' = 1 - tanh²
                let dz2 = &d_o * &(1.0 - &o * &o);
                let dw2 = h.t().matmul(&dz2);
                let db2 = dz2.sum_axis(0);
                let dh = dz2.matmul(&n.w2.t());
                let dz1 = &dh * &(1.0 - &h * &h);
                let dw1 = n.x.t().matmul(&dz1);
                let db1 = dz1.sum_axis(0);
                (loss, TanhGrads { w1: dw1, b1: db1, w2: dw2, b2: db2 })
            }

            /// (c) The same backward pass fused: one pass per elementwise chain,
            /// in place where a buffer dies, products reading transposes in place.
            /// This is what the static emission of `#[differentiable]` aims at.
            pub fn tanh_fused_grad(n: &TanhNet<T>) -> (T, TanhGrads<T>) {
                let tanh_bias = |z: T, b: T| (z + b).tanh();
                let h = fused::map2_broadcast_inplace(n.x.matmul(&n.w1), &n.b1, tanh_bias);
                let o = fused::map2_broadcast_inplace(h.matmul(&n.w2), &n.b2, tanh_bias);
                let len = n.y.len() as T;
                let loss = fused::sum2(&o, &n.y, |o, y| (o - y) * (o - y)) / len;
                // dz2 = 2 (o - y) / len · (1 - o²), in o's buffer.
                let scale = 2.0 / len;
                let dz2 = fused::map2_inplace(o, &n.y, |o, y| scale * (o - y) * (1.0 - o * o));
                let dw2 = h.t_matmul(&dz2);
                let db2 = fused::map1_sum_to(&dz2, |g| g, n.b2.shape());
                let dh = dz2.matmul_t(&n.w2);
                // dz1 = dh (1 - h²), in dh's buffer.
                let dz1 = fused::map2_inplace(dh, &h, |g, h| g * (1.0 - h * h));
                let dw1 = n.x.t_matmul(&dz1);
                let db1 = fused::map1_sum_to(&dz1, |g| g, n.b1.shape());
                (loss, TanhGrads { w1: dw1, b1: db1, w2: dw2, b2: db2 })
            }

            /// (d) The dynamic tape, recording anew on every call.
            pub fn tanh_tape_grad(n: &TanhNet<T>) -> (T, TanhGrads<T>) {
                let tape = Tape::<T>::new();
                let x = tape.constant_tensor(n.x.clone());
                let w1 = tape.tensor(n.w1.clone());
                let b1 = tape.tensor(n.b1.clone());
                let w2 = tape.tensor(n.w2.clone());
                let b2 = tape.tensor(n.b2.clone());
                let h = (x.matmul(w1) + b1).tanh();
                let o = (h.matmul(w2) + b2).tanh();
                let loss = (o - &n.y).powi(2).mean();
                loss.backward();
                let grads = TanhGrads {
                    w1: w1.grad_tensor(),
                    b1: b1.grad_tensor(),
                    w2: w2.grad_tensor(),
                    b2: b2.grad_tensor(),
                };
                (loss.item(), grads)
            }

            /// (e) The loss as a `#[differentiable]` function: the macro emits
            /// its gradient, `tanh_loss_static_grad`, at compile time.
            #[adjoint::differentiable(wrt(w1, b1, w2, b2))]
            pub fn tanh_loss_static(
                x: &Tensor<$float>,
                w1: &Tensor<$float>,
                b1: &Tensor<$float>,
                w2: &Tensor<$float>,
                b2: &Tensor<$float>,
                y: &Tensor<$float>,
            ) -> $float {
                let h = (x.matmul(w1) + b1).tanh();
                let o = (h.matmul(w2) + b2).tanh();
                (&o - y).powi(2).mean()
            }

            /// (e) The static gradient that `#[differentiable]` emits.
            pub fn tanh_static_grad(n: &TanhNet<T>) -> (T, TanhGrads<T>) {
                let (loss, (w1, b1, w2, b2)) =
                    tanh_loss_static_grad(&n.x, &n.w1, &n.b1, &n.w2, &n.b2, &n.y);
                (loss, TanhGrads { w1, b1, w2, b2 })
            }

            /// Every gradient of the tanh network, by name.
            pub fn tanh_rows() -> Vec<(&'static str, TanhGradFn<T>)> {
                vec![
                    ("hand", tanh_hand_grad),
                    ("fused", tanh_fused_grad),
                    ("tape", tanh_tape_grad),
                    ("static", tanh_static_grad),
                ]
            }

            // ----- ReLU network -------------------------------------------------

            /// (a) The primal loss, as the tutorial writes it.
            pub fn relu_loss(n: &ReluNet<T>) -> T {
                let h = n.x.matmul(&n.w1).clamp(0.0, T::INFINITY);
                (h.matmul(&n.w2) - &n.y).powi(2).sum()
            }

            /// (b) The backward pass written op by op with the tensor operations.
            pub fn relu_hand_grad(n: &ReluNet<T>) -> (T, ReluGrads<T>) {
                let a = n.x.matmul(&n.w1);
                let h = a.clamp(0.0, T::INFINITY);
                let p = h.matmul(&n.w2);
                let diff = &p - &n.y;
                let loss = diff.powi(2).sum();
                let dp = &diff * 2.0;
                let dw2 = h.t().matmul(&dp);
                let dh = dp.matmul(&n.w2.t());
                // clamp passes the gradient on its closed interval [0, ∞).
                let mask = a.map(|v| if v >= 0.0 { 1.0 } else { 0.0 });
                let da = &dh * &mask;
                let dw1 = n.x.t().matmul(&da);
                (loss, ReluGrads { w1: dw1, w2: dw2 })
            }

            /// (c) The same backward pass fused. The mask is read from the
            /// activation (`h > 0`), so `a` is not kept; it differs from clamp's
            /// closed interval only where `X W1` is exactly 0.
            pub fn relu_fused_grad(n: &ReluNet<T>) -> (T, ReluGrads<T>) {
                let h = fused::map1_inplace(n.x.matmul(&n.w1), |a| a.max(0.0));
                let p = h.matmul(&n.w2);
                let loss = fused::sum2(&p, &n.y, |p, y| (p - y) * (p - y));
                let dp = fused::map2_inplace(p, &n.y, |p, y| 2.0 * (p - y));
                let dw2 = h.t_matmul(&dp);
                let dh = dp.matmul_t(&n.w2);
                let da = fused::map2_inplace(dh, &h, |g, h| if h > 0.0 { g } else { 0.0 });
                let dw1 = n.x.t_matmul(&da);
                (loss, ReluGrads { w1: dw1, w2: dw2 })
            }

            /// (d) The dynamic tape, recording anew on every call.
            pub fn relu_tape_grad(n: &ReluNet<T>) -> (T, ReluGrads<T>) {
                let tape = Tape::<T>::new();
                let x = tape.constant_tensor(n.x.clone());
                let w1 = tape.tensor(n.w1.clone());
                let w2 = tape.tensor(n.w2.clone());
                let h = x.matmul(w1).clamp(0.0, T::INFINITY);
                let loss = (h.matmul(w2) - &n.y).powi(2).sum();
                loss.backward();
                let grads = ReluGrads { w1: w1.grad_tensor(), w2: w2.grad_tensor() };
                (loss.item(), grads)
            }

            /// (e) The loss as a `#[differentiable]` function.
            #[adjoint::differentiable(wrt(w1, w2))]
            pub fn relu_loss_static(
                x: &Tensor<$float>,
                w1: &Tensor<$float>,
                w2: &Tensor<$float>,
                y: &Tensor<$float>,
            ) -> $float {
                let h = x.matmul(w1).clamp(0.0, $float::INFINITY);
                (h.matmul(w2) - y).powi(2).sum()
            }

            /// (e) The static gradient that `#[differentiable]` emits.
            pub fn relu_static_grad(n: &ReluNet<T>) -> (T, ReluGrads<T>) {
                let (loss, (w1, w2)) = relu_loss_static_grad(&n.x, &n.w1, &n.w2, &n.y);
                (loss, ReluGrads { w1, w2 })
            }

            /// Every gradient of the ReLU network, by name.
            pub fn relu_rows() -> Vec<(&'static str, ReluGradFn<T>)> {
                vec![
                    ("hand", relu_hand_grad),
                    ("fused", relu_fused_grad),
                    ("tape", relu_tape_grad),
                    ("static", relu_static_grad),
                ]
            }
        }
    };
}

nets!(
    /// The networks in `f32`.
    single,
    f32
);
nets!(
    /// The networks in `f64`.
    double,
    f64
);
