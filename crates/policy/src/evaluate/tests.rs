//! Table tests of the evaluation logic: one row per rule.

use super::*;

const ACCT: &str = "111111111111";
const OTHER: &str = "222222222222";

fn pol(source: &str, statements: &str) -> Arc<SourcedPolicy> {
    SourcedPolicy::parse(source, &format!(r#"{{"Version":"2012-10-17","Statement":{statements}}}"#)).unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn session() -> Principal {
    Principal::from_arn(&format!("arn:aws:sts::{ACCT}:assumed-role/R/S"))
}
fn user() -> Principal {
    Principal::from_arn(&format!("arn:aws:iam::{ACCT}:user/alice"))
}
fn other_session() -> Principal {
    Principal::from_arn(&format!("arn:aws:sts::{OTHER}:assumed-role/X/S"))
}

#[derive(Default)]
struct Case {
    name: &'static str,
    principal: Option<Principal>,
    action: &'static str,
    resources: Vec<&'static str>,
    owner: Option<&'static str>,
    keys: Vec<(&'static str, &'static str)>,
    identity: Vec<&'static str>,
    resource: Option<&'static str>,
    boundary: Option<&'static str>,
    session: Vec<&'static str>,
    required: bool,
    want: Want,
}

#[derive(Debug, PartialEq, Default)]
enum Want {
    #[default]
    Allow,
    Explicit(PolicyKind),
    Implicit(PolicyKind),
}

fn run(c: &Case) -> Decision {
    let mut req = Request::new(c.principal.clone().unwrap_or_else(session), c.action, c.resources.iter().map(|s| s.to_string()).collect());
    if let Some(o) = c.owner {
        req = req.owned_by(o);
    }
    for (k, v) in &c.keys {
        req = req.with(k, *v);
    }
    let ps = PolicySet {
        identity: c.identity.iter().enumerate().map(|(i, s)| pol(&format!("identity{i}"), s)).collect(),
        resource: c.resource.map(|s| pol("resource", s)),
        permissions_boundary: c.boundary.map(|s| pol("boundary", s)),
        session: c.session.iter().map(|s| pol("session", s)).collect(),
        resource_policy_required: c.required,
    };
    evaluate(&req, &ps)
}

const ALLOW_S3_ALL: &str = r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#;
const OBJ: &str = "arn:aws:s3:::b/k";
const KEY: &str = "arn:aws:kms:eu-west-1:111111111111:key/k";

#[test]
fn evaluation_table() {
    use PolicyKind::*;
    use Want::*;
    let cases = vec![
        Case { name: "no policy at all: implicit deny by identity", action: "s3:GetObject", resources: vec![OBJ], want: Implicit(Identity), ..Default::default() },
        Case { name: "identity allow", action: "s3:GetObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL], ..Default::default() },
        Case { name: "actions match case-insensitively", action: "S3:getobject", resources: vec![OBJ], identity: vec![r#"{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}"#], ..Default::default() },
        Case { name: "? in actions", action: "s3:GetObject", resources: vec![OBJ], identity: vec![r#"{"Effect":"Allow","Action":"s3:?etObject","Resource":"*"}"#], ..Default::default() },
        Case { name: "resources match case-sensitively", action: "s3:GetObject", resources: vec!["arn:aws:s3:::B/k"], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/*"}"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "resource wildcard", action: "s3:GetObject", resources: vec!["arn:aws:s3:::b/deep/k"], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::a/*","arn:aws:s3:::b/*"]}"#], ..Default::default() },
        Case { name: "statement list: the other action is not allowed", action: "s3:PutObject", resources: vec![OBJ], identity: vec![r#"[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"},{"Effect":"Allow","Action":"logs:*","Resource":"*"}]"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "explicit deny beats allow in the same policy", action: "s3:DeleteObject", resources: vec![OBJ], identity: vec![r#"[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:Delete*","Resource":"*"}]"#], want: Explicit(Identity), ..Default::default() },
        Case { name: "explicit deny in one identity policy beats allow in another", action: "s3:PutObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL, r#"{"Effect":"Deny","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*"}"#], want: Explicit(Identity), ..Default::default() },
        Case { name: "deny of another resource does not apply", action: "s3:PutObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL, r#"{"Effect":"Deny","Action":"s3:PutObject","Resource":"arn:aws:s3:::other/*"}"#], ..Default::default() },
        Case { name: "NotAction allow: everything but iam", action: "s3:PutObject", resources: vec![OBJ], identity: vec![r#"{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}"#], ..Default::default() },
        Case { name: "NotAction allow does not cover the excluded action", action: "iam:CreateRole", identity: vec![r#"{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "NotAction deny: everything but reads is denied", action: "s3:PutObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL, r#"{"Effect":"Deny","NotAction":["s3:Get*","s3:List*"],"Resource":"*"}"#], want: Explicit(Identity), ..Default::default() },
        Case { name: "NotAction deny leaves the excluded actions", action: "s3:GetObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL, r#"{"Effect":"Deny","NotAction":["s3:Get*","s3:List*"],"Resource":"*"}"#], ..Default::default() },
        Case { name: "NotResource", action: "s3:GetObject", resources: vec!["arn:aws:s3:::secret/k"], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","NotResource":"arn:aws:s3:::secret/*"}"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "NotResource allows others", action: "s3:GetObject", resources: vec![OBJ], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","NotResource":"arn:aws:s3:::secret/*"}"#], ..Default::default() },
        Case { name: "every resource must be allowed", action: "s3:GetObject", resources: vec![OBJ, "arn:aws:s3:::c/k"], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/*"}"#], want: Implicit(Identity), ..Default::default() },
        // Conditions.
        Case { name: "condition true", action: "s3:GetObject", resources: vec![OBJ], keys: vec![("aws:SecureTransport", "true")], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}"#], ..Default::default() },
        Case { name: "condition false: no allow", action: "s3:GetObject", resources: vec![OBJ], keys: vec![("aws:SecureTransport", "false")], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "deny with IfExists applies when the key is absent", action: "s3:GetObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL, r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}"#], want: Explicit(Identity), ..Default::default() },
        Case { name: "deny with IfExists does not apply when the key says otherwise", action: "s3:GetObject", resources: vec![OBJ], keys: vec![("aws:MultiFactorAuthPresent", "true")], identity: vec![ALLOW_S3_ALL, r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}"#], ..Default::default() },
        Case { name: "deny without IfExists does not apply when the key is absent", action: "s3:GetObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL, r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"false"}}}"#], ..Default::default() },
        Case { name: "deny outside an IP range", action: "s3:GetObject", resources: vec![OBJ], keys: vec![("aws:SourceIp", "198.51.100.1")], identity: vec![ALLOW_S3_ALL, r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}"#], want: Explicit(Identity), ..Default::default() },
        Case { name: "region condition", action: "s3:GetObject", resources: vec![OBJ], keys: vec![("aws:RequestedRegion", "eu-west-1")], identity: vec![r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":["eu-west-1","eu-central-1"]}}}"#], ..Default::default() },
        Case { name: "all operators of a block must hold", action: "s3:GetObject", resources: vec![OBJ], keys: vec![("aws:RequestedRegion", "eu-west-1")], identity: vec![r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1"},"Bool":{"aws:SecureTransport":"true"}}}"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "allow with IfExists holds when the key is absent", action: "s3:GetObject", resources: vec![OBJ], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringLikeIfExists":{"s3:prefix":"home/*"}}}"#], ..Default::default() },
        Case { name: "allow with IfExists checks the key when present", action: "s3:ListBucket", resources: vec!["arn:aws:s3:::b"], keys: vec![("s3:prefix", "other/")], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringLikeIfExists":{"s3:prefix":"home/*"}}}"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "Null: the key must be present", action: "s3:PutObject", resources: vec![OBJ], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"Null":{"aws:SourceIp":"false"}}}"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "date condition on aws:CurrentTime in the past", action: "s3:GetObject", resources: vec![OBJ], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}}"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "date condition on aws:CurrentTime in the future", action: "s3:GetObject", resources: vec![OBJ], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2999-01-01T00:00:00Z"}}}"#], ..Default::default() },
        Case { name: "IfExists deny on a present key that matches", action: "s3:PutObject", resources: vec![OBJ], keys: vec![("aws:RequestedRegion", "us-east-1")], identity: vec![ALLOW_S3_ALL, r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEqualsIfExists":{"aws:RequestedRegion":"eu-west-1"}}}"#], want: Explicit(Identity), ..Default::default() },
        // Variables.
        Case { name: "${aws:username} in a resource", principal: Some(user()), action: "s3:PutObject", resources: vec!["arn:aws:s3:::home/alice/f"], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}"#], ..Default::default() },
        Case { name: "${aws:username} does not give another user's home", principal: Some(user()), action: "s3:PutObject", resources: vec!["arn:aws:s3:::home/bob/f"], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "a role session has no aws:username: the statement matches nothing", action: "s3:PutObject", resources: vec!["arn:aws:s3:::home/S/f"], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "${aws:PrincipalTag/..} in a condition", action: "s3:GetObject", resources: vec![OBJ], keys: vec![("aws:PrincipalTag/team", "blue"), ("s3:ExistingObjectTag/team", "blue")], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"s3:ExistingObjectTag/team":"${aws:PrincipalTag/team}"}}}"#], ..Default::default() },
        Case { name: "${*} is a literal star", principal: Some(user()), action: "s3:GetObject", resources: vec!["arn:aws:s3:::b/x"], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${*}"}"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "variable with a default when the key is absent", action: "s3:GetObject", resources: vec!["arn:aws:s3:::home/shared/f"], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username, 'shared'}/*"}"#], ..Default::default() },
        Case { name: "variable in a condition value: own prefix only", principal: Some(user()), action: "s3:ListBucket", resources: vec!["arn:aws:s3:::b"], keys: vec![("s3:prefix", "bob/")], identity: vec![r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*","Condition":{"StringLike":{"s3:prefix":"${aws:username}/*"}}}"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "ForAnyValue: one tag key is enough", action: "s3:PutObject", resources: vec![OBJ], keys: vec![("aws:TagKeys", "team")], identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["team","cost"]}}}"#], ..Default::default() },
        // Permissions boundaries.
        Case { name: "boundary allows what the identity allows", action: "s3:GetObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL], boundary: Some(r#"{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}"#), ..Default::default() },
        Case { name: "boundary caps the identity policy", action: "s3:PutObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL], boundary: Some(r#"{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}"#), want: Implicit(PermissionsBoundary), ..Default::default() },
        Case { name: "a boundary alone grants nothing", action: "s3:GetObject", resources: vec![OBJ], boundary: Some(ALLOW_S3_ALL), want: Implicit(Identity), ..Default::default() },
        Case { name: "deny in a boundary", action: "s3:GetObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL], boundary: Some(r#"[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:GetObject","Resource":"*"}]"#), want: Explicit(PermissionsBoundary), ..Default::default() },
        // Session policies.
        Case { name: "session policy narrows the role", action: "s3:PutObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL], session: vec![r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#], want: Implicit(Session), ..Default::default() },
        Case { name: "session policy within the role", action: "s3:GetObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL], session: vec![r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#], ..Default::default() },
        Case { name: "session policy cannot grant beyond the role", action: "logs:PutLogEvents", identity: vec![ALLOW_S3_ALL], session: vec![r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#], want: Implicit(Identity), ..Default::default() },
        Case { name: "deny in a session policy", action: "s3:GetObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL], session: vec![r#"{"Effect":"Deny","Action":"s3:*","Resource":"*"}"#], want: Explicit(Session), ..Default::default() },
        // Resource policies, same account.
        Case { name: "bucket policy naming the session grants without identity policy", action: "s3:GetObject", resources: vec![OBJ], resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::111111111111:assumed-role/R/S"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#), ..Default::default() },
        Case { name: "bucket policy naming the user grants despite the boundary", principal: Some(user()), action: "s3:GetObject", resources: vec![OBJ], boundary: Some(r#"{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}"#), resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:user/alice"},"Action":"s3:*","Resource":"*"}"#), ..Default::default() },
        Case { name: "bucket policy naming the role grants", action: "s3:GetObject", resources: vec![OBJ], resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/R"},"Action":"s3:GetObject","Resource":"*"}"#), ..Default::default() },
        Case { name: "bucket policy naming the role is capped by the boundary", action: "s3:GetObject", resources: vec![OBJ], boundary: Some(r#"{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}"#), resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/R"},"Action":"s3:*","Resource":"*"}"#), want: Implicit(Identity), ..Default::default() },
        Case { name: "bucket policy naming the account delegates to identity policies", action: "s3:GetObject", resources: vec![OBJ], resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"s3:*","Resource":"*"}"#), want: Implicit(Identity), ..Default::default() },
        Case { name: "public bucket policy grants anyone", action: "s3:GetObject", resources: vec![OBJ], resource: Some(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#), ..Default::default() },
        Case { name: "bucket policy deny beats identity allow", action: "s3:DeleteObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL], resource: Some(r#"{"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"*"}"#), want: Explicit(Resource), ..Default::default() },
        Case { name: "bucket policy deny for another principal does not apply", action: "s3:DeleteObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL], resource: Some(r#"{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111111111111:user/bob"},"Action":"s3:*","Resource":"*"}"#), ..Default::default() },
        Case { name: "NotPrincipal deny: everyone but the admin role", action: "s3:DeleteObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL], resource: Some(r#"{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111111111111:role/Admin"},"Action":"s3:*","Resource":"*"}"#), want: Explicit(Resource), ..Default::default() },
        Case { name: "NotPrincipal deny spares the named role", action: "s3:DeleteObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL], resource: Some(r#"{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111111111111:role/R"]},"Action":"s3:*","Resource":"*"}"#), ..Default::default() },
        Case { name: "deny in identity beats allow in resource policy", action: "s3:GetObject", resources: vec![OBJ], identity: vec![r#"{"Effect":"Deny","Action":"s3:*","Resource":"*"}"#], resource: Some(r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}"#), want: Explicit(Identity), ..Default::default() },
        Case { name: "resource policy condition on aws:PrincipalArn", action: "s3:GetObject", resources: vec![OBJ], resource: Some(r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111111111111:role/R"}}}"#), ..Default::default() },
        // Cross-account.
        Case { name: "cross-account: identity allow alone is not enough", principal: Some(other_session()), action: "s3:GetObject", resources: vec![OBJ], owner: Some(ACCT), identity: vec![ALLOW_S3_ALL], want: Implicit(Resource), ..Default::default() },
        Case { name: "cross-account: resource allow alone is not enough", principal: Some(other_session()), action: "s3:GetObject", resources: vec![OBJ], owner: Some(ACCT), resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":"s3:*","Resource":"*"}"#), want: Implicit(Identity), ..Default::default() },
        Case { name: "cross-account: both sides allow (account principal)", principal: Some(other_session()), action: "s3:GetObject", resources: vec![OBJ], owner: Some(ACCT), identity: vec![ALLOW_S3_ALL], resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"s3:*","Resource":"*"}"#), ..Default::default() },
        Case { name: "cross-account: resource policy for another account", principal: Some(other_session()), action: "s3:GetObject", resources: vec![OBJ], owner: Some(ACCT), identity: vec![ALLOW_S3_ALL], resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"333333333333"},"Action":"s3:*","Resource":"*"}"#), want: Implicit(Resource), ..Default::default() },
        Case { name: "cross-account: the boundary still applies", principal: Some(other_session()), action: "s3:GetObject", resources: vec![OBJ], owner: Some(ACCT), identity: vec![ALLOW_S3_ALL], boundary: Some(r#"{"Effect":"Allow","Action":"logs:*","Resource":"*"}"#), resource: Some(r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}"#), want: Implicit(PermissionsBoundary), ..Default::default() },
        Case { name: "cross-account: explicit deny in the resource policy", principal: Some(other_session()), action: "s3:GetObject", resources: vec![OBJ], owner: Some(ACCT), identity: vec![ALLOW_S3_ALL], resource: Some(r#"[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Principal":{"AWS":"222222222222"},"Action":"s3:GetObject","Resource":"*"}]"#), want: Explicit(Resource), ..Default::default() },
        Case { name: "cross-account: explicit deny in identity beats the resource policy's allow", principal: Some(other_session()), action: "s3:GetObject", resources: vec![OBJ], owner: Some(ACCT), identity: vec![ALLOW_S3_ALL, r#"{"Effect":"Deny","Action":"s3:GetObject","Resource":"*"}"#], resource: Some(r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}"#), want: Explicit(Identity), ..Default::default() },
        Case { name: "cross-account: resource policy naming the other account's role", principal: Some(other_session()), action: "s3:GetObject", resources: vec![OBJ], owner: Some(ACCT), identity: vec![ALLOW_S3_ALL], resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:role/X"},"Action":"s3:GetObject","Resource":"*"}"#), ..Default::default() },
        Case { name: "cross-account: NotAction in the resource policy's deny", principal: Some(other_session()), action: "s3:PutObject", resources: vec![OBJ], owner: Some(ACCT), identity: vec![ALLOW_S3_ALL], resource: Some(r#"[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Principal":"*","NotAction":"s3:Get*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":"111111111111"}}}]"#), want: Explicit(Resource), ..Default::default() },
        Case { name: "cross-account: the trust policy names the account, its identity policy allows", principal: Some(other_session()), action: "sts:AssumeRole", resources: vec!["arn:aws:iam::111111111111:role/deploy"], owner: Some(ACCT), required: true, identity: vec![r#"{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}"#], resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"sts:AssumeRole"}"#), ..Default::default() },
        Case { name: "cross-account: trusted, but no identity policy allows AssumeRole", principal: Some(other_session()), action: "sts:AssumeRole", resources: vec!["arn:aws:iam::111111111111:role/deploy"], owner: Some(ACCT), required: true, resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"sts:AssumeRole"}"#), want: Implicit(Identity), ..Default::default() },
        Case { name: "trust policy with ArnLike on aws:SourceArn", principal: Some(Principal::service("events.amazonaws.com")), action: "sts:AssumeRole", resources: vec!["arn:aws:iam::111111111111:role/ev"], keys: vec![("aws:SourceArn", "arn:aws:events:eu-west-1:111111111111:rule/on-push")], required: true, resource: Some(r#"{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:events:*:111111111111:rule/*"}}}"#), ..Default::default() },
        // Root.
        Case { name: "root may do everything in its account", principal: Some(Principal::from_arn("arn:aws:iam::111111111111:root")), action: "iam:DeleteRole", ..Default::default() },
        Case { name: "root is still bound by a resource policy deny", principal: Some(Principal::from_arn("arn:aws:iam::111111111111:root")), action: "s3:DeleteBucket", resources: vec!["arn:aws:s3:::b"], resource: Some(r#"{"Effect":"Deny","Principal":"*","Action":"s3:DeleteBucket","Resource":"*"}"#), want: Explicit(Resource), ..Default::default() },
        Case { name: "a key policy without the account statement locks out IAM policies", action: "kms:Decrypt", resources: vec![KEY], required: true, identity: vec![r#"{"Effect":"Allow","Action":"kms:*","Resource":"*"}"#], resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/admin"},"Action":"kms:*","Resource":"*"}"#), want: Implicit(Resource), ..Default::default() },
        Case { name: "... and root too", principal: Some(Principal::from_arn("arn:aws:iam::111111111111:root")), action: "kms:PutKeyPolicy", resources: vec![KEY], required: true, resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/admin"},"Action":"kms:*","Resource":"*"}"#), want: Implicit(Resource), ..Default::default() },
        Case { name: "a key policy naming the account delegates to IAM policies", action: "kms:Decrypt", resources: vec![KEY], required: true, identity: vec![r#"{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}"#], resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"}"#), ..Default::default() },
        Case { name: "... which must allow", action: "kms:Decrypt", resources: vec![KEY], required: true, resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"}"#), want: Implicit(Identity), ..Default::default() },
        Case { name: "a key policy naming the role session allows without IAM policies", action: "kms:Decrypt", resources: vec![KEY], required: true, resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::111111111111:assumed-role/R/S"},"Action":"kms:Decrypt","Resource":"*"}"#), ..Default::default() },
        Case { name: "another account's root needs the resource policy", principal: Some(Principal::from_arn("arn:aws:iam::222222222222:root")), action: "s3:GetObject", resources: vec![OBJ], owner: Some(ACCT), want: Implicit(Resource), ..Default::default() },
        // Trust policies (sts:AssumeRole), resource policy required.
        Case { name: "trust policy allows the service", principal: Some(Principal::service("codebuild.amazonaws.com")), action: "sts:AssumeRole", resources: vec!["arn:aws:iam::111111111111:role/build"], required: true, resource: Some(r#"{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}"#), ..Default::default() },
        Case { name: "trust policy for another service", principal: Some(Principal::service("codepipeline.amazonaws.com")), action: "sts:AssumeRole", resources: vec!["arn:aws:iam::111111111111:role/build"], required: true, resource: Some(r#"{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}"#), want: Implicit(Resource), ..Default::default() },
        Case { name: "same account user with AssumeRole permission but no trust", principal: Some(user()), action: "sts:AssumeRole", resources: vec!["arn:aws:iam::111111111111:role/build"], required: true, identity: vec![r#"{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}"#], resource: Some(r#"{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}"#), want: Implicit(Resource), ..Default::default() },
        Case { name: "trust naming the user directly", principal: Some(user()), action: "sts:AssumeRole", resources: vec!["arn:aws:iam::111111111111:role/build"], required: true, resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:user/alice"},"Action":"sts:AssumeRole"}"#), ..Default::default() },
        Case { name: "trust naming the account needs the identity policy too", principal: Some(user()), action: "sts:AssumeRole", resources: vec!["arn:aws:iam::111111111111:role/build"], required: true, resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"sts:AssumeRole"}"#), want: Implicit(Identity), ..Default::default() },
        Case { name: "trust naming the account plus identity policy", principal: Some(user()), action: "sts:AssumeRole", resources: vec!["arn:aws:iam::111111111111:role/build"], required: true, identity: vec![r#"{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::111111111111:role/*"}"#], resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"sts:AssumeRole"}"#), ..Default::default() },
        Case { name: "trust condition on aws:SourceAccount", principal: Some(Principal::service("events.amazonaws.com")), action: "sts:AssumeRole", resources: vec!["arn:aws:iam::111111111111:role/ev"], keys: vec![("aws:SourceAccount", "999999999999")], required: true, resource: Some(r#"{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"111111111111"}}}"#), want: Implicit(Resource), ..Default::default() },
        // Anonymous.
        Case { name: "anonymous: public read", principal: Some(Principal::anonymous()), action: "s3:GetObject", resources: vec![OBJ], resource: Some(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#), ..Default::default() },
        Case { name: "anonymous: no write", principal: Some(Principal::anonymous()), action: "s3:PutObject", resources: vec![OBJ], resource: Some(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#), want: Implicit(Resource), ..Default::default() },
        Case { name: "anonymous: account principal is no public grant", principal: Some(Principal::anonymous()), action: "s3:GetObject", resources: vec![OBJ], resource: Some(r#"{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"s3:GetObject","Resource":"*"}"#), want: Implicit(Resource), ..Default::default() },
        Case { name: "anonymous: identity policies do not apply", principal: Some(Principal::anonymous()), action: "s3:GetObject", resources: vec![OBJ], identity: vec![ALLOW_S3_ALL], want: Implicit(Resource), ..Default::default() },
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let got = match run(c) {
            Decision::Allow => Want::Allow,
            Decision::ExplicitDeny { kind, .. } => Want::Explicit(kind),
            Decision::ImplicitDeny { kind, .. } => Want::Implicit(kind),
        };
        if got != c.want {
            failures.push(format!("{}: want {:?}, got {got:?}", c.name, c.want));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn explicit_deny_names_the_statement() {
    let c = Case {
        action: "s3:PutObject",
        resources: vec![OBJ],
        identity: vec![r#"[{"Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"NoWrites","Effect":"Deny","Action":"s3:Put*","Resource":"*"}]"#],
        ..Default::default()
    };
    match run(&c) {
        Decision::ExplicitDeny { kind, source, sid, statement, resource } => {
            assert_eq!((kind, source.as_str(), sid.as_deref(), statement, resource.as_str()), (PolicyKind::Identity, "identity0", Some("NoWrites"), 1, OBJ));
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn the_denied_resource_is_named() {
    let c = Case {
        action: "s3:GetObject",
        resources: vec![OBJ, "arn:aws:s3:::c/k"],
        identity: vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/*"}"#],
        ..Default::default()
    };
    assert_eq!(run(&c), Decision::ImplicitDeny { kind: PolicyKind::Identity, resource: "arn:aws:s3:::c/k".into() });
}

#[test]
fn principal_keys_are_in_the_context() {
    let r = Request::new(session(), "s3:GetObject", vec![]);
    assert_eq!(r.context.get("aws:PrincipalArn"), Some(&["arn:aws:iam::111111111111:role/R".to_string()][..]));
    assert_eq!(r.context.get("aws:principalaccount"), Some(&[ACCT.to_string()][..]));
    assert_eq!(r.context.get("aws:PrincipalType"), Some(&["AssumedRole".to_string()][..]));
    assert!(r.context.get("aws:CurrentTime").is_some());
    let u = Request::new(user(), "s3:GetObject", vec![]);
    assert_eq!(u.context.get("aws:username"), Some(&["alice".to_string()][..]));
}
