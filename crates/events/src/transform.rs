//! What a target receives: the whole event, a constant `Input`, the part of the event an
//! `InputPath` selects, or an `InputTransformer` (values picked by `InputPathsMap`, put into
//! `InputTemplate`).

use serde_json::Value;
use std::collections::BTreeMap;

/// How a target's input is shaped (the subset of a target that matters here).
#[derive(Clone, Debug, Default)]
pub struct InputShape<'a> {
    pub input: Option<&'a str>,
    pub input_path: Option<&'a str>,
    pub paths_map: Option<&'a BTreeMap<String, String>>,
    pub template: Option<&'a str>,
}

/// Facts about the delivery that templates can name (`<aws.events.rule-arn>`, ...).
pub struct DeliveryFacts<'a> {
    pub rule_arn: &'a str,
    pub rule_name: &'a str,
    pub ingestion_time: &'a str,
}

/// Reads a JSONPath of the simple form EventBridge accepts: `$`, `$.a.b`, `$.a[0]`, `$['a']`.
pub fn json_path<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let rest = path.trim().strip_prefix('$')?;
    let mut cur = root;
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j] != '.' && chars[j] != '[' {
                    j += 1;
                }
                let key: String = chars[start..j].iter().collect();
                cur = cur.get(key.as_str())?;
                i = j;
            }
            '[' => {
                let end = chars[i..].iter().position(|c| *c == ']')? + i;
                let inner: String = chars[i + 1..end].iter().collect();
                let inner = inner.trim();
                if let Some(key) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                    cur = cur.get(key)?;
                } else if let Some(key) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"'))
                {
                    cur = cur.get(key)?;
                } else {
                    cur = cur.get(inner.parse::<usize>().ok()?)?;
                }
                i = end + 1;
            }
            _ => return None,
        }
    }
    Some(cur)
}

/// Whether a JSONPath is one EventBridge would accept (checked by PutTargets).
pub fn valid_path(path: &str) -> bool {
    let p = path.trim();
    p == "$" || (p.starts_with("$.") || p.starts_with("$[")) && !p.ends_with('.')
}

/// Shapes the event for a target. The result is a JSON value; an input that is not JSON (a
/// transformer template producing plain text) is a JSON string.
pub fn shape_input(shape: &InputShape<'_>, event: &Value, facts: &DeliveryFacts<'_>) -> Value {
    if let Some(input) = shape.input {
        return serde_json::from_str(input).unwrap_or_else(|_| Value::String(input.to_string()));
    }
    if let Some(path) = shape.input_path {
        return json_path(event, path).cloned().unwrap_or(Value::Null);
    }
    if let Some(template) = shape.template {
        let empty = BTreeMap::new();
        let text = render_template(template, shape.paths_map.unwrap_or(&empty), event, facts);
        return serde_json::from_str(&text).unwrap_or(Value::String(text));
    }
    event.clone()
}

/// Replaces `<name>` placeholders. In a JSON template a string value inside quotes is escaped
/// for JSON; other values are inserted as their JSON text.
pub fn render_template(
    template: &str,
    paths: &BTreeMap<String, String>,
    event: &Value,
    facts: &DeliveryFacts<'_>,
) -> String {
    let json_template = matches!(template.trim_start().chars().next(), Some('{' | '[' | '"'));
    let mut out = String::with_capacity(template.len());
    // Whether the text so far ends inside a JSON string literal of the template.
    let mut in_string = false;
    let mut rest = template;
    let scan = |text: &str, in_string: &mut bool| {
        let mut escaped = false;
        for c in text.chars() {
            match c {
                '\\' if *in_string && !escaped => escaped = true,
                '"' if !escaped => *in_string = !*in_string,
                _ => escaped = false,
            }
        }
    };
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        scan(&rest[..open], &mut in_string);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        let quoted = json_template && in_string;
        match resolve(name, paths, event, facts) {
            Some(v) => out.push_str(&insert(&v, json_template, quoted)),
            None if is_name(name) => {
                // A variable the map does not define: nothing inside a string, null outside.
                if json_template && !quoted {
                    out.push_str("null");
                }
            }
            None => {
                out.push('<');
                out.push_str(name);
                out.push('>');
                scan(name, &mut in_string);
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn resolve(
    name: &str,
    paths: &BTreeMap<String, String>,
    event: &Value,
    facts: &DeliveryFacts<'_>,
) -> Option<Value> {
    match name {
        "aws.events.rule-arn" => Some(Value::String(facts.rule_arn.into())),
        "aws.events.rule-name" => Some(Value::String(facts.rule_name.into())),
        "aws.events.event.ingestion-time" => Some(Value::String(facts.ingestion_time.into())),
        "aws.events.event" | "aws.events.event.json" => Some(event.clone()),
        _ => {
            let path = paths.get(name)?;
            Some(json_path(event, path).cloned().unwrap_or(Value::Null))
        }
    }
}

fn insert(v: &Value, json_template: bool, quoted: bool) -> String {
    match v {
        Value::String(s) if json_template && quoted => {
            let enc = serde_json::to_string(s).unwrap();
            enc[1..enc.len() - 1].to_string()
        }
        Value::String(s) if json_template => serde_json::to_string(s).unwrap(),
        Value::String(s) => s.clone(),
        Value::Null if quoted => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> DeliveryFacts<'static> {
        DeliveryFacts {
            rule_arn: "arn:r",
            rule_name: "r",
            ingestion_time: "2024-01-01T00:00:00Z",
        }
    }

    #[test]
    fn paths() {
        let e = json!({"detail": {"a": [1, {"b": "x"}]}, "k.y": 2});
        assert_eq!(json_path(&e, "$.detail.a[1].b"), Some(&json!("x")));
        assert_eq!(json_path(&e, "$['k.y']"), Some(&json!(2)));
        assert_eq!(json_path(&e, "$"), Some(&e));
        assert_eq!(json_path(&e, "$.nope"), None);
    }

    #[test]
    fn transformer_json_and_text() {
        let e = json!({"detail": {"repo": "r\"1", "n": 3, "o": {"x": 1}}});
        let map: BTreeMap<String, String> = [
            ("repo".into(), "$.detail.repo".into()),
            ("n".into(), "$.detail.n".into()),
            ("o".into(), "$.detail.o".into()),
        ]
        .into_iter()
        .collect();
        let shape = InputShape {
            paths_map: Some(&map),
            template: Some(
                r#"{"name": "<repo>", "count": <n>, "obj": <o>, "rule": "<aws.events.rule-name>"}"#,
            ),
            ..Default::default()
        };
        assert_eq!(
            shape_input(&shape, &e, &facts()),
            json!({"name": "r\"1", "count": 3, "obj": {"x": 1}, "rule": "r"})
        );
        let shape = InputShape {
            paths_map: Some(&map),
            template: Some("repo <repo> has <n>"),
            ..Default::default()
        };
        assert_eq!(shape_input(&shape, &e, &facts()), json!("repo r\"1 has 3"));
        let shape = InputShape {
            paths_map: Some(&map),
            template: Some(r#""repo <repo>""#),
            ..Default::default()
        };
        assert_eq!(shape_input(&shape, &e, &facts()), json!("repo r\"1"));
    }

    #[test]
    fn input_and_input_path() {
        let e = json!({"detail": {"a": 1}});
        let s = InputShape {
            input: Some(r#"{"c": 1}"#),
            ..Default::default()
        };
        assert_eq!(shape_input(&s, &e, &facts()), json!({"c": 1}));
        let s = InputShape {
            input_path: Some("$.detail"),
            ..Default::default()
        };
        assert_eq!(shape_input(&s, &e, &facts()), json!({"a": 1}));
        assert_eq!(shape_input(&InputShape::default(), &e, &facts()), e);
    }
}
