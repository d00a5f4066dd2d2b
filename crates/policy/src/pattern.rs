//! Wildcards and policy variables.
//!
//! `*` matches any run of characters (also none) and `?` exactly one, in `Action` (case
//! insensitive), `Resource` (case sensitive) and the `...Like` condition operators. Policy
//! variables (`${aws:username}`) are replaced by the request's value of that key before matching;
//! the replaced text is literal (a user name containing `*` matches only a `*`). `${*}`, `${?}`
//! and `${$}` stand for the literal characters. A variable whose key the request does not carry
//! (and that gives no default, as in `${aws:username, 'nobody'}`) makes that value match
//! nothing. Variables exist only in documents of `Version` 2012-10-17; in 2008-10-17 documents
//! `${...}` is plain text.

use crate::context::Context;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Lit(char),
    /// `*`
    Any,
    /// `?`
    One,
}

/// Turns a policy value into tokens, replacing variables. `None`: a variable could not be
/// resolved, so the value matches nothing.
pub fn expand(value: &str, ctx: &Context, variables: bool) -> Option<Vec<Tok>> {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        if variables
            && rest.starts_with("${")
            && let Some(end) = rest.find('}')
        {
            for ch in resolve(&rest[2..end], ctx)?.chars() {
                out.push(Tok::Lit(ch));
            }
            rest = &rest[end + 1..];
            continue;
        }
        out.push(match c {
            '*' => Tok::Any,
            '?' => Tok::One,
            c => Tok::Lit(c),
        });
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

/// The value of one `${...}` (without the braces).
fn resolve(inner: &str, ctx: &Context) -> Option<String> {
    match inner {
        "*" => return Some("*".into()),
        "?" => return Some("?".into()),
        "$" => return Some("$".into()),
        _ => {}
    }
    let (key, default) = match inner.split_once(',') {
        Some((k, d)) => {
            let d = d.trim();
            let d = d.strip_prefix('\'').and_then(|d| d.strip_suffix('\'')).unwrap_or(d);
            (k.trim(), Some(d.to_string()))
        }
        None => (inner.trim(), None),
    };
    match ctx.get(key) {
        // A multi-valued key cannot stand in for one value.
        Some([one]) => Some(one.clone()),
        _ => default,
    }
}

/// The tokens with wildcards taken literally (for the `...Equals` operators).
pub fn literal(toks: &[Tok]) -> String {
    toks.iter()
        .map(|t| match t {
            Tok::Lit(c) => *c,
            Tok::Any => '*',
            Tok::One => '?',
        })
        .collect()
}

/// Whether `text` matches the tokens (`*`, `?` wildcards).
pub fn glob(toks: &[Tok], text: &str, ignore_case: bool) -> bool {
    let text: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| if ignore_case { a.to_lowercase().eq(b.to_lowercase()) } else { a == b };
    // Iterative matching with backtracking to the last `*` (linear in practice).
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Tok::One) => {
                p += 1;
                t += 1;
            }
            Some(Tok::Lit(c)) if eq(*c, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Any)
}

/// A wildcard pattern without variables against a text.
pub fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    // Most actions and resources in policies name one thing: no tokens needed.
    if !pattern.contains(['*', '?']) {
        return if ignore_case { pattern.eq_ignore_ascii_case(text) || pattern.to_lowercase() == text.to_lowercase() } else { pattern == text };
    }
    let toks = expand(pattern, &Context::default(), false).expect("no variables");
    glob(&toks, text, ignore_case)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let cases = [
            ("*", "anything", false, true),
            ("*", "", false, true),
            ("s3:Get*", "s3:GetObject", false, true),
            ("s3:get*", "S3:GETOBJECT", true, true),
            ("s3:get*", "s3:GetObject", false, false),
            ("s3:Get?bject", "s3:GetObject", false, true),
            ("s3:Get?bject", "s3:Getbject", false, false),
            ("arn:aws:s3:::b/*", "arn:aws:s3:::b/k/deep", false, true),
            ("arn:aws:s3:::b/*", "arn:aws:s3:::b", false, false),
            ("arn:aws:s3:::b*", "arn:aws:s3:::b", false, true),
            ("a*b*c", "aXXbYYc", false, true),
            ("a*b*c", "aXXbYY", false, false),
            ("*a*a*a*", "aaa", false, true),
            ("??", "abc", false, false),
        ];
        for (p, t, ic, want) in cases {
            assert_eq!(wildcard_match(p, t, ic), want, "{p} vs {t}");
        }
    }

    #[test]
    fn variables() {
        let mut ctx = Context::default();
        ctx.set("aws:username", "alice");
        ctx.set("aws:PrincipalTag/team", "blue");
        ctx.set_multi("aws:TagKeys", vec!["a".into(), "b".into()]);
        let e = |v: &str| expand(v, &ctx, true).map(|t| literal(&t));
        assert_eq!(e("arn:aws:s3:::home/${aws:username}/*").as_deref(), Some("arn:aws:s3:::home/alice/*"));
        assert_eq!(e("${aws:principaltag/TEAM}").as_deref(), Some("blue"), "keys are case-insensitive");
        assert_eq!(e("${*}${?}${$}").as_deref(), Some("*?$"));
        assert_eq!(e("${aws:userid}"), None, "missing key: the value matches nothing");
        assert_eq!(e("${aws:userid, 'nobody'}").as_deref(), Some("nobody"));
        assert_eq!(e("${aws:TagKeys}"), None, "multi-valued keys are no variable");
        // Replaced text is literal: a `*` in a value is no wildcard.
        let mut odd = Context::default();
        odd.set("aws:username", "a*");
        let toks = expand("${aws:username}", &odd, true).unwrap();
        assert!(glob(&toks, "a*", false));
        assert!(!glob(&toks, "abc", false));
        // 2008-10-17 documents have no variables.
        assert_eq!(expand("${aws:username}", &ctx, false).map(|t| literal(&t)).as_deref(), Some("${aws:username}"));
    }
}
