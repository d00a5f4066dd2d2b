//! Policy documents, parsed once and evaluated many times.
//!
//! The grammar is IAM's (IAM User Guide, "IAM JSON policy element reference"): `Version`
//! (`2012-10-17`, or `2008-10-17` which has no policy variables), optional `Id`, and
//! `Statement` as one object or a list. Each statement has `Effect`, exactly one of `Action` /
//! `NotAction`, at most one of `Resource` / `NotResource` and of `Principal` / `NotPrincipal`,
//! and an optional `Condition` block. Values may be a string or a list of strings. The stricter
//! checks IAM applies when a document is stored (messages such as "Policy statement must
//! contain resources.") stay in the IAM crate; this parser accepts what it can evaluate.

use crate::condition::{Condition, Operator};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn err<T>(m: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(m.into()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A list element that may be negated (`Action` / `NotAction`, `Resource` / `NotResource`).
#[derive(Clone, Debug, PartialEq)]
pub struct Names {
    pub negated: bool,
    pub values: Vec<String>,
}

/// `Principal` / `NotPrincipal`: (`AWS` | `Service` | `Federated` | `CanonicalUser`, value)
/// pairs; `"Principal": "*"` is `("AWS", "*")`.
#[derive(Clone, Debug, PartialEq)]
pub struct Principals {
    pub negated: bool,
    pub values: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<Principals>,
    pub action: Names,
    pub resource: Option<Names>,
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub version: String,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, ParseError> {
        let v: Value = serde_json::from_str(text).map_err(|e| ParseError(format!("Syntax errors in policy: {e}")))?;
        Policy::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<Policy, ParseError> {
        let Some(obj) = v.as_object() else { return err("Syntax errors in policy: not an object") };
        let version = match obj.get("Version") {
            None => "2008-10-17".to_string(),
            Some(Value::String(s)) if s == "2012-10-17" || s == "2008-10-17" => s.clone(),
            Some(_) => return err("The policy failed legacy parsing"),
        };
        let statements = match obj.get("Statement") {
            Some(Value::Array(items)) => items.iter().map(statement).collect::<Result<Vec<_>, _>>()?,
            Some(s @ Value::Object(_)) => vec![statement(s)?],
            _ => return err("Syntax errors in policy: no Statement"),
        };
        Ok(Policy { version, id: obj.get("Id").and_then(Value::as_str).map(str::to_string), statements })
    }

    /// Whether policy variables are replaced (only in Version 2012-10-17 documents).
    pub fn has_variables(&self) -> bool {
        self.version == "2012-10-17"
    }
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, ParseError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(|| ParseError(format!("{what} values must be strings"))))
            .collect(),
        _ => err(format!("{what} must be a string or a list of strings")),
    }
}

/// Condition values may also be numbers and booleans.
fn condition_values(v: &Value) -> Result<Vec<String>, ParseError> {
    let one = |x: &Value| match x {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => err("condition values must be strings, numbers or booleans"),
    };
    match v {
        Value::Array(items) => items.iter().map(one).collect(),
        x => Ok(vec![one(x)?]),
    }
}

fn either(s: &serde_json::Map<String, Value>, pos: &str, neg: &str) -> Result<Option<(bool, Value)>, ParseError> {
    match (s.get(pos), s.get(neg)) {
        (Some(_), Some(_)) => err(format!("a statement cannot have both {pos} and {neg}")),
        (Some(v), None) => Ok(Some((false, v.clone()))),
        (None, Some(v)) => Ok(Some((true, v.clone()))),
        (None, None) => Ok(None),
    }
}

fn statement(v: &Value) -> Result<Statement, ParseError> {
    let Some(s) = v.as_object() else { return err("a statement must be an object") };
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return err("Effect must be Allow or Deny"),
    };
    let Some((negated, actions)) = either(s, "Action", "NotAction")? else { return err("Policy statement must contain actions.") };
    let action = Names { negated, values: strings(&actions, "Action")? };
    let resource = match either(s, "Resource", "NotResource")? {
        Some((negated, r)) => Some(Names { negated, values: strings(&r, "Resource")? }),
        None => None,
    };
    let principal = match either(s, "Principal", "NotPrincipal")? {
        None => None,
        Some((negated, Value::String(star))) if star == "*" => Some(Principals { negated, values: vec![("AWS".into(), "*".into())] }),
        Some((negated, Value::Object(map))) => {
            let mut values = Vec::new();
            for (kind, vs) in map {
                if !matches!(kind.as_str(), "AWS" | "Service" | "Federated" | "CanonicalUser") {
                    return err(format!("unknown principal type {kind}"));
                }
                for v in strings(&vs, "Principal")? {
                    values.push((kind.clone(), v));
                }
            }
            Some(Principals { negated, values })
        }
        Some(_) => return err("Principal must be \"*\" or an object"),
    };
    let mut conditions = Vec::new();
    match s.get("Condition") {
        None => {}
        Some(Value::Object(block)) => {
            for (op_name, keys) in block {
                let Some(operator) = Operator::parse(op_name) else { return err(format!("unknown condition operator {op_name}")) };
                let Some(keys) = keys.as_object() else { return err(format!("{op_name} must map keys to values")) };
                for (key, values) in keys {
                    conditions.push(Condition { operator, operator_name: op_name.clone(), key: key.clone(), values: condition_values(values)? });
                }
            }
        }
        Some(_) => return err("Condition must be an object"),
    }
    Ok(Statement { sid: s.get("Sid").and_then(Value::as_str).map(str::to_string), effect, principal, action, resource, conditions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_as_object_or_list() {
        let one = Policy::parse(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#).unwrap();
        assert_eq!(one.statements.len(), 1);
        let many = Policy::parse(
            r#"{"Version":"2012-10-17","Id":"x","Statement":[
                {"Sid":"A","Effect":"Allow","NotAction":["iam:*","sts:*"],"NotResource":"arn:aws:s3:::secret/*"},
                {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":false},"NumericLessThan":{"s3:max-keys":[10]}}},
                {"Effect":"Allow","Principal":{"AWS":["111111111111","arn:aws:iam::111111111111:role/R"],"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(many.id.as_deref(), Some("x"));
        let s0 = &many.statements[0];
        assert!(s0.action.negated && s0.resource.as_ref().unwrap().negated);
        assert_eq!(s0.sid.as_deref(), Some("A"));
        let s1 = &many.statements[1];
        assert_eq!(s1.principal.as_ref().unwrap().values, vec![("AWS".to_string(), "*".to_string())]);
        assert_eq!(s1.conditions[0].values, vec!["false"]);
        assert_eq!(s1.conditions[1].values, vec!["10"]);
        assert_eq!(many.statements[2].principal.as_ref().unwrap().values.len(), 3);
    }

    #[test]
    fn refuses_what_cannot_be_evaluated() {
        for bad in [
            "not json",
            r#"[]"#,
            r#"{"Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","NotAction":"s3:Get*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Condition":{"StringLikeish":{"a":"b"}}}]}"#,
            r#"{"Version":"2020-01-01","Statement":[]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Principal":{"Nobody":"x"}}]}"#,
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn version_decides_variables() {
        assert!(Policy::parse(r#"{"Version":"2012-10-17","Statement":[]}"#).unwrap().has_variables());
        assert!(!Policy::parse(r#"{"Statement":[]}"#).unwrap().has_variables());
    }
}
