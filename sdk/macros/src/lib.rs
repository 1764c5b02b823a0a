//! Attribute macros re-exported by `kaunter-sdk` as `#[kaunter_sdk::transform]` and
//! `#[kaunter_sdk::connector]` and `#[kaunter_sdk::source]`. Each keeps the function as written (so it can be unit-tested
//! natively like any function) and adds the export of the component's world around it.

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{ItemFn, parse_macro_input};

/// Exports `fn NAME(event: Event) -> Result<T, PluginError>` as the `transform` world, where `T`
/// is `Vec<Event>`, `Option<Event>` (none drops the event) or `Event`.
#[proc_macro_attribute]
pub fn transform(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = parse_macro_input!(item as ItemFn);
    if let Some(problem) = check(
        &attr,
        &function,
        1,
        "fn handle(event: Event) -> Result<Vec<Event>, PluginError>",
    ) {
        return problem;
    }
    let name = &function.sig.ident;
    let exported = format_ident!("__KaunterTransform_{}", name);
    quote! {
        #function

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        pub struct #exported;

        impl ::kaunter_sdk::Transform for #exported {
            fn handle(
                event: ::kaunter_sdk::Event,
            ) -> ::core::result::Result<::std::vec::Vec<::kaunter_sdk::Event>, ::kaunter_sdk::PluginError> {
                #name(event).map(::kaunter_sdk::IntoEvents::into_events)
            }
        }

        ::kaunter_sdk::export_transform!(#exported);
    }
    .into()
}

/// Exports `fn NAME(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError>`
/// as the `connector` world.
#[proc_macro_attribute]
pub fn connector(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = parse_macro_input!(item as ItemFn);
    if let Some(problem) = check(
        &attr,
        &function,
        2,
        "fn deliver(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError>",
    ) {
        return problem;
    }
    let name = &function.sig.ident;
    let exported = format_ident!("__KaunterConnector_{}", name);
    quote! {
        #function

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        pub struct #exported;

        impl ::kaunter_sdk::Connector for #exported {
            fn deliver(
                event: ::kaunter_sdk::Event,
                context: ::kaunter_sdk::DeliveryContext,
            ) -> ::core::result::Result<::kaunter_sdk::Receipt, ::kaunter_sdk::DeliveryError> {
                #name(event, context)
            }
        }

        ::kaunter_sdk::export_connector!(#exported);
    }
    .into()
}

/// Exports `fn NAME(request: WebhookRequest) -> Result<Vec<Event>, DecodeError>` as the `source`
/// world.
#[proc_macro_attribute]
pub fn source(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = parse_macro_input!(item as ItemFn);
    if let Some(problem) = check(
        &attr,
        &function,
        1,
        "fn decode(request: WebhookRequest) -> Result<Vec<Event>, DecodeError>",
    ) {
        return problem;
    }
    let name = &function.sig.ident;
    let exported = format_ident!("__KaunterSource_{}", name);
    quote! {
        #function

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        pub struct #exported;

        impl ::kaunter_sdk::Source for #exported {
            fn decode(
                request: ::kaunter_sdk::WebhookRequest,
            ) -> ::core::result::Result<::std::vec::Vec<::kaunter_sdk::Event>, ::kaunter_sdk::DecodeError> {
                #name(request).map(::kaunter_sdk::IntoEvents::into_events)
            }
        }

        ::kaunter_sdk::export_source!(#exported);
    }
    .into()
}

/// A compile error pointing at the function when its shape is not the expected one.
fn check(attr: &TokenStream, function: &ItemFn, arguments: usize, expected: &str) -> Option<TokenStream> {
    let problem = if !attr.is_empty() {
        Some("takes no arguments")
    } else if function.sig.inputs.len() != arguments {
        Some("goes on a function with the world's arguments")
    } else if function.sig.asyncness.is_some() || !function.sig.generics.params.is_empty() {
        Some("goes on a plain (not async, not generic) function")
    } else {
        None
    }?;
    let message = format!("this attribute {problem}: expected `{expected}`");
    Some(
        syn::Error::new_spanned(&function.sig, message)
            .to_compile_error()
            .into(),
    )
}
