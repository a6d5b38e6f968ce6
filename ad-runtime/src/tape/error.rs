//! [`TapeError`]: why a backward pass cannot start.

use std::fmt;

/// An error of [`Var::try_backward`](super::Var::try_backward) and
/// [`Var::try_backward_with`](super::Var::try_backward_with).
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
        }
    }
}

impl std::error::Error for TapeError {}
