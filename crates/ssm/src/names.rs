//! Parameter names, selectors, ARNs and labels: Parameter Store's naming rules.
//!
//! * A name is `name` or a hierarchy `/a/b/c` (at most 15 levels); `/name` and `name` are the
//!   same parameter ([`store_key`]), as on AWS.
//! * A reference to a parameter is a name or an ARN (`arn:aws:ssm:<region>:<acct>:parameter/a/b`),
//!   optionally followed by a selector: `:3` (a version) or `:label`.

use crate::error::{SsmError, SsmResult, invalid};

/// The longest name one may give (AWS: 1011 characters, ARN prefix included in its count).
pub const MAX_NAME: usize = 1011;
/// Levels of a hierarchy.
pub const MAX_DEPTH: usize = 15;
/// Labels on one version.
pub const MAX_LABELS_PER_VERSION: usize = 10;

const NAME_RULES: &str = "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_";

const PATH_PREFIX_RULES: &str = "Parameter name: can't be prefixed with \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_";

/// The key a parameter is stored under: `/name` (one level) and `name` are the same parameter.
pub fn store_key(name: &str) -> String {
    match name.strip_prefix('/') {
        Some(rest) if !rest.contains('/') => rest.to_string(),
        _ => name.to_string(),
    }
}

/// The resource part of the parameter's ARN: the name without its leading slash.
pub fn arn(account: &str, region: &str, name: &str) -> String {
    format!(
        "arn:aws:ssm:{region}:{account}:parameter/{}",
        name.trim_start_matches('/')
    )
}

/// Checks a name PutParameter is to create (not a reference: no selector, no ARN).
pub fn validate_new_name(name: &str) -> SsmResult<()> {
    if name.starts_with("arn:") {
        return Err(invalid(
            "Parameter name: can't be an ARN. Use the parameter name itself.",
        ));
    }
    if name.chars().count() > MAX_NAME {
        return Err(invalid(format!(
            "Parameter name: the name can have at most {MAX_NAME} characters, the parameter's ARN prefix included."
        )));
    }
    let lower = name.to_ascii_lowercase();
    let bare = lower.trim_start_matches('/');
    let is_path = name.matches('/').count() > 1 || (name.contains('/') && !name.starts_with('/'));
    if bare.starts_with("aws") || bare.starts_with("ssm") {
        if lower.starts_with("/aws/") {
            return Err(SsmError::ReservedName(name.to_string()));
        }
        return Err(invalid(if is_path {
            PATH_PREFIX_RULES.to_string()
        } else {
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive)."
                .to_string()
        }));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
    {
        return Err(invalid(NAME_RULES));
    }
    if name.contains('/') {
        if !name.starts_with('/') {
            return Err(invalid("Parameter name must be a fully qualified name."));
        }
        if name.contains("//") || name.ends_with('/') {
            return Err(invalid(NAME_RULES));
        }
        if name.matches('/').count() > MAX_DEPTH {
            return Err(SsmError::HierarchyTooDeep);
        }
    }
    Ok(())
}

/// What a reference selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    Latest,
    Version(i64),
    Label(String),
}

impl Selector {
    /// The `Selector` member of GetParameter(s): `:3`, `:label`.
    pub fn wire(&self) -> Option<String> {
        match self {
            Selector::Latest => None,
            Selector::Version(v) => Some(format!(":{v}")),
            Selector::Label(l) => Some(format!(":{l}")),
        }
    }
}

/// A parsed reference: the parameter's name (as stored, see [`store_key`]) and the selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub key: String,
    pub selector: Selector,
}

/// Parses `name`, `name:3`, `name:label` or the ARN forms of these, for the account and region
/// of the request. A reference to another account or region, or one with more than one
/// selector, is `None` (it names no parameter here).
pub fn parse_reference(account: &str, region: &str, reference: &str) -> Option<Reference> {
    let reference = reference.trim();
    let name_and_selector = if let Some(rest) = reference.strip_prefix("arn:") {
        // arn:aws:ssm:<region>:<account>:parameter/<name>[:selector]
        let mut parts = rest.splitn(5, ':');
        let (_partition, service, r, a, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if service != "ssm" || r != region || a != account {
            return None;
        }
        let name = resource.strip_prefix("parameter/")?;
        let (n, sel) = split_selector(name)?;
        let n = if n.contains('/') {
            format!("/{n}")
        } else {
            n.to_string()
        };
        (n, sel)
    } else {
        let (n, sel) = split_selector(reference)?;
        (n.to_string(), sel)
    };
    let (name, selector) = name_and_selector;
    if name.is_empty() {
        return None;
    }
    Some(Reference {
        key: store_key(&name),
        selector,
    })
}

fn split_selector(s: &str) -> Option<(&str, Selector)> {
    match s.split_once(':') {
        None => Some((s, Selector::Latest)),
        Some((_, sel)) if sel.contains(':') || sel.is_empty() => None,
        Some((n, sel)) => Some((
            n,
            match sel.parse::<i64>() {
                Ok(v) => Selector::Version(v),
                Err(_) => Selector::Label(sel.to_string()),
            },
        )),
    }
}

/// Whether LabelParameterVersion accepts `label` (else it is reported in InvalidLabels): no
/// `aws`/`ssm` prefix (case-insensitive), not starting with a digit, only letters, digits and
/// `.-_`, 1 to 100 characters.
pub fn valid_label(label: &str) -> bool {
    let lower = label.to_ascii_lowercase();
    !label.is_empty()
        && label.chars().count() <= 100
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
        && !label.starts_with(|c: char| c.is_ascii_digit())
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The message of GetParametersByPath and the Path filter for a path that breaks the rules.
pub const PATH_RULES: &str = "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_.";

/// Checks a hierarchy path (`/a/b`, `/`), answering it normalized without a trailing slash
/// (`/` stays `/`).
pub fn validate_path(path: &str) -> SsmResult<String> {
    let lower = path.to_ascii_lowercase();
    if lower.starts_with("/aws/") || lower == "/aws" || lower.starts_with("/ssm") {
        return Err(invalid(
            "Filters for common parameters can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). When using global parameters, please specify within a global namespace.",
        ));
    }
    if !path.starts_with('/')
        || path.contains("//")
        || !path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
    {
        return Err(invalid(PATH_RULES));
    }
    let trimmed = path.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    })
}

/// Whether the parameter `name` is under `path` (normalized by [`validate_path`]): directly
/// (one level) or anywhere below it (`recursive`).
pub fn under_path(name: &str, path: &str, recursive: bool) -> bool {
    let full = format!("/{}", name.trim_start_matches('/'));
    let prefix = if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    };
    match full.strip_prefix(&prefix) {
        Some(rest) if !rest.is_empty() => recursive || !rest.contains('/'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_aws_rules() {
        assert!(validate_new_name("plain").is_ok());
        assert!(validate_new_name("/a/b-c/d_e.f").is_ok());
        assert!(
            matches!(validate_new_name("awsThing"), Err(SsmError::Invalid(m)) if m.contains("\"aws\" or \"ssm\""))
        );
        assert!(matches!(
            validate_new_name("/SSM/x"),
            Err(SsmError::Invalid(_))
        ));
        assert!(matches!(
            validate_new_name("/aws/x"),
            Err(SsmError::ReservedName(_))
        ));
        assert!(
            matches!(validate_new_name("a/b"), Err(SsmError::Invalid(m)) if m.contains("fully qualified"))
        );
        assert!(matches!(
            validate_new_name("/a b"),
            Err(SsmError::Invalid(_))
        ));
        let deep = (0..16).map(|i| format!("/l{i}")).collect::<String>();
        assert!(matches!(
            validate_new_name(&deep),
            Err(SsmError::HierarchyTooDeep)
        ));
        let ok = (0..15).map(|i| format!("/l{i}")).collect::<String>();
        assert!(validate_new_name(&ok).is_ok());
        assert!(validate_new_name("ssm-auto-stack").is_err());
    }

    #[test]
    fn references_parse_with_selectors_and_arns() {
        let r = |s: &str| parse_reference("1", "eu-west-1", s);
        assert_eq!(
            r("/a/b"),
            Some(Reference {
                key: "/a/b".into(),
                selector: Selector::Latest
            })
        );
        assert_eq!(
            r("/a/b:3"),
            Some(Reference {
                key: "/a/b".into(),
                selector: Selector::Version(3)
            })
        );
        assert_eq!(
            r("/x:prod"),
            Some(Reference {
                key: "x".into(),
                selector: Selector::Label("prod".into())
            })
        );
        assert_eq!(
            r("arn:aws:ssm:eu-west-1:1:parameter/a/b:2"),
            Some(Reference {
                key: "/a/b".into(),
                selector: Selector::Version(2)
            })
        );
        assert_eq!(
            r("arn:aws:ssm:eu-west-1:1:parameter/plain"),
            Some(Reference {
                key: "plain".into(),
                selector: Selector::Latest
            })
        );
        assert_eq!(r("arn:aws:ssm:us-east-1:1:parameter/plain"), None);
        assert_eq!(r("a:b:c"), None);
        assert_eq!(store_key("/one"), "one");
        assert_eq!(
            arn("1", "eu-west-1", "/a/b"),
            "arn:aws:ssm:eu-west-1:1:parameter/a/b"
        );
    }

    #[test]
    fn labels_and_paths() {
        assert!(valid_label("prod"));
        assert!(valid_label("v1.2_x-y"));
        assert!(!valid_label("1st"));
        assert!(!valid_label("AWSlabel"));
        assert!(!valid_label("ssm"));
        assert!(!valid_label("a/b"));
        assert_eq!(validate_path("/a/b/").unwrap(), "/a/b");
        assert_eq!(validate_path("/").unwrap(), "/");
        assert!(validate_path("a").is_err());
        assert!(validate_path("/aws/x").is_err());
        assert!(under_path("/a/b", "/a", false));
        assert!(!under_path("/a/b/c", "/a", false));
        assert!(under_path("/a/b/c", "/a", true));
        assert!(under_path("x", "/", false));
        assert!(!under_path("/ab/c", "/a", true));
    }
}
