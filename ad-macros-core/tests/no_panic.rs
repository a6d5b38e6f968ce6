//! The macro never panics: every `#[differentiable]` function of the repository's
//! tests and examples, mutated in many small ways (a statement dropped, a call's
//! arguments removed or doubled, a method renamed, an operand replaced by a literal),
//! is expanded under each option set, and every expansion must return tokens.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::visit_mut::{self, VisitMut};

/// The `#[differentiable]` functions of one source file, with their attribute arguments.
fn differentiable_fns(src: &str) -> Vec<(TokenStream, syn::ItemFn)> {
    let Ok(file) = syn::parse_file(src) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut collect = |items: &[syn::Item]| {
        for item in items {
            if let syn::Item::Fn(f) = item {
                for attr in &f.attrs {
                    if attr.path().is_ident("differentiable") {
                        let args = match &attr.meta {
                            syn::Meta::List(l) => l.tokens.clone(),
                            _ => TokenStream::new(),
                        };
                        let mut f = f.clone();
                        f.attrs.retain(|a| !a.path().is_ident("differentiable"));
                        out.push((args, f));
                    }
                }
            }
        }
    };
    collect(&file.items);
    for item in &file.items {
        if let syn::Item::Mod(m) = item {
            if let Some((_, items)) = &m.content {
                collect(items);
            }
        }
    }
    out
}

/// Mutation number `target` (counting method calls, calls, binary operators and
/// statements in visiting order), or nothing once `target` is past the last site.
struct Mutate {
    target: usize,
    seen: usize,
    kind: u8,
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
            match self.kind % 3 {
                0 => m.args.clear(),
                1 => {
                    let extra: Vec<syn::Expr> = m.args.iter().cloned().collect();
                    m.args.extend(extra);
                    m.args.push(syn::parse_quote!(1.0));
                }
                _ => m.method = syn::Ident::new("frobnicate", m.method.span()),
            }
        }
        visit_mut::visit_expr_method_call_mut(self, m);
    }

    fn visit_expr_call_mut(&mut self, c: &mut syn::ExprCall) {
        if self.hit() {
            if self.kind % 2 == 0 {
                c.args.clear();
            } else {
                c.args.push(syn::parse_quote!(x));
            }
        }
        visit_mut::visit_expr_call_mut(self, c);
    }

    fn visit_expr_binary_mut(&mut self, b: &mut syn::ExprBinary) {
        if self.hit() {
            *b.right = match self.kind % 3 {
                0 => syn::parse_quote!(1),
                1 => syn::parse_quote!(true),
                _ => syn::parse_quote!(Tensor::ones(&[2])),
            };
        }
        visit_mut::visit_expr_binary_mut(self, b);
    }

    fn visit_block_mut(&mut self, block: &mut syn::Block) {
        let n = block.stmts.len();
        for i in 0..n {
            if self.hit() && i < block.stmts.len() {
                block.stmts.remove(i);
                break;
            }
        }
        visit_mut::visit_block_mut(self, block);
    }
}

#[test]
fn expand_never_panics_on_mutated_functions() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut fns = Vec::new();
    for dir in ["tests", "examples", "benches"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "rs") {
                let src = std::fs::read_to_string(&path).unwrap_or_default();
                fns.extend(differentiable_fns(&src));
            }
        }
    }
    assert!(fns.len() > 50, "found only {} functions", fns.len());
    let option_sets: [TokenStream; 3] = [
        TokenStream::new(),
        quote::quote!(tape),
        quote::quote!(static),
    ];
    let mut expansions = 0usize;
    for (args, f) in &fns {
        for kind in 0..3u8 {
            for target in 0.. {
                let mut m = Mutate {
                    target,
                    seen: 0,
                    kind,
                };
                let mut mutated = f.clone();
                m.visit_item_fn_mut(&mut mutated);
                if target >= m.seen {
                    break;
                }
                let tokens = mutated.to_token_stream();
                for opts in [args.clone()].iter().chain(&option_sets) {
                    let out = std::panic::catch_unwind(|| {
                        ad_macros_core::expand(opts.clone(), tokens.clone())
                    });
                    assert!(
                        out.is_ok(),
                        "expand panicked on #[differentiable({opts})] {tokens}"
                    );
                    expansions += 1;
                }
            }
        }
    }
    println!("{} functions, {expansions} expansions, no panic", fns.len());
}
