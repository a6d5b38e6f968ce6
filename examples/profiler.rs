//! The operation profiler (tutorial 001's `torch.autograd.profiler.profile`): count
//! and time per operation, forward and backward, printed as a table.
//!
//! Run it with `cargo run --release --example profiler`.

use adjoint::tape::{Profile, Tape};
use adjoint::Tensor;

/// The tutorial's body under the profiler: `y = 4 X + 2`, `z = 8 y^2`, `out = mean(z)`,
/// then the backward pass. Returns `out`, one entry of `X.grad` and the profile.
pub fn profile() -> (f64, f64, Profile) {
    let tape: Tape = Tape::new();
    let ((out, grad), prof) = tape.profile(|| {
        let x = tape.tensor(Tensor::ones(&[3, 3]));
        let y = x * 4.0 + 2.0;
        let z = 8.0 * y.powi(2);
        let out = z.mean();
        out.backward();
        (out.item(), x.grad_tensor().as_slice()[0])
    });
    (out, grad, prof)
}

fn main() {
    let (out, grad, prof) = profile();
    println!("out = {out}, X.grad = {grad:.4} everywhere\n");
    print!("{prof}");
}
