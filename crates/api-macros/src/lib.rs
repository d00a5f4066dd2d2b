//! `#[codeyard_api::service]` on `impl LogsApi for LogsService { ... }` adds the trait's
//! required `IMPLEMENTED_METHODS`, listing every `fn` the block defines. The operations a
//! service implements (what the wire serves, the README table, `codeyard ops`) are derived
//! from that list, so they cannot drift from the code. Written against `proc_macro` alone
//! (no syn) to keep the build light: it only needs the names after top-level `fn` tokens.

use proc_macro::{Delimiter, Group, TokenStream, TokenTree};

#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return compile_error("#[codeyard_api::service] takes no arguments");
    }
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    let is_impl = tokens.iter().any(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "impl"));
    let body_at = tokens.iter().rposition(|t| matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace));
    let (true, Some(body_at)) = (is_impl, body_at) else {
        return compile_error("#[codeyard_api::service] goes on an `impl <Service>Api for <Type> { ... }` block");
    };
    let TokenTree::Group(body) = &tokens[body_at] else { unreachable!("found as a brace group") };
    let items: Vec<TokenTree> = body.stream().into_iter().collect();
    let mut methods = Vec::new();
    for pair in items.windows(2) {
        if let (TokenTree::Ident(keyword), TokenTree::Ident(name)) = (&pair[0], &pair[1])
            && keyword.to_string() == "fn"
        {
            methods.push(format!("{:?}", name.to_string().trim_start_matches("r#")));
        }
    }
    let added: TokenStream = format!("const IMPLEMENTED_METHODS: &'static [&'static str] = &[{}];", methods.join(", "))
        .parse()
        .expect("generated method parses");
    let mut stream = body.stream();
    stream.extend(added);
    let mut group = Group::new(Delimiter::Brace, stream);
    group.set_span(body.span());
    tokens[body_at] = TokenTree::Group(group);
    tokens.into_iter().collect()
}

fn compile_error(message: &str) -> TokenStream {
    format!("compile_error!({message:?});").parse().expect("compile_error parses")
}
