use adjoint_gradbench::evals::hello::{square, square_grad};

#[test]
fn double_is_the_derivative_of_square() {
    for x in [-2.5, 0.0, 1.0, 3.25] {
        assert_eq!(square(x), x * x);
        let h = 1e-6;
        let fd = (square(x + h) - square(x - h)) / (2.0 * h);
        let (value, d) = square_grad(x);
        assert_eq!(value, x * x);
        assert!((d - fd).abs() < 1e-8, "{d} vs {fd}");
    }
}
