//! The authorizer over a real (in-memory) store: which policies each principal brings, the
//! keys every request carries, the cache following IAM writes, and the modes.

use super::*;
use crate::iam::NewRole;
use crate::sts::{Assumer, SessionPolicies};
use crate::users::{NewUser, User};
use codeyard_store::SharedStore;

const ACCT: &str = "000000000000";

fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":{statements}}}"#)
}

struct Fixture {
    iam: Iam,
    sts: Sts,
    denials: Denials,
}

async fn fixture() -> Fixture {
    let store: SharedStore = Arc::new(codeyard_store::SqliteStore::in_memory().await.unwrap());
    let iam = Iam::new(store.clone());
    Fixture { sts: Sts::new(store.clone(), iam.clone()), denials: Denials::new(store), iam }
}

impl Fixture {
    fn authorizer(&self, mode: IamMode) -> IamAuthorizer {
        IamAuthorizer::new(self.iam.clone(), self.sts.clone(), mode, self.denials.clone())
    }
}

fn ctx(caller: &str) -> RequestContext {
    let mut c = RequestContext::internal(ACCT, "eu-west-1", "http://localhost:4566");
    c.caller_arn = caller.to_string();
    c
}

async fn allowed(a: &IamAuthorizer, ctx: &RequestContext, action: &str, resource: &str) -> bool {
    a.authorize(ctx, &AccessRequest::new(action, resource)).await.is_ok()
}

#[tokio::test]
async fn a_user_has_its_own_its_groups_and_managed_policies_within_its_boundary() {
    let f = fixture().await;
    let tags = vec![Tag { key: "team".into(), value: "blue".into() }];
    f.iam.create_user(ACCT, NewUser { name: "alice".into(), path: Some("/dev/".into()), permissions_boundary: None, tags }).await.unwrap();
    f.iam.put_inline::<User>(ACCT, "alice", "home", doc(r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}"#)).await.unwrap();
    f.iam.attach::<User>(ACCT, "alice", "arn:aws:iam::aws:policy/AWSCodeCommitReadOnly").await.unwrap();
    f.iam.create_group(ACCT, "ops".into(), None).await.unwrap();
    f.iam.put_inline::<Group>(ACCT, "ops", "logs", doc(r#"{"Effect":"Allow","Action":"logs:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"blue"}}}"#)).await.unwrap();
    f.iam.add_user_to_group(ACCT, "ops", "alice").await.unwrap();
    let a = f.authorizer(IamMode::Enforce);
    let alice = ctx("arn:aws:iam::000000000000:user/dev/alice");

    assert!(allowed(&a, &alice, "s3:PutObject", "arn:aws:s3:::home/alice/f").await, "inline, ${{aws:username}}");
    assert!(!allowed(&a, &alice, "s3:PutObject", "arn:aws:s3:::home/bob/f").await);
    assert!(allowed(&a, &alice, "codecommit:GetRepository", "arn:aws:codecommit:eu-west-1:000000000000:r").await, "AWS managed");
    assert!(!allowed(&a, &alice, "codecommit:DeleteRepository", "arn:aws:codecommit:eu-west-1:000000000000:r").await);
    assert!(allowed(&a, &alice, "logs:CreateLogGroup", "*").await, "the group's policy, aws:PrincipalTag");

    // A boundary caps all of it, at once (the cache follows the write).
    f.iam.create_policy(ACCT, crate::iam::NewPolicy { name: "only-s3".into(), path: None, document: doc(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#), description: None, tags: vec![] }).await.unwrap();
    f.iam.set_user_boundary(ACCT, "alice", Some("arn:aws:iam::000000000000:policy/only-s3".into())).await.unwrap();
    let denied = a.authorize(&alice, &AccessRequest::new("logs:CreateLogGroup", "*")).await.unwrap_err();
    assert_eq!(denied.message, "User: arn:aws:iam::000000000000:user/dev/alice is not authorized to perform: logs:CreateLogGroup because no permissions boundary allows the logs:CreateLogGroup action");
    assert!(allowed(&a, &alice, "s3:PutObject", "arn:aws:s3:::home/alice/f").await);
    f.iam.remove_user_from_group(ACCT, "ops", "alice").await.unwrap();
    f.iam.set_user_boundary(ACCT, "alice", None).await.unwrap();
    assert!(!allowed(&a, &alice, "logs:CreateLogGroup", "*").await, "no longer in the group");
    assert!(!allowed(&a, &ctx("arn:aws:iam::000000000000:user/nobody"), "s3:GetObject", "*").await, "an unknown user has no policies");
}

#[tokio::test]
async fn a_role_session_is_its_role_narrowed_by_its_session_policies() {
    let f = fixture().await;
    let trust = doc(r#"{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}"#);
    let new = NewRole { name: "build".into(), path: Some("/svc/".into()), assume_role_policy: trust, description: None, max_session_duration: None, permissions_boundary: None, tags: vec![] };
    f.iam.create_role(ACCT, new).await.unwrap();
    f.iam.put_role_policy(ACCT, "build", "p", doc(r#"{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}"#)).await.unwrap();
    let a = f.authorizer(IamMode::Enforce);
    // Services act in sessions without access keys and without a source address.
    let service_session = ctx("arn:aws:sts::000000000000:assumed-role/build/b-1");
    assert!(!allowed(&a, &service_session, "s3:GetObject", "arn:aws:s3:::b/k").await, "aws:SourceIp absent");
    let mut from_loopback = service_session.clone();
    from_loopback.source_ip = Some("127.0.0.1".parse().unwrap());
    assert!(allowed(&a, &from_loopback, "s3:PutObject", "arn:aws:s3:::b/k").await);

    let narrow = SessionPolicies { policy: Some(doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#)), policy_arns: vec![] };
    let s = f.sts.assume_role(Assumer::Server, "eu-west-1", "arn:aws:iam::000000000000:role/svc/build", "narrow", None, false, narrow).await.unwrap();
    let mut session = from_loopback.clone();
    session.caller_arn = s.credentials.arn.clone();
    session.access_key = s.credentials.access_key_id.clone();
    assert!(allowed(&a, &session, "s3:GetObject", "arn:aws:s3:::b/k").await);
    let d = a.authorize(&session, &AccessRequest::new("s3:PutObject", "arn:aws:s3:::b/k")).await.unwrap_err();
    assert!(d.message.ends_with("because no session policy allows the s3:PutObject action"), "{}", d.message);

    // The trust policy decides for services.
    let assume = AccessRequest::new("sts:AssumeRole", "arn:aws:iam::000000000000:role/svc/build")
        .with_resource_policy(Some(f.iam.get_role(ACCT, "build").await.unwrap().assume_role_policy));
    assert!(a.check_service(ACCT, "codebuild.amazonaws.com", &assume).await.is_ok());
    assert!(a.check_service(ACCT, "codepipeline.amazonaws.com", &assume).await.is_err());
}

#[tokio::test]
async fn root_resource_policies_and_modes() {
    let f = fixture().await;
    let a = f.authorizer(IamMode::Enforce);
    let root = ctx("arn:aws:iam::000000000000:root");
    assert!(allowed(&a, &root, "iam:DeleteRole", "arn:aws:iam::000000000000:role/r").await);
    let deny = AccessRequest::new("s3:DeleteBucket", "arn:aws:s3:::b")
        .with_resource_policy(Some(doc(r#"{"Effect":"Deny","Principal":"*","Action":"s3:DeleteBucket","Resource":"*"}"#)));
    assert!(a.authorize(&root, &deny).await.is_err(), "a resource policy's deny binds root");
    let anonymous = ctx("anonymous");
    let public = AccessRequest::new("s3:GetObject", "arn:aws:s3:::b/k")
        .with_resource_policy(Some(doc(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}"#)));
    assert!(a.authorize(&anonymous, &public).await.is_ok());
    assert!(!allowed(&a, &anonymous, "s3:GetObject", "arn:aws:s3:::b/k").await);

    let user = ctx("arn:aws:iam::000000000000:user/ghost");
    assert!(f.authorizer(IamMode::Audit).authorize(&user, &AccessRequest::new("s3:PutObject", "arn:aws:s3:::b/k")).await.is_ok());
    assert!(f.authorizer(IamMode::Off).authorize(&user, &AccessRequest::new("s3:PutObject", "arn:aws:s3:::b/k")).await.is_ok());
    let recorded = f.denials.list().await.unwrap();
    assert_eq!(recorded.len(), 3, "the enforced deny, the anonymous read and the audited write");
    let audited = recorded.last().unwrap();
    assert_eq!((audited.principal.as_str(), audited.action.as_str(), audited.enforced), ("arn:aws:iam::000000000000:user/ghost", "s3:PutObject", false));
    assert_eq!(audited.suggested_statement, Some(serde_json::json!({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/k"})));
}
