//! The EventBridge event-pattern language: compiled once, matched many times.
//!
//! A pattern compiles into a [`Pattern`]: a disjunction (`$or` expanded) of conjunctions of
//! field tests. Each field test names a flattened path (`detail.state`; dots in keys and
//! nesting are the same thing, as on AWS) and the matchers any one of which a value at that
//! path must satisfy. An event is flattened once into its leaf values ([`FlatEvent`]) and every
//! candidate rule is checked against it.
//!
//! Arrays: a field matches when any element matches, and (as EventBridge's event-ruler does)
//! values chosen for different fields of one conjunction must come from the same element of
//! any array they share ("array consistency").
//!
//! Validation follows AWS: the messages returned in `InvalidEventPatternException` are AWS's
//! (`Event pattern is not valid. Reason: ...`), checked by the conformance suite.

use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// Largest absolute value a numeric matcher accepts (AWS's documented range).
const NUMERIC_LIMIT: f64 = 5.0e9;
/// More wildcards than this in one pattern is "too complex" for AWS.
const MAX_WILDCARDS: usize = 4;
/// A pattern whose `$or`s expand to more alternatives than this is refused.
const MAX_ALTERNATIVES: usize = 1000;

/// Why a pattern was refused: the reason AWS gives after "Event pattern is not valid. Reason: ".
#[derive(Clone, Debug, PartialEq)]
pub struct PatternError(pub String);

impl PatternError {
    /// The full message of AWS's `InvalidEventPatternException`.
    pub fn message(&self) -> String {
        format!("Event pattern is not valid. Reason: {}", self.0)
    }
}

fn err<T>(reason: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError(reason.into()))
}

/// A compiled event pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// Alternatives (from `$or`); the pattern matches when any one matches.
    alternatives: Vec<Conjunction>,
}

#[derive(Clone, Debug, Default)]
struct Conjunction {
    fields: Vec<FieldTest>,
}

#[derive(Clone, Debug)]
struct FieldTest {
    path: String,
    matchers: Vec<Matcher>,
}

#[derive(Clone, Debug)]
enum Matcher {
    ExactString(String),
    ExactNumber(f64),
    ExactBool(bool),
    Null,
    Prefix(String),
    PrefixIgnoreCase(String),
    Suffix(String),
    SuffixIgnoreCase(String),
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    AnythingBut(AnythingBut),
    Numeric(Vec<(NumOp, f64)>),
    Cidr(Cidr),
    Exists(bool),
}

#[derive(Clone, Debug)]
enum AnythingBut {
    Strings(Vec<String>),
    Numbers(Vec<f64>),
    Prefixes(Vec<String>),
    Suffixes(Vec<String>),
    IgnoreCase(Vec<String>),
    Wildcards(Vec<Wildcard>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum NumOp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl NumOp {
    fn parse(s: &str) -> Option<NumOp> {
        Some(match s {
            "=" => NumOp::Eq,
            "<" => NumOp::Lt,
            "<=" => NumOp::Le,
            ">" => NumOp::Gt,
            ">=" => NumOp::Ge,
            _ => return None,
        })
    }
    fn holds(self, v: f64, bound: f64) -> bool {
        match self {
            NumOp::Eq => v == bound,
            NumOp::Lt => v < bound,
            NumOp::Le => v <= bound,
            NumOp::Gt => v > bound,
            NumOp::Ge => v >= bound,
        }
    }
    fn is_lower(self) -> bool {
        matches!(self, NumOp::Gt | NumOp::Ge)
    }
    fn is_upper(self) -> bool {
        matches!(self, NumOp::Lt | NumOp::Le)
    }
}

/// A `wildcard` pattern: literal segments separated by `*`.
#[derive(Clone, Debug)]
struct Wildcard {
    segments: Vec<String>,
}

impl Wildcard {
    fn compile(p: &str) -> Result<Wildcard, PatternError> {
        let mut segments = vec![String::new()];
        let chars: Vec<char> = p.chars().collect();
        let mut i = 0;
        let mut last_star: Option<usize> = None;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if last_star == Some(i.wrapping_sub(1)) && i > 0 {
                        return err(format!("Consecutive wildcard characters at pos {i}"));
                    }
                    last_star = Some(i);
                    segments.push(String::new());
                }
                '\\' => match chars.get(i + 1) {
                    Some(c @ ('*' | '\\')) => {
                        segments.last_mut().unwrap().push(*c);
                        i += 1;
                    }
                    _ => return err(format!("Invalid escape character at pos {i}")),
                },
                c => segments.last_mut().unwrap().push(c),
            }
            i += 1;
        }
        if segments.len() - 1 > MAX_WILDCARDS {
            return err(
                "Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character",
            );
        }
        Ok(Wildcard { segments })
    }

    fn matches(&self, s: &str) -> bool {
        let segs = &self.segments;
        if segs.len() == 1 {
            return s == segs[0];
        }
        let (first, last) = (&segs[0], &segs[segs.len() - 1]);
        if s.len() < first.len() + last.len()
            || !s.starts_with(first.as_str())
            || !s.ends_with(last.as_str())
        {
            return false;
        }
        let mut rest = &s[first.len()..s.len() - last.len()];
        for mid in &segs[1..segs.len() - 1] {
            match rest.find(mid.as_str()) {
                Some(i) => rest = &rest[i + mid.len()..],
                None => return false,
            }
        }
        true
    }
}

#[derive(Clone, Debug)]
struct Cidr {
    net: u128,
    mask: u128,
    v6: bool,
}

impl Cidr {
    fn compile(s: &str) -> Result<Cidr, PatternError> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() != 2 {
            return err("Malformed CIDR, one '/' required");
        }
        let Ok(bits) = parts[1].parse::<u32>() else {
            return err("Malformed CIDR, mask bits must be an integer");
        };
        let ip: IpAddr = match parts[0].parse() {
            Ok(ip) => ip,
            Err(_) => return err(format!("Nonstandard IP address: {}", parts[0])),
        };
        let (value, width, v6) = ip_bits(ip);
        if bits > width {
            return err(format!(
                "Malformed CIDR, mask bits must be between 0 and {width}"
            ));
        }
        let mask = if bits == 0 {
            0
        } else {
            (!0u128) << (width - bits) & width_mask(width)
        };
        Ok(Cidr {
            net: value & mask,
            mask,
            v6,
        })
    }
    fn contains(&self, s: &str) -> bool {
        let Ok(ip) = s.parse::<IpAddr>() else {
            return false;
        };
        let (value, _, v6) = ip_bits(ip);
        v6 == self.v6 && value & self.mask == self.net
    }
}

fn width_mask(width: u32) -> u128 {
    if width == 128 {
        !0
    } else {
        (1u128 << width) - 1
    }
}

fn ip_bits(ip: IpAddr) -> (u128, u32, bool) {
    match ip {
        IpAddr::V4(a) => (u32::from(a) as u128, 32, false),
        IpAddr::V6(a) => (u128::from(a), 128, true),
    }
}

// ------------------------------------------------------------------------------------ compile

impl Pattern {
    /// Parses and compiles a pattern given as JSON text (AWS's `EventPattern` string).
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| PatternError(json_error_reason(text, &e)))?;
        Pattern::compile(&value)
    }

    /// Compiles a pattern already parsed as JSON.
    pub fn compile(value: &Value) -> Result<Pattern, PatternError> {
        let Value::Object(obj) = value else {
            return err("Filter is not an object");
        };
        if obj.is_empty() {
            return err("Empty objects are not allowed");
        }
        let alternatives = compile_object(obj, "")?;
        Ok(Pattern { alternatives })
    }

    /// Whether the pattern matches an event (a JSON object).
    pub fn matches(&self, event: &Value) -> bool {
        self.matches_flat(&FlatEvent::new(event))
    }

    /// Whether the pattern matches an event flattened once for many patterns.
    pub fn matches_flat(&self, event: &FlatEvent<'_>) -> bool {
        self.alternatives.iter().any(|c| c.matches(event))
    }

    /// For indexing: a path at which every alternative requires one of a set of exact string
    /// values, and those values. Prefers `source`, then `detail-type`.
    pub fn index_key(&self) -> Option<(String, Vec<String>)> {
        let exact_values = |c: &Conjunction, path: &str| -> Option<Vec<String>> {
            let f = c.fields.iter().find(|f| f.path == path)?;
            f.matchers
                .iter()
                .map(|m| match m {
                    Matcher::ExactString(s) => Some(s.clone()),
                    _ => None,
                })
                .collect()
        };
        let first = self.alternatives.first()?;
        let mut paths: Vec<&str> = first.fields.iter().map(|f| f.path.as_str()).collect();
        paths.sort_by_key(|p| match *p {
            "source" => 0,
            "detail-type" => 1,
            _ => 2,
        });
        for path in paths {
            let mut all = Vec::new();
            let mut ok = true;
            for c in &self.alternatives {
                match exact_values(c, path) {
                    Some(v) => all.extend(v),
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                all.sort();
                all.dedup();
                return Some((path.to_string(), all));
            }
        }
        None
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Compiles the members of one pattern object into alternatives (cross product of `$or`s).
fn compile_object(
    obj: &serde_json::Map<String, Value>,
    prefix: &str,
) -> Result<Vec<Conjunction>, PatternError> {
    let mut alts = vec![Conjunction::default()];
    for (key, value) in obj {
        let parts: Vec<Conjunction> = if key == "$or" {
            let Value::Array(items) = value else {
                return err("Value of $or must be an array of objects");
            };
            if items.len() < 2 {
                return err("Or relationship array must contain at least two rule objects");
            }
            let mut out = Vec::new();
            for item in items {
                let Value::Object(o) = item else {
                    return err("Value of $or must be an array of objects");
                };
                if o.is_empty() {
                    return err("Empty objects are not allowed");
                }
                out.extend(compile_object(o, prefix)?);
            }
            out
        } else {
            let path = join(prefix, key);
            match value {
                Value::Object(o) => {
                    if o.is_empty() {
                        return err("Empty objects are not allowed");
                    }
                    compile_object(o, &path)?
                }
                Value::Array(items) => {
                    if items.is_empty() {
                        return err("Empty arrays are not allowed");
                    }
                    let matchers = items
                        .iter()
                        .map(compile_match)
                        .collect::<Result<Vec<_>, _>>()?;
                    vec![Conjunction {
                        fields: vec![FieldTest { path, matchers }],
                    }]
                }
                _ => return err(format!("\"{key}\" must be an object or an array")),
            }
        };
        let mut next = Vec::with_capacity(alts.len() * parts.len());
        for a in &alts {
            for p in &parts {
                let mut c = a.clone();
                c.fields.extend(p.fields.iter().cloned());
                next.push(c);
            }
        }
        if next.len() > MAX_ALTERNATIVES {
            return err("Rule is too complex");
        }
        alts = next;
    }
    Ok(alts)
}

fn number_of(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// One element of a field's array: a value or an operator object.
fn compile_match(v: &Value) -> Result<Matcher, PatternError> {
    Ok(match v {
        Value::String(s) => Matcher::ExactString(s.clone()),
        Value::Number(n) => Matcher::ExactNumber(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => Matcher::ExactBool(*b),
        Value::Null => Matcher::Null,
        Value::Array(_) => return err("Match value must be String, number, true, false, or null"),
        Value::Object(o) => {
            if o.is_empty() {
                return err("Empty objects are not allowed");
            }
            if o.len() > 1 {
                return err("Only one key allowed in match expression");
            }
            let (op, arg) = o.iter().next().unwrap();
            compile_operator(op, arg)?
        }
    })
}

fn compile_operator(op: &str, arg: &Value) -> Result<Matcher, PatternError> {
    match op {
        "prefix" | "suffix" => {
            let is_prefix = op == "prefix";
            let must_be_string = || err(format!("{op} match pattern must be a string"));
            match arg {
                Value::String(s) => Ok(if is_prefix {
                    Matcher::Prefix(s.clone())
                } else {
                    Matcher::Suffix(s.clone())
                }),
                Value::Object(o) if o.len() == 1 => match o.get("equals-ignore-case") {
                    Some(Value::String(s)) => {
                        let s = s.to_lowercase();
                        Ok(if is_prefix {
                            Matcher::PrefixIgnoreCase(s)
                        } else {
                            Matcher::SuffixIgnoreCase(s)
                        })
                    }
                    Some(_) => err("equals-ignore-case match pattern must be a string"),
                    None => err(format!(
                        "Unsupported {op} pattern: {}",
                        o.keys().next().unwrap()
                    )),
                },
                _ => must_be_string(),
            }
        }
        "equals-ignore-case" => match arg {
            Value::String(s) => Ok(Matcher::EqualsIgnoreCase(s.to_lowercase())),
            _ => err("equals-ignore-case match pattern must be a string"),
        },
        "wildcard" => match arg {
            Value::String(s) => Ok(Matcher::Wildcard(Wildcard::compile(s)?)),
            _ => err("wildcard match pattern must be a string"),
        },
        "anything-but" => Ok(Matcher::AnythingBut(compile_anything_but(arg)?)),
        "numeric" => compile_numeric(arg),
        "cidr" => match arg {
            Value::String(s) => Ok(Matcher::Cidr(Cidr::compile(s)?)),
            _ => err("prefix match pattern must be a string"),
        },
        "exists" => match arg {
            Value::Bool(b) => Ok(Matcher::Exists(*b)),
            _ => err("exists match pattern must be either true or false."),
        },
        other => err(format!("Unrecognized match type {other}")),
    }
}

fn compile_anything_but(arg: &Value) -> Result<AnythingBut, PatternError> {
    const SHAPE: &str = "Value of anything-but must be an array or single string/number value.";
    match arg {
        Value::String(s) => Ok(AnythingBut::Strings(vec![s.clone()])),
        Value::Number(n) => Ok(AnythingBut::Numbers(vec![n.as_f64().unwrap_or(f64::NAN)])),
        Value::Array(items) => {
            if items.is_empty() {
                return err("Empty arrays are not allowed");
            }
            let mut strings = Vec::new();
            let mut numbers = Vec::new();
            for item in items {
                match item {
                    Value::String(s) if numbers.is_empty() => strings.push(s.clone()),
                    Value::Number(n) if strings.is_empty() => {
                        numbers.push(n.as_f64().unwrap_or(f64::NAN))
                    }
                    _ => {
                        return err(
                            "Inside anything but list, start|null|boolean is not supported.",
                        );
                    }
                }
            }
            Ok(if strings.is_empty() {
                AnythingBut::Numbers(numbers)
            } else {
                AnythingBut::Strings(strings)
            })
        }
        Value::Object(o) => {
            if o.len() != 1 {
                return err(SHAPE);
            }
            let (key, value) = o.iter().next().unwrap();
            match key.as_str() {
                "prefix" | "suffix" => {
                    let one = |v: &Value| -> Result<String, PatternError> {
                        match v {
                            Value::String(s) if s.is_empty() => {
                                err("Null prefix/suffix not allowed")
                            }
                            Value::String(s) => Ok(s.clone()),
                            _ => err("prefix/suffix match pattern must be a string"),
                        }
                    };
                    let list = match value {
                        Value::Array(items) if !items.is_empty() => {
                            items.iter().map(one).collect::<Result<Vec<_>, _>>()?
                        }
                        Value::Array(_) => return err("Empty arrays are not allowed"),
                        Value::Object(_) => return err(SHAPE),
                        v => vec![one(v)?],
                    };
                    Ok(if key == "prefix" {
                        AnythingBut::Prefixes(list)
                    } else {
                        AnythingBut::Suffixes(list)
                    })
                }
                "equals-ignore-case" => {
                    let bad = || {
                        err(
                            "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
                        )
                    };
                    let list = match value {
                        Value::String(s) => vec![s.to_lowercase()],
                        Value::Array(items) if !items.is_empty() => {
                            let mut out = Vec::new();
                            for i in items {
                                match i {
                                    Value::String(s) => out.push(s.to_lowercase()),
                                    _ => return bad(),
                                }
                            }
                            out
                        }
                        _ => return bad(),
                    };
                    Ok(AnythingBut::IgnoreCase(list))
                }
                "wildcard" => {
                    let one = |v: &Value| -> Result<Wildcard, PatternError> {
                        match v {
                            Value::String(s) => Wildcard::compile(s),
                            _ => err("wildcard match pattern must be a string"),
                        }
                    };
                    let list = match value {
                        Value::Array(items) if !items.is_empty() => {
                            items.iter().map(one).collect::<Result<Vec<_>, _>>()?
                        }
                        Value::Array(_) => return err("Empty arrays are not allowed"),
                        v => vec![one(v)?],
                    };
                    Ok(AnythingBut::Wildcards(list))
                }
                other => err(format!("Unsupported anything-but pattern: {other}")),
            }
        }
        _ => err(SHAPE),
    }
}

fn compile_numeric(arg: &Value) -> Result<Matcher, PatternError> {
    let Value::Array(items) = arg else {
        return err("Value of numeric must be an array.");
    };
    if items.is_empty() {
        return err("Empty arrays are not allowed");
    }
    let mut conds: Vec<(NumOp, f64)> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let Some(op_text) = items[i].as_str() else {
            return err(format!(
                "Value of numeric must be an array of operator/number pairs, found {}",
                items[i]
            ));
        };
        let Some(op) = NumOp::parse(op_text) else {
            return err(format!("Unrecognized numeric range operator: {op_text}"));
        };
        // Allowed shapes: [= n], [> n], [< n], [> n < m] (lower bound first).
        let allowed = match conds.as_slice() {
            [] => true,
            [(first, _)] => first.is_lower() && op.is_upper(),
            _ => false,
        };
        if !allowed {
            return err(format!("Bad numeric range operator: {op_text}"));
        }
        let Some(n) = items.get(i + 1).and_then(number_of) else {
            return err(format!("Value of {op_text} must be numeric"));
        };
        if !(-NUMERIC_LIMIT..=NUMERIC_LIMIT).contains(&n) {
            return err(format!(
                "Value of {op_text} must be numeric (between -5.0E9 and 5.0E9)"
            ));
        }
        if op == NumOp::Eq && items.len() > 2 {
            return err("Bad numeric range operator: =");
        }
        conds.push((op, n));
        i += 2;
    }
    if let [(_, lo), (_, hi)] = conds.as_slice()
        && lo > hi
    {
        return err("Bad numeric range: lower bound is greater than upper bound");
    }
    Ok(Matcher::Numeric(conds))
}

/// Describes a JSON syntax error the way AWS (Jackson) does, as closely as is practical.
fn json_error_reason(text: &str, e: &serde_json::Error) -> String {
    // serde_json reports 1-based line/column of the offending character.
    let offset: usize = text
        .split_inclusive('\n')
        .take(e.line().saturating_sub(1))
        .map(str::len)
        .sum::<usize>()
        + e.column().saturating_sub(1);
    let rest = text.get(offset..).unwrap_or("");
    let c = rest.chars().next();
    let msg = e.to_string();
    if msg.starts_with("key must be a string")
        && let Some(c) = c
    {
        return format!(
            "Unexpected character ('{c}' (code {})): was expecting double-quote to start field name",
            c as u32
        );
    }
    // Jackson names the whole bad token.
    if let Some(c) = c
        && (c.is_alphabetic()
            || msg.starts_with("expected ident")
            || msg.starts_with("expected value"))
    {
        let start = text[..offset]
            .rfind(|ch: char| !ch.is_alphanumeric())
            .map(|i| i + 1)
            .unwrap_or(0);
        let token: String = text[start..]
            .chars()
            .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
            .collect();
        if !token.is_empty() {
            return format!(
                "Unrecognized token '{token}': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
            );
        }
    }
    if e.is_eof() {
        return "Unexpected end-of-input".to_string();
    }
    msg
}

// ------------------------------------------------------------------------------------- match

/// Where a leaf value sits inside arrays: (array id, element index) from the outside in.
type Trail = Vec<(u32, u32)>;

/// An event's leaf values by flattened path, computed once per event.
pub struct FlatEvent<'a> {
    fields: HashMap<String, Vec<(&'a Value, Trail)>>,
    next_array: u32,
}

impl<'a> FlatEvent<'a> {
    pub fn new(event: &'a Value) -> FlatEvent<'a> {
        let mut f = FlatEvent {
            fields: HashMap::new(),
            next_array: 0,
        };
        f.walk(event, String::new(), Vec::new());
        f
    }

    fn walk(&mut self, v: &'a Value, path: String, trail: Trail) {
        match v {
            Value::Object(o) => {
                for (k, child) in o {
                    self.walk(child, join(&path, k), trail.clone());
                }
            }
            Value::Array(items) => {
                let id = self.next_array;
                self.next_array += 1;
                for (i, item) in items.iter().enumerate() {
                    let mut t = trail.clone();
                    t.push((id, i as u32));
                    self.walk(item, path.clone(), t);
                }
            }
            leaf => self.fields.entry(path).or_default().push((leaf, trail)),
        }
    }

    /// Leaf values at a flattened path (for the index).
    pub fn values(&self, path: &str) -> impl Iterator<Item = &'a Value> + '_ {
        self.fields.get(path).into_iter().flatten().map(|(v, _)| *v)
    }
}

fn compatible(a: &Trail, b: &Trail) -> bool {
    a.iter()
        .all(|(id, i)| b.iter().all(|(id2, j)| id != id2 || i == j))
}

impl Conjunction {
    fn matches(&self, event: &FlatEvent<'_>) -> bool {
        // Per field: the trails of the values that satisfy it (None = satisfied by absence).
        let mut options: Vec<Vec<Option<&Trail>>> = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            let values = event.fields.get(&f.path);
            let mut opts = Vec::new();
            match values {
                None => {
                    if f.matchers
                        .iter()
                        .any(|m| matches!(m, Matcher::Exists(false)))
                    {
                        opts.push(None);
                    }
                }
                Some(vs) => {
                    for (v, trail) in vs {
                        if f.matchers.iter().any(|m| m.matches(v)) {
                            opts.push(Some(trail));
                        }
                    }
                }
            }
            if opts.is_empty() {
                return false;
            }
            options.push(opts);
        }
        choose(&options, 0, &mut Vec::new())
    }
}

/// Backtracking over the fields: one value per field, all from consistent array elements.
fn choose<'t>(options: &[Vec<Option<&'t Trail>>], i: usize, chosen: &mut Vec<&'t Trail>) -> bool {
    if i == options.len() {
        return true;
    }
    for opt in &options[i] {
        match opt {
            None => {
                if choose(options, i + 1, chosen) {
                    return true;
                }
            }
            Some(t) => {
                if chosen.iter().all(|c| compatible(c, t)) {
                    chosen.push(t);
                    let ok = choose(options, i + 1, chosen);
                    chosen.pop();
                    if ok {
                        return true;
                    }
                }
            }
        }
    }
    false
}

impl Matcher {
    fn matches(&self, v: &Value) -> bool {
        match self {
            Matcher::ExactString(s) => v.as_str() == Some(s.as_str()),
            Matcher::ExactNumber(n) => v.as_f64() == Some(*n),
            Matcher::ExactBool(b) => v.as_bool() == Some(*b),
            Matcher::Null => v.is_null(),
            Matcher::Prefix(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            Matcher::Suffix(p) => v.as_str().is_some_and(|s| s.ends_with(p.as_str())),
            Matcher::PrefixIgnoreCase(p) => v
                .as_str()
                .is_some_and(|s| s.to_lowercase().starts_with(p.as_str())),
            Matcher::SuffixIgnoreCase(p) => v
                .as_str()
                .is_some_and(|s| s.to_lowercase().ends_with(p.as_str())),
            Matcher::EqualsIgnoreCase(p) => v.as_str().is_some_and(|s| s.to_lowercase() == *p),
            Matcher::Wildcard(w) => v.as_str().is_some_and(|s| w.matches(s)),
            Matcher::Numeric(conds) => match v {
                Value::Number(n) => n
                    .as_f64()
                    .is_some_and(|x| conds.iter().all(|(op, b)| op.holds(x, *b))),
                _ => false,
            },
            Matcher::Cidr(c) => v.as_str().is_some_and(|s| c.contains(s)),
            Matcher::Exists(want) => *want,
            Matcher::AnythingBut(ab) => ab.matches(v),
        }
    }
}

impl AnythingBut {
    /// True unless the value is one of the excluded ones. Values of another type (a number
    /// against a string list, null) are not excluded, as on AWS.
    fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (AnythingBut::Strings(list), Value::String(s)) => !list.iter().any(|x| x == s),
            (AnythingBut::Numbers(list), Value::Number(n)) => {
                let x = n.as_f64();
                !list.iter().any(|b| Some(*b) == x)
            }
            (AnythingBut::Prefixes(list), Value::String(s)) => {
                !list.iter().any(|p| s.starts_with(p.as_str()))
            }
            (AnythingBut::Suffixes(list), Value::String(s)) => {
                !list.iter().any(|p| s.ends_with(p.as_str()))
            }
            (AnythingBut::IgnoreCase(list), Value::String(s)) => {
                let s = s.to_lowercase();
                !list.contains(&s)
            }
            (AnythingBut::Wildcards(list), Value::String(s)) => !list.iter().any(|w| w.matches(s)),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(p: Value, e: Value) -> bool {
        Pattern::compile(&p).unwrap().matches(&e)
    }
    fn reason(p: &str) -> String {
        Pattern::parse(p).unwrap_err().0
    }

    #[test]
    fn exact_values_and_arrays() {
        assert!(m(json!({"source": ["a", "b"]}), json!({"source": "b"})));
        assert!(!m(json!({"source": ["a"]}), json!({"source": "c"})));
        assert!(m(json!({"n": [300]}), json!({"n": 300.0})));
        assert!(m(json!({"n": [null]}), json!({"n": null})));
        assert!(!m(json!({"n": [null]}), json!({})));
        assert!(m(json!({"r": ["x"]}), json!({"r": ["y", "x"]})));
        assert!(m(json!({"d": {"s": [""]}}), json!({"d": {"s": ""}})));
    }

    #[test]
    fn operators() {
        assert!(m(json!({"a": [{"prefix": "ab"}]}), json!({"a": "abc"})));
        assert!(m(
            json!({"a": [{"suffix": {"equals-ignore-case": ".PNG"}}]}),
            json!({"a": "x.png"})
        ));
        assert!(m(
            json!({"a": [{"wildcard": "a*c*e"}]}),
            json!({"a": "abcde"})
        ));
        assert!(!m(
            json!({"a": [{"wildcard": "a*c*e"}]}),
            json!({"a": "abcd"})
        ));
        assert!(m(json!({"a": [{"wildcard": "a\\*"}]}), json!({"a": "a*"})));
        assert!(m(
            json!({"a": [{"numeric": [">", 0, "<=", 5]}]}),
            json!({"a": 5})
        ));
        assert!(!m(
            json!({"a": [{"numeric": [">", 0, "<=", 5]}]}),
            json!({"a": "3"})
        ));
        assert!(m(
            json!({"a": [{"cidr": "10.0.0.0/24"}]}),
            json!({"a": "10.0.0.7"})
        ));
        assert!(m(
            json!({"a": [{"cidr": "2001:db8::/32"}]}),
            json!({"a": "2001:db8:1::1"})
        ));
        assert!(m(
            json!({"a": [{"anything-but": ["x"]}]}),
            json!({"a": null})
        ));
        assert!(!m(json!({"a": [{"anything-but": ["x"]}]}), json!({})));
        assert!(m(json!({"a": [{"exists": false}]}), json!({"b": 1})));
        assert!(!m(json!({"a": [{"exists": true}]}), json!({"a": {"b": 1}})));
    }

    #[test]
    fn or_and_dots_and_array_consistency() {
        let p = json!({"d": {"$or": [{"x": [1]}, {"y": [2]}]}});
        assert!(m(p.clone(), json!({"d": {"y": 2}})));
        assert!(!m(p, json!({"d": {"y": 3}})));
        assert!(m(json!({"d.s": ["r"]}), json!({"d": {"s": "r"}})));
        assert!(m(json!({"d": {"s": ["r"]}}), json!({"d.s": "r"})));
        let p = json!({"a": {"b": [1], "c": [2]}});
        assert!(m(p.clone(), json!({"a": [{"b": 1, "c": 2}]})));
        assert!(!m(p, json!({"a": [{"b": 1, "c": 3}, {"b": 4, "c": 2}]})));
    }

    #[test]
    fn aws_messages() {
        assert_eq!(
            reason(r#"{"int": 42}"#),
            "\"int\" must be an object or an array"
        );
        assert_eq!(reason(r#"{"r": []}"#), "Empty arrays are not allowed");
        assert_eq!(
            reason(r#"{"a": [{"NUMERIC": ["=", 5]}]}"#),
            "Unrecognized match type NUMERIC"
        );
        assert_eq!(
            reason(r#"{"a": [{"numeric": [">", 0, ">", 0]}]}"#),
            "Bad numeric range operator: >"
        );
        assert_eq!(
            reason(r#"{"a": [{"numeric": [">", 0, "<"]}]}"#),
            "Value of < must be numeric"
        );
        assert_eq!(
            reason(r#"{"a": [{"wildcard": "a**"}]}"#),
            "Consecutive wildcard characters at pos 2"
        );
        assert_eq!(
            reason(r#"{"a": [{"cidr": "bad"}]}"#),
            "Malformed CIDR, one '/' required"
        );
        assert_eq!(reason(r#"["x"]"#), "Filter is not an object");
        assert_eq!(
            reason("{'bad': 'q'}"),
            "Unexpected character (''' (code 39)): was expecting double-quote to start field name"
        );
        assert!(reason("this is not json").starts_with("Unrecognized token 'this'"));
    }

    #[test]
    fn index_key_prefers_source() {
        let p = Pattern::compile(&json!({"detail-type": ["t"], "source": ["s1", "s2"]})).unwrap();
        assert_eq!(
            p.index_key(),
            Some(("source".into(), vec!["s1".into(), "s2".into()]))
        );
        let p = Pattern::compile(&json!({"source": [{"prefix": "s"}]})).unwrap();
        assert_eq!(p.index_key(), None);
    }
}
