//! The stacks of the static path's loop reversal: values a loop overwrites are pushed
//! in the forward sweep and popped, in reverse order, by the reverse sweep.
//!
//! A [`Stack`] borrows its buffer from a per-thread pool and gives it back, emptied but
//! with its capacity, when dropped: after the first call of a gradient function, later
//! calls push without allocating (until they push more than any earlier call did).

use std::any::Any;
use std::cell::RefCell;

/// The most buffers the pool of one thread keeps.
const POOL_LEN: usize = 64;

/// The longest slice [`Stack::push_slice`] and [`Stack::pop_into`] copy inline.
const SHORT: usize = 32;

thread_local! {
    static POOL: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// A last-in first-out stack of `T` over a pooled buffer.
pub struct Stack<T: 'static> {
    /// The values, held inline: a push then reads and writes the length and the
    /// pointer in the gradient function's own frame, where they stay in registers
    /// (behind a `Box`, every push reloaded them from the heap, since the value it
    /// stores might have aliased them).
    buf: Vec<T>,
    /// The pool's box this buffer came in, kept empty so that `drop` returns the
    /// buffer without allocating a box; `None` for a buffer made here.
    #[allow(clippy::box_collection)]
    home: Option<Box<Vec<T>>>,
}

impl<T: 'static> Stack<T> {
    /// An empty stack, reusing a pooled buffer of `T` when the thread has one.
    pub fn new() -> Self {
        let pooled = POOL
            .try_with(|pool| {
                let mut pool = pool.try_borrow_mut().ok()?;
                let idx = pool.iter().rposition(|b| b.is::<Vec<T>>())?;
                pool.swap_remove(idx).downcast::<Vec<T>>().ok()
            })
            .ok()
            .flatten();
        match pooled {
            Some(mut home) => Stack {
                buf: std::mem::take(&mut *home),
                home: Some(home),
            },
            None => Stack {
                buf: Vec::new(),
                home: None,
            },
        }
    }

    /// Pushes a value.
    #[inline]
    pub fn push(&mut self, value: T) {
        self.buf.push(value);
    }

    /// Pushes a value into room made by [`Stack::reserve`]. The generated code
    /// reserves a loop's pushes before the loop, so that this push has no growth
    /// path: its only other way out is a panic, which returns nowhere, so the loop's
    /// floats can stay in registers across it.
    ///
    /// # Panics
    /// If no room is left (a loop pushed more than it reserved: a bug in the code
    /// `#[differentiable]` generated, reported rather than grown over).
    #[inline]
    pub fn push_reserved(&mut self, value: T) {
        if self.buf.len() == self.buf.capacity() {
            unreserved();
        }
        self.buf.push(value);
    }

    /// Pops the value pushed last. The reverse sweep pops exactly what the forward
    /// sweep pushed, so the stack is never empty here.
    #[inline]
    pub fn pop(&mut self) -> T {
        match self.buf.pop() {
            Some(v) => v,
            None => unreachable!("the reverse sweep popped more than the forward sweep pushed"),
        }
    }

    /// Pushes a copy of a whole buffer (a snapshot; [`Stack::pop_into`] takes it
    /// back).
    #[inline]
    pub fn push_slice(&mut self, values: &[T])
    where
        T: Copy,
    {
        if values.len() > SHORT {
            self.buf.extend_from_slice(values);
            return;
        }
        // Short (GMM's rows of 10): copied inline, two at a time; a copy of unknown
        // length is a call of `memmove`, which costs more than the copy here.
        self.buf.reserve(values.len());
        let mut pairs = values.chunks_exact(2);
        for p in &mut pairs {
            self.buf.extend_from_slice(p);
        }
        for &v in pairs.remainder() {
            self.buf.push(v);
        }
    }

    /// Pops the last `dst.len()` values into `dst`, in the order they were pushed:
    /// the reverse of [`Stack::push_slice`] of a buffer as long as `dst`.
    ///
    /// # Panics
    /// If fewer than `dst.len()` values are on the stack.
    #[inline]
    pub fn pop_into(&mut self, dst: &mut [T])
    where
        T: Copy,
    {
        let at = self.buf.len().checked_sub(dst.len());
        let Some(at) = at else {
            unreachable!("the reverse sweep popped more than the forward sweep pushed")
        };
        let src = &self.buf[at..];
        if dst.len() > SHORT {
            dst.copy_from_slice(src);
        } else {
            // Inline, as in `push_slice`.
            let mut to = dst.chunks_exact_mut(2);
            let mut from = src.chunks_exact(2);
            for (d, s) in (&mut to).zip(&mut from) {
                d.copy_from_slice(s);
            }
            for (d, s) in to.into_remainder().iter_mut().zip(from.remainder()) {
                *d = *s;
            }
        }
        self.buf.truncate(at);
    }

    /// Makes room for `additional` more values.
    #[inline]
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// How many values are on the stack.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the stack is empty.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// How many values the buffer holds without allocating.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cold]
#[inline(never)]
fn unreserved() -> ! {
    panic!("a loop of the generated gradient pushed more values than it reserved room for")
}

/// `vec![zero; n]`, for the zeroed gradient buffers of `_grad` and `_vjp`. A short one
/// (a `_vjp`'s gradient for a row, made once per call in a hot loop) is allocated with
/// `malloc`, whose per-thread cache serves it, and zeroed in place: `vec![zero; n]`
/// asks `calloc`, which glibc serves without that cache.
#[inline]
pub fn zeros<T: Copy>(n: usize, zero: T) -> Vec<T> {
    if n > 256 {
        return vec![zero; n];
    }
    let mut v = Vec::with_capacity(n);
    v.resize(n, zero);
    v
}

impl<T: 'static> Default for Stack<T> {
    fn default() -> Self {
        Stack::new()
    }
}

impl<T: 'static> Drop for Stack<T> {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if buf.capacity() == 0 {
            return;
        }
        let home: Box<dyn Any> = match self.home.take() {
            Some(mut home) => {
                *home = buf;
                home
            }
            None => Box::new(buf),
        };
        // During thread teardown the pool may be gone; the buffer is then just freed.
        let _ = POOL.try_with(|pool| {
            if let Ok(mut pool) = pool.try_borrow_mut() {
                if pool.len() < POOL_LEN {
                    pool.push(home);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_come_back_whole_and_in_order() {
        let mut s = Stack::new();
        s.push(9.0);
        s.push_slice(&[1.0, 2.0, 3.0]);
        s.push_slice(&[4.0, 5.0, 6.0]);
        let mut b = [0.0; 3];
        s.pop_into(&mut b);
        assert_eq!(b, [4.0, 5.0, 6.0]);
        s.pop_into(&mut b);
        assert_eq!(b, [1.0, 2.0, 3.0]);
        assert_eq!(s.pop(), 9.0);
        assert!(s.is_empty());
    }

    #[test]
    fn slices_of_every_short_length_and_a_long_one_come_back() {
        let mut s = Stack::new();
        let slices: Vec<Vec<f64>> = (0..=SHORT + 3)
            .map(|n| (0..n).map(|i| (100 * n + i) as f64).collect())
            .collect();
        for v in &slices {
            s.push_slice(v);
        }
        assert_eq!(s.len(), slices.iter().map(Vec::len).sum::<usize>());
        for v in slices.iter().rev() {
            let mut b = vec![-1.0; v.len()];
            s.pop_into(&mut b);
            assert_eq!(&b, v);
        }
        assert!(s.is_empty());
    }

    #[test]
    fn zeros_short_and_long() {
        for n in [0, 1, 10, 256, 257, 5000] {
            let v = zeros(n, 0.0f64);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|x| x.to_bits() == 0));
        }
        assert_eq!(zeros(3, 0.0f32), vec![0.0f32; 3]);
    }

    #[test]
    fn pops_in_reverse_and_reuses_the_buffer() {
        let mut s = Stack::new();
        for i in 0..100u32 {
            s.push(i);
        }
        assert_eq!(s.len(), 100);
        for i in (0..100u32).rev() {
            assert_eq!(s.pop(), i);
        }
        let cap = s.capacity();
        drop(s);
        let t: Stack<u32> = Stack::new();
        assert!(t.is_empty());
        assert_eq!(t.capacity(), cap);
        let f: Stack<f64> = Stack::new();
        assert_eq!(f.capacity(), 0);
    }

    #[test]
    fn a_pooled_buffer_goes_round_again_with_its_box() {
        // Made here, returned in a new box; then taken out of that box, and
        // returned in it: the capacity survives every round.
        let mut s: Stack<i64> = Stack::new();
        s.reserve(1000);
        let cap = s.capacity();
        drop(s);
        for round in 0..3 {
            let mut s: Stack<i64> = Stack::new();
            assert_eq!(s.capacity(), cap, "round {round}");
            assert!(s.is_empty(), "round {round}");
            s.push(round);
            assert_eq!(s.pop(), round);
        }
        // Two alive at once: the second gets no pooled buffer while the first
        // holds it.
        let a: Stack<i64> = Stack::new();
        let b: Stack<i64> = Stack::new();
        assert_eq!((a.capacity(), b.capacity()), (cap, 0));
    }

    #[test]
    fn reserved_pushes_fill_the_room_and_one_more_panics() {
        let mut s: Stack<f64> = Stack::new();
        s.push(-1.0);
        s.reserve(5);
        let room = s.capacity() - s.len();
        for i in 0..room {
            s.push_reserved(i as f64);
        }
        assert_eq!(s.len(), room + 1);
        let over = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.push_reserved(9.0)));
        assert!(over.is_err(), "a push past the reserved room must panic");
        assert_eq!(s.len(), room + 1);
        for i in (0..room).rev() {
            assert_eq!(s.pop(), i as f64);
        }
        assert_eq!(s.pop(), -1.0);
    }
}
