//! The generator of the random-program tester: Rust source for `#[differentiable]`
//! programs, written out by the root package's `build.rs` and compiled by
//! `tests/differential.rs`. It has no dependencies (the build script has none) and its
//! own seeded random numbers, so a seed names one set of programs on every machine.
//!
//! Every function is emitted three times from one body:
//!
//! - `NAME`, `#[differentiable]` (default routing: static path or automatic tape);
//! - `NAME_t`, `#[differentiable(tape)]`, whose calls go to the callees' `_t` twins;
//! - `NAME_p`, plain Rust, the *reference*: the same arithmetic, where every kink and
//!   branch condition reports its argument to `probe::..` (margins and a trace of the
//!   decisions taken) and every `detach` (and every argument of a helper's parameter
//!   outside its `wrt`) goes through `probe::det`, which records the value at the base
//!   point and replays it while finite differences perturb the inputs. Finite
//!   differences of the reference are therefore the gradient that `detach` and `wrt`
//!   promise, not the plain derivative of the primal.
//!
//! How inputs are kept away from kinks and singularities (the test crate draws the
//! inputs; this module decides what the arguments look like):
//!
//! - `ln log2 log10 sqrt recip powf` (and `/`, `powi` with a negative exponent) get an
//!   argument that is positive by construction: `1.0 + e * e`, `e.exp()`,
//!   `0.25 + e.sigmoid()`, `e.cosh()`, `e.softplus() + 0.2`, or a positive literal;
//! - `asin acos` get `e.tanh() * 0.9` or `e.sin() * 0.9`; `tan` gets `e.tanh() * 1.2`;
//!   `atan2(y, x)` and `hypot(y, x)` get a positive `x`; `exp exp2 sinh cosh` mostly get
//!   a bounded argument, so values stay moderate;
//! - `abs relu cbrt min max clamp`, tensor `max`/`min`/`norm`, every `if`/`while`
//!   condition and every `break`/`continue`/`return` condition can sit on a kink, so the
//!   reference reports the distance to it; the test redraws the inputs until every
//!   distance is at least a relative margin, and checks that the finite-difference
//!   evaluations took the same decisions as the base point.

use std::fmt::Write as _;

/// The generator's random numbers: SplitMix64, small and good enough to pick programs.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) / ((1u64 << 53) as f64) < p
    }

    /// One element of `xs`.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Switches for constructs that are known not to work yet, so that the default set
/// compiles and passes while the fix is under way.
#[derive(Clone, Copy, Debug, Default)]
pub struct Opts {
    /// Helpers with slice, `Vec` and array parameters, called from generated
    /// functions (`ADJOINT_DIFF_SLICE_CALLS=1`), and array literals as values and
    /// arguments.
    pub slice_calls: bool,
    /// Constant-valued expressions other than bare literals (`2.0f64.ln()`,
    /// `0.0f64.max(x)`), which the tape expansion does not lift to constants
    /// (`ADJOINT_DIFF_TAPE_CONSTS=1`).
    pub tape_consts: bool,
    /// `Tensor::ones(..)` in bodies, which the default routing sends to the static
    /// path that rejects it (`ADJOINT_DIFF_TENSOR_CONST=1`).
    pub tensor_const: bool,
    /// Helpers with a `wrt(..)` subset, called from generated functions
    /// (`ADJOINT_DIFF_WRT_CALLS=1`): the caller reads the callee's gradients shifted.
    pub wrt_calls: bool,
    /// Tensor `+=`/`-=` with a scalar or broadcast operand (`ADJOINT_DIFF_LOOP_BROADCAST=1`):
    /// in a body with loops or slices the static path returns the operand's gradient
    /// un-reduced.
    pub loop_broadcast: bool,
    /// An unused local whose derivative is NaN (`(x - 5.0).powf(2.5)`) inside
    /// branches and loops (`ADJOINT_DIFF_DEAD_NAN=1`): the static path's gradient
    /// becomes NaN.
    pub dead_nan: bool,
    /// Helpers with a tensor parameter and scalar parameters, or scalar-valued helpers
    /// with several tensor parameters, called from generated functions
    /// (`ADJOINT_DIFF_MIXED_TENSOR_CALLS=1`): the static caller loses gradients.
    pub mixed_tensor_calls: bool,
    /// Local buffers (`vec![c; n]`, `[c; N]`, array literals) written element by
    /// element in (nested) loops, `swap`, `fill`, `copy_from_slice`, element-loop
    /// copies, and read back (`ADJOINT_DIFF_BUFFERS=1`).
    pub buffers: bool,
    /// Local arrays as buffers (`[c; N]`, `[e1, e2]`) with element writes, `swap`,
    /// `fill`, `copy_from_slice` (`ADJOINT_DIFF_ARRAY_BUFFERS=1`).
    pub array_buffers: bool,
    /// Constant `match` arms (`_ => 1.5f64`) and tuple elements (`(0.5f64, x)`)
    /// (`ADJOINT_DIFF_VALUE_CONSTS=1`): the tape leaves them `f64` beside `Var`s (a
    /// compile error).
    pub value_consts: bool,
    /// Iterator chains over sequences: `sum`, `map`, `zip`, `enumerate`, `fold`,
    /// `rev`, `windows`, `chunks`, `skip`, `take`, `step_by`, `product`, and
    /// `for (j, &t) in v.iter().enumerate()` loops (`ADJOINT_DIFF_ITER_CHAINS=1`).
    pub iter_chains: bool,
    /// `clone`/`to_vec`/`&*` of sequences, tuples and their destructuring, `match` on
    /// an integer, closures defined and called in the body (`ADJOINT_DIFF_VALUES=1`).
    pub values: bool,
    /// `assert!`/`debug_assert!` statements that always hold (`ADJOINT_DIFF_DEBUG_STMTS=1`).
    pub debug_stmts: bool,
    /// A root with a `[f64; 2]` result, checked through `f_vjp` with a random seed of
    /// its own against central differences of the seed's dot product with the result
    /// (`ADJOINT_DIFF_VECTOR_RESULTS=1`); the tape has no vector seed, so no tape twin.
    /// Off by default: the one IR does not take every generated body yet.
    pub vector_results: bool,
}

/// The type of a value in a generated body.
#[derive(Clone, Debug, PartialEq)]
enum Ty {
    /// `f64`.
    S,
    /// A tensor of this shape.
    T(Vec<usize>),
    /// A sequence of this many `f64`s.
    Seq(Seq, usize),
    /// An integer (`usize`): loop counters and trip counts.
    Int,
    /// A local closure `|t: f64| -> f64`, called by name.
    Closure,
}

/// How a sequence is passed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Seq {
    Slice,
    Vec,
    Array,
}

/// Source text twice: `r` for the differentiable twins, `p` for the reference.
#[derive(Clone, Debug, Default)]
struct Code {
    r: String,
    p: String,
    /// Already a `&Tensor` (a reference parameter, or `&x` of an owned local).
    is_ref: bool,
    /// Built from literals only.
    konst: bool,
    /// A bare literal.
    lit: bool,
}

impl Code {
    fn both(s: impl Into<String>) -> Code {
        let s = s.into();
        Code {
            r: s.clone(),
            p: s,
            is_ref: false,
            konst: false,
            lit: false,
        }
    }

    /// A float literal.
    fn lit(s: &str) -> Code {
        Code {
            konst: true,
            lit: true,
            ..Code::both(s)
        }
    }

    /// The receiver form of an operand: `x` for `&x`.
    fn recv(&self) -> Code {
        let strip = |s: &str| match s.strip_prefix('&') {
            Some(n) if n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => n.to_string(),
            _ => s.to_string(),
        };
        Code {
            r: strip(&self.r),
            p: strip(&self.p),
            ..self.clone()
        }
    }

    /// A tensor operand as a `&Tensor` argument.
    fn into_ref(self) -> Code {
        if self.is_ref {
            self
        } else {
            Code::fmt("&{}", &[&self])
        }
    }

    fn new(r: impl Into<String>, p: impl Into<String>) -> Code {
        Code {
            r: r.into(),
            p: p.into(),
            is_ref: false,
            konst: false,
            lit: false,
        }
    }

    /// `fmt` with every `{}` replaced by the next part, in each twin.
    fn fmt(fmt: &str, parts: &[&Code]) -> Code {
        let mut r = String::new();
        let mut p = String::new();
        let mut it = parts.iter();
        let mut rest = fmt;
        while let Some(at) = rest.find("{}") {
            r.push_str(&rest[..at]);
            p.push_str(&rest[..at]);
            let c = it.next().expect("a part per {}");
            rest = &rest[at + 2..];
            // A method call on `&x` is a call on `x` (`&x.sin()` would borrow the result).
            let c = if rest.starts_with('.') {
                c.recv()
            } else {
                (*c).clone()
            };
            r.push_str(&c.r);
            p.push_str(&c.p);
        }
        r.push_str(rest);
        p.push_str(rest);
        Code {
            r,
            p,
            is_ref: false,
            konst: parts.iter().all(|c| c.konst),
            lit: false,
        }
    }

    fn push(&mut self, c: &Code) {
        self.r.push_str(&c.r);
        self.p.push_str(&c.p);
    }
}

/// A local or parameter in scope.
#[derive(Clone, Debug)]
struct Var {
    name: String,
    ty: Ty,
    mutable: bool,
    /// A tensor that is already a reference (`&Tensor` parameter): used as `x`, not `&x`.
    is_ref: bool,
}

/// A parameter of a generated function.
#[derive(Clone, Debug)]
struct Param {
    name: String,
    ty: Ty,
    /// A by-value `Tensor` (otherwise `&Tensor`) for tensors.
    owned: bool,
    /// Differentiated (inside `wrt`, or no `wrt` at all).
    active: bool,
}

/// A generated function's signature, as callers see it.
#[derive(Clone, Debug)]
struct Sig {
    name: String,
    params: Vec<Param>,
    ret: Ty,
    /// Whether `wrt(..)` was written.
    has_wrt: bool,
}

impl Sig {
    fn param_list(&self) -> String {
        let mut v = Vec::new();
        for p in &self.params {
            v.push(format!("{}: {}", p.name, rust_ty(&p.ty, p.owned)));
        }
        v.join(", ")
    }

    fn attr(&self, tape: bool, order2: bool) -> String {
        let mut opts = Vec::new();
        if tape {
            opts.push("tape".to_string());
        }
        if order2 {
            opts.push("order = 2".to_string());
        }
        if self.has_wrt {
            let names: Vec<&str> = self
                .params
                .iter()
                .filter(|p| p.active && is_float_like(&p.ty))
                .map(|p| p.name.as_str())
                .collect();
            opts.push(format!("wrt({})", names.join(", ")));
        }
        if opts.is_empty() {
            "#[differentiable]".to_string()
        } else {
            format!("#[differentiable({})]", opts.join(", "))
        }
    }
}

/// Whether `text` uses the identifier `name`.
fn mentions(text: &str, name: &str) -> bool {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut from = 0;
    while let Some(at) = text[from..].find(name) {
        let (s, e) = (from + at, from + at + name.len());
        if (s == 0 || !word(b[s - 1])) && (e == b.len() || !word(b[e])) {
            return true;
        }
        from = e;
    }
    false
}

fn is_float_like(t: &Ty) -> bool {
    !matches!(t, Ty::Int | Ty::Closure)
}

fn rust_ty(t: &Ty, owned: bool) -> String {
    match t {
        Ty::S => "f64".into(),
        Ty::T(_) if owned => "Tensor".into(),
        Ty::T(_) => "&Tensor".into(),
        Ty::Seq(Seq::Slice, _) => "&[f64]".into(),
        Ty::Seq(Seq::Vec, _) => "Vec<f64>".into(),
        Ty::Seq(Seq::Array, n) => format!("[f64; {n}]"),
        Ty::Int => "usize".into(),
        Ty::Closure => unreachable!("a closure is never a parameter"),
    }
}

fn shape_lit(s: &[usize]) -> String {
    let parts: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("&[{}]", parts.join(", "))
}

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

/// One function body under construction.
struct Body<'a> {
    rng: &'a mut Rng,
    opts: Opts,
    vars: Vec<Var>,
    /// Functions this body may call.
    callees: &'a [Sig],
    ret: Ty,
    fresh: usize,
    /// Inside a loop: `break`/`continue` allowed.
    in_loop: bool,
    /// The loop index and the length it is known to stay below.
    index: Option<(String, usize)>,
    /// Loops nest at most this deep.
    loop_depth: usize,
    /// Nested blocks (if, loops) around the statement being generated.
    scope: usize,
    /// The program's tensor dimensions `(m, n)`.
    dims: (usize, usize),
    /// Features used, for the report.
    features: Vec<&'static str>,
    /// No `return` statements (a vector result's tail is an array literal).
    no_return: bool,
}

impl Body<'_> {
    fn feature(&mut self, f: &'static str) {
        if !self.features.contains(&f) {
            self.features.push(f);
        }
    }

    fn fresh(&mut self, stem: &str) -> String {
        self.fresh += 1;
        format!("{stem}{}", self.fresh)
    }

    fn vars_of(&self, pred: impl Fn(&Ty) -> bool) -> Vec<Var> {
        self.vars.iter().filter(|v| pred(&v.ty)).cloned().collect()
    }

    /// A tensor variable as an operand: `x` for a `&Tensor`, `&x` for an owned one.
    fn tref(v: &Var) -> String {
        if v.is_ref {
            v.name.clone()
        } else {
            format!("&{}", v.name)
        }
    }

    // ----- scalar expressions -------------------------------------------------------

    /// A scalar expression of nesting `depth`.
    fn scalar(&mut self, depth: usize) -> Code {
        let mut c = self.scalar_any(depth);
        c.konst = !self.mentions_float(&c.r);
        if c.konst && !c.lit && !self.opts.tape_consts {
            // A constant expression: see `Opts::tape_consts`. A variable instead.
            let vs = self.vars_of(|t| *t == Ty::S);
            if !vs.is_empty() {
                return Code::both(vs[self.rng.below(vs.len())].name.clone());
            }
            if let Some(b) = self.base() {
                return Code::both(format!("{}.mean()", b.name));
            }
        }
        if c.konst && !c.lit {
            self.feature("constant-expr");
        }
        c
    }

    /// A method receiver whose arguments may be variables: not a constant, unless the
    /// tape takes constants (see `Opts::tape_consts`).
    fn recv(&mut self, c: Code) -> Code {
        let konst = !self.mentions_float(&c.r);
        if konst && !self.opts.tape_consts {
            let vs = self.vars_of(|t| *t == Ty::S);
            if !vs.is_empty() {
                return Code::both(vs[self.rng.below(vs.len())].name.clone());
            }
            if let Some(b) = self.base() {
                return Code::both(format!("{}.mean()", b.name));
            }
        }
        c
    }

    /// Whether `text` uses a float, tensor or sequence variable (on the tape, a `Var`;
    /// integers stay integers).
    fn mentions_float(&self, text: &str) -> bool {
        self.vars
            .iter()
            .any(|v| is_float_like(&v.ty) && mentions(text, &v.name))
    }

    fn scalar_any(&mut self, depth: usize) -> Code {
        if depth == 0 || self.rng.chance(0.2) {
            return self.scalar_leaf();
        }
        let d = depth - 1;
        if let Some(c) = self.new_scalar(d) {
            return c;
        }
        match self.rng.below(25) {
            0..=3 => {
                let a = self.scalar(d);
                let b = self.scalar(d);
                let op = *self.rng.pick(&["+", "-", "*", "+", "*"]);
                // `a - a` is exactly 0: a kink argument that never leaves its kink.
                let op = if op == "-" && a.r == b.r { "+" } else { op };
                self.feature("arith");
                Code::fmt(&format!("({{}} {op} {{}})"), &[&a, &b])
            }
            4 => {
                let a = self.scalar(d);
                let b = self.positive(d);
                self.feature("div");
                Code::fmt("({} / {})", &[&a, &b])
            }
            5 => {
                let a = self.scalar(d);
                self.feature("neg");
                Code::fmt("(-{})", &[&a])
            }
            6..=9 => self.smooth_unary(d),
            10 => self.domain_unary(d),
            11 | 12 => self.kink_unary(d),
            13 => self.binary_fn(d),
            14 => {
                let a = self.scalar(d);
                let n = *self.rng.pick(&[0, 1, 2, 3]);
                self.feature("powi");
                Code::fmt(&format!("{{}}.powi({n})"), &[&a])
            }
            15 => {
                // A negative power of a positive base.
                let a = self.positive(d);
                let n = *self.rng.pick(&[-1, -2]);
                self.feature("powi");
                Code::fmt(&format!("{{}}.powi({n})"), &[&a])
            }
            16 | 22 | 23 if self.has_tensor() => self.reduction(d),
            17 | 18 => {
                if let Some(c) = self.scalar_call(d) {
                    c
                } else {
                    self.scalar_leaf()
                }
            }
            19 => {
                let c = self.cond(d);
                let a = self.scalar(d);
                let b = self.scalar(d);
                self.feature("if-expr");
                Code::fmt("(if {} { {} } else { {} })", &[&c, &a, &b])
            }
            20 => {
                let a = self.scalar(d);
                self.feature("detach");
                Code::new(format!("{}.detach()", a.r), format!("probe::det({})", a.p))
            }
            21 => {
                let a = self.scalar(d);
                let a = self.recv(a);
                let b = self.scalar(d);
                let c = self.scalar(d);
                self.feature("mul_add");
                Code::fmt("{}.mul_add({}, {})", &[&a, &b, &c])
            }
            _ => self.scalar_leaf(),
        }
    }

    /// Whether the body has the program's base tensor (shape `[m, n]`), from which
    /// every shape of the family can be built.
    fn has_tensor(&self) -> bool {
        self.base().is_some()
    }

    fn base(&self) -> Option<Var> {
        let (m, n) = self.dims;
        self.vars
            .iter()
            .find(|v| v.ty == Ty::T(vec![m, n]) && (v.is_ref || v.name.starts_with('w')))
            .cloned()
    }

    /// The shapes of the program's tensors: `[m, n]`, `[n, m]`, `[m]`, `[n]`.
    fn family(&self) -> Vec<Vec<usize>> {
        let (m, n) = self.dims;
        vec![vec![m, n], vec![n, m], vec![m], vec![n]]
    }

    fn scalar_leaf(&mut self) -> Code {
        let mut options: Vec<Code> = Vec::new();
        for v in self.vars_of(|t| *t == Ty::S) {
            options.push(Code::both(v.name.clone()));
            options.push(Code::both(v.name.clone()));
        }
        if let Some((i, n)) = self.index.clone() {
            for v in self.vars_of(|t| matches!(t, Ty::Seq(_, m) if *m >= n)) {
                options.push(Code::both(format!("{}[{i}]", v.name)));
                options.push(Code::both(format!("{}[{i}]", v.name)));
            }
            if self.rng.chance(0.3) {
                options.push(Code::both(format!("({i} as f64)")));
            }
        }
        for v in self.vars_of(|t| matches!(t, Ty::Seq(..))) {
            let Ty::Seq(_, n) = v.ty else { unreachable!() };
            let k = self.rng.below(n);
            options.push(Code::both(format!("{}[{k}]", v.name)));
        }
        if options.is_empty() || self.rng.chance(0.12) {
            let c = *self
                .rng
                .pick(&["0.5f64", "1.5f64", "(-0.75f64)", "2.0f64", "0.3f64"]);
            return Code::lit(c);
        }
        let i = self.rng.below(options.len());
        options.swap_remove(i)
    }

    /// An expression that is at least about 0.1, by construction.
    fn positive(&mut self, depth: usize) -> Code {
        if depth == 0 {
            let c: &&str = self.rng.pick(&["1.5f64", "0.8f64", "2.5f64"]);
            return Code::lit(c);
        }
        let a = self.scalar(depth - 1);
        match self.rng.below(6) {
            0 => Code::fmt("(1.0 + {} * {})", &[&a, &a]),
            1 => Code::fmt("{}.tanh().exp()", &[&a]),
            2 => Code::fmt("(0.25 + {}.sigmoid())", &[&a]),
            3 => Code::new(
                format!("{}.sin().cosh()", a.recv().r),
                format!("probe::big({}, 1e3).sin().cosh()", a.p),
            ),
            4 => Code::fmt("({}.softplus() + 0.2)", &[&a]),
            _ => Code::fmt("({}.powi(2) + 0.5)", &[&a]),
        }
    }

    /// An expression in (-0.9, 0.9), by construction.
    fn bounded(&mut self, depth: usize) -> Code {
        let a = self.scalar(depth.saturating_sub(1));
        match self.rng.below(3) {
            0 => Code::fmt("({}.tanh() * 0.9)", &[&a]),
            1 => Code::new(
                format!("({}.sin() * 0.9)", a.recv().r),
                format!("(probe::big({}, 1e3).sin() * 0.9)", a.p),
            ),
            _ => Code::fmt("({}.sigmoid() - 0.5)", &[&a]),
        }
    }

    fn smooth_unary(&mut self, d: usize) -> Code {
        let f = *self.rng.pick(&[
            "sin", "cos", "tanh", "atan", "sigmoid", "softplus", "exp", "exp2", "sinh", "cosh",
        ]);
        self.feature(f);
        let a = if matches!(f, "exp" | "exp2" | "sinh" | "cosh") && self.rng.chance(0.7) {
            self.bounded(d)
        } else {
            self.scalar(d)
        };
        // The reference rejects large arguments of periodic and exponential functions,
        // which would amplify rounding beyond any tolerance.
        match f {
            "sin" | "cos" => Code::new(
                format!("{}.{f}()", a.r),
                format!("probe::big({}, 1e3).{f}()", a.p),
            ),
            "exp" | "exp2" | "sinh" | "cosh" => Code::new(
                format!("{}.{f}()", a.r),
                format!("probe::big({}, 50.0).{f}()", a.p),
            ),
            _ => Code::fmt(&format!("{{}}.{f}()"), &[&a]),
        }
    }

    fn domain_unary(&mut self, d: usize) -> Code {
        let f = *self.rng.pick(&[
            "ln", "log2", "log10", "sqrt", "recip", "asin", "acos", "tan", "powf",
        ]);
        self.feature(f);
        match f {
            "asin" | "acos" => {
                let a = self.bounded(d);
                Code::fmt(&format!("{{}}.{f}()"), &[&a])
            }
            "tan" => {
                let a = self.scalar(d);
                Code::fmt("({}.tanh() * 1.2).tan()", &[&a])
            }
            "powf" => {
                let a = self.positive(d);
                let vs = self.vars_of(|t| *t == Ty::S);
                let a = if self.mentions_float(&a.r) || self.opts.tape_consts || vs.is_empty() {
                    a
                } else {
                    // A constant base with a variable exponent: a positive variable
                    // base instead (see `Opts::tape_consts`).
                    let v = Code::both(vs[self.rng.below(vs.len())].name.clone());
                    Code::fmt("(1.0 + {} * {})", &[&v, &v])
                };
                let e = if self.rng.chance(0.5) {
                    Code::both(*self.rng.pick(&["1.5", "-0.5", "2.5", "0.7"]))
                } else {
                    self.bounded(d)
                };
                Code::fmt("{}.powf({})", &[&a, &e])
            }
            _ => {
                let a = self.positive(d);
                Code::fmt(&format!("{{}}.{f}()"), &[&a])
            }
        }
    }

    fn kink_unary(&mut self, d: usize) -> Code {
        let f = *self.rng.pick(&["abs", "relu", "cbrt", "clamp"]);
        self.feature(f);
        let a = self.scalar(d);
        match f {
            "clamp" => {
                let (lo, hi) = *self
                    .rng
                    .pick(&[("-0.5", "0.5"), ("-1.0", "0.25"), ("0.1", "2.0")]);
                Code::new(
                    format!("{}.clamp({lo}, {hi})", a.r),
                    format!("probe::clamp({}, {lo}, {hi})", a.p),
                )
            }
            _ => Code::new(format!("{}.{f}()", a.r), format!("probe::k({}).{f}()", a.p)),
        }
    }

    fn binary_fn(&mut self, d: usize) -> Code {
        let f = *self.rng.pick(&["atan2", "hypot", "min", "max"]);
        self.feature(f);
        let a = self.scalar(d);
        let a = self.recv(a);
        match f {
            "atan2" | "hypot" => {
                let b = self.positive(d);
                Code::fmt(&format!("{{}}.{f}({{}})"), &[&a, &b])
            }
            _ => {
                let b = self.scalar(d);
                // `x.max(x)` sits on its kink everywhere.
                let b = if b.r == a.r { Code::lit("0.3f64") } else { b };
                Code::new(
                    format!("{}.{f}({})", a.r, b.r),
                    format!("probe::{f}({}, {})", a.p, b.p),
                )
            }
        }
    }

    /// A scalar from a tensor: a full reduction or a dot product.
    fn reduction(&mut self, d: usize) -> Code {
        let shape = self.tensor_shape();
        let t = self.tensor(&shape, d);
        let f = *self
            .rng
            .pick(&["sum", "mean", "norm", "max", "min", "dot", "sum"]);
        self.feature(match f {
            "sum" => "t.sum",
            "mean" => "t.mean",
            "norm" => "t.norm",
            "max" => "t.max",
            "min" => "t.min",
            _ => "t.dot",
        });
        match f {
            "norm" => Code::new(
                format!("{}.norm()", t.recv().r),
                format!("probe::k({}.norm())", t.recv().p),
            ),
            "max" | "min" => Code::new(
                format!("{}.{f}()", t.recv().r),
                format!("probe::t{f}({})", t.into_ref().p),
            ),
            "dot" => {
                let n = numel(&shape);
                let a = Code::fmt(&format!("{{}}.reshape(&[{n}])"), &[&t]);
                let u = self.tensor(&[n], d).into_ref();
                Code::fmt("{}.dot({})", &[&a, &u])
            }
            _ => Code::fmt(&format!("{{}}.{f}()"), &[&t]),
        }
    }

    fn tensor_shape(&mut self) -> Vec<usize> {
        let ts = self.vars_of(|t| matches!(t, Ty::T(_)));
        if !ts.is_empty() && self.rng.chance(0.8) {
            let v = &ts[self.rng.below(ts.len())];
            if let Ty::T(s) = &v.ty {
                return s.clone();
            }
        }
        let f = self.family();
        f[self.rng.below(f.len())].clone()
    }

    /// A condition with a margin the reference can measure: `a > b` or `a < b`.
    fn cond(&mut self, d: usize) -> Code {
        let a = self.scalar(d.min(2));
        let b = if self.rng.chance(0.5) {
            Code::both(*self.rng.pick(&["0.0", "0.5", "-0.3", "1.0"]))
        } else {
            self.scalar(d.min(1))
        };
        let b = if b.r == a.r { Code::both("0.25") } else { b };
        let (op, f) = *self.rng.pick(&[(">", "gt"), ("<", "lt")]);
        Code::new(
            format!("{} {op} {}", a.r, b.r),
            format!("probe::{f}({}, {})", a.p, b.p),
        )
    }

    // ----- tensor expressions -------------------------------------------------------

    /// A tensor expression of shape `shape`, as an operand (a reference or an owned
    /// temporary in parentheses), so it can stand on either side of an operator.
    fn tensor(&mut self, shape: &[usize], depth: usize) -> Code {
        if depth == 0 || self.rng.chance(0.2) {
            return self.tensor_leaf(shape, depth);
        }
        let d = depth - 1;
        match self.rng.below(16) {
            0..=3 => {
                // Elementwise with a broadcast operand (or the same shape).
                let a = self.tensor(shape, d);
                let bs = self.broadcast_operand(shape);
                let b = self.tensor(&bs, d);
                let op = *self.rng.pick(&["+", "-", "*"]);
                let op = if op == "-" && a.r == b.r { "+" } else { op };
                if bs != shape {
                    self.feature("broadcast");
                }
                self.feature("t.arith");
                if self.rng.chance(0.5) {
                    Code::fmt(&format!("({{}} {op} {{}})"), &[&a, &b])
                } else {
                    Code::fmt(&format!("({{}} {op} {{}})"), &[&b, &a])
                }
            }
            4 => {
                let a = self.tensor(shape, d);
                let b = self.positive_tensor(shape, d);
                self.feature("t.div");
                Code::fmt("({} / {})", &[&a, &b])
            }
            5 | 6 => {
                // With a scalar on either side.
                let a = self.tensor(shape, d);
                let s = self.scalar(d.min(2));
                self.feature("t.scalar");
                match self.rng.below(5) {
                    0 => Code::fmt("({} * {})", &[&s, &a]),
                    1 => Code::fmt("({} + {})", &[&a, &s]),
                    2 => Code::fmt("({} - {})", &[&s, &a]),
                    3 => {
                        let p = self.positive(d.min(1));
                        Code::fmt("({} / {})", &[&a, &p])
                    }
                    _ => Code::fmt("({} * {})", &[&a, &s]),
                }
            }
            7 | 8 => {
                let a = self.tensor(shape, d);
                let f = *self.rng.pick(&[
                    "sin", "cos", "tanh", "atan", "sigmoid", "softplus", "exp", "neg",
                ]);
                self.feature("t.unary");
                let limit = match f {
                    "sin" | "cos" => Some("1e3"),
                    "exp" => Some("50.0"),
                    _ => None,
                };
                match (f, limit) {
                    ("neg", _) => Code::fmt("(-{})", &[&a]),
                    (_, Some(l)) => Code::new(
                        format!("{}.{f}()", a.recv().r),
                        format!("probe::bigt({}, {l}).{f}()", a.p),
                    ),
                    _ => Code::fmt(&format!("{{}}.{f}()"), &[&a]),
                }
            }
            9 => {
                let f = *self.rng.pick(&[
                    "ln", "sqrt", "recip", "log2", "log10", "asin", "acos", "tan", "powf", "exp2",
                    "sinh", "cosh", "cbrt", "powi",
                ]);
                self.feature("t.domain");
                match f {
                    "asin" | "acos" | "tan" => {
                        let a = self.tensor(shape, d);
                        Code::fmt(&format!("({{}}.tanh() * 0.9).{f}()"), &[&a])
                    }
                    "exp2" | "sinh" | "cosh" => {
                        let a = self.tensor(shape, d);
                        Code::fmt(&format!("{{}}.tanh().{f}()"), &[&a])
                    }
                    "powf" => {
                        let a = self.positive_tensor(shape, d);
                        let e = if self.rng.chance(0.5) {
                            Code::both("1.5")
                        } else {
                            self.bounded(d.min(1))
                        };
                        Code::fmt("{}.powf({})", &[&a, &e])
                    }
                    "powi" => {
                        let a = self.tensor(shape, d);
                        let n = *self.rng.pick(&[2, 3]);
                        Code::fmt(&format!("{{}}.powi({n})"), &[&a])
                    }
                    _ => {
                        let a = self.positive_tensor(shape, d);
                        Code::fmt(&format!("{{}}.{f}()"), &[&a])
                    }
                }
            }
            10 => {
                let a = self.tensor(shape, d);
                let f = *self.rng.pick(&["abs", "relu", "clamp"]);
                self.feature("t.kink");
                match f {
                    "clamp" => Code::new(
                        format!("{}.clamp(-0.5, 0.75)", a.recv().r),
                        format!("probe::tclamp({}, -0.5, 0.75)", a.p),
                    ),
                    _ => Code::new(
                        format!("{}.{f}()", a.recv().r),
                        format!("probe::kt({}).{f}()", a.p),
                    ),
                }
            }
            11 => self.tensor_layout(shape, d),
            12 => self.tensor_matmul(shape, d),
            13 => self.tensor_axis(shape, d),
            14 => {
                if let Some(c) = self.tensor_call(shape, d) {
                    c
                } else {
                    self.tensor_leaf(shape, d)
                }
            }
            _ => {
                let a = self.tensor(shape, d);
                self.feature("t.detach");
                Code::new(
                    format!("{}.detach()", a.recv().r),
                    format!("probe::det_t({})", a.p),
                )
            }
        }
    }

    fn broadcast_operand(&mut self, shape: &[usize]) -> Vec<usize> {
        let mut options = vec![shape.to_vec()];
        if shape.len() == 2 && shape[0] > 1 && shape[1] > 1 {
            options.push(vec![shape[1]]);
            options.push(vec![1, shape[1]]);
            options.push(vec![shape[0], 1]);
        }
        options.swap_remove(self.rng.below(options.len()))
    }

    fn positive_tensor(&mut self, shape: &[usize], d: usize) -> Code {
        let a = self.tensor(shape, d);
        match self.rng.below(4) {
            0 => Code::fmt("{}.tanh().exp()", &[&a]),
            1 => Code::fmt("({} * {} + 0.5)", &[&a, &a]),
            2 => Code::fmt("({}.sigmoid() + 0.2)", &[&a]),
            _ => Code::fmt("({}.softplus() + 0.1)", &[&a]),
        }
    }

    fn tensor_leaf(&mut self, shape: &[usize], depth: usize) -> Code {
        let want = Ty::T(shape.to_vec());
        let vs = self.vars_of(|t| *t == want);
        if !vs.is_empty() && (self.rng.chance(0.85) || depth == 0) {
            let v = &vs[self.rng.below(vs.len())];
            let mut c = Code::both(Self::tref(v));
            c.is_ref = true;
            return c;
        }
        self.derive(shape)
    }

    /// A tensor of `shape` built from the variables in scope (the base tensor `[m, n]`
    /// is always there): a transpose, a reshape, an axis sum, an outer product.
    fn derive(&mut self, shape: &[usize]) -> Code {
        let all = self.vars_of(|t| matches!(t, Ty::T(_)));
        let want = Ty::T(shape.to_vec());
        if let Some(v) = all.iter().find(|v| v.ty == want) {
            let mut c = Code::both(Self::tref(v));
            c.is_ref = true;
            return c;
        }
        if self.opts.tensor_const && self.rng.chance(0.3) {
            let s = self.scalar(1);
            self.feature("t.ones");
            return Code::fmt(
                &format!("(Tensor::ones({}) * {{}})", shape_lit(shape)),
                &[&s],
            );
        }
        let rev: Vec<usize> = shape.iter().rev().copied().collect();
        if shape.len() == 2 {
            if let Some(v) = all.iter().find(|v| v.ty == Ty::T(rev.clone())) {
                self.feature("t.t");
                return Code::both(format!("{}.t()", v.name));
            }
        }
        if let Some(v) = all
            .iter()
            .find(|v| matches!(&v.ty, Ty::T(s) if numel(s) == numel(shape) && s.len() == 2))
        {
            self.feature("t.reshape");
            return Code::both(format!("{}.reshape({})", v.name, shape_lit(shape)));
        }
        match shape {
            [d] => {
                let d = *d;
                let base = self.base().expect("a base tensor");
                let Ty::T(bs) = &base.ty else { unreachable!() };
                let (m, n) = (bs[0], bs[1]);
                let f = *self.rng.pick(&["sum_axis", "mean_axis"]);
                if n == d {
                    Code::both(format!("{}.{f}(0)", base.name))
                } else if m == d {
                    Code::both(format!("{}.{f}(1)", base.name))
                } else {
                    unreachable!("a shape outside the family")
                }
            }
            [1, d] | [d, 1] => {
                let d = *d;
                let v = self.derive(&[d]);
                Code::fmt(&format!("{{}}.reshape({})", shape_lit(shape)), &[&v])
            }
            [a, b] => {
                let (a, b) = (*a, *b);
                let u = self.derive(&[a]);
                let v = self.derive(&[b]);
                self.feature("t.outer");
                Code::fmt(
                    &format!("{{}}.reshape(&[{a}, 1]).matmul(&{{}}.reshape(&[1, {b}]))"),
                    &[&u, &v],
                )
            }
            _ => unreachable!(),
        }
    }

    fn tensor_layout(&mut self, shape: &[usize], d: usize) -> Code {
        if shape.len() == 2 && self.rng.chance(0.5) {
            let a = self.tensor(&[shape[1], shape[0]], d);
            self.feature("t.t");
            return Code::fmt("{}.t()", &[&a]);
        }
        let n = numel(shape);
        let mut others: Vec<Vec<usize>> = self
            .family()
            .into_iter()
            .filter(|s| numel(s) == n)
            .collect();
        if others.is_empty() {
            others.push(shape.to_vec());
        }
        let from = others[self.rng.below(others.len())].clone();
        let a = self.tensor(&from, d);
        self.feature("t.reshape");
        Code::fmt(&format!("{{}}.reshape({})", shape_lit(shape)), &[&a])
    }

    fn tensor_matmul(&mut self, shape: &[usize], d: usize) -> Code {
        let k = if self.rng.chance(0.5) {
            self.dims.0
        } else {
            self.dims.1
        };
        self.feature("t.matmul");
        let (ls, rs) = match shape {
            [m, n] => (vec![*m, k], vec![k, *n]),
            [m] => {
                if self.rng.chance(0.5) {
                    (vec![*m, k], vec![k])
                } else {
                    (vec![k], vec![k, *m])
                }
            }
            _ => unreachable!(),
        };
        let a = self.tensor(&ls, d);
        let b = self.tensor(&rs, d).into_ref();
        Code::fmt("{}.matmul({})", &[&a, &b])
    }

    fn tensor_axis(&mut self, shape: &[usize], d: usize) -> Code {
        if shape.len() != 1 {
            return self.tensor_leaf(shape, d);
        }
        let other = if self.rng.chance(0.5) {
            self.dims.0
        } else {
            self.dims.1
        };
        let axis = self.rng.below(2);
        let from = if axis == 0 {
            vec![other, shape[0]]
        } else {
            vec![shape[0], other]
        };
        let a = self.tensor(&from, d);
        let f = *self.rng.pick(&["sum_axis", "mean_axis"]);
        self.feature(if f == "sum_axis" {
            "t.sum_axis"
        } else {
            "t.mean_axis"
        });
        Code::fmt(&format!("{{}}.{f}({axis})"), &[&a])
    }

    // ----- calls --------------------------------------------------------------------

    /// The arguments of a call of `sig`: each active parameter gets an expression,
    /// each parameter outside the callee's `wrt` one that the reference freezes.
    fn args(&mut self, sig: &Sig, d: usize) -> Code {
        let mut out = Code::default();
        for (i, p) in sig.params.iter().enumerate() {
            if i > 0 {
                out.push(&Code::both(", "));
            }
            let a = match &p.ty {
                Ty::S => self.scalar(d),
                Ty::T(s) => {
                    let t = self.tensor(s, d);
                    if p.owned {
                        // A by-value parameter takes an owned temporary.
                        Code::fmt("({} * 1.0)", &[&t])
                    } else {
                        t.into_ref()
                    }
                }
                Ty::Seq(kind, n) => self.seq_arg(*kind, *n, d),
                Ty::Int => Code::both("2"),
                Ty::Closure => unreachable!("a closure is never a parameter"),
            };
            if p.active {
                out.push(&a);
            } else {
                let f = if matches!(p.ty, Ty::T(_)) {
                    "det_t"
                } else {
                    "det"
                };
                out.push(&Code::new(a.r, format!("probe::{f}({})", a.p)));
            }
        }
        out
    }

    /// A sequence argument: a variable of the right length, or an array literal.
    fn seq_arg(&mut self, kind: Seq, n: usize, d: usize) -> Code {
        let vs = self.vars_of(|t| matches!(t, Ty::Seq(_, m) if *m == n));
        let v = if vs.is_empty() || self.rng.chance(0.3) {
            None
        } else {
            Some(vs[self.rng.below(vs.len())].clone())
        };
        let lit = |b: &mut Self| {
            let mut c = Code::both("[");
            for i in 0..n {
                if i > 0 {
                    c.push(&Code::both(", "));
                }
                let e = b.scalar(d.min(2));
                c.push(&e);
            }
            c.push(&Code::both("]"));
            b.feature("array-literal");
            c
        };
        match (kind, v) {
            (Seq::Slice, Some(v)) => {
                if matches!(v.ty, Ty::Seq(Seq::Slice, _)) {
                    Code::both(v.name.clone())
                } else {
                    Code::both(format!("&{}", v.name))
                }
            }
            (Seq::Slice, None) => Code::fmt("&{}", &[&lit(self)]),
            (Seq::Vec, Some(v)) => Code::both(format!("{}.to_vec()", v.name)),
            (Seq::Vec, None) => Code::fmt("{}.to_vec()", &[&lit(self)]),
            (Seq::Array, Some(v)) if matches!(v.ty, Ty::Seq(Seq::Array, _)) => {
                Code::both(v.name.clone())
            }
            (Seq::Array, _) => lit(self),
        }
    }

    fn callable(&self, pred: impl Fn(&Sig) -> bool) -> Vec<Sig> {
        let tensors = self.has_tensor();
        self.callees
            .iter()
            .filter(|s| pred(s))
            .filter(|s| tensors || !s.params.iter().any(|p| matches!(p.ty, Ty::T(_))))
            .cloned()
            .collect()
    }

    /// A call of a scalar helper whose parameters are all scalars, inside an expression.
    fn scalar_call(&mut self, d: usize) -> Option<Code> {
        let cs = self.callable(|s| s.ret == Ty::S && s.params.iter().all(|p| p.ty == Ty::S));
        if cs.is_empty() {
            return None;
        }
        let sig = cs[self.rng.below(cs.len())].clone();
        let args = self.args(&sig, d.min(2));
        self.feature("call-scalar");
        Some(Code::new(
            format!("__CALL__{}({})", sig.name, args.r),
            format!("{}_p({})", sig.name, args.p),
        ))
    }

    /// A call of a helper with a tensor result, bound by a `let` first (the statement
    /// form the macro asks for) is done in [`Body::call_stmt`]; here none.
    fn tensor_call(&mut self, _shape: &[usize], _d: usize) -> Option<Code> {
        None
    }

    /// `let y: T = helper(args);` for any helper.
    fn call_stmt(&mut self) -> Option<Code> {
        let cs = self.callable(|_| true);
        if cs.is_empty() {
            return None;
        }
        let sig = cs[self.rng.below(cs.len())].clone();
        let args = self.args(&sig, 2);
        let name = self.fresh("c");
        let ann = match &sig.ret {
            Ty::S => "f64",
            _ => "Tensor",
        };
        for p in &sig.params {
            match p.ty {
                Ty::T(_) => self.feature("call-tensor-param"),
                Ty::Seq(Seq::Slice, _) => self.feature("call-slice-param"),
                Ty::Seq(Seq::Vec, _) => self.feature("call-vec-param"),
                Ty::Seq(Seq::Array, _) => self.feature("call-array-param"),
                _ => {}
            }
        }
        if sig.has_wrt {
            self.feature("call-wrt-subset");
        }
        if matches!(sig.ret, Ty::T(_)) {
            self.feature("call-tensor-result");
        }
        self.vars.push(Var {
            name: name.clone(),
            ty: sig.ret.clone(),
            mutable: false,
            is_ref: false,
        });
        Some(Code::new(
            format!("let {name}: {ann} = __CALL__{}({});\n", sig.name, args.r),
            format!("let {name}: {ann} = {}_p({});\n", sig.name, args.p),
        ))
    }

    // ----- statements ---------------------------------------------------------------

    /// An expression of type `ty` (scalar or tensor).
    fn expr(&mut self, ty: &Ty, d: usize) -> Code {
        match ty {
            Ty::S => self.scalar(d),
            Ty::T(s) => {
                let s = s.clone();
                let e = self.tensor(&s, d);
                // Owned: a bare `&x` becomes a new tensor.
                if e.is_ref {
                    Code::fmt("({} * 1.0)", &[&e])
                } else {
                    e
                }
            }
            _ => unreachable!(),
        }
    }

    fn stmts(&mut self, n: usize, out: &mut Code) {
        for _ in 0..n {
            let s = self.stmt();
            out.push(&s);
        }
    }

    fn stmt(&mut self) -> Code {
        let muts: Vec<Var> = self
            .vars
            .iter()
            .filter(|v| v.mutable && matches!(v.ty, Ty::S | Ty::T(_)))
            .cloned()
            .collect();
        if let Some(c) = self.new_stmt() {
            return c;
        }
        let choice = self.rng.below(20);
        match choice {
            0..=4 => self.let_stmt(),
            5..=7 if !muts.is_empty() => {
                let v = muts[self.rng.below(muts.len())].clone();
                self.assign(&v)
            }
            8 if self.loop_depth < 2 => self.for_loop(),
            9 if self.loop_depth < 2 => self.while_loop(),
            10 if !muts.is_empty() => self.if_stmt(&muts),
            11..=13 => self.call_stmt().unwrap_or_else(|| self.let_stmt()),
            15 if self.in_loop => {
                let c = self.cond(2);
                let kw = *self.rng.pick(&["break", "continue"]);
                self.feature(if kw == "break" { "break" } else { "continue" });
                Code::fmt(&format!("if {{}} {{ {kw}; }}\n"), &[&c])
            }
            14 if !self.no_return && (self.ret == Ty::S || self.rng.chance(0.5)) => {
                let c = self.cond(2);
                let ret = self.ret.clone();
                let e = self.expr(&ret, 2);
                self.feature("early-return");
                Code::fmt("if {} { return {}; }\n", &[&c, &e])
            }
            _ => self.let_stmt(),
        }
    }

    fn let_stmt(&mut self) -> Code {
        // A local array literal (see `Opts::slice_calls`); the draw is only made under
        // the switch, so the default set does not depend on it.
        if self.opts.slice_calls && self.rng.chance(0.15) {
            let n = 2 + self.rng.below(2);
            let mut c = Code::both("[");
            for i in 0..n {
                if i > 0 {
                    c.push(&Code::both(", "));
                }
                let e = self.scalar(2);
                c.push(&e);
            }
            c.push(&Code::both("]"));
            self.feature("array-literal");
            let name = self.fresh("a");
            self.vars.push(Var {
                name: name.clone(),
                ty: Ty::Seq(Seq::Array, n),
                mutable: false,
                is_ref: false,
            });
            return Code::fmt(&format!("let {name} = {{}};\n"), &[&c]);
        }
        let ty = if self.has_tensor() && self.rng.chance(0.4) {
            Ty::T(self.tensor_shape())
        } else {
            Ty::S
        };
        // Depth 2 or 3: the size of the generated code decides the test's compile time.
        let depth = 2 + self.rng.below(2);
        let e = self.expr(&ty, depth);
        let mutable = self.rng.chance(0.5);
        // Shadow an existing local or parameter of the same type now and then.
        // Only plain names (not `p.0`, `q[1]`) can be shadowed.
        let same: Vec<Var> = self
            .vars
            .iter()
            .filter(|v| v.ty == ty && v.name.chars().all(|c| c.is_ascii_alphanumeric()))
            .cloned()
            .collect();
        let name = if !same.is_empty() && self.scope == 0 && self.rng.chance(0.25) {
            self.feature("shadowing");
            let v = same[self.rng.below(same.len())].name.clone();
            self.vars.retain(|x| x.name != v);
            v
        } else {
            self.fresh(if ty == Ty::S { "s" } else { "u" })
        };
        self.vars.push(Var {
            name: name.clone(),
            ty,
            mutable,
            is_ref: false,
        });
        let kw = if mutable { "let mut" } else { "let" };
        Code::fmt(&format!("{kw} {name} = {{}};\n"), &[&e])
    }

    fn assign(&mut self, v: &Var) -> Code {
        match &v.ty {
            Ty::S => match self.rng.below(5) {
                0 => {
                    let e = self.scalar(3);
                    self.feature("mutation");
                    Code::fmt(&format!("{} = {{}};\n", v.name), &[&e])
                }
                1 => {
                    let e = self.positive(2);
                    self.feature("compound");
                    Code::fmt(&format!("{} /= {{}};\n", v.name), &[&e])
                }
                k => {
                    let e = self.scalar(2);
                    let op = ["+=", "-=", "*="][k - 2];
                    self.feature("compound");
                    let e = if op == "*=" {
                        Code::fmt("({}).tanh()", &[&e])
                    } else {
                        e
                    };
                    Code::fmt(&format!("{} {op} {{}};\n", v.name), &[&e])
                }
            },
            Ty::T(s) => {
                let s = s.clone();
                if self.rng.chance(0.4) {
                    let e = self.expr(&Ty::T(s), 2);
                    self.feature("t.mutation");
                    Code::fmt(&format!("{} = {{}};\n", v.name), &[&e])
                } else {
                    let op = *self.rng.pick(&["+=", "-=", "*="]);
                    self.feature("t.compound");
                    // See `Opts::loop_broadcast`.
                    let same_shape = op != "*=" && !self.opts.loop_broadcast;
                    let e = if same_shape {
                        self.tensor(&s, 2)
                    } else if self.rng.chance(0.3) {
                        self.scalar(1)
                    } else {
                        let bs = self.broadcast_operand(&s);
                        self.tensor(&bs, 2)
                    };
                    // `x -= &x` borrows `x` twice: an owned operand instead.
                    let e = if e.is_ref {
                        Code::fmt("({} * 1.0)", &[&e])
                    } else {
                        e
                    };
                    Code::fmt(&format!("{} {op} {{}};\n", v.name), &[&e])
                }
            }
            _ => unreachable!(),
        }
    }

    /// Runs `f` in a nested scope: locals it declares are dropped afterwards.
    fn scoped<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let saved = self.vars.clone();
        self.scope += 1;
        let r = f(self);
        self.scope -= 1;
        self.vars = saved;
        r
    }

    fn block(&mut self, n: usize, muts: &[Var]) -> Code {
        self.scoped(|b| {
            let mut out = Code::default();
            b.stmts(n, &mut out);
            let dead = b.dead_nan();
            out.push(&dead);
            // Make sure the block changes something carried out of it.
            if !muts.is_empty() {
                let v = muts[b.rng.below(muts.len())].clone();
                let a = b.assign(&v);
                out.push(&a);
            }
            out
        })
    }

    fn if_stmt(&mut self, muts: &[Var]) -> Code {
        let c = self.cond(2);
        let then = self.block(1, muts);
        self.feature("if");
        if self.rng.chance(0.6) {
            let els = self.block(1, muts);
            Code::fmt("if {} {\n{}} else {\n{}}\n", &[&c, &then, &els])
        } else {
            Code::fmt("if {} {\n{}}\n", &[&c, &then])
        }
    }

    /// A loop-carried accumulator, declared before a loop when none is in scope.
    fn carried(&mut self, pre: &mut Code) -> Vec<Var> {
        let muts: Vec<Var> = self
            .vars
            .iter()
            .filter(|v| v.mutable && matches!(v.ty, Ty::S | Ty::T(_)))
            .cloned()
            .collect();
        if !muts.is_empty() && self.rng.chance(0.6) {
            return muts;
        }
        let ty = if self.has_tensor() && self.rng.chance(0.4) {
            Ty::T(self.tensor_shape())
        } else {
            Ty::S
        };
        let e = self.expr(&ty, 2);
        let name = self.fresh("acc");
        pre.push(&Code::fmt(&format!("let mut {name} = {{}};\n"), &[&e]));
        let v = Var {
            name,
            ty,
            mutable: true,
            is_ref: false,
        };
        self.vars.push(v.clone());
        vec![v]
    }

    fn for_loop(&mut self) -> Code {
        let mut pre = Code::default();
        let muts = self.carried(&mut pre);
        let seqs = self.vars_of(|t| matches!(t, Ty::Seq(..)));
        let ints = self.vars_of(|t| *t == Ty::Int);
        let i = self.fresh("i");
        self.feature("for");
        // See `Opts::iter_chains`: over the elements and their indices (not of a
        // buffer, which the body may write).
        let fixed: Vec<&Var> = seqs.iter().filter(|v| !v.mutable).collect();
        if self.opts.iter_chains && !fixed.is_empty() && self.rng.chance(0.3) {
            let v = fixed[self.rng.below(fixed.len())].clone();
            let Ty::Seq(_, n) = v.ty else { unreachable!() };
            let e = self.fresh("e");
            self.feature("for-enumerate");
            let body = self.with_index(&i, n, |b| {
                b.vars.push(Var {
                    name: e.clone(),
                    ty: Ty::S,
                    mutable: false,
                    is_ref: false,
                });
                b.loop_body(&muts)
            });
            let mut out = pre;
            out.push(&Code::fmt(
                &format!(
                    "for ({i}, &{e}) in {}.iter().enumerate() {{\n{{}}}}\n",
                    v.name
                ),
                &[&body],
            ));
            return out;
        }
        // The range, and the length below which the index stays.
        let (head, bound) = if !seqs.is_empty() && self.rng.chance(0.6) {
            let v = &seqs[self.rng.below(seqs.len())];
            let Ty::Seq(_, n) = v.ty else { unreachable!() };
            if self.rng.chance(0.3) && matches!(v.ty, Ty::Seq(Seq::Slice, _)) {
                // Over the elements: no index.
                let e = self.fresh("e");
                self.feature("for-iter");
                let body = self.scoped(|b| {
                    b.vars.push(Var {
                        name: e.clone(),
                        ty: Ty::S,
                        mutable: false,
                        is_ref: false,
                    });
                    b.loop_body(&muts)
                });
                let mut out = pre;
                out.push(&Code::fmt(
                    &format!("for &{e} in {}.iter() {{\n{{}}}}\n", v.name),
                    &[&body],
                ));
                return out;
            }
            let rev = self.rng.chance(0.25);
            let r = format!("0..{}.len()", v.name);
            (if rev { format!("({r}).rev()") } else { r }, Some(n))
        } else if !ints.is_empty() && self.rng.chance(0.5) {
            (format!("0..{}", ints[0].name), None)
        } else {
            let n = 1 + self.rng.below(3);
            (format!("0..{n}"), Some(n))
        };
        let outer_index = self.index.clone();
        let body = self.scoped(|b| {
            b.vars.push(Var {
                name: i.clone(),
                ty: Ty::Int,
                mutable: false,
                is_ref: false,
            });
            if let Some(n) = bound {
                b.index = Some((i.clone(), n));
            }
            b.loop_body(&muts)
        });
        self.index = outer_index;
        let mut out = pre;
        out.push(&Code::fmt(
            &format!("for {i} in {head} {{\n{{}}}}\n"),
            &[&body],
        ));
        out
    }

    /// See `Opts::dead_nan`: an unused local with a NaN derivative, sometimes.
    fn dead_nan(&mut self) -> Code {
        let vs = self.vars_of(|t| *t == Ty::S);
        if !self.opts.dead_nan || vs.is_empty() || !self.rng.chance(0.5) {
            return Code::default();
        }
        let v = &vs[self.rng.below(vs.len())].name;
        let name = self.fresh("dead");
        self.feature("dead-nan");
        Code::both(format!("let {name} = ({v} - 5.0).powf(2.5);\n"))
    }

    fn loop_body(&mut self, muts: &[Var]) -> Code {
        let (was_loop, was_index) = (self.in_loop, self.index.clone());
        self.in_loop = true;
        self.loop_depth += 1;
        let mut out = Code::default();
        let n = 1 + self.rng.below(2);
        self.stmts(n, &mut out);
        let dead = self.dead_nan();
        out.push(&dead);
        if self.rng.chance(0.25) {
            let c = self.cond(2);
            let kw = *self.rng.pick(&["break", "continue"]);
            self.feature(kw);
            out.push(&Code::fmt(&format!("if {{}} {{ {kw}; }}\n"), &[&c]));
        }
        let v = muts[self.rng.below(muts.len())].clone();
        let a = self.assign(&v);
        out.push(&a);
        self.loop_depth -= 1;
        self.in_loop = was_loop;
        self.index = was_index;
        out
    }

    fn while_loop(&mut self) -> Code {
        let mut pre = Code::default();
        let muts = self.carried(&mut pre);
        let k = self.fresh("k");
        let n = 2 + self.rng.below(3);
        let c = self.cond(1);
        self.feature("while");
        let body = self.scoped(|b| b.loop_body(&muts));
        let mut out = pre;
        out.push(&Code::fmt(
            &format!("let mut {k} = 0;\nwhile {k} < {n} && {{}} {{\n{k} += 1;\n{{}}}}\n"),
            &[&c, &body],
        ));
        out
    }
}

// ----- buffers, iterator chains, values, debug statements ---------------------------

/// The generated forms of the newer switches (see `Opts::buffers`, `Opts::iter_chains`,
/// `Opts::values`, `Opts::debug_stmts`); every draw is made only under its switch, so
/// the set without them does not depend on them.
impl Body<'_> {
    fn seqs(&self) -> Vec<(Var, usize)> {
        self.vars
            .iter()
            .filter_map(|v| match v.ty {
                Ty::Seq(_, n) => Some((v.clone(), n)),
                _ => None,
            })
            .collect()
    }

    /// A scalar expression of a newer form, sometimes.
    fn new_scalar(&mut self, d: usize) -> Option<Code> {
        let seqs = self.seqs();
        if self.opts.iter_chains && !seqs.is_empty() && self.rng.chance(0.1) {
            return Some(self.iter_chain(d));
        }
        if self.opts.values {
            let ints = self.vars_of(|t| *t == Ty::Int);
            if !ints.is_empty() && self.rng.chance(0.06) {
                let i = ints[self.rng.below(ints.len())].name.clone();
                let mut c = Code::fmt("(match {} {\n0 => {},\n", &[&Code::both(i), &self.arm(d)?]);
                if self.rng.chance(0.5) {
                    let e = self.arm(d)?;
                    c.push(&Code::fmt("2 | 3 => {},\n", &[&e]));
                }
                let e = self.arm(d)?;
                c.push(&Code::fmt("_ => {},\n})", &[&e]));
                self.feature("match");
                return Some(c);
            }
            let cls = self.vars_of(|t| *t == Ty::Closure);
            if !cls.is_empty() && self.rng.chance(0.15) {
                let f = cls[self.rng.below(cls.len())].name.clone();
                let a = self.scalar(d);
                // On the tape the closure takes a `Var`: the argument is not a constant.
                let a = if self.mentions_float(&a.r) {
                    a
                } else {
                    let vs = self.vars_of(|t| *t == Ty::S);
                    Code::both(vs.first()?.name.clone())
                };
                self.feature("closure-call");
                return Some(Code::fmt(&format!("{f}({{}})"), &[&a]));
            }
        }
        None
    }

    /// A `match` arm's or tuple element's value: not a constant, which the tape leaves
    /// an `f64` beside `Var`s (a compile error); see `Opts::value_consts`.
    fn arm(&mut self, d: usize) -> Option<Code> {
        let e = self.scalar(d);
        if self.opts.value_consts || self.mentions_float(&e.r) {
            return Some(e);
        }
        let vs = self.vars_of(|t| *t == Ty::S);
        Some(Code::both(vs.first()?.name.clone()))
    }

    /// A scalar body in a closure whose parameters are `names` (scalars, or a
    /// sequence `(name, len)`), seeing the enclosing variables too.
    fn closure_body(&mut self, names: &[&str], seq: Option<(&str, usize)>, d: usize) -> Code {
        self.scoped(|b| {
            for n in names {
                b.vars.push(Var {
                    name: n.to_string(),
                    ty: Ty::S,
                    mutable: false,
                    is_ref: false,
                });
            }
            if let Some((n, len)) = seq {
                b.vars.push(Var {
                    name: n.to_string(),
                    ty: Ty::Seq(Seq::Slice, len),
                    mutable: false,
                    is_ref: false,
                });
            }
            let e = b.scalar(d.clamp(1, 2));
            // The body uses its parameter: otherwise the chain is a constant.
            let first = match (names.first(), seq) {
                (Some(n), _) => n.to_string(),
                (None, Some((q, _))) => format!("{q}[0]"),
                (None, None) => return e,
            };
            let used = names.iter().any(|n| mentions(&e.r, n))
                || seq.is_some_and(|(q, _)| mentions(&e.r, q));
            if used {
                e
            } else {
                Code::fmt(&format!("({first} * {{}})"), &[&e])
            }
        })
    }

    /// A scalar from an iterator chain over a sequence in scope.
    fn iter_chain(&mut self, d: usize) -> Code {
        let seqs = self.seqs();
        let (v, n) = seqs[self.rng.below(seqs.len())].clone();
        let v = v.name;
        let t = self.fresh("t");
        let sum = ".sum::<f64>()";
        let form = self.rng.below(12);
        self.feature(match form {
            0 => "iter.sum",
            1 => "iter.map",
            2 => "iter.zip",
            3 => "iter.enumerate",
            4 => "iter.fold",
            5 => "iter.rev",
            6 => "iter.windows",
            7 => "iter.chunks",
            8 => "iter.skip",
            9 => "iter.take",
            10 => "iter.step_by",
            _ => "iter.product",
        });
        match form {
            0 => Code::both(format!("{v}.iter(){sum}")),
            1 => {
                let b = self.closure_body(&[&t], None, d);
                Code::fmt(&format!("{v}.iter().map(|&{t}| {{}}){sum}"), &[&b])
            }
            2 => {
                let (w, _) = seqs[self.rng.below(seqs.len())].clone();
                let u = self.fresh("t");
                let b = self.closure_body(&[&t, &u], None, d);
                let b = if mentions(&b.r, &u) {
                    b
                } else {
                    Code::fmt(&format!("({{}} * {u})"), &[&b])
                };
                Code::fmt(
                    &format!(
                        "{v}.iter().zip({}.iter()).map(|(&{t}, &{u})| {{}}){sum}",
                        w.name
                    ),
                    &[&b],
                )
            }
            3 => {
                let j = self.fresh("j");
                let b = self.closure_body(&[&t], None, d);
                Code::fmt(
                    &format!(
                        "{v}.iter().enumerate().map(|({j}, &{t})| {{}} * ({j} as f64 + 0.5)){sum}"
                    ),
                    &[&b],
                )
            }
            4 => {
                let acc = self.fresh("acc");
                let init = *self.rng.pick(&["0.0", "1.0", "0.5"]);
                let b = self.closure_body(&[&t], None, d);
                let op = *self.rng.pick(&["+", "+", "-"]);
                Code::fmt(
                    &format!("{v}.iter().fold({init}, |{acc}, &{t}| {acc} * 0.9 {op} {{}})"),
                    &[&b],
                )
            }
            5 => {
                let j = self.fresh("j");
                let b = self.closure_body(&[&t], None, d);
                Code::fmt(
                    &format!("{v}.iter().rev().enumerate().map(|({j}, &{t})| {{}} * ({j} as f64 - 0.5)){sum}"),
                    &[&b],
                )
            }
            6 if n >= 2 => {
                let q = self.fresh("q");
                let (a, b) = (format!("{q}[0]"), format!("{q}[1]"));
                let e = self.closure_body(&[&b, &a], None, d);
                Code::fmt(&format!("{v}.windows(2).map(|{q}| {{}}){sum}"), &[&e])
            }
            7 => {
                let q = self.fresh("q");
                let k = 1 + self.rng.below(2);
                let e = self.closure_body(&[], Some((&q, 1)), d);
                Code::fmt(&format!("{v}.chunks({k}).map(|{q}| {{}}){sum}"), &[&e])
            }
            8 => {
                let b = self.closure_body(&[&t], None, d);
                let k = self.rng.below(n);
                Code::fmt(
                    &format!("{v}.iter().skip({k}).map(|&{t}| {{}}){sum}"),
                    &[&b],
                )
            }
            9 => {
                let k = 1 + self.rng.below(n);
                Code::both(format!("{v}.iter().take({k}){sum}"))
            }
            10 => {
                let b = self.closure_body(&[&t], None, d);
                Code::fmt(
                    &format!("{v}.iter().step_by(2).map(|&{t}| {{}}){sum}"),
                    &[&b],
                )
            }
            _ => {
                if self.rng.chance(0.5) {
                    Code::both(format!("{v}.iter().product::<f64>()"))
                } else {
                    let b = self.closure_body(&[&t], None, d);
                    Code::fmt(
                        &format!("{v}.iter().map(|&{t}| {{}}.tanh() + 1.0).product::<f64>()"),
                        &[&b],
                    )
                }
            }
        }
    }

    /// A statement of a newer form, sometimes.
    fn new_stmt(&mut self) -> Option<Code> {
        if self.opts.buffers && self.rng.chance(0.12) {
            return Some(self.buffer_stmt());
        }
        if self.opts.values && self.rng.chance(0.08) {
            return Some(self.value_stmt());
        }
        if self.opts.debug_stmts && self.rng.chance(0.04) {
            let seqs = self.seqs();
            self.feature("debug-assert");
            if let Some((v, n)) = seqs.first() {
                let kw = *self.rng.pick(&["assert!", "debug_assert!"]);
                return Some(Code::both(format!("{kw}({}.len() == {n});\n", v.name)));
            }
            if let Some((i, n)) = self.index.clone() {
                return Some(Code::both(format!(
                    "debug_assert!({i} < {n}, \"index {{}}\", {i});\n"
                )));
            }
            return Some(Code::both("debug_assert!(true);\n"));
        }
        None
    }

    /// `let`s of tuples, closures and copies of sequences.
    fn value_stmt(&mut self) -> Code {
        let seqs = self.seqs();
        match self.rng.below(4) {
            0 if !seqs.is_empty() => {
                let (v, n) = seqs[self.rng.below(seqs.len())].clone();
                let name = self.fresh("c");
                let (form, kind) = match (v.ty.clone(), self.rng.below(3)) {
                    (_, 0) => ("to_vec()", Seq::Vec),
                    (Ty::Seq(Seq::Slice, _), 1) if !v.mutable => ("", Seq::Slice),
                    (Ty::Seq(Seq::Vec, _), 1) if !v.mutable => ("", Seq::Slice),
                    (Ty::Seq(k, _), _) => ("clone()", k),
                    _ => unreachable!(),
                };
                self.feature(match form {
                    "to_vec()" => "to_vec",
                    "" => "reborrow",
                    _ => "clone",
                });
                self.vars.push(Var {
                    name: name.clone(),
                    ty: Ty::Seq(kind, n),
                    mutable: false,
                    is_ref: false,
                });
                if form.is_empty() {
                    Code::both(format!("let {name} = &*{};\n", v.name))
                } else {
                    Code::both(format!("let {name} = {}.{form};\n", v.name))
                }
            }
            1 => {
                let (a, b) = (self.fresh("s"), self.fresh("s"));
                let (Some(e1), Some(e2)) = (self.arm(2), self.arm(2)) else {
                    return self.let_stmt();
                };
                self.feature("tuple-let");
                for n in [&a, &b] {
                    self.vars.push(Var {
                        name: n.clone(),
                        ty: Ty::S,
                        mutable: false,
                        is_ref: false,
                    });
                }
                Code::fmt(&format!("let ({a}, {b}) = ({{}}, {{}});\n"), &[&e1, &e2])
            }
            2 => {
                let p = self.fresh("p");
                let (Some(e1), Some(e2)) = (self.arm(2), self.arm(2)) else {
                    return self.let_stmt();
                };
                self.feature("tuple-field");
                for k in 0..2 {
                    self.vars.push(Var {
                        name: format!("{p}.{k}"),
                        ty: Ty::S,
                        mutable: false,
                        is_ref: false,
                    });
                }
                Code::fmt(&format!("let {p} = ({{}}, {{}});\n"), &[&e1, &e2])
            }
            _ => {
                // A closure of its parameter only: it borrows nothing that is mutated later.
                let name = self.fresh("sq");
                let t = self.fresh("t");
                let saved = (std::mem::take(&mut self.vars), self.index.take());
                let callees = std::mem::take(&mut self.callees);
                let body = self.closure_body(&[&t], None, 2);
                self.callees = callees;
                (self.vars, self.index) = saved;
                self.feature("closure");
                self.vars.push(Var {
                    name: name.clone(),
                    ty: Ty::Closure,
                    mutable: false,
                    is_ref: false,
                });
                Code::fmt(&format!("let {name} = |{t}: f64| {{}};\n"), &[&body])
            }
        }
    }

    /// An element write `b[idx] op= e`; `b[idx] = b[idx] op e` when `e` reads `b`
    /// (an overloaded compound assignment borrows `b` before its operand).
    fn elem_write(&mut self, b: &str, idx: &str, e: Code) -> Code {
        let op = *self.rng.pick(&["=", "+=", "-=", "*=", "+="]);
        let e = if op == "*=" {
            Code::fmt("({}).tanh()", &[&e])
        } else {
            e
        };
        if op != "=" && mentions(&e.r, b) {
            let o = &op[..1];
            return Code::fmt(&format!("{b}[{idx}] = {b}[{idx}] {o} {{}};\n"), &[&e]);
        }
        Code::fmt(&format!("{b}[{idx}] {op} {{}};\n"), &[&e])
    }

    /// A body with the loop index `i` below `n` in scope.
    fn with_index<R>(&mut self, i: &str, n: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        let was = self.index.clone();
        let r = self.scoped(|b| {
            b.vars.push(Var {
                name: i.to_string(),
                ty: Ty::Int,
                mutable: false,
                is_ref: false,
            });
            b.index = Some((i.to_string(), n));
            f(b)
        });
        self.index = was;
        r
    }

    fn new_buffer(&mut self) -> Code {
        let n = 2 + self.rng.below(3);
        let name = self.fresh("b");
        // See `Opts::array_buffers`.
        let k = if self.opts.array_buffers {
            self.rng.below(4)
        } else {
            *self.rng.pick(&[0, 3])
        };
        let (init, kind) = match k {
            0 => {
                let c = *self.rng.pick(&["0.25f64", "1.0f64", "0.5f64"]);
                self.feature("buf.vec-repeat");
                (Code::both(format!("vec![{c}; {n}]")), Seq::Vec)
            }
            1 => {
                let c = *self.rng.pick(&["0.25f64", "1.0f64", "(-0.5f64)"]);
                self.feature("buf.array-repeat");
                (Code::both(format!("[{c}; {n}]")), Seq::Array)
            }
            k => {
                let mut c = Code::both(if k == 2 { "[" } else { "vec![" });
                for j in 0..n {
                    if j > 0 {
                        c.push(&Code::both(", "));
                    }
                    let e = self.scalar(2);
                    c.push(&e);
                }
                c.push(&Code::both("]"));
                self.feature(if k == 2 {
                    "buf.array-literal"
                } else {
                    "buf.vec-literal"
                });
                (c, if k == 2 { Seq::Array } else { Seq::Vec })
            }
        };
        let mut out = Code::fmt(&format!("let mut {name} = {{}};\n"), &[&init]);
        if self.rng.chance(0.6) {
            // Fill it in a loop.
            let i = self.fresh("i");
            let w = self.with_index(&i, n, |b| {
                let e = b.scalar(2);
                b.elem_write(&name, &i, e)
            });
            self.feature("buf.loop-write");
            out.push(&Code::fmt(
                &format!("for {i} in 0..{n} {{\n{{}}}}\n"),
                &[&w],
            ));
        }
        self.vars.push(Var {
            name,
            ty: Ty::Seq(kind, n),
            mutable: true,
            is_ref: false,
        });
        out
    }

    /// A local buffer, or an operation on one in scope.
    fn buffer_stmt(&mut self) -> Code {
        let bufs: Vec<(Var, usize)> = self.seqs().into_iter().filter(|(v, _)| v.mutable).collect();
        if bufs.is_empty() || self.rng.chance(0.3) {
            let mut out = self.new_buffer();
            // And an operation on it, often.
            if self.rng.chance(0.7) {
                let v = self.vars.last().expect("the new buffer").clone();
                let Ty::Seq(_, n) = v.ty else { unreachable!() };
                let op = self.buffer_op(v, n);
                out.push(&op);
            }
            return out;
        }
        let (bv, n) = bufs[self.rng.below(bufs.len())].clone();
        self.buffer_op(bv, n)
    }

    /// An operation on the buffer `bv` of length `n`.
    fn buffer_op(&mut self, bv: Var, n: usize) -> Code {
        let b = bv.name.clone();
        let i = self.fresh("i");
        match self.rng.below(9) {
            0 => {
                let k = self.rng.below(n);
                let e = self.scalar(2);
                self.feature("buf.write");
                self.elem_write(&b, &k.to_string(), e)
            }
            1 | 2 => {
                let len = if self.rng.chance(0.5) {
                    format!("{b}.len()")
                } else {
                    n.to_string()
                };
                let w = self.with_index(&i, n, |s| {
                    let e = s.scalar(2);
                    s.elem_write(&b, &i, e)
                });
                self.feature("buf.loop-write");
                Code::fmt(&format!("for {i} in 0..{len} {{\n{{}}}}\n"), &[&w])
            }
            3 => {
                // A recurrence: `b[i + 1]` from `b[i]`.
                let w = self.with_index(&i, n - 1, |s| {
                    let e = s.scalar(1);
                    let e = Code::fmt(&format!("{b}[{i}] * {{}}.tanh()"), &[&e]);
                    s.elem_write(&b, &format!("{i} + 1"), e)
                });
                self.feature("buf.shifted");
                Code::fmt(&format!("for {i} in 0..{} {{\n{{}}}}\n", n - 1), &[&w])
            }
            4 => {
                // Reversed: `b[n - 1 - i]`.
                let idx = format!("{n} - 1 - {i}");
                let w = self.with_index(&i, n, |s| {
                    let e = s.scalar(2);
                    let e = Code::fmt(&format!("{{}} + {b}[{i}] * 0.5"), &[&e]);
                    s.elem_write(&b, &idx, e)
                });
                self.feature("buf.reversed");
                Code::fmt(&format!("for {i} in 0..{n} {{\n{{}}}}\n"), &[&w])
            }
            5 => {
                let j = self.fresh("j");
                let outer = 1 + self.rng.below(2);
                let w = self.with_index(&i, outer, |s| {
                    s.with_index(&j, n, |s| {
                        let e = s.scalar(1);
                        let e =
                            Code::fmt(&format!("{{}} * (({i} + {j}) as f64 * 0.5 + 0.3)"), &[&e]);
                        s.elem_write(&b, &j, e)
                    })
                });
                self.feature("buf.nested-loops");
                Code::fmt(
                    &format!("for {i} in 0..{outer} {{\nfor {j} in 0..{b}.len() {{\n{{}}}}\n}}\n"),
                    &[&w],
                )
            }
            6 => {
                let (j, k) = (self.rng.below(n), self.rng.below(n));
                self.feature("buf.swap");
                Code::both(format!("{b}.swap({j}, {k});\n"))
            }
            7 => {
                let e = self.scalar(2);
                let e = if self.mentions_float(&e.r) && !mentions(&e.r, &b) {
                    e
                } else {
                    match self.vars_of(|t| *t == Ty::S).first() {
                        Some(v) => Code::both(v.name.clone()),
                        None => return Code::both(format!("{b}.swap(0, {});\n", n - 1)),
                    }
                };
                self.feature("buf.fill");
                Code::fmt(&format!("{b}.fill({{}});\n"), &[&e])
            }
            _ => {
                // A copy into a new buffer.
                let c = self.fresh("b");
                let vec = matches!(bv.ty, Ty::Seq(Seq::Vec, _));
                let init = if vec {
                    format!("vec![0.0f64; {n}]")
                } else {
                    format!("[0.0f64; {n}]")
                };
                let body = if self.rng.chance(0.5) {
                    self.feature("buf.copy_from_slice");
                    Code::both(format!("{c}.copy_from_slice(&{b});\n"))
                } else {
                    let w = self.with_index(&i, n, |s| {
                        let e = s.scalar(1);
                        Code::fmt(&format!("{c}[{i}] = {b}[{i}] * {{}};\n"), &[&e])
                    });
                    self.feature("buf.loop-copy");
                    Code::fmt(&format!("for {i} in 0..{n} {{\n{{}}}}\n"), &[&w])
                };
                self.vars.push(Var {
                    name: c.clone(),
                    ty: Ty::Seq(if vec { Seq::Vec } else { Seq::Array }, n),
                    mutable: true,
                    is_ref: false,
                });
                Code::fmt(&format!("let mut {c} = {init};\n{{}}"), &[&body])
            }
        }
    }
}

/// One generated function, its three twins' text.
struct Func {
    sig: Sig,
    body: Code,
    features: Vec<&'static str>,
    /// A `[f64; 2]` result (see `Opts::vector_results`).
    vector: bool,
    /// `order = 2` on the default-routed function (a root without callees): `f_hvp`.
    order2: bool,
}

impl Func {
    fn emit(&self, out: &mut String, source: &mut String) {
        let ret = match &self.sig.ret {
            _ if self.vector => "[f64; 2]",
            Ty::S => "f64",
            _ => "Tensor",
        };
        let name = &self.sig.name;
        let params = self.sig.param_list();
        let default = format!(
            "{}\npub fn {name}({params}) -> {ret} {{\n{}}}\n",
            self.sig.attr(false, self.order2),
            self.body.r.replace("__CALL__", "")
        );
        let tape = format!(
            "{}\npub fn {name}_t({params}) -> {ret} {{\n{}}}\n",
            self.sig.attr(true, self.order2),
            call_suffix(&self.body.r, "_t")
        );
        let reference = format!(
            "#[allow(unused_mut, unused_variables, noop_method_call, clippy::all)]\npub fn {name}_p({params}) -> {ret} {{\n{}}}\n",
            self.body.p
        );
        source.push_str(&default);
        out.push_str(&default);
        // The tape has no vector seed: a vector root has no tape twin.
        if !self.vector {
            out.push_str(&tape);
        }
        out.push_str(&reference);
    }
}

fn call_suffix(s: &str, suffix: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("__CALL__") {
        out.push_str(&rest[..at]);
        rest = &rest[at + "__CALL__".len()..];
        let end = rest.find('(').unwrap_or(rest.len());
        out.push_str(&rest[..end]);
        out.push_str(suffix);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Draws a parameter list: `n_s` scalars and a few tensors or sequences.
fn draw_params(
    rng: &mut Rng,
    opts: Opts,
    root: bool,
    tensors: bool,
    dims: (usize, usize),
) -> Vec<Param> {
    let mut ps = Vec::new();
    let ns = 1 + rng.below(3);
    // See `Opts::mixed_tensor_calls`: a helper with tensors then takes tensors only.
    let ns = if tensors && !root && !opts.mixed_tensor_calls {
        0
    } else {
        ns
    };
    for i in 0..ns {
        ps.push(Param {
            name: format!("x{i}"),
            ty: Ty::S,
            owned: false,
            active: true,
        });
    }
    if tensors {
        let nt = 1 + rng.below(2);
        let (m, n) = dims;
        let family = [vec![m, n], vec![n, m], vec![m], vec![n]];
        for i in 0..nt {
            // The first is the base tensor `[m, n]`.
            let shape = if i == 0 {
                vec![m, n]
            } else {
                family[rng.below(4)].clone()
            };
            ps.push(Param {
                name: format!("w{i}"),
                ty: Ty::T(shape),
                owned: rng.chance(0.25),
                active: true,
            });
        }
    }
    if root || opts.slice_calls {
        let nq = if rng.chance(0.5) { 1 + rng.below(2) } else { 0 };
        for i in 0..nq {
            let kind = *rng.pick(&[Seq::Slice, Seq::Vec, Seq::Array]);
            ps.push(Param {
                name: format!("v{i}"),
                ty: Ty::Seq(kind, 2 + rng.below(3)),
                owned: false,
                active: true,
            });
        }
    }
    if root && rng.chance(0.3) {
        ps.push(Param {
            name: "n".into(),
            ty: Ty::Int,
            owned: false,
            active: false,
        });
    }
    // Interleave the kinds now and then: mixed parameter orders.
    if rng.chance(0.4) {
        let k = rng.below(ps.len());
        ps.rotate_left(k);
    }
    ps
}

/// Restricts the differentiated parameters to a non-empty random subset, sometimes.
fn draw_wrt(rng: &mut Rng, ps: &mut [Param], root: bool) -> bool {
    // A helper keeps its sequence parameters differentiated: the reference can freeze
    // scalar and tensor arguments, not sequences.
    let floats: Vec<usize> = (0..ps.len())
        .filter(|&i| is_float_like(&ps[i].ty) && (root || !matches!(ps[i].ty, Ty::Seq(..))))
        .collect();
    if floats.len() < 2 || !rng.chance(0.25) {
        return false;
    }
    let keep = floats[rng.below(floats.len())];
    for &i in &floats {
        ps[i].active = i == keep || rng.chance(0.4);
    }
    true
}

/// Generates one function.
#[allow(clippy::too_many_arguments)]
fn gen_func(
    rng: &mut Rng,
    opts: Opts,
    name: String,
    params: Vec<Param>,
    has_wrt: bool,
    ret: Ty,
    callees: &[Sig],
    n_stmts: usize,
    dims: (usize, usize),
    vector: bool,
) -> Func {
    let sig = Sig {
        name,
        params: params.clone(),
        ret: ret.clone(),
        has_wrt,
    };
    let mut b = Body {
        rng,
        opts,
        vars: params
            .iter()
            .map(|p| Var {
                name: p.name.clone(),
                ty: p.ty.clone(),
                mutable: false,
                is_ref: matches!(p.ty, Ty::T(_)) && !p.owned,
            })
            .collect(),
        callees,
        ret: ret.clone(),
        fresh: 0,
        in_loop: false,
        index: None,
        loop_depth: 0,
        scope: 0,
        dims,
        features: Vec::new(),
        no_return: vector,
    };
    if has_wrt {
        b.feature("wrt");
    }
    let mut body = Code::default();
    b.stmts(n_stmts, &mut body);
    let depth = 2 + b.rng.below(2);
    let tail = if vector {
        // See `Opts::vector_results`.
        b.feature("vector-result");
        let e0 = b.expr(&ret, depth);
        let e1 = b.expr(&ret, depth);
        Code::fmt("[{}, {}]", &[&e0, &e1])
    } else {
        b.expr(&ret, depth)
    };
    body.push(&tail);
    body.push(&Code::both("\n"));
    let features = b.features;
    let _ = b.opts;
    Func {
        sig,
        body,
        features,
        vector,
        order2: false,
    }
}

/// The input layout of a root function: how `run` unpacks a flat `&[f64]`.
fn unpack(ps: &[Param], n_value: usize) -> (String, String, Vec<bool>) {
    let mut code = String::from("let mut at = 0usize;\n");
    let mut args = Vec::new();
    let mut wrt = Vec::new();
    for p in ps {
        let name = &p.name;
        match &p.ty {
            Ty::S => {
                let _ = writeln!(code, "let {name} = x[at]; at += 1;");
                args.push(name.clone());
                wrt.push(p.active);
            }
            Ty::T(s) => {
                let n = numel(s);
                let _ = writeln!(
                    code,
                    "let {name} = Tensor::from_vec(x[at..at + {n}].to_vec(), {}); at += {n};",
                    shape_lit(s)
                );
                args.push(if p.owned {
                    format!("{name}.clone()")
                } else {
                    format!("&{name}")
                });
                wrt.extend(std::iter::repeat(p.active).take(n));
            }
            Ty::Seq(kind, n) => {
                match kind {
                    Seq::Array => {
                        let _ = writeln!(
                            code,
                            "let {name}: [f64; {n}] = x[at..at + {n}].try_into().unwrap(); at += {n};"
                        );
                        args.push(name.clone());
                    }
                    Seq::Slice => {
                        let _ = writeln!(code, "let {name} = x[at..at + {n}].to_vec(); at += {n};");
                        args.push(format!("&{name}"));
                    }
                    Seq::Vec => {
                        let _ = writeln!(code, "let {name} = x[at..at + {n}].to_vec(); at += {n};");
                        args.push(format!("{name}.clone()"));
                    }
                }
                wrt.extend(std::iter::repeat(p.active).take(*n));
            }
            Ty::Int => args.push(n_value.to_string()),
            Ty::Closure => unreachable!("a closure is never a parameter"),
        }
    }
    code.push_str("let _ = at;\n");
    (code, args.join(", "), wrt)
}

/// The tangents of a root function's differentiated parameters, unpacked from a flat
/// `v` laid out as its inputs: the code and the tangent arguments of `f_jvp`.
fn unpack_tangents(ps: &[Param], n_value: usize) -> (String, String) {
    let renamed: Vec<Param> = ps
        .iter()
        .map(|p| Param {
            name: format!("d{}", p.name),
            ..p.clone()
        })
        .collect();
    let (code, _, _) = unpack(&renamed, n_value);
    let code = code.replace("x[at", "v[at");
    let mut targs = Vec::new();
    for p in &renamed {
        if !(p.active && is_float_like(&p.ty)) {
            continue;
        }
        let name = &p.name;
        targs.push(match &p.ty {
            Ty::T(_) if p.owned => format!("{name}.clone()"),
            Ty::T(_) => format!("&{name}"),
            Ty::Seq(Seq::Slice, _) => format!("&{name}"),
            Ty::Seq(Seq::Vec, _) => format!("{name}.clone()"),
            _ => name.clone(),
        });
    }
    (code, targs.join(", "))
}

/// The whole generated file for `count` programs from `seed`.
pub fn generate(seed: u64, count: usize, opts: Opts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// Generated by tests/differential/gen.rs (seed {seed}, {count} programs); do not edit.\n"
    );
    let mut table = String::new();
    for k in 0..count {
        let mut rng = Rng::new(seed.wrapping_mul(0x1000_0000_01B3).wrapping_add(k as u64));
        let tensors = rng.chance(0.5);
        let dims = (2 + rng.below(2), 2 + rng.below(2));
        let mut funcs: Vec<Func> = Vec::new();
        let mut callees: Vec<Sig> = Vec::new();
        // Helpers: a chain h2 <- h1 <- root, two levels deep, on most programs.
        if rng.chance(0.5) {
            let levels = 1 + rng.below(2);
            for level in (1..=levels).rev() {
                let with_tensors = tensors && rng.chance(0.7);
                let mut ps = draw_params(&mut rng, opts, false, with_tensors, dims);
                let has_wrt = opts.wrt_calls && draw_wrt(&mut rng, &mut ps, false);
                let ret = if with_tensors && rng.chance(0.35) {
                    let f = [
                        vec![dims.0, dims.1],
                        vec![dims.1, dims.0],
                        vec![dims.0],
                        vec![dims.1],
                    ];
                    Ty::T(f[rng.below(4)].clone())
                } else {
                    Ty::S
                };
                // See `Opts::mixed_tensor_calls`: a scalar-valued helper that takes
                // tensors takes exactly one (the base tensor `w0`).
                if ret == Ty::S && !opts.mixed_tensor_calls {
                    if let Some(t) = ps.iter().position(|p| p.name == "w0") {
                        ps = vec![ps[t].clone()];
                    }
                }
                let n = 1 + rng.below(2);
                let f = gen_func(
                    &mut rng,
                    opts,
                    format!("h{level}"),
                    ps,
                    has_wrt,
                    ret,
                    &callees,
                    n,
                    dims,
                    false,
                );
                callees = vec![f.sig.clone()];
                if level == 2 {
                    // The root may call h2 directly as well as through h1.
                }
                funcs.push(f);
            }
            if funcs.len() == 2 && rng.chance(0.5) {
                callees.push(funcs[0].sig.clone());
            }
        }
        let mut ps = draw_params(&mut rng, opts, true, tensors, dims);
        let has_wrt = draw_wrt(&mut rng, &mut ps, true);
        let n_value = 1 + rng.below(3);
        let n = 2 + rng.below(3);
        let vector = opts.vector_results && rng.chance(0.3);
        let mut root = gen_func(
            &mut rng,
            opts,
            "f".into(),
            ps,
            has_wrt,
            Ty::S,
            &callees,
            n,
            dims,
            vector,
        );
        // `f_hvp` for a root of its own (a call would need its callee's `order = 2`).
        root.order2 = funcs.is_empty() && !vector;
        let (unpack_code, args, wrt) = unpack(&root.sig.params, n_value);
        let (tangent_code, targs) = unpack_tangents(&root.sig.params, n_value);
        let mut features: Vec<&str> = Vec::new();
        for f in funcs.iter().chain(std::iter::once(&root)) {
            for x in &f.features {
                if !features.contains(x) {
                    features.push(x);
                }
            }
        }
        if funcs.len() == 2 {
            features.push("nested-calls");
        }
        let mut module = String::new();
        let mut source = String::new();
        for f in &funcs {
            f.emit(&mut module, &mut source);
        }
        root.emit(&mut module, &mut source);
        let active: Vec<&Param> = root
            .sig
            .params
            .iter()
            .filter(|p| p.active && is_float_like(&p.ty))
            .collect();
        let gpat = if active.len() == 1 {
            "g0".to_string()
        } else {
            let names: Vec<String> = (0..active.len()).map(|i| format!("g{i}")).collect();
            format!("({})", names.join(", "))
        };
        let mut flatten = String::new();
        for i in 0..active.len() {
            let _ = writeln!(flatten, "Flat::flat_into(&g{i}, &mut out);");
        }
        if vector {
            // `<VSEED, f(x)>`, differentiated by `f_vjp` with the seed `VSEED` (scaled
            // by `seed` in `vjp_default`): a random seed of the program's own, both
            // components nonzero, so that a wrong gradient of either shows in the
            // central differences of the dot product. No tape twin (`grad_tape: None`).
            let mut component = || {
                let m = 0.5 + rng.below(1000) as f64 / 1000.0;
                if rng.chance(0.5) {
                    -m
                } else {
                    m
                }
            };
            let (s0, s1) = (component(), component());
            let dot = "y[0] * VSEED[0] + y[1] * VSEED[1]";
            let _ = write!(
                module,
                "const VSEED: [f64; 2] = [{s0:?}, {s1:?}];\n\
                 pub fn run(x: &[f64]) -> f64 {{\n{unpack_code}let y = f({args});\n{dot}\n}}\n\
                 pub fn reference(x: &[f64]) -> f64 {{\n{unpack_code}let y = f_p({args});\n{dot}\n}}\n\
                 pub fn grad_default(x: &[f64]) -> (f64, Vec<f64>) {{\n{unpack_code}\
                 let (y, {gpat}) = f_vjp({args}, VSEED);\nlet mut out = Vec::new();\n{flatten}({dot}, out)\n}}\n\
                 pub fn vjp_default(x: &[f64], seed: f64) -> (f64, Vec<f64>) {{\n{unpack_code}\
                 let (y, {gpat}) = f_vjp({args}, [VSEED[0] * seed, VSEED[1] * seed]);\nlet mut out = Vec::new();\n{flatten}({dot}, out)\n}}\n\
                 pub fn jvp_default(x: &[f64], v: &[f64]) -> (f64, f64) {{\n{unpack_code}{tangent_code}\
                 let (y, t) = f_jvp({args}, {targs});\n({dot}, t[0] * VSEED[0] + t[1] * VSEED[1])\n}}\n"
            );
        } else {
            let _ = write!(
            module,
            "pub fn run(x: &[f64]) -> f64 {{\n{unpack_code}f({args})\n}}\n\
             pub fn reference(x: &[f64]) -> f64 {{\n{unpack_code}f_p({args})\n}}\n\
             pub fn grad_default(x: &[f64]) -> (f64, Vec<f64>) {{\n{unpack_code}\
             let (v, {gpat}) = f_grad({args});\nlet mut out = Vec::new();\n{flatten}(v, out)\n}}\n\
             pub fn grad_tape(x: &[f64]) -> (f64, Vec<f64>) {{\n{unpack_code}\
             let (v, {gpat}) = f_t_grad({args});\nlet mut out = Vec::new();\n{flatten}(v, out)\n}}\n\
             pub fn vjp_default(x: &[f64], seed: f64) -> (f64, Vec<f64>) {{\n{unpack_code}\
             let (v, {gpat}) = f_vjp({args}, seed);\nlet mut out = Vec::new();\n{flatten}(v, out)\n}}\n\
             pub fn jvp_default(x: &[f64], v: &[f64]) -> (f64, f64) {{\n{unpack_code}{tangent_code}\
             f_jvp({args}, {targs})\n}}\n"
        );
            if root.order2 {
                let hpat = gpat.replace('g', "h");
                let hflatten = flatten.replace("&g", "&h").replace("out)", "hout)");
                let _ = write!(
                    module,
                    "pub fn hvp_default(x: &[f64], v: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {{\n{unpack_code}{tangent_code}\
                     let (y, {gpat}, {hpat}) = f_hvp({args}, {targs});\nlet mut out = Vec::new();\n{flatten}\
                     let mut hout = Vec::new();\n{hflatten}(y, out, hout)\n}}\n\
                     pub fn hvp_tape(x: &[f64], v: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {{\n{unpack_code}{tangent_code}\
                     let (y, {gpat}, {hpat}) = f_t_hvp({args}, {targs});\nlet mut out = Vec::new();\n{flatten}\
                     let mut hout = Vec::new();\n{hflatten}(y, out, hout)\n}}\n"
                );
            }
        }
        // `deprecated`: the default-routed functions that take the tape warn so.
        let _ = writeln!(
            out,
            "#[allow(unused_mut, unused_variables, unused_parens, unused_assignments, dead_code, deprecated, noop_method_call, clippy::all)]\npub mod p{k} {{\nuse super::*;\n{module}}}\n"
        );
        let wrt_lit: Vec<&str> = wrt
            .iter()
            .map(|&b| if b { "true" } else { "false" })
            .collect();
        let _ = writeln!(
            table,
            "Program {{ name: \"p{k}\", source: {source:?}, wrt: &[{}], features: &{features:?}, \
             run: p{k}::run, reference: p{k}::reference, grad_default: p{k}::grad_default, \
             grad_tape: {tape}, vjp_default: p{k}::vjp_default, jvp_default: p{k}::jvp_default, \
             hvp_default: {hvp}, hvp_tape: {hvp_tape} }},",
            wrt_lit.join(", "),
            hvp = if root.order2 {
                format!("Some(p{k}::hvp_default)")
            } else {
                "None".to_string()
            },
            hvp_tape = if root.order2 {
                format!("Some(p{k}::hvp_tape)")
            } else {
                "None".to_string()
            },
            tape = if vector {
                "None".to_string()
            } else {
                format!("Some(p{k}::grad_tape)")
            },
        );
    }
    let _ = writeln!(
        out,
        "/// The generated programs.\npub static PROGRAMS: &[Program] = &[\n{table}];\n\
         /// The seed they were generated from.\npub const SEED: u64 = {seed};"
    );
    out
}
