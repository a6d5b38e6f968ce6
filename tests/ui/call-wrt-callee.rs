use adjoint::prelude::*;

// `g` differentiates only `a`; a call that passes a float for `b` expects a gradient
// for it too. Giving `g_vjp`'s one gradient to the wrong argument would be a silently
// wrong result, so the mismatch is a compile error at the call.
#[differentiable(wrt(a))]
fn g(a: &[f64], b: f64) -> f64 {
    a[0] * b
}

#[differentiable]
fn f(x: &[f64], y: f64) -> f64 {
    g(x, y) + y
}

#[differentiable(wrt(b))]
fn h(a: f64, b: f64) -> f64 {
    a * b
}

#[differentiable]
fn k(x: f64) -> f64 {
    h(x, x * 2.0)
}



// Found by the random-program tester: the constant 2.0 gets no adjoint, and before the
// check the caller read `g3_vjp`'s two gradients (for b, c) as those of x and y.
#[differentiable(wrt(b, c))]
fn g3(a: f64, b: f64, c: f64) -> f64 {
    a * b + c * c * 3.0
}

#[differentiable]
fn k3(x: f64, y: f64) -> f64 {
    g3(x, y, 2.0)
}
fn main() {}
