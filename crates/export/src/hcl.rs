//! A small HCL writer whose output is what `terraform fmt` leaves: two-space indents, one
//! bracket level per line, and the `=` of consecutive single-line attributes aligned one column
//! past the longest name (hclwrite's rule, chains broken by any line without a whole `name =
//! value`). hcl-rs formats neither the alignment nor multi-line function arguments, so it only
//! escapes here: string literals go through its formatter (quotes, backslashes, control
//! characters, and `${` / `%{` doubled so Terraform never reads them as templates).

use std::fmt::Write;

/// An HCL expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A literal string (escaped when written).
    Str(String),
    /// A quoted template of literal text and interpolated references (`"${aws_s3_bucket.a.arn}/*"`).
    Template(Vec<Part>),
    /// A reference such as `aws_iam_role.build.arn` or `var.endpoint`.
    Ref(String),
    Number(serde_json::Number),
    Bool(bool),
    Null,
    List(Vec<Expr>),
    /// An object (`{ key = value }`); keys are written bare when they are identifiers.
    Object(Vec<(String, Expr)>),
    /// A function call, e.g. `jsonencode({...})`.
    Call(String, Vec<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Lit(String),
    Ref(String),
}

impl Expr {
    pub fn str(s: impl Into<String>) -> Expr {
        Expr::Str(s.into())
    }
    pub fn int(n: i64) -> Expr {
        Expr::Number(n.into())
    }
    /// A template from parts, collapsed to a plain string or a bare reference when that is
    /// all it is (`terraform fmt` unwraps `"${x}"` to `x`).
    pub fn template(parts: Vec<Part>) -> Expr {
        let mut merged: Vec<Part> = Vec::new();
        for p in parts {
            match (merged.last_mut(), p) {
                (_, Part::Lit(s)) if s.is_empty() => {}
                (Some(Part::Lit(a)), Part::Lit(b)) => a.push_str(&b),
                (_, p) => merged.push(p),
            }
        }
        match merged.as_slice() {
            [] => Expr::Str(String::new()),
            [Part::Lit(s)] => Expr::Str(s.clone()),
            [Part::Ref(r)] => Expr::Ref(r.clone()),
            _ => Expr::Template(merged),
        }
    }
    /// A JSON value as an HCL expression (for `jsonencode`), strings mapped by `string`.
    pub fn from_json(v: &serde_json::Value, string: &mut dyn FnMut(&str) -> Expr) -> Expr {
        use serde_json::Value;
        match v {
            Value::Null => Expr::Null,
            Value::Bool(b) => Expr::Bool(*b),
            Value::Number(n) => Expr::Number(n.clone()),
            Value::String(s) => string(s),
            Value::Array(items) => Expr::List(items.iter().map(|i| Expr::from_json(i, string)).collect()),
            Value::Object(map) => {
                // Sorted, as jsonencode writes them: the export does not depend on stored order.
                let mut entries: Vec<(String, Expr)> = map.iter().map(|(k, v)| (k.clone(), Expr::from_json(v, string))).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Expr::Object(entries)
            }
        }
    }
    fn is_inline(&self) -> bool {
        match self {
            Expr::List(items) => items.iter().all(|i| matches!(i, Expr::Str(_) | Expr::Template(_) | Expr::Ref(_) | Expr::Number(_) | Expr::Bool(_) | Expr::Null)),
            Expr::Object(entries) => entries.is_empty(),
            Expr::Call(_, args) => args.iter().all(Expr::is_inline),
            _ => true,
        }
    }
}

/// The body of a block (or of the file): attributes and nested blocks, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Body {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Attr(String, Expr),
    Block(Block),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub kind: String,
    pub labels: Vec<String>,
    pub body: Body,
}

impl Block {
    pub fn new(kind: &str, labels: &[&str]) -> Block {
        Block { kind: kind.into(), labels: labels.iter().map(|l| l.to_string()).collect(), body: Body::default() }
    }
}

impl Body {
    pub fn attr(&mut self, name: &str, value: Expr) -> &mut Self {
        self.items.push(Item::Attr(name.into(), value));
        self
    }
    /// An attribute only when there is a value.
    pub fn opt(&mut self, name: &str, value: Option<Expr>) -> &mut Self {
        if let Some(v) = value {
            self.attr(name, v);
        }
        self
    }
    pub fn block(&mut self, block: Block) -> &mut Self {
        self.items.push(Item::Block(block));
        self
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// One output line: `key = rest` (alignable) or plain text.
struct Line {
    indent: usize,
    key: Option<String>,
    text: String,
}

/// Writes top-level blocks separated by blank lines, a newline at the end.
pub fn render(blocks: &[Block]) -> String {
    let mut lines: Vec<Option<Line>> = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        if i > 0 {
            lines.push(None);
        }
        block_lines(b, 0, &mut lines);
    }
    finish(lines)
}

fn finish(lines: Vec<Option<Line>>) -> String {
    // Align `=` over each run of consecutive `key = value` lines (hclwrite's formatCells).
    let mut widths = vec![0usize; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        if !matches!(&lines[i], Some(Line { key: Some(_), .. })) {
            i += 1;
            continue;
        }
        let start = i;
        let mut width = 0;
        while let Some(Some(Line { key: Some(k), indent, .. })) = lines.get(i) {
            width = width.max(indent * 2 + k.chars().count());
            i += 1;
        }
        for w in &mut widths[start..i] {
            *w = width;
        }
    }
    let mut out = String::new();
    for (line, width) in lines.iter().zip(widths) {
        match line {
            None => out.push('\n'),
            Some(Line { indent, key: Some(k), text }) => {
                let pad = width - indent * 2 - k.chars().count();
                let _ = writeln!(out, "{:indent$}{k}{:pad$} = {text}", "", "", indent = indent * 2, pad = pad);
            }
            Some(Line { indent, key: None, text }) => {
                let _ = writeln!(out, "{:indent$}{text}", "", indent = indent * 2);
            }
        }
    }
    out
}

fn block_lines(b: &Block, indent: usize, lines: &mut Vec<Option<Line>>) {
    let mut head = b.kind.clone();
    for l in &b.labels {
        head.push(' ');
        head.push_str(&quote(l));
    }
    if b.body.is_empty() {
        lines.push(Some(Line { indent, key: None, text: format!("{head} {{}}") }));
        return;
    }
    lines.push(Some(Line { indent, key: None, text: format!("{head} {{") }));
    let mut previous_was_block = false;
    for (i, item) in b.body.items.iter().enumerate() {
        match item {
            Item::Attr(name, value) => {
                if previous_was_block {
                    lines.push(None);
                }
                value_lines(Some(name.clone()), value, indent + 1, "", lines);
                previous_was_block = false;
            }
            Item::Block(inner) => {
                if i > 0 {
                    lines.push(None);
                }
                block_lines(inner, indent + 1, lines);
                previous_was_block = true;
            }
        }
    }
    lines.push(Some(Line { indent, key: None, text: "}".into() }));
}

/// `key = value` (or a bare value in a list, then `suffix` is `,`), over as many lines as it takes.
fn value_lines(key: Option<String>, value: &Expr, indent: usize, suffix: &str, lines: &mut Vec<Option<Line>>) {
    let lead = |open: &str| match &key {
        Some(k) => format!("{} = {open}", object_key(k)),
        None => open.to_string(),
    };
    if value.is_inline() {
        let text = format!("{}{suffix}", inline(value));
        lines.push(Some(match &key {
            Some(k) => Line { indent, key: Some(object_key(k)), text },
            None => Line { indent, key: None, text },
        }));
        return;
    }
    match value {
        Expr::Object(entries) => {
            lines.push(Some(Line { indent, key: None, text: lead("{") }));
            for (k, v) in entries {
                value_lines(Some(k.clone()), v, indent + 1, "", lines);
            }
            lines.push(Some(Line { indent, key: None, text: format!("}}{suffix}") }));
        }
        Expr::List(items) => {
            lines.push(Some(Line { indent, key: None, text: lead("[") }));
            for v in items {
                value_lines(None, v, indent + 1, ",", lines);
            }
            lines.push(Some(Line { indent, key: None, text: format!("]{suffix}") }));
        }
        Expr::Call(name, args) if args.len() == 1 => {
            let (open, close) = match &args[0] {
                Expr::Object(_) => ("{", "}"),
                _ => ("[", "]"),
            };
            lines.push(Some(Line { indent, key: None, text: lead(&format!("{name}({open}")) }));
            match &args[0] {
                Expr::Object(entries) => {
                    for (k, v) in entries {
                        value_lines(Some(k.clone()), v, indent + 1, "", lines);
                    }
                }
                Expr::List(items) => {
                    for v in items {
                        value_lines(None, v, indent + 1, ",", lines);
                    }
                }
                _ => unreachable!("a multi-line argument is an object or a list"),
            }
            lines.push(Some(Line { indent, key: None, text: format!("{close}){suffix}") }));
        }
        _ => unreachable!("only objects, lists and calls span lines"),
    }
}

fn inline(value: &Expr) -> String {
    match value {
        Expr::Str(s) => quote(s),
        Expr::Template(parts) => {
            let mut s = String::from("\"");
            for p in parts {
                match p {
                    Part::Lit(l) => s.push_str(escape(l).as_str()),
                    Part::Ref(r) => {
                        let _ = write!(s, "${{{r}}}");
                    }
                }
            }
            s.push('"');
            s
        }
        Expr::Ref(r) => r.clone(),
        Expr::Number(n) => n.to_string(),
        Expr::Bool(b) => b.to_string(),
        Expr::Null => "null".into(),
        Expr::List(items) => format!("[{}]", items.iter().map(inline).collect::<Vec<_>>().join(", ")),
        Expr::Object(entries) if entries.is_empty() => "{}".into(),
        Expr::Object(entries) => format!("{{ {} }}", entries.iter().map(|(k, v)| format!("{} = {}", object_key(k), inline(v))).collect::<Vec<_>>().join(", ")),
        Expr::Call(name, args) => format!("{name}({})", args.iter().map(inline).collect::<Vec<_>>().join(", ")),
    }
}

/// A string literal, quoted and escaped (hcl-rs's escaping).
pub fn quote(s: &str) -> String {
    hcl::format::to_string(&hcl::Expression::String(s.to_string())).expect("a string always formats")
}

/// The inside of a string literal: what goes between the quotes.
fn escape(s: &str) -> String {
    let q = quote(s);
    q[1..q.len() - 1].to_string()
}

/// An object key: bare when it is a plain identifier HCL reads as a literal key (no dashes,
/// which read like subtraction), else quoted.
fn object_key(k: &str) -> String {
    let plain = is_identifier(k) && !k.contains('-') && !matches!(k, "null" | "true" | "false");
    if plain { k.to_string() } else { quote(k) }
}

/// `[A-Za-z_][A-Za-z0-9_-]*`: a name Terraform accepts for a resource, a block or a key.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A resource name made of an AWS name: every character Terraform does not take in a name
/// becomes `_`, dashes too (so names read as identifiers), and a leading digit gets a `_`
/// before it. Never empty.
pub fn sanitize(name: &str) -> String {
    let mut s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: Body) -> String {
        render(&[Block { kind: "resource".into(), labels: vec!["t".into(), "n".into()], body }])
    }

    #[test]
    fn sanitizes_names() {
        assert_eq!(sanitize("devopsintro-dev-codebuild-iam-role"), "devopsintro_dev_codebuild_iam_role");
        assert_eq!(sanitize("my.bucket.name"), "my_bucket_name");
        assert_eq!(sanitize("2024-logs"), "_2024_logs");
        assert_eq!(sanitize("/aws/codebuild/p"), "_aws_codebuild_p");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize("Ünïcode"), "_n_code");
        for s in ["a-b", "1", "/x/y", "é", "a b"] {
            assert!(is_identifier(&sanitize(s)), "{s}");
        }
        assert!(!is_identifier("1a") && !is_identifier("a.b") && is_identifier("_a-b"));
    }

    #[test]
    fn escapes_strings() {
        assert_eq!(quote("plain"), r#""plain""#);
        assert_eq!(quote(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(quote("a\nb\tc\\d"), r#""a\nb\tc\\d""#);
        assert_eq!(quote("${not.a.ref}"), r#""$${not.a.ref}""#);
        assert_eq!(quote("%{ if x }"), r#""%%{ if x }""#);
        assert_eq!(quote("$5 and 100%"), r#""$5 and 100%""#);
        // What Terraform reads back is the original text: parse the HCL with hcl-rs.
        for s in ["${a}", "%{b}", "q\"uote", "line\nbreak", "back\\slash", "<input>", "$${x}", "tab\t", "\u{1}"] {
            let text = format!("v = {}\n", quote(s));
            let body: hcl::Body = hcl::from_str(&text).unwrap();
            let value: hcl::Value = hcl::eval::Evaluate::evaluate(body.attributes().next().unwrap().expr(), &hcl::eval::Context::new()).unwrap();
            assert_eq!(value, hcl::Value::String(s.to_string()), "{text}");
        }
    }

    #[test]
    fn templates_escape_literal_parts() {
        let t = Expr::template(vec![Part::Ref("aws_s3_bucket.a.arn".into()), Part::Lit("/${x}\"".into())]);
        assert_eq!(inline(&t), r#""${aws_s3_bucket.a.arn}/$${x}\"""#);
        assert_eq!(Expr::template(vec![Part::Ref("a.b".into())]), Expr::Ref("a.b".into()));
        assert_eq!(Expr::template(vec![Part::Lit("a".into()), Part::Lit("b".into())]), Expr::str("ab"));
    }

    #[test]
    fn aligns_like_terraform_fmt() {
        let mut body = Body::default();
        body.attr("name", Expr::str("x")).attr("description", Expr::str("y"));
        body.attr("tags", Expr::Object(vec![("Environment".into(), Expr::str("dev")), ("Team".into(), Expr::str("a"))]));
        body.attr("build_timeout", Expr::int(5));
        let mut src = Block::new("source", &[]);
        src.body.attr("type", Expr::str("CODECOMMIT")).attr("location", Expr::Ref("aws_codecommit_repository.r.clone_url_http".into()));
        body.block(src);
        assert_eq!(
            one(body),
            r#"resource "t" "n" {
  name        = "x"
  description = "y"
  tags = {
    Environment = "dev"
    Team        = "a"
  }
  build_timeout = 5

  source {
    type     = "CODECOMMIT"
    location = aws_codecommit_repository.r.clone_url_http
  }
}
"#
        );
    }

    #[test]
    fn policies_as_jsonencode() {
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::b/*", "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}]});
        let mut body = Body::default();
        body.attr("policy", Expr::Call("jsonencode".into(), vec![Expr::from_json(&doc, &mut |s| Expr::str(s))]));
        assert_eq!(
            one(body),
            r#"resource "t" "n" {
  policy = jsonencode({
    Statement = [
      {
        Action = ["s3:*"]
        Condition = {
          StringEquals = {
            "aws:SourceAccount" = "1"
          }
        }
        Effect   = "Allow"
        Resource = "arn:aws:s3:::b/*"
      },
    ]
    Version = "2012-10-17"
  })
}
"#
        );
        // And hcl-rs reads the object back as the document.
        let text = one({
            let mut b = Body::default();
            b.attr("p", Expr::from_json(&doc, &mut |s| Expr::str(s)));
            b
        });
        let parsed: hcl::Body = hcl::from_str(&text).unwrap();
        let block = parsed.blocks().next().unwrap();
        let v: hcl::Value = hcl::eval::Evaluate::evaluate(block.body().attributes().next().unwrap().expr(), &hcl::eval::Context::new()).unwrap();
        assert_eq!(serde_json::to_value(v).unwrap(), doc);
    }

    #[test]
    fn keys_that_are_not_identifiers_are_quoted() {
        assert_eq!(object_key("detail-type"), r#""detail-type""#);
        assert_eq!(object_key("Version"), "Version");
        assert_eq!(object_key("aws:SourceArn"), r#""aws:SourceArn""#);
        assert_eq!(object_key("null"), r#""null""#);
        assert_eq!(object_key("1x"), r#""1x""#);
    }
}
