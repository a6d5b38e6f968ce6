//! [`TapeError`]: why a backward pass cannot start or cannot be recorded.

use std::fmt;

/// An error of [`Var::try_backward`](super::Var::try_backward),
/// [`Var::try_backward_with`](super::Var::try_backward_with), the `try_` forms of
/// [`Tape::grad`](super::Tape::grad) and of [`Tape::grad_graph`](super::Tape::grad_graph).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TapeError {
    /// `backward()` without a seed on a result with more than one element.
    NonScalarResult {
        /// The result's shape.
        shape: Vec<usize>,
    },
    /// The seed's shape is not the result's.
    SeedShape {
        /// The result's shape.
        expected: Vec<usize>,
        /// The seed's shape.
        got: Vec<usize>,
    },
    /// The result depends on no variable that requires a gradient.
    NoGradient,
    /// [`Tape::grad_graph`](super::Tape::grad_graph) met a custom operation
    /// whose backward computes on [`Value`](super::Value)s, so its gradient
    /// cannot be recorded and differentiated again.
    OnceDifferentiable {
        /// The operation's backward node (`NAMEBackward`).
        name: String,
    },
}

impl fmt::Display for TapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TapeError::NonScalarResult { shape } => write!(
                f,
                "a gradient can be created implicitly only for a scalar result \
                 (this result has shape {shape:?}); pass a seed of that shape to backward_with"
            ),
            TapeError::SeedShape { expected, got } => write!(
                f,
                "the seed has shape {got:?} but the result has shape {expected:?}: \
                 backward_with needs a seed of the result's shape"
            ),
            TapeError::NoGradient => write!(
                f,
                "the result does not require a gradient: it depends on no leaf created \
                 with Tape::var or Tape::tensor (or it was computed under no_grad or detached)"
            ),
            TapeError::OnceDifferentiable { name } => write!(
                f,
                "the gradient passes through the custom operation {name}, whose backward \
                 computes on Values: grad_graph cannot record it, so it cannot be differentiated \
                 twice; implement Function::backward_graph for it (and record it with \
                 Tape::apply), or write the operation with Var methods"
            ),
        }
    }
}

impl std::error::Error for TapeError {}
