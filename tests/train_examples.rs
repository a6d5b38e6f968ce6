//! The example networks train: their loss, with the gradient `#[differentiable]`
//! generates, decreases under plain gradient descent.

// The examples' `main` and primal `loss` are not called here, only `train`.
#[allow(dead_code)]
#[path = "../examples/relu_net.rs"]
mod relu_net;
#[allow(dead_code)]
#[path = "../examples/tanh_mlp.rs"]
mod tanh_mlp;

#[test]
fn tanh_mlp_loss_decreases() {
    let h = tanh_mlp::train(8, 200, 0.5, false);
    assert!(
        h.windows(2).all(|w| w[1] <= w[0] + 1e-12),
        "not monotone: {h:?}"
    );
    assert!(
        h[h.len() - 1] < 0.5 * h[0],
        "{} -> {}",
        h[0],
        h[h.len() - 1]
    );
}

#[test]
fn relu_net_loss_decreases() {
    let h = relu_net::train(60, 1e-6, false);
    assert!(
        h[h.len() - 1] < 0.5 * h[0],
        "{} -> {}",
        h[0],
        h[h.len() - 1]
    );
    assert!(
        h.windows(2).filter(|w| w[1] > w[0]).count() == 0,
        "not monotone: {h:?}"
    );
}
