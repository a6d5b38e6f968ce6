//! Robustness of the runtime against every size a shape can name.
//!
//! Random shapes mix small extents, zeros, and huge extents (2^31, 2^32, near
//! `isize::MAX` and `usize::MAX`, and pairs whose product overflows). They go
//! into every constructor, every `try_` operation and its panicking form, the
//! fused kernels, the helpers that `#[differentiable]`'s emitted code calls,
//! and the raw kernels (`MatRef`, `gemm`, `transpose`, `Broadcast`, the axis
//! reductions). A small model below predicts each outcome from the shapes
//! alone, and every call is checked against it:
//!
//! - a `try_` form returns exactly the predicted `Ok` shape or an `Err`, and
//!   never panics;
//! - a panicking form returns the predicted shape, or panics with a message of
//!   its own (naming the operation) and never with an arithmetic overflow,
//!   an out-of-bounds index or an allocator's "capacity overflow";
//! - nothing crashes: a segfault or an abort ends this whole test binary.
//!
//! A tensor the model finds valid but too large to build here (more than
//! [`SMALL`] elements that still fit in memory's address range) is never
//! requested: the test must not allocate gigabytes. Input tensors are real,
//! so they are small, or have a zero extent beside huge ones (`[0, usize::MAX]`
//! is a valid empty tensor), which is where results larger than every operand
//! come from: `[usize::MAX, 0]` summed over axis 1, `[2^32, 0]·[0, 2^32]`.
#![cfg(target_pointer_width = "64")]

use ad_runtime::kernels::emit_support as es;
use ad_runtime::kernels::matmul::{gemm, MatRef};
use ad_runtime::kernels::{elementwise, fused, reduce};
use ad_runtime::{broadcast_shapes, Shape, ShapeError, Tensor};
use proptest::prelude::*;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The most elements a result may have for the test to compute it.
const SMALL: usize = 1 << 12;

/// The most dimensions a tensor may have.
const MAX_DIMS: usize = ad_runtime::MAX_DIMS;

/// Huge extents: around 2^32 (whose squares overflow), near `isize::MAX`
/// (the most bytes a buffer can span) and near `usize::MAX`.
const HUGE: [usize; 12] = [
    1 << 31,
    1 << 32,
    (1 << 32) + 1,
    3 << 40,
    1 << 60,
    1 << 61,
    1 << 62,
    1 << 63,
    isize::MAX as usize,
    usize::MAX / 2 + 1,
    usize::MAX - 1,
    usize::MAX,
];

// ---------------------------------------------------------------------------
// Catching panics quietly, and judging their messages.

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, catching a panic without printing it; any other panic (a failed
/// assertion of the test itself) still prints as usual.
fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                default(info)
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    r.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "<a panic without a message>".into())
    })
}

/// Messages of panics that the runtime's own checks should have prevented.
const UNCLEAN: [&str; 10] = [
    "attempt to ",
    "capacity overflow",
    "index out of bounds",
    "range end index",
    "range start index",
    "slice index starts",
    "out of range for slice",
    "chunk size must be non-zero",
    "called `Option::unwrap()`",
    "called `Result::unwrap()`",
];

#[track_caller]
fn assert_clean(what: &str, msg: &str) {
    assert!(
        !UNCLEAN.iter().any(|u| msg.contains(u)),
        "{what}: panicked with an unchecked failure: {msg}"
    );
}

// ---------------------------------------------------------------------------
// The model.

/// The product of `dims`, or `None` if it overflows; 0 if any extent is 0.
fn count(dims: &[usize]) -> Option<usize> {
    if dims.contains(&0) {
        return Some(0);
    }
    dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// What an operation should do.
#[derive(Clone, Debug, PartialEq)]
enum Want {
    /// Succeed with a result of this shape.
    Ok(Vec<usize>),
    /// Fail: an error from the `try_` form, a panic from the plain one.
    Err,
    /// Valid, but too large for this test to build: not called.
    TooBig,
}

/// The outcome of building a tensor of `dims` with elements of `size` bytes.
fn want_new(dims: &[usize], size: usize) -> Want {
    match count(dims) {
        _ if dims.len() > MAX_DIMS => Want::Err,
        None => Want::Err,
        Some(n) if n > isize::MAX as usize / size => Want::Err,
        Some(n) if n > SMALL => Want::TooBig,
        Some(_) => Want::Ok(dims.to_vec()),
    }
}

/// NumPy's broadcast of two shapes, ignoring sizes.
fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    if n > MAX_DIMS {
        return None;
    }
    let pad = |s: &[usize]| {
        let mut v = vec![1; n - s.len()];
        v.extend_from_slice(s);
        v
    };
    pad(a)
        .iter()
        .zip(&pad(b))
        .map(|(&x, &y)| match (x, y) {
            _ if x == y || y == 1 => Some(x),
            (1, _) => Some(y),
            _ => None,
        })
        .collect()
}

/// The outcome of a broadcast whose result is built.
fn want_broadcast(shapes: &[&[usize]]) -> Want {
    let mut out = shapes[0].to_vec();
    for s in &shapes[1..] {
        match broadcast(&out, s) {
            Some(o) => out = o,
            None => return Want::Err,
        }
    }
    want_new(&out, 8)
}

/// Whether `from` broadcasts to exactly `to` (`broadcast_to`, and in reverse
/// `sum_to_shape`).
fn broadcasts_to(from: &[usize], to: &[usize]) -> bool {
    from.len() <= to.len() && count(to).is_some() && broadcast(from, to).as_deref() == Some(to)
}

/// The shape of `op(a)·op(b)` under `matmul`'s rules, if the shapes fit.
fn product_dims(a: &[usize], ta: bool, b: &[usize], tb: bool) -> Option<Vec<usize>> {
    let (ar, ac) = match *a {
        [r, c] if ta => (c, r),
        [r, c] => (r, c),
        [k] => (1, k),
        _ => return None,
    };
    let (br, bc) = match *b {
        [r, c] if tb => (c, r),
        [r, c] => (r, c),
        [k] => (k, 1),
        _ => return None,
    };
    if ac != br {
        return None;
    }
    Some(match (a.len(), b.len()) {
        (2, 2) => vec![ar, bc],
        (2, _) => vec![ar],
        (_, 2) => vec![bc],
        _ => vec![],
    })
}

/// `dims` without axis `axis`, if there is one.
fn without_axis(dims: &[usize], axis: usize) -> Option<Vec<usize>> {
    (axis < dims.len()).then(|| {
        let mut d = dims.to_vec();
        d.remove(axis);
        d
    })
}

// ---------------------------------------------------------------------------
// Checking outcomes.

/// Checks a `try_` form against the model: never a panic, `Ok` of the
/// predicted shape, or an error naming the operation.
#[track_caller]
fn check_try(what: &str, op: &str, want: &Want, f: impl FnOnce() -> Result<Tensor, ShapeError>) {
    if *want == Want::TooBig {
        return;
    }
    let r = match catch(f) {
        Ok(r) => r,
        Err(msg) => panic!("{what}: a try_ form panicked: {msg}"),
    };
    match (want, r) {
        (Want::Ok(dims), Ok(t)) => {
            assert_eq!(t.shape(), &dims[..], "{what}: shape");
            assert_eq!(t.len(), count(dims).unwrap(), "{what}: length");
        }
        (Want::Err, Err(e)) => {
            assert_eq!(e.op, op, "{what}: the error's operation");
            assert!(!e.reason.is_empty());
        }
        (want, got) => panic!("{what}: wanted {want:?}, got {got:?}"),
    }
}

/// Checks a panicking form against the model: the predicted shape, or a
/// clean panic whose message names `op`.
#[track_caller]
fn check_panics(what: &str, op: &str, want: &Want, f: impl FnOnce() -> Tensor) {
    if *want == Want::TooBig {
        return;
    }
    match (want, catch(f)) {
        (Want::Ok(dims), Ok(t)) => {
            assert_eq!(t.shape(), &dims[..], "{what}: shape");
            assert_eq!(t.len(), count(dims).unwrap(), "{what}: length");
        }
        (Want::Err, Err(msg)) => {
            assert_clean(what, &msg);
            assert!(
                msg.contains(op),
                "{what}: the message does not name {op}: {msg}"
            );
        }
        (want, Ok(t)) => panic!("{what}: wanted {want:?}, got shape {:?}", t.shape()),
        (want, Err(msg)) => panic!("{what}: wanted {want:?}, panicked: {msg}"),
    }
}

/// Checks an operation the model does not predict in detail: it returns, or
/// panics cleanly.
#[track_caller]
fn check_clean<R>(what: &str, f: impl FnOnce() -> R) {
    if let Err(msg) = catch(f) {
        assert_clean(what, &msg);
    }
}

// ---------------------------------------------------------------------------
// Strategies.

/// One extent: mostly small, sometimes 0, sometimes huge.
fn extent() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 1usize..4,
        2 => Just(0usize),
        3 => prop::sample::select(HUGE.to_vec()),
    ]
}

/// Any shape, up to one dimension more than a tensor can have.
fn any_dims() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(extent(), 0..=MAX_DIMS + 1)
}

/// The shape of a tensor that exists: at most [`SMALL`] elements, so an
/// extent is set to 0 where the drawn extents would exceed that.
fn tensor_dims(max_ndim: usize) -> impl Strategy<Value = Vec<usize>> {
    (
        prop::collection::vec(extent(), 0..=max_ndim),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut d, i)| {
            if !count(&d).is_some_and(|n| n <= SMALL) {
                let k = i.index(d.len());
                d[k] = 0;
            }
            d
        })
}

/// A shape derived from `dims`, so that broadcasting and reshaping often fit:
/// some extents replaced (a 1 by anything, anything by 1), some leading
/// dimensions dropped or added.
fn related(dims: Vec<usize>) -> impl Strategy<Value = Vec<usize>> {
    let n = dims.len();
    (
        prop::collection::vec((0u8..4, extent()), n),
        0..=n,
        prop::collection::vec(extent(), 0..=2),
    )
        .prop_map(move |(edits, drop, lead)| {
            let mut out = lead;
            for (d, (kind, e)) in dims.iter().zip(edits).skip(drop) {
                out.push(match kind {
                    0 => 1,
                    1 if *d == 1 => e,
                    _ => *d,
                });
            }
            out
        })
}

/// A tensor of shape `dims` (which must be valid and small) with small
/// integer values, so that sums are exact.
fn tensor(dims: &[usize]) -> Tensor {
    let n = count(dims).unwrap();
    Tensor::from_vec((0..n).map(|i| (i % 7) as f64 - 3.0).collect(), dims)
}

/// 512 cases per property; `ADJOINT_ROBUSTNESS_CASES` sets another number
/// for a longer local sweep.
fn config() -> ProptestConfig {
    let cases = std::env::var("ADJOINT_ROBUSTNESS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// The exact crash that was reported, and the cases that used to misbehave.

/// The reported crash: in a release build, `zeros` of `[2^32, 2^32]` returned
/// a tensor with an empty buffer (the product wrapped to 0), and `matmul` of
/// two of them then handed that buffer to the GEMM as a 2^32×2^32 matrix.
#[test]
fn zeros_of_an_overflowing_shape_panics_before_matmul_can_crash() {
    match catch(|| Tensor::<f64>::zeros(&[1 << 32, 1 << 32])) {
        Ok(t) => {
            let len = t.len();
            // On the code before the fix this segfaults.
            let p = t.matmul(&t);
            panic!(
                "zeros succeeded with {len} elements; matmul gave {}",
                p.len()
            );
        }
        Err(msg) => assert!(
            msg.contains("shape [4294967296, 4294967296] has more than usize::MAX elements"),
            "{msg}"
        ),
    }
    let err = Tensor::<f64>::try_zeros(&[1 << 32, 1 << 32]).unwrap_err();
    assert_eq!(err.op, "zeros");
    assert_eq!(
        err.reason,
        "shape [4294967296, 4294967296] has more than usize::MAX elements"
    );
}

/// The other ways to the same wrapped-around tensor.
#[test]
fn from_vec_reshape_and_shape_reject_a_wrapping_product() {
    let big = [1usize << 32, 1 << 32];
    if let Ok(t) = Tensor::<f64>::try_from_vec(Vec::new(), &big) {
        let p = t.matmul(&t);
        panic!("from_vec succeeded; matmul gave {}", p.len());
    }
    if let Ok(t) = Tensor::<f64>::zeros(&[0]).try_reshape(&big) {
        let p = t.matmul(&t);
        panic!("reshape succeeded; matmul gave {}", p.len());
    }
    assert!(Shape::try_new(&big).is_err());
    let msg = catch(|| Shape::new(&big)).unwrap_err();
    assert!(msg.contains("has more than usize::MAX elements"), "{msg}");
    // 5 · 2^62 wraps to 2^62, and 2^63 · 2 to 0.
    assert!(Shape::try_new(&[5, 1 << 62]).is_err());
    assert!(broadcast_shapes("add", &[1 << 63, 1], &[2]).is_err());
    // A zero extent makes any product 0, even when the others overflow.
    assert_eq!(
        Shape::try_new(&[usize::MAX, usize::MAX, 0])
            .unwrap()
            .numel(),
        0
    );
}

/// Results far larger than every operand: each is an error now, where
/// before it was a panic inside a `try_` form (debug) or a wrapped size.
#[test]
fn results_larger_than_their_operands_are_checked() {
    let tall = Tensor::<f64>::zeros(&[usize::MAX, 0]);
    let wide = Tensor::<f64>::zeros(&[0, usize::MAX]);
    let e = tall.try_sum_axis(1).unwrap_err();
    assert!(e.reason.contains("isize::MAX bytes"), "{e}");
    assert!(tall.try_matmul(&wide).is_err());
    let t32 = Tensor::<f64>::zeros(&[1 << 32, 0]);
    let e = t32.try_matmul_t(&t32).unwrap_err();
    assert!(e.reason.contains("usize::MAX elements"), "{e}");
    assert!(wide.try_sum_to_shape(&[1, usize::MAX]).is_err());
    assert!(Tensor::<f64>::zeros(&[1 << 32, 1 << 32, 0])
        .try_max_axis(2)
        .is_err());
    assert!(Tensor::<f64>::zeros(&[1])
        .try_broadcast_to(&[1 << 62])
        .is_err());
    assert!(Tensor::<f32>::try_zeros(&[1 << 62]).is_err());
    assert!(Tensor::<f64>::try_arange(usize::MAX).is_err());
    // More dimensions than a tensor has is an error of the try_ form too.
    assert!(Tensor::<f64>::try_from_vec(vec![0.0], &[1; MAX_DIMS + 1]).is_err());
    assert!(Tensor::<f64>::zeros(&[1])
        .try_reshape(&[1; MAX_DIMS + 1])
        .is_err());
    // The empty results of huge empty operands are fine.
    assert_eq!(wide.t().shape(), &[usize::MAX, 0]);
    assert_eq!(tall.t().shape(), &[0, usize::MAX]);
    assert_eq!(wide.matmul(&tall).shape(), &[0, 0]);
    assert_eq!(tall.sum_axis(0).shape(), &[0]);
}

/// Loops over a huge extent of an empty tensor took as long as the extent:
/// the transpose of `[2^63, 0]` and the pullback of `sum_axis` onto
/// `[usize::MAX, 2, 0]`.
#[test]
fn empty_tensors_with_huge_extents_take_no_time() {
    let start = std::time::Instant::now();
    assert_eq!(
        elementwise::transpose::<f64>(&[], 1 << 63, 0),
        Vec::<f64>::new()
    );
    let g = Tensor::<f64>::zeros(&[usize::MAX, 0]);
    let s = Shape::new(&[usize::MAX, 2, 0]);
    assert_eq!(es::expand_axis(&g, &s, 1).shape(), &[usize::MAX, 2, 0]);
    let x = Tensor::<f64>::zeros(&[0, usize::MAX, 2]);
    assert_eq!(x.sum_axis(1).shape(), &[0, 2]);
    assert_eq!(
        reduce::sum_axis::<f64>(&[], 0, usize::MAX, 2),
        Vec::<f64>::new()
    );
    assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
}

/// The GEMM's raw call: a view whose one row (or column) has a stride beyond
/// `isize::MAX`, and an inner dimension beyond `isize::MAX` repeated by zero
/// strides, are rejected before the pointers are handed over.
#[test]
fn gemm_rejects_what_isize_strides_cannot_express() {
    let x = [1.0f64; 4];
    let msg = catch(|| MatRef::strided(&x, 1, 2, usize::MAX, 1)).unwrap_err();
    assert!(msg.contains("do not fit isize"), "{msg}");
    let a = MatRef::strided(&x, 1, usize::MAX, 0, 0);
    let b = MatRef::strided(&x, usize::MAX, 1, 0, 0);
    let mut c = [0.0f64; 1];
    let msg = catch(|| gemm(1.0, a, b, 0.0, &mut c)).unwrap_err();
    assert!(msg.contains("exceed isize::MAX"), "{msg}");
    // A wrapped m·n cannot pass for an empty output.
    let tall = MatRef::<f64>::row_major(&[], 1 << 32, 0);
    let wide = MatRef::<f64>::row_major(&[], 0, 1 << 32);
    let msg = catch(|| gemm(1.0, tall, wide, 0.0, &mut [])).unwrap_err();
    assert!(msg.contains("not 4294967296x4294967296"), "{msg}");
}

// ---------------------------------------------------------------------------
// Random shapes everywhere.

proptest! {
    #![proptest_config(config())]

    /// Every constructor, in both widths.
    #[test]
    fn constructors(dims in any_dims(), v in -3.0f64..3.0, seed in any::<u64>(), n in extent()) {
        for size in [4usize, 8] {
            let want = want_new(&dims, size);
            let ok = |t: &Tensor, f: &dyn Fn(f64) -> bool| t.as_slice().iter().all(|&x| f(x));
            if size == 8 {
                check_try("try_zeros", "zeros", &want, || Tensor::try_zeros(&dims));
                check_panics("zeros", "zeros", &want, || {
                    let t = Tensor::zeros(&dims);
                    assert!(ok(&t, &|x| x == 0.0));
                    t
                });
                check_try("try_ones", "ones", &want, || Tensor::try_ones(&dims));
                check_panics("ones", "ones", &want, || {
                    let t = Tensor::ones(&dims);
                    assert!(ok(&t, &|x| x == 1.0));
                    t
                });
                check_try("try_full", "full", &want, || Tensor::try_full(&dims, v));
                check_panics("full", "full", &want, || Tensor::full(&dims, v));
                check_try("try_rand", "rand", &want, || Tensor::try_rand(&dims, seed));
                check_panics("rand", "rand", &want, || {
                    let t = Tensor::rand(&dims, seed);
                    assert!(ok(&t, &|x| (0.0..1.0).contains(&x)));
                    t
                });
                check_try("try_randn", "randn", &want, || Tensor::try_randn(&dims, seed));
                check_panics("randn", "randn", &want, || Tensor::randn(&dims, seed));
                let want_a = want_new(&[n], 8);
                check_try("try_arange", "arange", &want_a, || Tensor::try_arange(n));
                check_panics("arange", "arange", &want_a, || {
                    let t = Tensor::arange(n);
                    assert!(t.as_slice().iter().enumerate().all(|(i, &x)| x == i as f64));
                    t
                });
            } else {
                // f32 holds twice as many elements in isize::MAX bytes.
                if want == Want::TooBig {
                    continue;
                }
                match (want, Tensor::<f32>::try_zeros(&dims)) {
                    (Want::Ok(d), Ok(t)) => prop_assert_eq!(t.shape(), &d[..]),
                    (Want::Err, Err(e)) => prop_assert_eq!(e.op, "zeros"),
                    (w, r) => prop_assert!(false, "f32 zeros {:?}: {:?} against {:?}", dims, w, r),
                }
            }
        }
        // Shapes alone.
        let valid = dims.len() <= MAX_DIMS && count(&dims).is_some();
        prop_assert_eq!(Shape::try_new(&dims).is_ok(), valid);
        match catch(|| Shape::new(&dims)) {
            Ok(s) => prop_assert_eq!(Some(s.numel()), count(&dims)),
            Err(msg) => { prop_assert!(!valid); assert_clean("Shape::new", &msg); }
        }
        prop_assert_eq!(Tensor::scalar(v).ndim(), 0);
    }

    /// `from_vec` of data of the right length, or of a wrong one.
    #[test]
    fn from_vec(dims in any_dims(), wrong in 0usize..9) {
        let len = match count(&dims) {
            Some(n) if n <= SMALL => n,
            _ => wrong,
        };
        for len in [len, wrong] {
            let want = if dims.len() <= MAX_DIMS && count(&dims) == Some(len) {
                Want::Ok(dims.clone())
            } else {
                Want::Err
            };
            let data = || vec![1.5; len];
            check_try("try_from_vec", "from_vec", &want, || Tensor::try_from_vec(data(), &dims));
            check_panics("from_vec", "from_vec", &want, || Tensor::from_vec(data(), &dims));
        }
    }

    /// `reshape`, `into_reshape`, `broadcast_to`, `t` and `sum_to_shape`.
    #[test]
    fn layout(
        (dims, target) in tensor_dims(4).prop_flat_map(|d| (Just(d.clone()), prop_oneof![related(d), any_dims()])),
    ) {
        let x = tensor(&dims);
        let want = if target.len() <= MAX_DIMS && count(&target) == Some(x.len()) {
            Want::Ok(target.clone())
        } else {
            Want::Err
        };
        check_try("try_reshape", "reshape", &want, || x.try_reshape(&target));
        check_panics("reshape", "reshape", &want, || x.reshape(&target));
        check_panics("into_reshape", "reshape", &want, || x.clone().into_reshape(&target));

        let want = if broadcasts_to(&dims, &target) { want_new(&target, 8) } else { Want::Err };
        check_try("try_broadcast_to", "broadcast_to", &want, || {
            let y = x.try_broadcast_to(&target)?;
            if x.len() > 0 {
                assert_eq!(y.sum(), x.sum() * (y.len() / x.len()) as f64);
            }
            Ok(y)
        });
        check_panics("broadcast_to", "broadcast_to", &want, || x.broadcast_to(&target));

        let want = if broadcasts_to(&target, &dims) { want_new(&target, 8) } else { Want::Err };
        check_try("try_sum_to_shape", "sum_to_shape", &want, || {
            let y = x.try_sum_to_shape(&target)?;
            assert_eq!(y.sum(), x.sum());
            Ok(y)
        });
        check_panics("sum_to_shape", "sum_to_shape", &want, || x.sum_to_shape(&target));

        let want = match *dims {
            [r, c] => Want::Ok(vec![c, r]),
            [] | [_] => Want::Ok(dims.clone()),
            _ => Want::Err,
        };
        check_panics("t", "t", &want, || {
            let y = x.t();
            assert_eq!(y.t(), x);
            y
        });
    }

    /// The operators and their `try_` forms, with broadcasting.
    #[test]
    fn arithmetic(
        (a, b) in tensor_dims(4).prop_flat_map(|d| (Just(d.clone()), prop_oneof![related(d).prop_map(|r| {
            // A related shape with more than SMALL elements gets a 0 like any tensor.
            if !count(&r).is_some_and(|n| n <= SMALL) { r.iter().map(|_| 0).collect() } else { r }
        }), tensor_dims(4)])),
    ) {
        let (x, y) = (tensor(&a), tensor(&b));
        let want = want_broadcast(&[&a, &b]);
        check_try("try_add", "add", &want, || x.try_add(&y));
        check_try("try_sub", "sub", &want, || x.try_sub(&y));
        check_try("try_mul", "mul", &want, || x.try_mul(&y));
        check_try("try_div", "div", &want, || x.try_div(&y));
        check_try("try_zip_map", "zip_map", &want, || x.try_zip_map(&y, f64::max));
        check_panics("zip_map", "zip_map", &want, || x.zip_map(&y, f64::min));
        check_panics("+", "add", &want, || &x + &y);
        check_panics("- (owned)", "sub", &want, || x.clone() - y.clone());
        check_panics("* (owned, ref)", "mul", &want, || x.clone() * &y);
        check_panics("/ (ref, owned)", "div", &want, || &x / y.clone());
        check_panics("maximum", "maximum", &want, || x.maximum(&y));
        check_panics("minimum", "minimum", &want, || x.minimum(&y));
        check_panics("+=", "add", &want, || { let mut z = x.clone(); z += &y; z });
        check_panics("*= (owned)", "mul", &want, || { let mut z = x.clone(); z *= y.clone(); z });
        // Scalars and elementwise functions keep the shape, whatever it is.
        let same = Want::Ok(a.clone());
        check_panics("scalar ops", "", &same, || (2.0 * &x - 1.0) / 3.0);
        check_panics("unary", "", &same, || x.exp().tanh().clamp(-0.5, 0.5).powi(2).map(|v| v + 1.0));
        check_clean("full reductions", || (x.sum(), x.mean(), x.norm(), x.max(), x.min()));
    }

    /// Every product, with matching and mismatched inner dimensions.
    #[test]
    fn products(
        (a, b) in tensor_dims(3).prop_flat_map(|a| {
            let last = a.last().copied().unwrap_or(1);
            let first = a.first().copied().unwrap_or(1);
            let b = prop_oneof![
                tensor_dims(3),
                extent().prop_map(move |n| vec![last, n]),
                extent().prop_map(move |n| vec![first, n]),
                extent().prop_map(move |n| vec![n, last]),
                Just(vec![last]),
            ].prop_map(|b| if !count(&b).is_some_and(|n| n <= SMALL) { vec![0; b.len()] } else { b });
            (Just(a), b)
        }),
        ta in any::<bool>(),
        tb in any::<bool>(),
    ) {
        let (x, y) = (tensor(&a), tensor(&b));
        let want = |ta, tb| match product_dims(&a, ta, &b, tb) {
            Some(d) => want_new(&d, 8),
            None => Want::Err,
        };
        check_try("try_matmul", "matmul", &want(false, false), || x.try_matmul(&y));
        check_panics("matmul", "matmul", &want(false, false), || x.matmul(&y));
        check_try("try_matmul_t", "matmul_t", &want(false, true), || x.try_matmul_t(&y));
        check_panics("matmul_t", "matmul_t", &want(false, true), || x.matmul_t(&y));
        check_try("try_t_matmul", "t_matmul", &want(true, false), || x.try_t_matmul(&y));
        check_panics("t_matmul", "t_matmul", &want(true, false), || x.t_matmul(&y));

        // gemm_into, into an output of the right shape when there is one.
        let w = want(ta, tb);
        let out_dims = match &w { Want::Ok(d) => d.clone(), _ => b.clone() };
        let gemm_want = if w == Want::TooBig { Want::TooBig } else if matches!(w, Want::Ok(_)) { w.clone() } else { Want::Err };
        check_try("try_gemm_into", "gemm_into", &gemm_want, || {
            let mut out = Tensor::full(&out_dims, 1.0);
            out.try_gemm_into(2.0, &x, ta, &y, tb, 1.0)?;
            Ok(out)
        });
        check_panics("gemm_into", "gemm_into", &gemm_want, || {
            let mut out = Tensor::full(&out_dims, 1.0);
            out.gemm_into(2.0, &x, ta, &y, tb, 0.0);
            out
        });

        let want_dot = match (&a[..], &b[..]) { ([m], [n]) if m == n => Want::Ok(vec![]), _ => Want::Err };
        check_try("try_dot", "dot", &want_dot, || x.try_dot(&y).map(Tensor::scalar));
        check_panics("dot", "dot", &want_dot, || Tensor::scalar(x.dot(&y)));
        let want_outer = match (&a[..], &b[..]) { (&[m], &[n]) => want_new(&[m, n], 8), _ => Want::Err };
        check_try("try_outer", "outer", &want_outer, || x.try_outer(&y));
        check_panics("outer", "outer", &want_outer, || x.outer(&y));

        // The pullbacks the emitted code calls, on the same operands. Their
        // results are products too, so a huge extent beside a zero one could
        // ask for a real, huge tensor (`[2^32, 0]ᵀ·[0, 2]`): those are left
        // to the checks above.
        if a.iter().chain(&b).any(|&d| d > SMALL) {
            return Ok(());
        }
        check_clean("matmul_grad_lhs", || es::matmul_grad_lhs(&x, &y));
        check_clean("matmul_grad_rhs", || es::matmul_grad_rhs(&x, &y));
        check_clean("acc_matmul_grad_lhs", || es::acc_matmul_grad_lhs(x.clone(), &x, &y));
        check_clean("acc_matmul_grad_rhs", || es::acc_matmul_grad_rhs(y.clone(), &x, &y));
    }

    /// Reductions along an axis, including axes out of range.
    #[test]
    fn axis_reductions(dims in tensor_dims(5), axis in 0usize..7) {
        let x = tensor(&dims);
        let want = match without_axis(&dims, axis) { Some(d) => want_new(&d, 8), None => Want::Err };
        check_try("try_sum_axis", "sum_axis", &want, || {
            let y = x.try_sum_axis(axis)?;
            assert_eq!(y.sum(), x.sum());
            Ok(y)
        });
        check_panics("sum_axis", "sum_axis", &want, || x.sum_axis(axis));
        check_try("try_mean_axis", "mean_axis", &want, || x.try_mean_axis(axis));
        check_panics("mean_axis", "mean_axis", &want, || x.mean_axis(axis));
        check_try("try_max_axis", "max_axis", &want, || x.try_max_axis(axis));
        check_panics("max_axis", "max_axis", &want, || x.max_axis(axis));
        check_try("try_min_axis", "min_axis", &want, || x.try_min_axis(axis));
        check_panics("min_axis", "min_axis", &want, || x.min_axis(axis));
    }

    /// The fused kernels: equal shapes run, unequal ones panic cleanly, and
    /// a sum onto a shape follows `sum_to_shape`'s rule.
    #[test]
    fn fused_kernels(
        (a, b) in tensor_dims(4).prop_flat_map(|d| (Just(d.clone()), prop_oneof![Just(d.clone()), related(d), any_dims()])),
    ) {
        let x = tensor(&a);
        let y_valid = count(&b).is_some_and(|n| n <= SMALL) && b.len() <= MAX_DIMS;
        let same = Want::Ok(a.clone());
        if y_valid {
            let y = tensor(&b);
            let want = if a == b { same.clone() } else { Want::Err };
            check_panics("map2", "fused::map2", &want, || fused::map2(&x, &y, |p, q| p * q));
            check_panics("map3", "fused::map3", &want, || fused::map3(&x, &x, &y, |p, q, r| p + q * r));
            check_panics("map4", "fused::map4", &want, || fused::map4(&x, &y, &x, &x, |p, q, r, s| p + q + r + s));
            check_panics("map2_inplace", "fused::map2_inplace", &want, || fused::map2_inplace(x.clone(), &y, |p, q| p - q));
            check_panics("map2_into", "fused::map2_into", &want, || { let mut o = x.clone(); fused::map2_into(&mut o, &x, &y, |p, q| p + q); o });
            check_panics("acc2", "fused::acc2", &want, || { let mut g = x.clone(); fused::acc2(&mut g, &x, &y, |p, q| p * q); g });
            check_panics("sum2", "fused::sum2", &want, || Tensor::full(&a, fused::sum2(&x, &y, |p, q| p * q)));
            check_panics("tanh_backward", "fused::map2", &want, || fused::tanh_backward(&x, &y));
            check_panics("mse_grad", "fused::map2", &want, || fused::mse_grad(&x, &y, 1.0));
            // `y` broadcast onto `x` in x's buffer.
            let want = if a == b || (b.len() <= a.len() && broadcast(&a, &b).as_deref() == Some(&a[..])) { same.clone() } else { Want::Err };
            check_panics("map2_broadcast_inplace", "fused::map2_broadcast_inplace", &want, || fused::map2_broadcast_inplace(x.clone(), &y, |p, q| p + q));
            // Summed onto y's shape.
            let want = if a == b || broadcasts_to(&b, &a) { Want::Ok(b.clone()) } else { Want::Err };
            check_panics("acc_sum_to", "fused::acc1_sum_to", &want, || { let mut g = y.clone(); fused::acc_sum_to(&mut g, &x); g });
            check_panics("acc2_sum_to", "fused::acc2_sum_to", &want, || { let mut g = y.clone(); fused::acc2_sum_to(&mut g, &x, &x, |p, q| p * q); g });
        }
        // Summed onto any shape: the target is built first, then checked.
        let want = match want_new(&b, 8) {
            Want::Ok(_) if !(a == b || broadcasts_to(&b, &a)) => Want::Err,
            w => w,
        };
        let op = if want_new(&b, 8) == Want::Err { "zeros" } else { "fused::acc1_sum_to" };
        check_panics("map1_sum_to", op, &want, || fused::map1_sum_to(&x, |p| 2.0 * p, &b));
        let op = if want_new(&b, 8) == Want::Err { "zeros" } else { "fused::acc3_sum_to" };
        check_panics("map3_sum_to", op, &want, || fused::map3_sum_to(&x, &x, &x, |p, q, r| p * q * r, &b));
        check_panics("map1", "", &same, || fused::map1(&x, |p| p * p));
        check_panics("map1_inplace", "", &same, || fused::map1_inplace(x.clone(), |p| -p));
        check_panics("relu_backward", "", &same, || fused::relu_backward(&x, &x));
        check_panics("sigmoid_backward", "", &same, || fused::sigmoid_backward(&x, &x));
    }

    /// The helpers that `#[differentiable]`'s emitted code calls.
    #[test]
    fn emit_support(
        (a, b) in tensor_dims(4).prop_flat_map(|d| (Just(d.clone()), prop_oneof![Just(d.clone()), related(d), any_dims()])),
        (axis, e) in (0usize..6, extent()),
    ) {
        let x = tensor(&a);
        let sa = es::shape_of(&x);
        prop_assert_eq!(es::numel::<f64>(&sa), x.len() as f64);
        check_panics("ew1", "", &Want::Ok(a.clone()), || es::ew1(&x, |p| p + 1.0));
        check_panics("full", "", &Want::Ok(a.clone()), || es::full(&sa, 2.0));
        check_panics("adj_or_zeros", "", &Want::Ok(a.clone()), || es::adj_or_zeros(None, &x));
        check_panics("empty", "", &Want::Ok(vec![0]), es::empty::<f64>);

        if let Ok(sb) = Shape::try_new(&b) {
            // Building from a shape: too large is a clean panic.
            let want = want_new(&b, 8);
            check_panics("zeros", "full", &want, || es::zeros::<f64>(&sb));
            // Reshaping the gradient.
            let want = if count(&b) == Some(x.len()) { Want::Ok(b.clone()) } else { Want::Err };
            check_panics("reshape_to (ref)", "reshape", &want, || es::reshape_to(&x, &sb));
            check_panics("reshape_to (owned)", "reshape", &want, || es::reshape_to(x.clone(), &sb));
            // Reducing onto a shape.
            let want = if a == b { Want::Ok(b.clone()) } else if broadcasts_to(&b, &a) { want_new(&b, 8) } else { Want::Err };
            check_panics("reduce_to", "sum_to_shape", &want, || es::reduce_to(&x, &sb));
            check_panics("reduce_to_ref", "sum_to_shape", &want, || es::reduce_to_ref(&x, &sb).unwrap_or_else(|| x.clone()));
            // sum_to1 builds the target before it checks that it fits.
            let (want1, op) = match want_new(&b, 8) {
                _ if a == b => (Want::Ok(b.clone()), ""),
                Want::Ok(_) if broadcasts_to(&b, &a) => (Want::Ok(b.clone()), ""),
                Want::Ok(_) => (Want::Err, "fused::acc1_sum_to"),
                w => (w, "zeros"),
            };
            check_panics("sum_to1", op, &want1, || es::sum_to1(&sb, &x, |p| p * 3.0));
            if want1 != Want::TooBig {
                check_clean("sum_to2", || es::sum_to2(&sb, &x, &x, |p, q| p * q));
                check_clean("sum_to3", || es::sum_to3(&sb, &x, &x, x.clone(), |p, q, r| p * q + r));
            }
            // The pullback of sum_axis: an extent put back at `axis`.
            let mut full = a.clone();
            if axis <= full.len() {
                full.insert(axis, e);
                if let (Ok(sf), true) = (Shape::try_new(&full), full.len() <= MAX_DIMS) {
                    check_panics("expand_axis", "expand_axis", &want_new(&full, 8), || es::expand_axis(&x, &sf, axis));
                }
            }
            let fits = axis < b.len() && b.len() == a.len() + 1 && without_axis(&b, axis).as_deref() == Some(&a[..]);
            let want = if fits { want_new(&b, 8) } else { Want::Err };
            check_panics("expand_axis (any)", "expand_axis", &want, || es::expand_axis(&x, &sb, axis));
        }

        let y_valid = count(&b).is_some_and(|n| n <= SMALL) && b.len() <= MAX_DIMS;
        if y_valid {
            let y = tensor(&b);
            let want = want_broadcast(&[&a, &b]);
            check_panics("ew2", "elementwise", &want, || es::ew2(&x, &y, |p, q| p * q));
            check_panics("ew2 (owned)", "elementwise", &want, || es::ew2(x.clone(), y.clone(), |p, q| p - q));
            let want3 = want_broadcast(&[&a, &b, &a]);
            check_panics("ew3", "elementwise", &want3, || es::ew3(&x, y.clone(), &x, |p, q, r| p * q + r));
            check_panics("ew4", "elementwise", &want3, || es::ew4(&y, &x, x.clone(), &y, |p, q, r, s| p * q + r * s));
            let scalar = |w: &Want| match w { Want::Ok(_) => Want::Ok(vec![]), w => w.clone() };
            check_panics("sum2", "elementwise", &scalar(&want), || Tensor::scalar(es::sum2(&x, &y, |p, q| p * q)));
            check_panics("sum3", "elementwise", &scalar(&want3), || Tensor::scalar(es::sum3(&x, &y, &x, |p, q, r| p * q * r)));
            check_clean("acc_adj", || { let mut d = Some(x.clone()); es::acc_adj(&mut d, y.clone()); d });
        }
    }

    /// `MatRef` views and `gemm` on a small buffer with any extents and
    /// strides: a view is built exactly when every element it addresses lies
    /// inside the buffer, and the GEMM then agrees with the triple loop.
    #[test]
    fn raw_gemm(
        len in 0usize..24,
        va in (extent(), extent(), prop_oneof![0usize..5, prop::sample::select(HUGE.to_vec())], prop_oneof![0usize..5, prop::sample::select(HUGE.to_vec())]),
        vb in (extent(), extent(), prop_oneof![0usize..5, prop::sample::select(HUGE.to_vec())], prop_oneof![0usize..5, prop::sample::select(HUGE.to_vec())]),
        c_len in 0usize..24,
        share in any::<bool>(),
    ) {
        let data: Vec<f64> = (0..len).map(|i| (i % 5) as f64 - 2.0).collect();
        // The model of `MatRef::strided`.
        let view_ok = |(r, c, rs, cs): (usize, usize, usize, usize)| {
            if r == 0 || c == 0 {
                return true;
            }
            let last = (r as u128 - 1)
                .checked_mul(rs as u128)
                .zip((c as u128 - 1).checked_mul(cs as u128))
                .and_then(|(p, q)| p.checked_add(q));
            last.is_some_and(|l| l < len as u128) && rs <= isize::MAX as usize && cs <= isize::MAX as usize
        };
        let make = |(r, c, rs, cs)| catch(|| MatRef::strided(&data, r, c, rs, cs));
        let (ra, rb) = (make(va), make(vb));
        prop_assert_eq!(ra.is_ok(), view_ok(va), "view {:?}", va);
        prop_assert_eq!(rb.is_ok(), view_ok(vb), "view {:?}", vb);
        if let Err(m) = &ra { assert_clean("MatRef::strided", m); }
        let (Ok(a), Ok(b)) = (ra, rb) else { return Ok(()) };
        let b = if share { a.t() } else { b };
        let vb = if share { (va.1, va.0, va.3, va.2) } else { vb };
        let (m, k, n) = (va.0, va.1, vb.1);
        // Too long a computation for a test, though valid: k repeated by zero strides.
        if m > 0 && n > 0 && k > SMALL && k <= isize::MAX as usize {
            return Ok(());
        }
        // Often the right output length, else a drawn one.
        let c_len = match m.checked_mul(n) {
            Some(mn) if mn <= SMALL && c_len % 3 != 0 => mn,
            _ => c_len,
        };
        let ok = vb.0 == k && (m as u128) * (n as u128) == c_len as u128
            && (m == 0 || n == 0 || k <= isize::MAX as usize);
        let mut c = vec![f64::NAN; c_len];
        let r = catch(|| gemm(1.0, a, b, 0.0, &mut c));
        prop_assert_eq!(r.is_ok(), ok, "{:?} {:?} c {}: {:?}", va, vb, c_len, r);
        match r {
            Err(msg) => assert_clean("gemm", &msg),
            // With m or n 0 there is nothing to compare (and m alone may be huge).
            Ok(()) if c.is_empty() => {}
            Ok(()) => {
                let at = |v: (usize, usize, usize, usize), i: usize, j: usize| data[i * v.2 + j * v.3];
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k).map(|p| at(va, i, p) * at(vb, p, j)).sum();
                        prop_assert_eq!(c[i * n + j], want);
                    }
                }
            }
        }
    }

    /// The other raw kernels with any extents on small slices.
    #[test]
    fn raw_kernels(
        len in 0usize..24,
        (o, n, i) in (extent(), extent(), extent()),
        (sa, sb, out) in (tensor_dims(4), tensor_dims(4), any_dims()),
    ) {
        let x: Vec<f64> = (0..len).map(|v| v as f64).collect();
        // transpose
        let fits = count(&[o, n]) == Some(len);
        match catch(|| elementwise::transpose(&x, o, n)) {
            Ok(t) => { prop_assert!(fits); prop_assert_eq!(t.len(), len); }
            Err(m) => { prop_assert!(!fits); assert_clean("transpose", &m); }
        }
        // kernels::matmul::matmul of row-major buffers
        let fits = count(&[o, n]) == Some(len) && count(&[n, i]) == Some(len);
        let out_len = count(&[o, i]);
        if !fits || out_len.is_some_and(|l| l <= SMALL) {
            match catch(|| ad_runtime::kernels::matmul::matmul(&x, &x, o, n, i)) {
                Ok(c) => { prop_assert!(fits); prop_assert_eq!(Some(c.len()), out_len); }
                Err(m) => { prop_assert!(!fits || out_len.is_none()); assert_clean("matmul", &m); }
            }
        }
        // axis reductions of `[o, n, i]`
        let fits = count(&[o, n, i]) == Some(len);
        let out_len = count(&[o, i]);
        if !(fits && out_len.is_some_and(|l| l > SMALL)) {
            for (name, r) in [
                ("sum_axis", catch(|| reduce::sum_axis(&x, o, n, i))),
                ("max_axis", catch(|| reduce::max_axis(&x, o, n, i))),
                ("min_axis", catch(|| reduce::min_axis(&x, o, n, i))),
            ] {
                match r {
                    Ok(r) => { prop_assert!(fits); prop_assert_eq!(Some(r.len()), out_len); }
                    Err(m) => { prop_assert!(!fits || out_len.is_none(), "{}", m); assert_clean(name, &m); }
                }
            }
        }
        // Broadcast plans
        let fits = out.len() <= MAX_DIMS && count(&out).is_some()
            && broadcasts_to(&sa, &out) && broadcasts_to(&sb, &out);
        match catch(|| elementwise::Broadcast::new(&sa, &sb, &out)) {
            Ok(p) => {
                prop_assert!(fits);
                prop_assert_eq!(Some(p.numel()), count(&out));
                if p.numel() <= SMALL {
                    let mut total = 0;
                    p.for_each_run(|r| total += r.len);
                    prop_assert_eq!(total, p.numel());
                }
            }
            Err(m) => { prop_assert!(!fits); assert_clean("Broadcast::new", &m); }
        }
        // broadcast_shapes agrees with the model.
        let want = broadcast(&sa, &out).filter(|d| count(d).is_some());
        prop_assert_eq!(broadcast_shapes("add", &sa, &out).ok().map(|s| s.dims().to_vec()), want);
    }
}
