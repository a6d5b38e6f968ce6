//! The error a tensor operation returns when its operands' shapes do not fit.

use std::fmt;

/// A shape error: which operation, and the shapes it was given.
///
/// Every panicking tensor operation has a `try_` form that returns this instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    /// The operation, as the user calls it: `"add"`, `"matmul"`, `"reshape"`, ...
    pub op: &'static str,
    /// The left operand's (or the only operand's) shape.
    pub lhs: Vec<usize>,
    /// The right operand's shape, or the requested shape (`reshape`); empty if none.
    pub rhs: Vec<usize>,
    /// What is wrong, in words.
    pub reason: String,
}

impl ShapeError {
    /// Builds an error for `op` on the two shapes.
    pub fn new(op: &'static str, lhs: &[usize], rhs: &[usize], reason: impl Into<String>) -> Self {
        ShapeError {
            op,
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: shapes {:?} and {:?}: {}",
            self.op, self.lhs, self.rhs, self.reason
        )
    }
}

impl std::error::Error for ShapeError {}

/// `Result` with a [`ShapeError`].
pub type Result<T, E = ShapeError> = std::result::Result<T, E>;
