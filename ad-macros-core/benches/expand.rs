//! The macro's own cost: `expand` on the tokens of a 50-operation function.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use quote::quote;

fn fifty_ops() -> proc_macro2::TokenStream {
    quote! {
        pub fn big(a: f64, b: f64, c: f64, d: f64) -> f64 {
            let t1 = a * b + c.sin();
            let t2 = (t1 - d).exp() / (1.0 + a * a);
            let t3 = t2.tanh() * b - c * d;
            let t4 = (t3 * t3 + 1.0).sqrt() + a.cos() * t1;
            let t5 = t4.ln() * c + (b - a).sigmoid();
            let t6 = t5 * t2 + t3 / (t4 + 2.0);
            let t7 = (t6 - t1).atan() + d.exp() * 0.1;
            let mut s = t7 * t6 + t5 * t5 - t4 * c + a * d;
            s += (s * a).max(t1) * b.abs();
            s -= t2.hypot(t3) / c.powi(2);
            s
        }
    }
}

fn bench(c: &mut Criterion) {
    let item = fifty_ops();
    c.bench_function("expand/50-ops", |b| {
        b.iter(|| ad_macros_core::expand(quote!(), black_box(item.clone())))
    });
}

criterion_group!(expand, bench);
criterion_main!(expand);
