//! AWS's denial messages (IAM User Guide, "Troubleshoot access denied error messages"):
//!
//! * `User: <principal ARN> is not authorized to perform: <action> on resource: <ARN> because no
//!   identity-based policy allows the <action> action` (also `resource-based policy`,
//!   `permissions boundary`, `session policy`);
//! * `User: ... is not authorized to perform: <action> on resource: <ARN> with an explicit deny
//!   in an identity-based policy` (`a resource-based policy`, ...).
//!
//! Actions without a resource (`*`) leave out the `on resource:` part, as AWS does.

use crate::evaluate::{Decision, PolicyKind, Request};

fn article(kind: PolicyKind) -> &'static str {
    if kind == PolicyKind::Identity { "an" } else { "a" }
}

/// The message for a denial (`None` for [`Decision::Allow`]).
pub fn denial_message(principal: &str, action: &str, decision: &Decision) -> Option<String> {
    let on = |resource: &str| if resource == "*" { String::new() } else { format!(" on resource: {resource}") };
    match decision {
        Decision::Allow => None,
        Decision::ImplicitDeny { kind, resource } => Some(format!(
            "User: {principal} is not authorized to perform: {action}{} because no {} allows the {action} action",
            on(resource),
            kind.label()
        )),
        Decision::ExplicitDeny { kind, resource, .. } => Some(format!(
            "User: {principal} is not authorized to perform: {action}{} with an explicit deny in {} {}",
            on(resource),
            article(*kind),
            kind.label()
        )),
    }
}

impl Decision {
    /// AWS's message for this decision about `req` (`None` when allowed).
    pub fn message(&self, req: &Request) -> Option<String> {
        denial_message(req.principal.display(), &req.action, self)
    }

    /// For audit records and `codeyard doctor`: the statement that would have allowed an
    /// implicitly denied request (`None` for an allow or an explicit deny, which no added
    /// statement overcomes).
    pub fn suggested_statement(&self, req: &Request) -> Option<serde_json::Value> {
        match self {
            Decision::ImplicitDeny { resource, .. } => {
                Some(serde_json::json!({"Effect": "Allow", "Action": req.action, "Resource": resource}))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Principal;

    #[test]
    fn messages_as_aws_writes_them() {
        let req = Request::new(Principal::from_arn("arn:aws:sts::000000000000:assumed-role/R/S"), "s3:PutObject", vec!["arn:aws:s3:::b/k".into()]);
        let implicit = Decision::ImplicitDeny { kind: PolicyKind::Identity, resource: "arn:aws:s3:::b/k".into() };
        assert_eq!(
            implicit.message(&req).unwrap(),
            "User: arn:aws:sts::000000000000:assumed-role/R/S is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::b/k because no identity-based policy allows the s3:PutObject action"
        );
        let explicit = Decision::ExplicitDeny { kind: PolicyKind::Resource, source: "bucket policy".into(), sid: None, statement: 0, resource: "arn:aws:s3:::b/k".into() };
        assert_eq!(
            explicit.message(&req).unwrap(),
            "User: arn:aws:sts::000000000000:assumed-role/R/S is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::b/k with an explicit deny in a resource-based policy"
        );
        let list = Request::new(Principal::from_arn("arn:aws:iam::000000000000:user/alice"), "codecommit:ListRepositories", vec![]);
        let d = Decision::ImplicitDeny { kind: PolicyKind::PermissionsBoundary, resource: "*".into() };
        assert_eq!(
            d.message(&list).unwrap(),
            "User: arn:aws:iam::000000000000:user/alice is not authorized to perform: codecommit:ListRepositories because no permissions boundary allows the codecommit:ListRepositories action"
        );
        let d = Decision::ExplicitDeny { kind: PolicyKind::Identity, source: "p".into(), sid: None, statement: 0, resource: "*".into() };
        assert!(d.message(&list).unwrap().ends_with("with an explicit deny in an identity-based policy"));
        assert_eq!(Decision::Allow.message(&list), None);
        assert_eq!(
            implicit.suggested_statement(&req).unwrap(),
            serde_json::json!({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/k"})
        );
    }
}
