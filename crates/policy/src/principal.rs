//! Who is asking, and how a policy's `Principal` element names them.

/// The principal of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// `arn:aws:iam::123456789012:user/alice`, `arn:aws:sts::123456789012:assumed-role/R/S`,
    /// `arn:aws:iam::123456789012:root`; a service principal's name; `*` for anonymous.
    pub arn: String,
    /// The account the principal belongs to ("" for services and anonymous callers).
    pub account: String,
    pub kind: PrincipalKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account's root user: every action on the account's own resources.
    Root,
    User { name: String },
    /// An IAM role as a principal (a role ARN); requests are made by its sessions.
    Role { name: String },
    /// A role session (`assumed-role/<role>/<session>`).
    AssumedRole { role: String, session: String },
    FederatedUser { name: String },
    /// An AWS service (`codebuild.amazonaws.com`) acting on its own behalf.
    Service,
    /// No credentials at all (public S3 reads).
    Anonymous,
}

impl Principal {
    /// Reads a principal ARN (as `GetCallerIdentity` answers it). Unknown forms are kept as
    /// users named after the ARN's resource part.
    pub fn from_arn(arn: &str) -> Principal {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let (account, resource) = match parts.as_slice() {
            ["arn", _, _, _, account, resource] => (account.to_string(), *resource),
            _ => return Principal { arn: arn.into(), account: String::new(), kind: PrincipalKind::User { name: arn.into() } },
        };
        let last = |r: &str| r.rsplit('/').next().unwrap_or(r).to_string();
        let kind = if resource == "root" {
            PrincipalKind::Root
        } else if let Some(r) = resource.strip_prefix("assumed-role/") {
            let (role, session) = r.split_once('/').unwrap_or((r, ""));
            PrincipalKind::AssumedRole { role: role.into(), session: session.into() }
        } else if resource.starts_with("role/") {
            PrincipalKind::Role { name: last(resource) }
        } else if let Some(r) = resource.strip_prefix("federated-user/") {
            PrincipalKind::FederatedUser { name: r.into() }
        } else {
            PrincipalKind::User { name: last(resource) }
        };
        Principal { arn: arn.into(), account, kind }
    }

    pub fn service(name: &str) -> Principal {
        Principal { arn: name.into(), account: String::new(), kind: PrincipalKind::Service }
    }

    pub fn anonymous() -> Principal {
        Principal { arn: "*".into(), account: String::new(), kind: PrincipalKind::Anonymous }
    }

    /// Whether identity-based policies can apply (an IAM user, role session or root).
    pub fn is_iam(&self) -> bool {
        !matches!(self.kind, PrincipalKind::Service | PrincipalKind::Anonymous)
    }

    /// The name AWS's denial message starts with ("User: ..."): anonymous callers are
    /// `anonymous`.
    pub fn display(&self) -> &str {
        if self.kind == PrincipalKind::Anonymous { "anonymous" } else { &self.arn }
    }
}

/// How a `Principal` element matched: it decides what a resource policy's Allow is worth
/// (IAM User Guide, "Policy evaluation for requests within a single account").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PrincipalMatch {
    /// The account (`"AWS": "123456789012"` or `arn:aws:iam::123456789012:root`): the account
    /// delegates to its identity policies, so in the same account this grants nothing alone.
    Account,
    /// The role's ARN, matching its sessions: granted, but still limited by the session's
    /// permissions boundary and session policies.
    Role,
    /// The exact principal (user, role session, service) or everyone (`*`): granted.
    Direct,
}

/// Whether one `Principal` value (`"*"`, or a value of the `AWS` / `Service` / `Federated` /
/// `CanonicalUser` map) names `p`.
pub fn matches(kind: &str, value: &str, p: &Principal) -> Option<PrincipalMatch> {
    if value == "*" {
        return Some(PrincipalMatch::Direct);
    }
    match kind {
        "AWS" => {
            if !p.is_iam() {
                return None;
            }
            if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
                return (value == p.account).then_some(PrincipalMatch::Account);
            }
            let named = Principal::from_arn(value);
            if named.account != p.account {
                return None;
            }
            match (&named.kind, &p.kind) {
                (PrincipalKind::Root, _) => Some(PrincipalMatch::Account),
                (PrincipalKind::Role { name }, PrincipalKind::AssumedRole { role, .. }) if name == role => Some(PrincipalMatch::Role),
                _ if value == p.arn => Some(PrincipalMatch::Direct),
                _ => None,
            }
        }
        "Service" => (p.kind == PrincipalKind::Service && value.eq_ignore_ascii_case(&p.arn)).then_some(PrincipalMatch::Direct),
        "Federated" | "CanonicalUser" => (value == p.arn).then_some(PrincipalMatch::Direct),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PrincipalMatch::*;

    #[test]
    fn reads_arns() {
        let s = Principal::from_arn("arn:aws:sts::000000000000:assumed-role/build-role/session-1");
        assert_eq!(s.kind, PrincipalKind::AssumedRole { role: "build-role".into(), session: "session-1".into() });
        assert_eq!(s.account, "000000000000");
        assert_eq!(Principal::from_arn("arn:aws:iam::000000000000:root").kind, PrincipalKind::Root);
        assert_eq!(Principal::from_arn("arn:aws:iam::000000000000:user/dev/alice").kind, PrincipalKind::User { name: "alice".into() });
        assert_eq!(Principal::from_arn("arn:aws:iam::000000000000:role/svc/r").kind, PrincipalKind::Role { name: "r".into() });
    }

    #[test]
    fn principal_values() {
        let session = Principal::from_arn("arn:aws:sts::111111111111:assumed-role/R/S");
        let user = Principal::from_arn("arn:aws:iam::111111111111:user/alice");
        let svc = Principal::service("codebuild.amazonaws.com");
        let anon = Principal::anonymous();
        let table: &[(&str, &str, &Principal, Option<PrincipalMatch>)] = &[
            ("AWS", "*", &session, Some(Direct)),
            ("AWS", "*", &anon, Some(Direct)),
            ("AWS", "111111111111", &session, Some(Account)),
            ("AWS", "222222222222", &session, None),
            ("AWS", "arn:aws:iam::111111111111:root", &user, Some(Account)),
            ("AWS", "arn:aws:iam::111111111111:role/R", &session, Some(Role)),
            ("AWS", "arn:aws:iam::111111111111:role/path/R", &session, Some(Role)),
            ("AWS", "arn:aws:iam::111111111111:role/Other", &session, None),
            ("AWS", "arn:aws:iam::222222222222:role/R", &session, None),
            ("AWS", "arn:aws:sts::111111111111:assumed-role/R/S", &session, Some(Direct)),
            ("AWS", "arn:aws:sts::111111111111:assumed-role/R/T", &session, None),
            ("AWS", "arn:aws:iam::111111111111:user/alice", &user, Some(Direct)),
            ("AWS", "arn:aws:iam::111111111111:user/bob", &user, None),
            ("AWS", "111111111111", &svc, None),
            ("AWS", "111111111111", &anon, None),
            ("Service", "codebuild.amazonaws.com", &svc, Some(Direct)),
            ("Service", "codepipeline.amazonaws.com", &svc, None),
            ("Service", "codebuild.amazonaws.com", &session, None),
        ];
        for (kind, value, p, want) in table {
            assert_eq!(matches(kind, value, p), *want, "{kind} {value} vs {}", p.arn);
        }
    }
}
