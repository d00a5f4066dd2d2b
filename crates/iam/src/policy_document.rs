//! IAM policy documents: the grammar checks IAM applies when a document is stored, and the
//! URL encoding IAM answers documents in.
//!
//! IAM keeps a document exactly as it was sent (whitespace included) and returns it
//! percent-encoded (RFC 3986: `{"Version"` becomes `%7B%22Version%22`); the CLI, boto and the
//! Go SDK used by Terraform decode it. Validation follows the messages IAM gives for the common
//! mistakes: invalid JSON and structural errors are "Syntax errors in policy.", a statement
//! without actions "Policy statement must contain actions.", and so on.

use codeyard_core::AwsError;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// What a document is used for: the checks differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// An identity policy (inline role policy, managed policy): needs actions and resources,
    /// must not name a principal.
    Identity,
    /// A role's trust policy: names principals, must not name resources.
    Trust,
}

fn malformed(message: &str) -> AwsError {
    AwsError::client("MalformedPolicyDocument", message)
}

const SYNTAX: &str = "Syntax errors in policy.";

/// Checks a policy document as IAM does when it is stored.
pub fn validate(document: &str, kind: DocumentKind) -> Result<(), AwsError> {
    let value: Value = serde_json::from_str(document).map_err(|_| malformed(SYNTAX))?;
    let Some(obj) = value.as_object() else {
        return Err(malformed(SYNTAX));
    };
    if let Some(version) = obj.get("Version") {
        // IAM knows two grammar versions; anything else cannot be parsed.
        if !matches!(version.as_str(), Some("2012-10-17") | Some("2008-10-17")) {
            return Err(malformed("The policy failed legacy parsing"));
        }
    }
    for key in obj.keys() {
        if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
            return Err(malformed(SYNTAX));
        }
    }
    let statements: Vec<&Value> = match obj.get("Statement") {
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => return Err(malformed(SYNTAX)),
    };
    for statement in statements {
        validate_statement(statement, kind)?;
    }
    Ok(())
}

fn validate_statement(statement: &Value, kind: DocumentKind) -> Result<(), AwsError> {
    let Some(s) = statement.as_object() else {
        return Err(malformed(SYNTAX));
    };
    for key in s.keys() {
        if !matches!(
            key.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(malformed(SYNTAX));
        }
    }
    if !matches!(
        s.get("Effect").and_then(Value::as_str),
        Some("Allow") | Some("Deny")
    ) {
        return Err(malformed(SYNTAX));
    }
    let actions = match (s.get("Action"), s.get("NotAction")) {
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return Err(malformed("Policy statement must contain actions.")),
        (Some(_), Some(_)) => return Err(malformed(SYNTAX)),
    };
    for action in string_or_list(actions)? {
        if action != "*" {
            match action.matches(':').count() {
                0 => {
                    return Err(malformed(
                        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
                    ));
                }
                1 => {}
                _ => return Err(malformed("Actions/Condition can contain only one colon.")),
            }
        }
    }
    let has_resource = s.contains_key("Resource") || s.contains_key("NotResource");
    let has_principal = s.contains_key("Principal") || s.contains_key("NotPrincipal");
    match kind {
        DocumentKind::Identity => {
            if has_principal {
                return Err(malformed("Policy document should not specify a principal."));
            }
            if !has_resource {
                return Err(malformed("Policy statement must contain resources."));
            }
            for key in ["Resource", "NotResource"] {
                if let Some(r) = s.get(key) {
                    string_or_list(r)?;
                }
            }
        }
        DocumentKind::Trust => {
            if has_resource {
                return Err(malformed("Has prohibited field Resource"));
            }
            if !has_principal {
                return Err(malformed(
                    "AssumeRolepolicy contained an invalid principal: Missing required field Principal",
                ));
            }
        }
    }
    if s.get("Condition").is_some_and(|c| !c.is_object()) {
        return Err(malformed(SYNTAX));
    }
    Ok(())
}

fn string_or_list(v: &Value) -> Result<Vec<&str>, AwsError> {
    match v {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().ok_or_else(|| malformed(SYNTAX)))
            .collect(),
        _ => Err(malformed(SYNTAX)),
    }
}

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The document as IAM answers it: percent-encoded.
pub fn url_encode(document: &str) -> String {
    utf8_percent_encode(document, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_and_message(doc: &str, kind: DocumentKind) -> Option<String> {
        validate(doc, kind)
            .err()
            .map(|e| format!("{}: {}", e.code, e.message))
    }

    #[test]
    fn accepts_ordinary_documents() {
        let identity = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","logs:*"],"Resource":"*"}]}"#;
        assert_eq!(code_and_message(identity, DocumentKind::Identity), None);
        let trust = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;
        assert_eq!(code_and_message(trust, DocumentKind::Trust), None);
    }

    #[test]
    fn refuses_what_iam_refuses() {
        let cases = [
            (
                "{not json",
                "MalformedPolicyDocument: Syntax errors in policy.",
            ),
            ("[]", "MalformedPolicyDocument: Syntax errors in policy."),
            (
                r#"{"Version":"2012-10-17"}"#,
                "MalformedPolicyDocument: Syntax errors in policy.",
            ),
            (
                r#"{"Version":"2020-01-01","Statement":[]}"#,
                "MalformedPolicyDocument: The policy failed legacy parsing",
            ),
            (
                r#"{"Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}"#,
                "MalformedPolicyDocument: Syntax errors in policy.",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
                "MalformedPolicyDocument: Policy statement must contain actions.",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#,
                "MalformedPolicyDocument: Policy statement must contain resources.",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"getobject","Resource":"*"}]}"#,
                "MalformedPolicyDocument: Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
            ),
        ];
        for (doc, want) in cases {
            assert_eq!(
                code_and_message(doc, DocumentKind::Identity).as_deref(),
                Some(want),
                "{doc}"
            );
        }
        let trust_with_resource = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}]}"#;
        assert!(
            code_and_message(trust_with_resource, DocumentKind::Trust)
                .unwrap()
                .contains("Resource")
        );
    }

    #[test]
    fn encodes_as_iam_answers() {
        assert_eq!(
            url_encode(r#"{"A": "s3:*"}"#),
            "%7B%22A%22%3A%20%22s3%3A%2A%22%7D"
        );
    }
}
