//! What `expand` gives back, whatever it is given: every `#[differentiable]` function
//! of the repository's tests, examples and benchmarks, as written and mutated in many
//! small ways (a statement dropped, a call's arguments removed or doubled, a method
//! renamed, an operand replaced by a literal), is expanded under each option set. Every
//! expansion must
//!
//! - return (never panic) code that parses as a Rust file and still defines the
//!   function;
//! - carry a non-empty string message in each `compile_error!`, and define `NAME_vjp`
//!   when it has none.
//!
//! Where the answer is known without a second compiler, it must be the right one:
//!
//! - the functions as written expand without a `compile_error!` under their own
//!   options and under `tape`, and with one under `static` when a construct sends
//!   them to the tape;
//! - options naming a parameter twice or one that does not exist, an unknown option,
//!   and `static, tape` are a `compile_error!` that says so;
//! - a mutation that no Rust program has (a method given one argument more, or none
//!   when it had some; a method that does not exist; a `bool` operand of arithmetic)
//!   is, under `static`, either a `compile_error!` or still in the companions as
//!   written, for rustc to reject on its span: the static path copies the code it does
//!   not differentiate (conditions, bounds, integer arithmetic) and does not type
//!   operands. It must never vanish into code that compiles;
//! - the cases of `tests/ui/` give exactly the messages their `.stderr` files pin
//!   (`tests/compiletest.rs` checks their spans through rustc).

use proc_macro2::{TokenStream, TokenTree};
use quote::{quote, ToTokens};
use std::path::{Path, PathBuf};
use syn::visit_mut::{self, VisitMut};

/// An item that carries `#[differentiable(..)]`: the attribute's arguments, the item
/// without the attribute (as the proc macro receives it), and its name if it is a `fn`.
struct Marked {
    args: TokenStream,
    item: TokenStream,
    name: Option<String>,
}

/// The `#[differentiable]` items of one source file, at the top level and in inline
/// modules.
fn marked_items(src: &str) -> Vec<Marked> {
    fn walk(items: &[syn::Item], out: &mut Vec<Marked>) {
        for item in items {
            if let syn::Item::Mod(m) = item {
                if let Some((_, items)) = &m.content {
                    walk(items, out);
                }
                continue;
            }
            if let syn::Item::Impl(imp) = item {
                for it in &imp.items {
                    if let syn::ImplItem::Fn(f) = it {
                        let mut f = f.clone();
                        if let Some(args) = take_attr(&mut f.attrs) {
                            let name = Some(f.sig.ident.to_string());
                            out.push(Marked {
                                args,
                                item: f.to_token_stream(),
                                name,
                            });
                        }
                    }
                }
            }
            let mut item = item.clone();
            let attrs = match &mut item {
                syn::Item::Fn(f) => &mut f.attrs,
                syn::Item::Struct(s) => &mut s.attrs,
                syn::Item::Enum(e) => &mut e.attrs,
                syn::Item::Impl(i) => &mut i.attrs,
                _ => continue,
            };
            let Some(args) = take_attr(attrs) else {
                continue;
            };
            let name = match &item {
                syn::Item::Fn(f) => Some(f.sig.ident.to_string()),
                _ => None,
            };
            let item = item.to_token_stream();
            out.push(Marked { args, item, name });
        }
    }
    /// Removes `#[differentiable(..)]` and returns its arguments.
    fn take_attr(attrs: &mut Vec<syn::Attribute>) -> Option<TokenStream> {
        let pos = attrs
            .iter()
            .position(|a| a.path().is_ident("differentiable"))?;
        Some(match attrs.remove(pos).meta {
            syn::Meta::List(l) => l.tokens,
            _ => TokenStream::new(),
        })
    }
    let mut out = Vec::new();
    if let Ok(file) = syn::parse_file(src) {
        walk(&file.items, &mut out);
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "rs"));
    files.sort();
    files
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The messages of the `compile_error!` invocations anywhere in `tokens`. Fails the
/// test on one whose argument is not a single non-empty string literal.
fn compile_errors(tokens: TokenStream, out: &mut Vec<String>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            TokenTree::Ident(id) if id == "compile_error" => {
                let (Some(TokenTree::Punct(bang)), Some(TokenTree::Group(arg))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                else {
                    panic!("`compile_error` is not a macro call here");
                };
                assert_eq!(bang.as_char(), '!');
                let msg: syn::LitStr = syn::parse2(arg.stream()).unwrap_or_else(|_| {
                    panic!("compile_error! of something else than a string: {arg}")
                });
                assert!(
                    !msg.value().trim().is_empty(),
                    "compile_error! with an empty message"
                );
                out.push(msg.value());
            }
            TokenTree::Group(g) => compile_errors(g.stream(), out),
            _ => {}
        }
    }
}

/// One expansion: the messages of its `compile_error!`s, and its items other than
/// the function itself and the errors.
struct Expansion {
    errors: Vec<String>,
    companions: Vec<syn::Item>,
}

/// Expands `#[differentiable(args)] item` and checks what every expansion must be.
fn expand_checked(args: &TokenStream, item: &TokenStream, name: Option<&str>) -> Expansion {
    let out = std::panic::catch_unwind(|| ad_macros_core::expand(args.clone(), item.clone()))
        .unwrap_or_else(|_| panic!("expand panicked on #[differentiable({args})] {item}"));
    let file: syn::File = syn::parse2(out.clone()).unwrap_or_else(|e| {
        panic!("the expansion of #[differentiable({args})] {item} is not a Rust file ({e}):\n{out}")
    });
    let mut errors = Vec::new();
    compile_errors(out, &mut errors);
    let fn_name = |i: &syn::Item| match i {
        syn::Item::Fn(f) => Some(f.sig.ident.to_string()),
        _ => None,
    };
    let mut companions: Vec<syn::Item> = file
        .items
        .into_iter()
        .filter(|i| !matches!(i, syn::Item::Macro(m) if m.mac.path.is_ident("compile_error") || m.mac.path.segments.last().is_some_and(|s| s.ident == "compile_error")))
        .collect();
    if let Some(name) = name {
        let pos = companions
            .iter()
            .position(|i| fn_name(i).as_deref() == Some(name))
            .unwrap_or_else(|| {
                panic!("the expansion of #[differentiable({args})] {item} lost `{name}`")
            });
        companions.remove(pos);
        let vjp = format!("{name}_vjp");
        assert!(
            !errors.is_empty() || companions.iter().any(|i| fn_name(i) == Some(vjp.clone())),
            "the expansion of #[differentiable({args})] {item} has no error and no `{vjp}`"
        );
    }
    Expansion { errors, companions }
}

/// What one mutation did.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mutation {
    /// A method call's arguments removed (`had`: it had some).
    MethodArgsCleared {
        method: String,
        had: bool,
    },
    /// A method call's arguments doubled, and `1.0` added: `args` now.
    MethodArgsExtended {
        method: String,
        args: usize,
    },
    /// A method renamed to `frobnicate`.
    MethodRenamed,
    CallArgsCleared,
    CallArgPushed,
    /// The right operand of a binary operator replaced by `1`, `true` or a tensor.
    Operand {
        by: &'static str,
        arithmetic: bool,
    },
    StatementRemoved,
}

impl Mutation {
    /// Whether no Rust program has this mutation: a method given one argument more
    /// than it had (Rust has no variadic methods), or none when it had some; a method
    /// that does not exist; a `bool` operand of arithmetic.
    fn invalid(&self) -> bool {
        match self {
            Mutation::MethodArgsCleared { had, .. } => *had,
            Mutation::MethodArgsExtended { .. } | Mutation::MethodRenamed => true,
            Mutation::Operand { by, arithmetic } => *by == "true" && *arithmetic,
            _ => false,
        }
    }

    /// Whether `companions` (the expansion without the function itself) still hold
    /// the invalid code as written, for rustc to reject on its span: what the static
    /// path does with code it does not differentiate (conditions, integer
    /// arithmetic, bounds) and with operands it does not type.
    fn passed_on(&self, companions: &[syn::Item]) -> bool {
        struct Find<'a>(&'a Mutation, bool);
        impl<'ast> syn::visit::Visit<'ast> for Find<'_> {
            fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
                self.1 |= match self.0 {
                    Mutation::MethodArgsCleared { method, .. } => {
                        m.method == method && m.args.is_empty()
                    }
                    Mutation::MethodArgsExtended { method, args } => {
                        m.method == method && m.args.len() == *args
                    }
                    Mutation::MethodRenamed => m.method == "frobnicate",
                    _ => false,
                };
                syn::visit::visit_expr_method_call(self, m);
            }
            fn visit_expr_binary(&mut self, b: &'ast syn::ExprBinary) {
                fn is_true(e: &syn::Expr) -> bool {
                    match e {
                        syn::Expr::Paren(p) => is_true(&p.expr),
                        syn::Expr::Lit(l) => matches!(&l.lit, syn::Lit::Bool(v) if v.value),
                        _ => false,
                    }
                }
                if matches!(self.0, Mutation::Operand { .. }) {
                    self.1 |= is_true(&b.right) || is_true(&b.left);
                }
                syn::visit::visit_expr_binary(self, b);
            }
        }
        let mut find = Find(self, false);
        for item in companions {
            syn::visit::Visit::visit_item(&mut find, item);
        }
        find.1
    }
}

/// Mutation number `target` (counting method calls, calls, binary operators and
/// statements in visiting order), or nothing once `target` is past the last site.
struct Mutate {
    target: usize,
    seen: usize,
    kind: u8,
    did: Option<Mutation>,
}

impl Mutate {
    fn hit(&mut self) -> bool {
        let hit = self.seen == self.target;
        self.seen += 1;
        hit
    }
}

impl VisitMut for Mutate {
    fn visit_expr_method_call_mut(&mut self, m: &mut syn::ExprMethodCall) {
        if self.hit() {
            self.did = Some(match self.kind % 3 {
                0 => {
                    let had = !m.args.is_empty();
                    m.args.clear();
                    let method = m.method.to_string();
                    Mutation::MethodArgsCleared { method, had }
                }
                1 => {
                    let extra: Vec<syn::Expr> = m.args.iter().cloned().collect();
                    m.args.extend(extra);
                    m.args.push(syn::parse_quote!(1.0));
                    let method = m.method.to_string();
                    Mutation::MethodArgsExtended {
                        method,
                        args: m.args.len(),
                    }
                }
                _ => {
                    m.method = syn::Ident::new("frobnicate", m.method.span());
                    Mutation::MethodRenamed
                }
            });
        }
        visit_mut::visit_expr_method_call_mut(self, m);
    }

    fn visit_expr_call_mut(&mut self, c: &mut syn::ExprCall) {
        if self.hit() {
            if self.kind % 2 == 0 {
                c.args.clear();
                self.did = Some(Mutation::CallArgsCleared);
            } else {
                c.args.push(syn::parse_quote!(x));
                self.did = Some(Mutation::CallArgPushed);
            }
        }
        visit_mut::visit_expr_call_mut(self, c);
    }

    fn visit_expr_binary_mut(&mut self, b: &mut syn::ExprBinary) {
        if self.hit() {
            use syn::BinOp::*;
            let arithmetic = matches!(
                b.op,
                Add(_)
                    | Sub(_)
                    | Mul(_)
                    | Div(_)
                    | Rem(_)
                    | AddAssign(_)
                    | SubAssign(_)
                    | MulAssign(_)
                    | DivAssign(_)
                    | RemAssign(_)
            );
            let by = match self.kind % 3 {
                0 => {
                    *b.right = syn::parse_quote!(1);
                    "1"
                }
                1 => {
                    *b.right = syn::parse_quote!(true);
                    "true"
                }
                _ => {
                    *b.right = syn::parse_quote!(Tensor::ones(&[2]));
                    "a tensor"
                }
            };
            self.did = Some(Mutation::Operand { by, arithmetic });
        }
        visit_mut::visit_expr_binary_mut(self, b);
    }

    fn visit_block_mut(&mut self, block: &mut syn::Block) {
        let n = block.stmts.len();
        for i in 0..n {
            if self.hit() && i < block.stmts.len() {
                block.stmts.remove(i);
                self.did = Some(Mutation::StatementRemoved);
                break;
            }
        }
        visit_mut::visit_block_mut(self, block);
    }
}

/// The repository's differentiable functions (not the `tests/ui` cases, which are
/// invalid on purpose).
fn corpus() -> Vec<(TokenStream, syn::ItemFn)> {
    let mut fns = Vec::new();
    for dir in ["tests", "examples", "benches"] {
        for path in rust_files(&root().join(dir)) {
            let src = std::fs::read_to_string(&path).unwrap_or_default();
            for m in marked_items(&src) {
                if let Ok(f) = syn::parse2::<syn::ItemFn>(m.item) {
                    fns.push((m.args, f));
                }
            }
        }
    }
    assert!(fns.len() > 50, "found only {} functions", fns.len());
    fns
}

/// Whether `#[differentiable(static)]` must reject the function: it takes the tape
/// unasked, because the lowering refused a construct that the tape takes.
fn tape_only(f: &syn::ItemFn) -> bool {
    matches!(
        ad_macros_core::route_of(TokenStream::new(), f.to_token_stream()),
        Ok(ad_macros_core::Route::Tape(Some(_)))
    )
}

#[test]
fn every_function_expands_under_order_two_without_a_panic() {
    // `order = 2` runs the forward sweep over the reverse sweep of every body of the
    // corpus: it may refuse one (a spanned error), never panic (a failed `verify` is a
    // debug assertion, so this runs the checks too).
    let (mut built, mut refused) = (0usize, 0usize);
    for (args, f) in corpus() {
        let name = f.sig.ident.to_string();
        let opts = if args.is_empty() {
            quote!(order = 2)
        } else {
            quote!(#args, order = 2)
        };
        let out = expand_checked(&opts, &f.to_token_stream(), Some(&name));
        if out.errors.is_empty() {
            built += 1;
        } else {
            refused += 1;
        }
    }
    assert!(
        built > 100,
        "only {built} functions built under order = 2 ({refused} refused)"
    );
}

#[test]
fn the_functions_as_written_expand_cleanly() {
    let mut static_rejected = 0;
    for (args, f) in corpus() {
        let name = f.sig.ident.to_string();
        let tokens = f.to_token_stream();
        // A vector or tuple result is the one IR's alone: the tape has no seed of that
        // type.
        let vector = match &f.sig.output {
            syn::ReturnType::Type(_, t) => match &**t {
                syn::Type::Array(_) => true,
                syn::Type::Tuple(t) => !t.elems.is_empty(),
                syn::Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Vec"),
                _ => false,
            },
            syn::ReturnType::Default => false,
        };
        // So are `&mut` parameters and calls passing `&mut` (issue 11): the tape would
        // not see the writes.
        let mutates = f.sig.inputs.iter().any(|a| {
            matches!(a, syn::FnArg::Typed(t) if matches!(&*t.ty, syn::Type::Reference(r) if r.mutability.is_some()))
        }) || f.block.to_token_stream().to_string().contains("& mut");
        let options = if vector || mutates {
            vec![args.clone()]
        } else {
            vec![args.clone(), quote!(tape)]
        };
        for opts in options {
            let errors = expand_checked(&opts, &tokens, Some(&name)).errors;
            assert!(
                errors.is_empty(),
                "#[differentiable({opts})] {name}: {errors:?}"
            );
        }
        // A construct that sends the function to the tape is an error under `static`,
        // and that error says the tape takes it.
        if tape_only(&f) {
            let errors = expand_checked(&quote!(static), &tokens, Some(&name)).errors;
            assert!(
                !errors.is_empty(),
                "#[differentiable(static)] {name} accepted"
            );
            assert!(
                errors.iter().all(|e| e.contains("the tape takes it")),
                "#[differentiable(static)] {name}: {errors:?}"
            );
            static_rejected += 1;
        }
        // Options that are wrong whatever the body.
        let first = f.sig.inputs.iter().find_map(|a| match a {
            syn::FnArg::Typed(pt) => match &*pt.pat {
                syn::Pat::Ident(pi) => Some(pi.ident.clone()),
                _ => None,
            },
            _ => None,
        });
        let mut wrong = vec![
            (quote!(wrt(no_such_parameter)), "no_such_parameter"),
            (quote!(frobnicate), "frobnicate"),
            (quote!(static, tape), "exclude each other"),
        ];
        if let Some(p) = &first {
            wrong.push((quote!(wrt(#p, #p)), "twice"));
        }
        for (opts, says) in wrong {
            let errors = expand_checked(&opts, &tokens, Some(&name)).errors;
            assert!(
                errors.iter().any(|e| e.contains(says)),
                "#[differentiable({opts})] {name}: {errors:?} does not say {says:?}"
            );
        }
    }
    assert!(
        static_rejected > 0,
        "no function of the corpus is tape only"
    );
}

#[test]
fn mutated_functions_expand_to_code_or_an_error() {
    let option_sets: [TokenStream; 3] = [TokenStream::new(), quote!(tape), quote!(static)];
    let fns = corpus();
    // Twins (`f` and `f_tape` with one body) differ only by their own options.
    let mut bodies = std::collections::HashSet::new();
    let (mut expansions, mut rejected) = (0usize, 0usize);
    let (mut invalid_rejected, mut invalid_passed_on) = (0usize, 0usize);
    let mut swallowed = Vec::new();
    for (args, f) in &fns {
        let (inputs, output, block) = (&f.sig.inputs, &f.sig.output, &f.block);
        let new_body = bodies.insert(quote!(#inputs #output #block).to_string());
        let mut opts: Vec<&TokenStream> = Vec::new();
        if new_body {
            opts.extend(&option_sets);
        }
        if !option_sets
            .iter()
            .any(|o| o.to_string() == args.to_string())
        {
            opts.push(args);
        }
        if opts.is_empty() {
            continue;
        }
        for kind in 0..3u8 {
            for target in 0.. {
                let mut m = Mutate {
                    target,
                    seen: 0,
                    kind,
                    did: None,
                };
                let mut mutated = f.clone();
                m.visit_item_fn_mut(&mut mutated);
                if target >= m.seen {
                    break;
                }
                let did = m.did.expect("a site was mutated");
                let name = f.sig.ident.to_string();
                let tokens = mutated.to_token_stream();
                for &opts in &opts {
                    let out = expand_checked(opts, &tokens, Some(&name));
                    expansions += 1;
                    rejected += usize::from(!out.errors.is_empty());
                    if opts.to_string() == "static" && did.invalid() {
                        if !out.errors.is_empty() {
                            invalid_rejected += 1;
                        } else if did.passed_on(&out.companions) {
                            invalid_passed_on += 1;
                        } else {
                            swallowed.push(format!("{did:?}: {tokens}"));
                        }
                    }
                }
            }
        }
    }
    println!(
        "{} functions, {expansions} expansions, {rejected} of them rejected; of the invalid mutations under `static`, {invalid_rejected} rejected and {invalid_passed_on} passed on to rustc as written",
        fns.len()
    );
    assert!(
        swallowed.is_empty(),
        "#[differentiable(static)] neither rejects nor passes on {} invalid mutations:\n{}",
        swallowed.len(),
        swallowed.join("\n")
    );
    assert!(
        invalid_rejected > 300,
        "only {invalid_rejected} invalid mutations rejected"
    );
}

/// The error lines (`error: ..`, not rustc's `error[E..]: ..`) of a trybuild `.stderr`,
/// but for the tape warning (`warn.rs`) that a `#![deny(deprecated)]` case makes an
/// error: rustc's lint, not a `compile_error!`.
fn pinned_errors(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("error: "))
        .filter(|l| !l.starts_with("use of deprecated constant `_::runs_on_the_tape`"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_ui_cases_give_the_pinned_messages() {
    let mut cases = 0;
    for path in rust_files(&root().join("tests/ui")) {
        let src = std::fs::read_to_string(&path).unwrap();
        let stderr = std::fs::read_to_string(path.with_extension("stderr")).unwrap();
        let mut got = Vec::new();
        for m in marked_items(&src) {
            got.extend(expand_checked(&m.args, &m.item, m.name.as_deref()).errors);
        }
        let mut want = pinned_errors(&stderr);
        got.sort();
        want.sort();
        assert_eq!(got, want, "{}", path.display());
        cases += 1;
    }
    assert!(cases > 20, "only {cases} ui cases");
}

/// The census of the move to the one IR: which expansion each function of the corpus
/// takes, and why the one IR did not take it. Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn census_of_expansions() {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    // `CENSUS_FILE=path`: the functions of that file instead (with their errors).
    let fns = match std::env::var("CENSUS_FILE") {
        Ok(path) => {
            let src = std::fs::read_to_string(path).unwrap_or_default();
            marked_items(&src)
                .into_iter()
                .filter_map(|m| Some((m.args, syn::parse2::<syn::ItemFn>(m.item).ok()?)))
                .collect()
        }
        Err(_) => corpus(),
    };
    for (args, f) in fns {
        let name = f.sig.ident.to_string();
        match ad_macros_core::expansion_of(args.clone(), f.to_token_stream()) {
            Ok((path, why)) => {
                *counts.entry(path).or_default() += 1;
                if path != "one IR" {
                    println!("{path:16} {name:32} #[differentiable({args})] {why}");
                }
            }
            Err(e) => println!("{:16} {name:32} {e}", "rejected"),
        }
    }
    println!("{counts:?}");
}
