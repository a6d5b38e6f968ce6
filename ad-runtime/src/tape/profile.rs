//! The operation profiler: per operation, how often it ran and how long it
//! took, forward and backward (PyTorch's `torch.autograd.profiler.profile`).

use super::{Tape, PROFILING};
use crate::float::Float;
use std::fmt;
use std::time::{Duration, Instant};

/// One operation's line in a [`Profile`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileRow {
    /// The operation as the user calls it (`mul`, `matmul`, a custom op's name, ...).
    pub name: String,
    /// How many times it was recorded.
    pub forward_count: usize,
    /// The time spent recording it (computing values and partials).
    pub forward_time: Duration,
    /// How many of its nodes the backward passes visited.
    pub backward_count: usize,
    /// The time spent in its backward rule.
    pub backward_time: Duration,
}

impl ProfileRow {
    /// Forward plus backward time.
    pub fn total_time(&self) -> Duration {
        self.forward_time + self.backward_time
    }
}

/// What [`Tape::profile`] measured: one row per operation, sorted by total
/// time, longest first. `Display` prints it as a table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// The rows, longest total time first.
    pub rows: Vec<ProfileRow>,
}

impl Profile {
    /// The row of the operation `name`, if it ran.
    pub fn row(&self, name: &str) -> Option<&ProfileRow> {
        self.rows.iter().find(|r| r.name == name)
    }

    /// The total time over all rows.
    pub fn total_time(&self) -> Duration {
        self.rows.iter().map(ProfileRow::total_time).sum()
    }
}

fn us(d: Duration) -> String {
    format!("{:.3}us", d.as_secs_f64() * 1e6)
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total_time().as_secs_f64().max(f64::MIN_POSITIVE);
        let w = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "{:<w$}  {:>8}  {:>14}  {:>8}  {:>14}  {:>14}  {:>7}",
            "Name", "Fwd #", "Fwd total", "Bwd #", "Bwd total", "Total", "Total %"
        )?;
        writeln!(f, "{}", "-".repeat(w + 79))?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<w$}  {:>8}  {:>14}  {:>8}  {:>14}  {:>14}  {:>6.2}%",
                r.name,
                r.forward_count,
                us(r.forward_time),
                r.backward_count,
                us(r.backward_time),
                us(r.total_time()),
                100.0 * r.total_time().as_secs_f64() / total
            )?;
        }
        Ok(())
    }
}

/// The rows being collected while a profile is active.
#[derive(Default)]
pub(crate) struct ProfileData {
    rows: Vec<ProfileRow>,
}

impl ProfileData {
    fn row(&mut self, name: &str) -> &mut ProfileRow {
        let pos = match self.rows.iter().position(|r| r.name == name) {
            Some(p) => p,
            None => {
                self.rows.push(ProfileRow {
                    name: name.to_string(),
                    ..ProfileRow::default()
                });
                self.rows.len() - 1
            }
        };
        &mut self.rows[pos]
    }

    pub(crate) fn record_forward(&mut self, name: &str, dt: Duration) {
        let r = self.row(name);
        r.forward_count += 1;
        r.forward_time += dt;
    }

    pub(crate) fn record_backward(&mut self, name: &str, dt: Duration) {
        let r = self.row(name);
        r.backward_count += 1;
        r.backward_time += dt;
    }
}

impl<T: Float> Tape<T> {
    /// Runs `f` and measures, per operation, the count and time of the
    /// operations recorded and of the backward passes run inside it.
    ///
    /// ```
    /// use ad_runtime::tape::Tape;
    /// use ad_runtime::Tensor;
    /// let tape: Tape = Tape::new();
    /// let (_, prof) = tape.profile(|| {
    ///     let x = tape.tensor(Tensor::ones(&[3, 3]));
    ///     let y = x * 4.0 + 2.0;
    ///     let out = (8.0 * y.powi(2)).mean();
    ///     out.backward();
    /// });
    /// assert_eq!(prof.row("mul").unwrap().forward_count, 2);
    /// println!("{prof}");
    /// ```
    pub fn profile<R>(&self, f: impl FnOnce() -> R) -> (R, Profile) {
        struct Restore<'a, T: Float> {
            tape: &'a Tape<T>,
            was: bool,
            outer: Option<Box<ProfileData>>,
        }
        impl<T: Float> Drop for Restore<'_, T> {
            fn drop(&mut self) {
                let m = self.tape.mode.get() & !PROFILING;
                self.tape.mode.set(if self.was { m | PROFILING } else { m });
                // The arena is free here (no borrow is held across `f`); a
                // failed borrow would only lose the enclosing profile.
                if let Ok(mut g) = self.tape.graph.try_borrow_mut() {
                    g.profile = self.outer.take();
                }
            }
        }
        let outer = self.g().profile.replace(Box::default());
        let mut restore = Restore {
            tape: self,
            was: self.is_profiling(),
            outer,
        };
        self.mode.set(self.mode.get() | PROFILING);
        let r = f();
        let data = self.g().profile.take().unwrap_or_default();
        // Fold this profile into an enclosing one.
        if let Some(o) = restore.outer.as_mut() {
            for row in &data.rows {
                let dst = o.row(&row.name);
                dst.forward_count += row.forward_count;
                dst.forward_time += row.forward_time;
                dst.backward_count += row.backward_count;
                dst.backward_time += row.backward_time;
            }
        }
        drop(restore);
        let mut rows = data.rows;
        rows.sort_by(|a, b| {
            b.total_time()
                .cmp(&a.total_time())
                .then_with(|| a.name.cmp(&b.name))
        });
        (r, Profile { rows })
    }

    /// Times `f`, a forward operation, under the profile.
    pub(crate) fn time_forward<R>(&self, name: &str, f: impl FnOnce() -> R) -> R {
        let t0 = Instant::now();
        let r = f();
        self.record_forward(name, t0.elapsed());
        r
    }

    pub(crate) fn record_forward(&self, name: &str, dt: Duration) {
        if let Some(p) = self.g().profile.as_mut() {
            p.record_forward(name, dt);
        }
    }
}
