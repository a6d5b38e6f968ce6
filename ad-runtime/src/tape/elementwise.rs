//! Elementwise tensor operations on the tape: forward values fused with their
//! local partials (from the rule table), and the broadcasting reduction that
//! brings an output-shaped gradient back to an input's shape.

use super::graph::Saved;
use super::rules::{self, Op};
use crate::error::ShapeError;
use crate::float::Float;
use crate::shape::{broadcast_shapes, Shape, MAX_DIMS};
use crate::tensor::Tensor;

/// One operand of a binary elementwise operation.
#[derive(Clone, Copy)]
pub(crate) enum Arg<'a, T> {
    Scalar(T),
    Tensor(&'a Tensor<T>),
}

impl<'a, T: Float> Arg<'a, T> {
    fn dims(&self) -> &[usize] {
        match self {
            Arg::Scalar(_) => &[],
            Arg::Tensor(t) => t.shape(),
        }
    }
}

/// The strides with which an input of shape `inp` is read at each index of
/// the broadcast shape `out` (0 along broadcast dimensions).
fn bcast_strides(out: &[usize], inp: &[usize]) -> [usize; MAX_DIMS] {
    let off = out.len() - inp.len();
    let mut st = [0usize; MAX_DIMS];
    let mut s = 1;
    for i in (0..inp.len()).rev() {
        if inp[i] != 1 {
            st[off + i] = s;
        }
        s *= inp[i];
    }
    st
}

/// Calls `f(k, ia, ib)` for every row-major index `k` of `out`, with the
/// indices `ia`, `ib` of the elements of two inputs broadcast to it.
fn for_each2(
    out: &[usize],
    sa: &[usize; MAX_DIMS],
    sb: &[usize; MAX_DIMS],
    mut f: impl FnMut(usize, usize, usize),
) {
    let n = out.len();
    if n == 0 {
        f(0, 0, 0);
        return;
    }
    let total = numel(out);
    if total == 0 {
        return;
    }
    let last = n - 1;
    let (la, lb, w) = (sa[last], sb[last], out[last]);
    let mut idx = [0usize; MAX_DIMS];
    let (mut ia, mut ib, mut k) = (0usize, 0usize, 0usize);
    loop {
        for j in 0..w {
            f(k + j, ia + j * la, ib + j * lb);
        }
        k += w;
        if k >= total {
            return;
        }
        let mut d = last;
        loop {
            d -= 1;
            idx[d] += 1;
            ia += sa[d];
            ib += sb[d];
            if idx[d] < out[d] {
                break;
            }
            ia -= sa[d] * out[d];
            ib -= sb[d] * out[d];
            idx[d] = 0;
        }
    }
}

/// A one-input elementwise operation on a tensor: the value, and the partial
/// `dy/dx` per element if `need` is set.
pub(crate) fn unary<T: Float>(
    op: Op,
    x: &Tensor<T>,
    p: [T; 2],
    need: bool,
) -> (Tensor<T>, Saved<T>) {
    let shape = Shape::new(x.shape());
    // A piecewise-constant operation saves no partial: it gives its input nothing.
    if !need || rules::is_flat(op) {
        let data = x
            .as_slice()
            .iter()
            .map(|&v| rules::unary(op, v, p).0)
            .collect();
        return (Tensor::from_parts(data, shape), Saved::None);
    }
    if op == Op::Neg {
        let data = x.as_slice().iter().map(|&v| -v).collect();
        return (Tensor::from_parts(data, shape), Saved::Const(-T::one()));
    }
    let mut y = Vec::with_capacity(x.len());
    let mut d = Vec::with_capacity(x.len());
    for &v in x.as_slice() {
        let (yv, dv) = rules::unary(op, v, p);
        y.push(yv);
        d.push(dv);
    }
    (
        Tensor::from_parts(y, shape),
        Saved::Tensor(Tensor::from_parts(d, shape)),
    )
}

/// A two-input elementwise operation with NumPy broadcasting: the value and
/// the partials with respect to each input (output-shaped), as requested.
pub(crate) fn binary<T: Float>(
    op: Op,
    a: Arg<'_, T>,
    b: Arg<'_, T>,
    need: [bool; 2],
) -> Result<(Tensor<T>, [Saved<T>; 2]), ShapeError> {
    let out = broadcast_shapes(op.forward_name(), a.dims(), b.dims())?;
    let n = out.numel();
    let sa = bcast_strides(out.dims(), a.dims());
    let sb = bcast_strides(out.dims(), b.dims());
    let get = |arg: &Arg<'_, T>, i: usize| match arg {
        Arg::Scalar(x) => *x,
        Arg::Tensor(t) => t.as_slice()[i],
    };
    let mut y = vec![T::zero(); n];
    // Additions and subtractions have constant partials: store no tensor.
    let const_partials = matches!(op, Op::Add | Op::Sub);
    let want_a = need[0] && !const_partials;
    let want_b = need[1] && !const_partials;
    let mut pa = if want_a {
        vec![T::zero(); n]
    } else {
        Vec::new()
    };
    let mut pb = if want_b {
        vec![T::zero(); n]
    } else {
        Vec::new()
    };
    let same = a.dims() == out.dims() && b.dims() == out.dims();
    if same {
        if let (Arg::Tensor(ta), Arg::Tensor(tb)) = (a, b) {
            let (xa, xb) = (ta.as_slice(), tb.as_slice());
            for k in 0..n {
                let (v, d0, d1) = rules::binary(op, xa[k], xb[k]);
                y[k] = v;
                if want_a {
                    pa[k] = d0;
                }
                if want_b {
                    pb[k] = d1;
                }
            }
        }
    } else {
        for_each2(out.dims(), &sa, &sb, |k, ia, ib| {
            let (v, d0, d1) = rules::binary(op, get(&a, ia), get(&b, ib));
            y[k] = v;
            if want_a {
                pa[k] = d0;
            }
            if want_b {
                pb[k] = d1;
            }
        });
    }
    let saved = |need: bool, want: bool, p: Vec<T>, c: T| {
        if !need {
            Saved::None
        } else if !want {
            Saved::Const(c)
        } else {
            Saved::Tensor(Tensor::from_parts(p, out))
        }
    };
    let cb = if op == Op::Sub { -T::one() } else { T::one() };
    Ok((
        Tensor::from_parts(y, out),
        [
            saved(need[0], want_a, pa, T::one()),
            saved(need[1], want_b, pb, cb),
        ],
    ))
}

/// The gradient an input of shape `inp` receives from an elementwise output of
/// shape `out` with gradient `g` and local partial `p`: `g ⊙ p` summed over
/// the dimensions the input was broadcast along. An element of `g` that is 0
/// contributes exactly 0 even where its partial is infinite (`rules::scale`);
/// the constant partials (±1 of `+`, `-`, negation) need no guard.
pub(crate) fn reduce_grad<T: Float>(inp: &[usize], g: &Tensor<T>, p: &Saved<T>) -> Tensor<T> {
    let out = g.shape();
    let gs = g.as_slice();
    let part = |k: usize| match p {
        Saved::None => T::zero(),
        Saved::Const(c) => *c,
        Saved::Tensor(t) => t.as_slice()[k],
    };
    let term = |k: usize| match p {
        Saved::Tensor(_) => rules::scale(gs[k], part(k)),
        _ => gs[k] * part(k),
    };
    if inp == out {
        let data = match p {
            Saved::Const(c) if *c == T::one() => gs.to_vec(),
            Saved::Const(c) => gs.iter().map(|&v| v * *c).collect(),
            Saved::Tensor(t) => gs
                .iter()
                .zip(t.as_slice())
                .map(|(&v, &d)| rules::scale(v, d))
                .collect(),
            Saved::None => vec![T::zero(); gs.len()],
        };
        return Tensor::from_parts(data, Shape::new(inp));
    }
    let count = numel(inp);
    let mut acc = vec![T::zero(); count];
    if inp.is_empty() || count == 1 {
        let mut s = T::zero();
        for k in 0..gs.len() {
            s += term(k);
        }
        acc[0] = s;
    } else {
        let si = bcast_strides(out, inp);
        let zero = [0usize; MAX_DIMS];
        for_each2(out, &si, &zero, |k, i, _| acc[i] += term(k));
    }
    Tensor::from_parts(acc, Shape::new(inp))
}

/// `g` (of a shape `inp` broadcasts to) expanded to shape `out`.
pub(crate) fn expand<T: Float>(g: &Tensor<T>, out: &[usize]) -> Tensor<T> {
    let si = bcast_strides(out, g.shape());
    let zero = [0usize; MAX_DIMS];
    let n = numel(out);
    let mut data = vec![T::zero(); n];
    let gs = g.as_slice();
    for_each2(out, &si, &zero, |k, i, _| data[k] = gs[i]);
    Tensor::from_parts(data, Shape::new(out))
}

/// `acc += x`, element by element (same shapes).
pub(crate) fn add_assign<T: Float>(acc: &mut Tensor<T>, x: &Tensor<T>) {
    debug_assert_eq!(acc.shape(), x.shape());
    for (a, &b) in acc.as_mut_slice().iter_mut().zip(x.as_slice()) {
        *a += b;
    }
}

/// The number of elements of a shape the tape already holds a tensor of (so the count
/// fits `usize`, checked when that tensor was made): 0 as soon as an extent is 0,
/// without multiplying the others, which may overflow (`[usize::MAX, usize::MAX, 0]`).
pub(crate) fn numel(dims: &[usize]) -> usize {
    if dims.contains(&0) {
        0
    } else {
        dims.iter().product()
    }
}
