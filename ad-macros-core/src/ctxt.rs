//! The error sink: every stage reports into it and keeps going, so one compile shows
//! all the mistakes of a function at once.
//!
//! The lowering tells two kinds of refusal apart, and that is how a function is routed
//! (`lib.rs`): a construct the one IR does not take *yet* but the tape does
//! ([`Ctxt::not_yet_at`]), and a mistake or a construct that neither path takes
//! ([`Ctxt::error_at`]). A function takes the tape exactly when every refusal is of
//! the first kind; only those messages advise the tape.

use std::cell::RefCell;
use std::fmt::Display;

/// The advice a "not yet" refusal ends with when it is shown as an error.
pub const TAPE_HINT: &str = "; the tape takes it: use #[differentiable(tape)]";

/// One reported error. `hinted` is the same error advising the tape: present exactly
/// for a construct the tape takes.
struct Entry {
    error: syn::Error,
    hinted: Option<syn::Error>,
}

/// Collects `syn::Error`s; [`Ctxt::check`] drains it.
#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Option<Vec<Entry>>>,
}

/// What a sink held when its stage refused the input: see [`Ctxt::refusal`].
pub struct Refusal {
    first: Entry,
    rest: Vec<Entry>,
}

impl Refusal {
    /// Whether the tape takes every construct refused.
    pub fn tape_takes(&self) -> bool {
        self.entries().all(|e| e.hinted.is_some())
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        std::iter::once(&self.first).chain(&self.rest)
    }

    fn combine(&self, pick: impl Fn(&Entry) -> &syn::Error) -> syn::Error {
        let mut all = pick(&self.first).clone();
        for e in &self.rest {
            all.combine(pick(e).clone());
        }
        all
    }

    /// The errors as the user sees them when no tape runs instead: a construct the
    /// tape takes advises it only when nothing else stands in the way.
    pub fn errors(&self) -> syn::Error {
        let hint = self.tape_takes();
        self.combine(|e| match (&e.hinted, hint) {
            (Some(h), true) => h,
            _ => &e.error,
        })
    }

    /// The errors without any advice to use the tape.
    pub fn plain(&self) -> syn::Error {
        self.combine(|e| &e.error)
    }

    /// The errors without advice, each reworded by `f` (the error, and whether the
    /// tape takes its construct), combined into one.
    pub fn reworded(&self, f: impl Fn(&syn::Error, bool) -> String) -> syn::Error {
        let word = |e: &Entry| syn::Error::new(e.error.span(), f(&e.error, e.hinted.is_some()));
        let mut all = word(&self.first);
        for e in &self.rest {
            all.combine(word(e));
        }
        all
    }

    /// The first error, without advice: what the tape warning quotes.
    pub fn first(&self) -> &syn::Error {
        &self.first.error
    }
}

impl Ctxt {
    /// An empty sink.
    pub fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// Reports an error spanned on `tokens`.
    pub fn error_spanned_by<T: quote::ToTokens, M: Display>(&self, tokens: T, msg: M) {
        self.syn_error(syn::Error::new_spanned(tokens.into_token_stream(), msg));
    }

    /// Reports an error at `span`.
    pub fn error_at<M: Display>(&self, span: proc_macro2::Span, msg: M) {
        self.syn_error(syn::Error::new(span, msg));
    }

    /// Reports an already built error.
    pub fn syn_error(&self, err: syn::Error) {
        self.push(Entry {
            error: err,
            hinted: None,
        });
    }

    /// Reports a construct that the static path does not take yet and the tape does,
    /// spanned on `tokens`. `msg` says what to do on the static path; the advice to
    /// use the tape is added where it applies ([`Refusal::errors`]).
    pub fn not_yet_spanned_by<T: quote::ToTokens, M: Display>(&self, tokens: T, msg: M) {
        let tokens = tokens.into_token_stream();
        self.push(Entry {
            error: syn::Error::new_spanned(&tokens, &msg),
            hinted: Some(syn::Error::new_spanned(tokens, format!("{msg}{TAPE_HINT}"))),
        });
    }

    /// [`Ctxt::not_yet_spanned_by`] at `span`.
    pub fn not_yet_at<M: Display>(&self, span: proc_macro2::Span, msg: M) {
        self.push(Entry {
            error: syn::Error::new(span, &msg),
            hinted: Some(syn::Error::new(span, format!("{msg}{TAPE_HINT}"))),
        });
    }

    /// Moves every error of `other` into this sink, kinds kept.
    pub fn absorb(&self, other: Ctxt) {
        let entries = other.errors.borrow_mut().take().unwrap_or_default();
        for e in entries {
            self.push(e);
        }
    }

    fn push(&self, entry: Entry) {
        if let Some(errors) = self.errors.borrow_mut().as_mut() {
            errors.push(entry);
        }
    }

    /// Whether an error was reported so far.
    pub fn has_errors(&self) -> bool {
        self.errors.borrow().as_ref().is_some_and(|e| !e.is_empty())
    }

    /// Drains the sink: `Err` with every reported error combined into one, as
    /// [`Refusal::errors`] shows them.
    pub fn check(self) -> syn::Result<()> {
        self.refusal().map_err(|r| r.errors())
    }

    /// Drains the sink: `Err` with what it held, kinds kept.
    pub fn refusal(self) -> Result<(), Refusal> {
        let mut entries = self
            .errors
            .borrow_mut()
            .take()
            .unwrap_or_default()
            .into_iter();
        match entries.next() {
            None => Ok(()),
            Some(first) => Err(Refusal {
                first,
                rest: entries.collect(),
            }),
        }
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        // A sink dropped without `check` would lose errors silently; in debug builds of
        // the macro's own tests, make that loud. Never reached on user input.
        if !std::thread::panicking() {
            debug_assert!(
                self.errors.borrow().is_none(),
                "ctxt dropped without check()"
            );
        }
    }
}
