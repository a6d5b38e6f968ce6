//! The gradients of the two 64×1000×100×10 networks agree however they are
//! computed (op by op, fused, tape), and with central finite differences.

#[path = "../benches/common/mlp.rs"]
mod mlp;

use adjoint::check::{self, Tolerance};
use adjoint::{Float, Tensor};
use mlp::{double, single, ReluNet, TanhNet};

/// The largest elementwise difference, relative to the largest magnitude.
fn rel_diff<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let scale = b
        .as_slice()
        .iter()
        .fold(0.0f64, |m, v| m.max(Float::to_f64(*v).abs()));
    let diff = a
        .as_slice()
        .iter()
        .zip(b.as_slice())
        .fold(0.0f64, |m, (x, y)| {
            m.max((Float::to_f64(*x) - Float::to_f64(*y)).abs())
        });
    diff / (1.0 + scale)
}

/// A gradient's name, its loss, and its named parts.
type Computed<T> = (&'static str, T, Vec<(&'static str, Tensor<T>)>);

#[track_caller]
fn agree<T: Float>(net: &str, rows: &[Computed<T>], loss: T, tol: f64) {
    let (ref_name, _, ref_grads) = &rows[0];
    for (name, l, grads) in rows {
        let (l, loss) = (Float::to_f64(*l), Float::to_f64(loss));
        let dl = (l - loss).abs() / (1.0 + loss.abs());
        assert!(
            dl <= tol,
            "{net} {}: {name}'s loss is off by {dl:e}",
            T::NAME
        );
        for ((param, g), (_, r)) in grads.iter().zip(ref_grads) {
            let d = rel_diff(g, r);
            assert!(
                d <= tol,
                "{net} {}: d/d{param} of {name} and {ref_name} differ by {d:e}",
                T::NAME
            );
        }
    }
}

#[test]
fn tanh_net_gradients_agree_f64() {
    let n = TanhNet::<f64>::new(7);
    let rows: Vec<_> = double::tanh_rows()
        .into_iter()
        .map(|(name, f)| {
            let (l, g) = f(&n);
            let parts = g.parts().map(|(p, t)| (p, t.clone())).to_vec();
            (name, l, parts)
        })
        .collect();
    assert!(rows.len() >= 3);
    agree("tanh", &rows, double::tanh_loss(&n), 1e-9);
}

#[test]
fn relu_net_gradients_agree_f64() {
    let n = ReluNet::<f64>::new(11);
    let rows: Vec<_> = double::relu_rows()
        .into_iter()
        .map(|(name, f)| {
            let (l, g) = f(&n);
            let parts = g.parts().map(|(p, t)| (p, t.clone())).to_vec();
            (name, l, parts)
        })
        .collect();
    assert!(rows.len() >= 3);
    agree("relu", &rows, double::relu_loss(&n), 1e-9);
}

#[test]
fn f32_networks_track_their_f64_twins() {
    let (n32, n64) = (TanhNet::<f32>::new(7), TanhNet::<f64>::new(7));
    let want = double::tanh_fused_grad(&n64).1;
    for (name, f) in single::tanh_rows() {
        let got = f(&n32).1;
        for ((p, g), (_, w)) in got.parts().iter().zip(want.parts()) {
            let g64 = Tensor::from_vec(g.as_slice().iter().map(|&v| v as f64).collect(), g.shape());
            let d = rel_diff(&g64, w);
            assert!(d < 1e-4, "tanh f32 {name}: d/d{p} is off by {d:e}");
        }
    }
    let (n32, n64) = (ReluNet::<f32>::new(11), ReluNet::<f64>::new(11));
    let want = double::relu_fused_grad(&n64).1;
    for (name, f) in single::relu_rows() {
        let got = f(&n32).1;
        for ((p, g), (_, w)) in got.parts().iter().zip(want.parts()) {
            let g64 = Tensor::from_vec(g.as_slice().iter().map(|&v| v as f64).collect(), g.shape());
            let d = rel_diff(&g64, w);
            assert!(d < 1e-4, "relu f32 {name}: d/d{p} is off by {d:e}");
        }
    }
}

/// Entries of each parameter that the finite-difference checks perturb.
const PICKS: [usize; 3] = [0, 37, 999];

/// Flat indices `PICKS` (wrapped into range) of a tensor of `len` elements.
fn picks(len: usize) -> impl Iterator<Item = usize> {
    PICKS.iter().map(move |&i| (i * 7919) % len)
}

#[test]
fn tanh_net_gradient_matches_finite_differences() {
    let net = TanhNet::<f64>::new(3);
    // The perturbed entries: (parameter, flat index) pairs.
    let sizes = [net.w1.len(), net.b1.len(), net.w2.len(), net.b2.len()];
    let entries: Vec<(usize, usize)> = (0..4)
        .flat_map(|p| picks(sizes[p]).map(move |i| (p, i)))
        .collect();
    let with = |x: &[f64]| {
        let mut n = net.clone();
        for (&(p, i), &v) in entries.iter().zip(x) {
            let t = [&mut n.w1, &mut n.b1, &mut n.w2, &mut n.b2][p].as_mut_slice();
            t[i] = v;
        }
        n
    };
    let x0: Vec<f64> = entries
        .iter()
        .map(|&(p, i)| [&net.w1, &net.b1, &net.w2, &net.b2][p].as_slice()[i])
        .collect();
    for (name, grad) in double::tanh_rows() {
        let g = |x: &[f64]| {
            let g = grad(&with(x)).1;
            let parts = [&g.w1, &g.b1, &g.w2, &g.b2];
            entries
                .iter()
                .map(|&(p, i)| parts[p].as_slice()[i])
                .collect::<Vec<_>>()
        };
        let report = check::gradcheck(
            |x| double::tanh_loss(&with(x)),
            g,
            &x0,
            Tolerance::default().atol(1e-7).rtol(1e-5),
        );
        assert!(report.is_ok(), "tanh {name}: {}", report.unwrap_err());
    }
}

#[test]
fn relu_net_gradient_matches_finite_differences() {
    let net = ReluNet::<f64>::new(5);
    let sizes = [net.w1.len(), net.w2.len()];
    let entries: Vec<(usize, usize)> = (0..2)
        .flat_map(|p| picks(sizes[p]).map(move |i| (p, i)))
        .collect();
    let with = |x: &[f64]| {
        let mut n = net.clone();
        for (&(p, i), &v) in entries.iter().zip(x) {
            [&mut n.w1, &mut n.w2][p].as_mut_slice()[i] = v;
        }
        n
    };
    let x0: Vec<f64> = entries
        .iter()
        .map(|&(p, i)| [&net.w1, &net.w2][p].as_slice()[i])
        .collect();
    for (name, grad) in double::relu_rows() {
        let g = |x: &[f64]| {
            let g = grad(&with(x)).1;
            entries
                .iter()
                .map(|&(p, i)| [&g.w1, &g.w2][p].as_slice()[i])
                .collect::<Vec<_>>()
        };
        // The loss is a sum over 640 squares, so its scale is ~10³.
        let report = check::gradcheck(
            |x| double::relu_loss(&with(x)),
            g,
            &x0,
            Tolerance::default().atol(1e-5).rtol(1e-5),
        );
        assert!(report.is_ok(), "relu {name}: {}", report.unwrap_err());
    }
}
