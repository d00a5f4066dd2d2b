//! The `Condition` element: the request's context keys and the condition operators.
//!
//! Semantics (IAM User Guide, "Condition operators" and "Multivalued context keys"):
//! * all operators of a block must be true, all keys of an operator, and for a key any one
//!   of the policy's values (OR); a negated operator (`StringNotEquals`, `NotIpAddress`,
//!   `ArnNotLike`, ...) is true when the request's value matches none of them;
//! * a key the request does not carry makes a positive operator false and a negated one true;
//!   the `...IfExists` form is true when the key is absent; `Null` tests presence;
//! * `ForAllValues:` is true when every value of the request's (multi-valued) key matches,
//!   and also when the key is absent or empty; `ForAnyValue:` needs one matching value.

pub use crate::context::Context;
use crate::pattern::{Tok, expand, glob, literal};
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnLike,
    Null,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetQualifier {
    ForAllValues,
    ForAnyValue,
}

/// A parsed operator name such as `ForAnyValue:StringNotLikeIfExists`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operator {
    pub base: Base,
    pub negated: bool,
    pub if_exists: bool,
    pub set: Option<SetQualifier>,
}

impl Operator {
    pub fn parse(name: &str) -> Option<Operator> {
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else {
            (None, name)
        };
        let (if_exists, rest) = match rest.strip_suffix("IfExists") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        use Base::*;
        let (base, negated) = match rest {
            "StringEquals" => (StringEquals, false),
            "StringNotEquals" => (StringEquals, true),
            "StringEqualsIgnoreCase" => (StringEqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (StringEqualsIgnoreCase, true),
            "StringLike" => (StringLike, false),
            "StringNotLike" => (StringLike, true),
            "NumericEquals" => (NumericEquals, false),
            "NumericNotEquals" => (NumericEquals, true),
            "NumericLessThan" => (NumericLessThan, false),
            "NumericLessThanEquals" => (NumericLessThanEquals, false),
            "NumericGreaterThan" => (NumericGreaterThan, false),
            "NumericGreaterThanEquals" => (NumericGreaterThanEquals, false),
            "DateEquals" => (DateEquals, false),
            "DateNotEquals" => (DateEquals, true),
            "DateLessThan" => (DateLessThan, false),
            "DateLessThanEquals" => (DateLessThanEquals, false),
            "DateGreaterThan" => (DateGreaterThan, false),
            "DateGreaterThanEquals" => (DateGreaterThanEquals, false),
            "Bool" => (Bool, false),
            "BinaryEquals" => (BinaryEquals, false),
            "IpAddress" => (IpAddress, false),
            "NotIpAddress" => (IpAddress, true),
            // ArnEquals and ArnLike behave the same: both take wildcards per ARN component.
            "ArnEquals" | "ArnLike" => (ArnLike, false),
            "ArnNotEquals" | "ArnNotLike" => (ArnLike, true),
            "Null" if !if_exists && set.is_none() => (Null, false),
            _ => return None,
        };
        Some(Operator { base, negated, if_exists, set })
    }
}

/// One `"Operator": {"key": [values]}` entry of a statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub operator: Operator,
    pub operator_name: String,
    pub key: String,
    pub values: Vec<String>,
}

impl Condition {
    /// Whether this condition holds for the request. `variables`: whether policy variables
    /// are replaced in the values (documents of Version 2012-10-17).
    pub fn holds(&self, ctx: &Context, variables: bool) -> bool {
        let op = self.operator;
        let present = ctx.get(&self.key).filter(|v| !v.is_empty());
        if op.base == Base::Null {
            // "true": the key must be absent; "false": present.
            return self.values.iter().any(|v| v.eq_ignore_ascii_case("true") == present.is_none());
        }
        let patterns: Vec<Option<Vec<Tok>>> = self.values.iter().map(|v| expand(v, ctx, variables)).collect();
        let matches_any = |value: &str| patterns.iter().flatten().any(|p| value_matches(op.base, value, p));
        // A value satisfies the operator: matches one of the policy's values, or for a
        // negated operator matches none.
        let satisfies = |value: &str| matches_any(value) != op.negated;
        match op.set {
            Some(SetQualifier::ForAllValues) => present.is_none_or(|vs| vs.iter().all(|v| satisfies(v))),
            Some(SetQualifier::ForAnyValue) => present.is_some_and(|vs| vs.iter().any(|v| satisfies(v))),
            None => match present {
                None => op.if_exists || op.negated,
                Some(vs) => {
                    let any = vs.iter().any(|v| matches_any(v));
                    any != op.negated
                }
            },
        }
    }
}

fn value_matches(base: Base, value: &str, pattern: &[Tok]) -> bool {
    use Base::*;
    match base {
        StringEquals => literal(pattern) == value,
        StringEqualsIgnoreCase => literal(pattern).to_lowercase() == value.to_lowercase(),
        StringLike => glob(pattern, value, false),
        NumericEquals | NumericLessThan | NumericLessThanEquals | NumericGreaterThan | NumericGreaterThanEquals => {
            let (Ok(v), Ok(p)) = (value.trim().parse::<f64>(), literal(pattern).trim().parse::<f64>()) else { return false };
            match base {
                NumericEquals => v == p,
                NumericLessThan => v < p,
                NumericLessThanEquals => v <= p,
                NumericGreaterThan => v > p,
                _ => v >= p,
            }
        }
        DateEquals | DateLessThan | DateLessThanEquals | DateGreaterThan | DateGreaterThanEquals => {
            let (Some(v), Some(p)) = (parse_date(value), parse_date(&literal(pattern))) else { return false };
            match base {
                DateEquals => v == p,
                DateLessThan => v < p,
                DateLessThanEquals => v <= p,
                DateGreaterThan => v > p,
                _ => v >= p,
            }
        }
        Bool => literal(pattern).eq_ignore_ascii_case(value),
        BinaryEquals => {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD;
            match (b64.decode(value), b64.decode(literal(pattern))) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
        }
        IpAddress => ip_in(value, &literal(pattern)),
        ArnLike => arn_like(pattern, value),
        Null => false,
    }
}

/// Dates as epoch milliseconds: ISO 8601 (with or without time / zone) or epoch seconds.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Some(secs * 1000);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), f) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis())
}

/// Whether `ip` lies in `cidr` (`203.0.113.0/24`, `2001:db8::/32`, or one address).
pub fn ip_in(ip: &str, cidr: &str) -> bool {
    let Ok(ip) = ip.trim().parse::<IpAddr>() else { return false };
    let (net, bits) = match cidr.trim().split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (cidr.trim(), None),
    };
    let Ok(net) = net.parse::<IpAddr>() else { return false };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// ARN matching: each of the six `:`-separated components separately, wildcards within each.
fn arn_like(pattern: &[Tok], value: &str) -> bool {
    let split_toks = {
        let mut parts: Vec<Vec<Tok>> = vec![Vec::new()];
        for t in pattern {
            if *t == Tok::Lit(':') && parts.len() < 6 {
                parts.push(Vec::new());
            } else {
                parts.last_mut().unwrap().push(t.clone());
            }
        }
        parts
    };
    let values: Vec<&str> = value.splitn(6, ':').collect();
    if split_toks.len() == 1 && split_toks[0] == [Tok::Any] {
        return true;
    }
    split_toks.len() == 6 && values.len() == 6 && split_toks.iter().zip(&values).all(|(p, v)| glob(p, v, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(op: &str, key: &str, values: &[&str]) -> Condition {
        Condition {
            operator: Operator::parse(op).unwrap_or_else(|| panic!("operator {op}")),
            operator_name: op.into(),
            key: key.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn ctx() -> Context {
        let mut c = Context::default();
        c.set("aws:username", "alice");
        c.set("s3:prefix", "home/alice/");
        c.set("aws:SourceIp", "203.0.113.7");
        c.set("aws:SecureTransport", "true");
        c.set("aws:CurrentTime", "2026-06-01T12:00:00Z");
        c.set("aws:EpochTime", "1780315200");
        c.set("s3:max-keys", "50");
        c.set("aws:SourceArn", "arn:aws:codepipeline:eu-west-1:000000000000:demo");
        c.set("aws:PrincipalTag/team", "blue");
        c.set_multi("aws:TagKeys", vec!["env".into(), "team".into()]);
        c.set("binkey", "QUJD");
        c
    }

    /// (operator, key, values, expected) against [`ctx`].
    #[test]
    fn operators() {
        let table: &[(&str, &str, &[&str], bool)] = &[
            ("StringEquals", "aws:username", &["alice"], true),
            ("StringEquals", "AWS:UserName", &["alice"], true),
            ("StringEquals", "aws:username", &["Alice"], false),
            ("StringEquals", "aws:username", &["bob", "alice"], true),
            ("StringEquals", "aws:username", &["ali*"], false),
            ("StringNotEquals", "aws:username", &["bob"], true),
            ("StringNotEquals", "aws:username", &["bob", "alice"], false),
            ("StringEqualsIgnoreCase", "aws:username", &["ALICE"], true),
            ("StringNotEqualsIgnoreCase", "aws:username", &["ALICE"], false),
            ("StringLike", "s3:prefix", &["home/${aws:username}/*"], true),
            ("StringLike", "s3:prefix", &["home/bob/*"], false),
            ("StringLike", "s3:prefix", &["home/?lice/"], true),
            ("StringNotLike", "s3:prefix", &["home/bob/*"], true),
            ("StringEquals", "aws:PrincipalTag/team", &["${aws:PrincipalTag/team}"], true),
            // Missing keys: positive false, negated true, IfExists true.
            ("StringEquals", "aws:userid", &["x"], false),
            ("StringNotEquals", "aws:userid", &["x"], true),
            ("StringEqualsIfExists", "aws:userid", &["x"], true),
            ("StringEqualsIfExists", "aws:username", &["x"], false),
            ("StringEqualsIfExists", "aws:username", &["alice"], true),
            ("NumericLessThan", "s3:max-keys", &["100"], true),
            ("NumericLessThan", "s3:max-keys", &["50"], false),
            ("NumericLessThanEquals", "s3:max-keys", &["50"], true),
            ("NumericGreaterThan", "s3:max-keys", &["10"], true),
            ("NumericGreaterThanEquals", "s3:max-keys", &["51"], false),
            ("NumericEquals", "s3:max-keys", &["50.0"], true),
            ("NumericNotEquals", "s3:max-keys", &["50"], false),
            ("NumericEquals", "aws:username", &["1"], false),
            ("NumericLessThanIfExists", "absent", &["1"], true),
            ("DateGreaterThan", "aws:CurrentTime", &["2026-01-01T00:00:00Z"], true),
            ("DateLessThan", "aws:CurrentTime", &["2026-01-01"], false),
            ("DateLessThan", "aws:EpochTime", &["2027-01-01T00:00:00Z"], true),
            ("DateEquals", "aws:CurrentTime", &["2026-06-01T12:00:00Z"], true),
            ("DateNotEquals", "aws:CurrentTime", &["2026-06-01T12:00:00Z"], false),
            ("DateGreaterThanEquals", "aws:CurrentTime", &["1780315200"], true),
            ("DateLessThanEquals", "aws:CurrentTime", &["2026-06-01T11:59:59Z"], false),
            ("Bool", "aws:SecureTransport", &["true"], true),
            ("Bool", "aws:SecureTransport", &["false"], false),
            ("Bool", "aws:MultiFactorAuthPresent", &["true"], false),
            ("BoolIfExists", "aws:MultiFactorAuthPresent", &["false"], true),
            ("BinaryEquals", "binkey", &["QUJD"], true),
            ("BinaryEquals", "binkey", &["QUJE"], false),
            ("IpAddress", "aws:SourceIp", &["203.0.113.0/24"], true),
            ("IpAddress", "aws:SourceIp", &["198.51.100.0/24", "203.0.113.7"], true),
            ("IpAddress", "aws:SourceIp", &["198.51.100.0/24"], false),
            ("NotIpAddress", "aws:SourceIp", &["198.51.100.0/24"], true),
            ("NotIpAddress", "aws:SourceIp", &["0.0.0.0/0"], false),
            ("IpAddress", "aws:SourceIp", &["2001:db8::/32"], false),
            ("ArnLike", "aws:SourceArn", &["arn:aws:codepipeline:*:000000000000:*"], true),
            ("ArnEquals", "aws:SourceArn", &["arn:aws:codepipeline:eu-west-1:000000000000:demo"], true),
            ("ArnLike", "aws:SourceArn", &["arn:aws:codepipeline:*:111111111111:*"], false),
            ("ArnLike", "aws:SourceArn", &["arn:aws:codepipeline:*"], false),
            ("ArnNotLike", "aws:SourceArn", &["arn:aws:codebuild:*:*:*"], true),
            ("ArnNotEquals", "aws:SourceArn", &["arn:aws:codepipeline:eu-west-1:000000000000:demo"], false),
            ("ArnLikeIfExists", "absent", &["arn:*:*:*:*:*"], true),
            ("Null", "aws:userid", &["true"], true),
            ("Null", "aws:username", &["true"], false),
            ("Null", "aws:username", &["false"], true),
            // Multi-valued keys.
            ("ForAllValues:StringEquals", "aws:TagKeys", &["env", "team", "owner"], true),
            ("ForAllValues:StringEquals", "aws:TagKeys", &["env"], false),
            ("ForAllValues:StringEquals", "absent", &["env"], true),
            ("ForAnyValue:StringEquals", "aws:TagKeys", &["team"], true),
            ("ForAnyValue:StringEquals", "aws:TagKeys", &["owner"], false),
            ("ForAnyValue:StringEquals", "absent", &["env"], false),
            ("ForAllValues:StringLike", "aws:TagKeys", &["e*", "t*"], true),
            ("ForAnyValue:StringNotLike", "aws:TagKeys", &["env"], true),
            ("ForAllValues:StringNotEquals", "aws:TagKeys", &["owner"], true),
            ("ForAllValues:StringNotEquals", "aws:TagKeys", &["env"], false),
        ];
        let c = ctx();
        for (op, key, values, want) in table {
            assert_eq!(cond(op, key, values).holds(&c, true), *want, "{op} {key} {values:?}");
        }
    }

    #[test]
    fn operator_names() {
        assert!(Operator::parse("StringLikeX").is_none());
        assert!(Operator::parse("NullIfExists").is_none());
        let o = Operator::parse("ForAnyValue:StringNotLikeIfExists").unwrap();
        assert_eq!((o.base, o.negated, o.if_exists, o.set), (Base::StringLike, true, true, Some(SetQualifier::ForAnyValue)));
    }

    #[test]
    fn ip_ranges() {
        assert!(ip_in("10.1.2.3", "10.0.0.0/8"));
        assert!(!ip_in("11.1.2.3", "10.0.0.0/8"));
        assert!(ip_in("2001:db8::1", "2001:db8::/32"));
        assert!(ip_in("1.2.3.4", "0.0.0.0/0"));
        assert!(!ip_in("not-an-ip", "0.0.0.0/0"));
    }
}
