//! `#[dual_test]`: one attribute for a test that runs natively and on wasm32.
//!
//! The core's tests run on both targets. Natively a sync test is a `#[test]` and an async one a
//! `#[tokio::test]`; on wasm32 both are `#[wasm_bindgen_test]`. Writing that pair above every
//! test was repeated dozens of times; this attribute writes it. No dependencies: it only looks
//! for `async` before `fn`.

use proc_macro::{TokenStream, TokenTree};

/// Marks a test that runs natively (`#[test]`, or `#[tokio::test]` when it is `async`) and on
/// wasm32 (`#[wasm_bindgen_test]`).
#[proc_macro_attribute]
pub fn dual_test(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let is_async = item
        .clone()
        .into_iter()
        .take_while(|t| !matches!(t, TokenTree::Ident(i) if i.to_string() == "fn"))
        .any(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "async"));
    let native = if is_async { "tokio::test" } else { "test" };
    let attributes: TokenStream = format!(
        "#[cfg_attr(target_arch = \"wasm32\", wasm_bindgen_test::wasm_bindgen_test)] \
         #[cfg_attr(not(target_arch = \"wasm32\"), {native})]"
    )
    .parse()
    .expect("the attributes parse");
    attributes.into_iter().chain(item).collect()
}
