//! IAM identities end to end: users, groups and access keys (SDK, aws CLI, Terraform); requests
//! signed with a user's key act as the user and are evaluated against its policies; AWS managed
//! policies by ARN; AssumeRole decided by trust policies; the Simulate* calls; `--iam audit`
//! and `codeyard doctor`.

use crate::common::error_code as code;
use crate::common::*;
use aws_sdk_iam::types::Tag;
use codeyard_server::AuthMode;

const READ_ONLY_S3: &str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";
const IAM_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:Get*","iam:List*","logs:Describe*"],"Resource":"*"}]}"#;

fn iam_of(conf: &aws_config::SdkConfig) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(conf)
}

/// A user with `policy_arns` attached and an access key: (key id, secret).
async fn user_with_key(iam: &aws_sdk_iam::Client, name: &str, policy_arns: &[&str], inline: Option<&str>) -> (String, String) {
    iam.create_user().user_name(name).send().await.expect("CreateUser");
    for arn in policy_arns {
        iam.attach_user_policy().user_name(name).policy_arn(*arn).send().await.expect("AttachUserPolicy");
    }
    if let Some(doc) = inline {
        iam.put_user_policy().user_name(name).policy_name("inline").policy_document(doc).send().await.expect("PutUserPolicy");
    }
    let key = iam.create_access_key().user_name(name).send().await.expect("CreateAccessKey");
    let key = key.access_key().expect("key");
    (key.access_key_id().to_string(), key.secret_access_key().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn user_group_and_key_lifecycle() {
    let (_t, iam) = TestServer::with(iam_of).await;

    let created = iam.create_user().user_name("alice").path("/dev/").tags(Tag::builder().key("team").value("blue").build().unwrap()).send().await.unwrap();
    let user = created.user().unwrap();
    assert_eq!(user.arn(), "arn:aws:iam::000000000000:user/dev/alice");
    assert!(user.user_id().starts_with("AIDA") && user.user_id().len() == 21, "{}", user.user_id());
    let dup = iam.create_user().user_name("ALICE").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&dup), "EntityAlreadyExists");
    assert_eq!(dup.meta().message(), Some("User with name ALICE already exists."));
    let missing = iam.get_user().user_name("nobody").send().await.unwrap_err().into_service_error();
    assert_eq!((code(&missing).as_str(), missing.meta().message()), ("NoSuchEntity", Some("The user with name nobody cannot be found.")));
    assert_eq!(iam.get_user().user_name("alice").send().await.unwrap().user().unwrap().tags().len(), 1);
    iam.untag_user().user_name("alice").tag_keys("team").send().await.unwrap();
    assert!(iam.list_user_tags().user_name("alice").send().await.unwrap().tags().is_empty());
    assert_eq!(iam.list_users().send().await.unwrap().users().len(), 1);

    iam.create_group().group_name("devs").send().await.unwrap();
    iam.add_user_to_group().group_name("devs").user_name("alice").send().await.unwrap();
    let g = iam.get_group().group_name("devs").send().await.unwrap();
    assert_eq!(g.users().iter().map(|u| u.user_name()).collect::<Vec<_>>(), ["alice"]);
    assert_eq!(iam.list_groups_for_user().user_name("alice").send().await.unwrap().groups()[0].group_name(), "devs");
    let conflict = iam.delete_group().group_name("devs").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&conflict), "DeleteConflict");
    iam.put_group_policy().group_name("devs").policy_name("read").policy_document(IAM_READ).send().await.unwrap();
    iam.attach_group_policy().group_name("devs").policy_arn(READ_ONLY_S3).send().await.unwrap();
    assert_eq!(iam.list_group_policies().group_name("devs").send().await.unwrap().policy_names(), ["read"]);
    assert_eq!(iam.list_attached_group_policies().group_name("devs").send().await.unwrap().attached_policies()[0].policy_arn(), Some(READ_ONLY_S3));

    // Keys: at most two, the secret only at creation, Inactive ones listed as such.
    let k1 = iam.create_access_key().user_name("alice").send().await.unwrap().access_key().unwrap().clone();
    assert!(k1.access_key_id().starts_with("AKIA") && k1.access_key_id().len() == 20);
    assert_eq!(k1.secret_access_key().len(), 40);
    iam.create_access_key().user_name("alice").send().await.unwrap();
    let third = iam.create_access_key().user_name("alice").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&third), "LimitExceeded");
    iam.update_access_key().user_name("alice").access_key_id(k1.access_key_id()).status(aws_sdk_iam::types::StatusType::Inactive).send().await.unwrap();
    let keys = iam.list_access_keys().user_name("alice").send().await.unwrap();
    assert_eq!(keys.access_key_metadata().len(), 2);
    assert_eq!(keys.access_key_metadata()[0].status(), Some(&aws_sdk_iam::types::StatusType::Inactive));
    let last = iam.get_access_key_last_used().access_key_id(k1.access_key_id()).send().await.unwrap();
    assert_eq!(last.user_name(), Some("alice"));

    let conflict = iam.delete_user().user_name("alice").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&conflict), "DeleteConflict");
    for k in keys.access_key_metadata() {
        iam.delete_access_key().user_name("alice").access_key_id(k.access_key_id().unwrap()).send().await.unwrap();
    }
    let gone = iam.delete_access_key().user_name("alice").access_key_id(k1.access_key_id()).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&gone), "NoSuchEntity");
    iam.remove_user_from_group().group_name("devs").user_name("alice").send().await.unwrap();
    iam.delete_group_policy().group_name("devs").policy_name("read").send().await.unwrap();
    iam.detach_group_policy().group_name("devs").policy_arn(READ_ONLY_S3).send().await.unwrap();
    iam.delete_group().group_name("devs").send().await.unwrap();
    iam.delete_user().user_name("alice").send().await.unwrap();
    assert!(iam.list_users().send().await.unwrap().users().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_managed_policies_are_served_by_arn() {
    let (_t, iam) = TestServer::with(iam_of).await;
    let p = iam.get_policy().policy_arn("arn:aws:iam::aws:policy/AdministratorAccess").send().await.unwrap();
    let p = p.policy().unwrap();
    assert_eq!((p.policy_name(), p.default_version_id(), p.path()), (Some("AdministratorAccess"), Some("v1"), Some("/")));
    let v = iam.get_policy_version().policy_arn("arn:aws:iam::aws:policy/AdministratorAccess").version_id("v1").send().await.unwrap();
    let doc = v.policy_version().unwrap().document().unwrap();
    assert!(doc.contains("%22Action%22%3A%20%22%2A%22") || doc.contains("Action"), "{doc}");
    let aws = iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Aws).max_items(1000).send().await.unwrap();
    let names: Vec<&str> = aws.policies().iter().filter_map(|p| p.policy_name()).collect();
    for want in ["PowerUserAccess", "ReadOnlyAccess", "AWSCodeCommitPowerUser", "AWSCodePipeline_FullAccess", "AmazonEC2ContainerRegistryPowerUser", "CloudWatchLogsFullAccess"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    iam.create_policy().policy_name("mine").policy_document(IAM_READ).send().await.unwrap();
    let local = iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).send().await.unwrap();
    assert_eq!(local.policies().iter().filter_map(|p| p.policy_name()).collect::<Vec<_>>(), ["mine"]);
    iam.create_user().user_name("u").send().await.unwrap();
    iam.attach_user_policy().user_name("u").policy_arn(READ_ONLY_S3).send().await.unwrap();
    assert_eq!(iam.get_policy().policy_arn(READ_ONLY_S3).send().await.unwrap().policy().unwrap().attachment_count(), Some(1));
    let entities = iam.list_entities_for_policy().policy_arn(READ_ONLY_S3).send().await.unwrap();
    assert_eq!(entities.policy_users().iter().filter_map(|u| u.user_name()).collect::<Vec<_>>(), ["u"]);
    assert!(entities.policy_roles().is_empty() && entities.policy_groups().is_empty());
    let attached = iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Aws).only_attached(true).send().await.unwrap();
    assert_eq!(attached.policies().iter().filter_map(|p| p.arn()).collect::<Vec<_>>(), [READ_ONLY_S3]);
    let missing = iam.get_policy().policy_arn("arn:aws:iam::aws:policy/NoSuchPolicy").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&missing), "NoSuchEntity");
}

/// A user limited to reads is refused a write with AWS's message, in both `--auth` modes; its
/// requests are attributed to the user; an Inactive key no longer authenticates (enforce).
#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_user_is_denied_a_write() {
    for mode in [AuthMode::Open, AuthMode::Enforce] {
        let t = TestServer::start_with(auth_with_key(mode, "test", "test")).await;
        let root = iam_of(&t.sdk_config().await);
        let (key, secret) = user_with_key(&root, "reader", &[READ_ONLY_S3], Some(IAM_READ)).await;
        let conf = t.sdk_config_with(&key, &secret).await;

        let me = aws_sdk_sts::Client::new(&conf).get_caller_identity().send().await.unwrap();
        assert_eq!(me.arn(), Some("arn:aws:iam::000000000000:user/reader"), "{mode:?}");
        let as_user = iam_of(&conf);
        as_user.list_roles().send().await.expect("iam:List* is allowed");
        let denied = as_user.create_role().role_name("new-role").assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#).send().await.unwrap_err();
        let denied = denied.into_service_error();
        assert_eq!(code(&denied), "AccessDenied", "{mode:?}");
        assert_eq!(
            denied.meta().message(),
            Some("User: arn:aws:iam::000000000000:user/reader is not authorized to perform: iam:CreateRole on resource: arn:aws:iam::000000000000:role/new-role because no identity-based policy allows the iam:CreateRole action")
        );
        assert!(root.get_role().role_name("new-role").send().await.is_err(), "nothing was created");

        // The aws CLI, same key: logs reads allowed, a log group refused.
        let (ok, _, err) = aws_cli_as(&t.endpoint, &key, &secret, None, &["logs", "describe-log-groups"]);
        assert!(ok, "{err}");
        let (ok, _, err) = aws_cli_as(&t.endpoint, &key, &secret, None, &["logs", "create-log-group", "--log-group-name", "g"]);
        assert!(!ok);
        assert!(err.contains("AccessDeniedException") && err.contains("User: arn:aws:iam::000000000000:user/reader is not authorized to perform: logs:CreateLogGroup"), "{err}");

        // A group's policy counts for its members; detaching it takes effect at once.
        root.create_group().group_name("writers").send().await.unwrap();
        root.put_group_policy().group_name("writers").policy_name("logs").policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:CreateLogGroup","Resource":"*"}]}"#).send().await.unwrap();
        root.add_user_to_group().group_name("writers").user_name("reader").send().await.unwrap();
        let (ok, _, err) = aws_cli_as(&t.endpoint, &key, &secret, None, &["logs", "create-log-group", "--log-group-name", "g"]);
        assert!(ok, "the group allows it: {err}");
        root.remove_user_from_group().group_name("writers").user_name("reader").send().await.unwrap();
        let (ok, _, _) = aws_cli_as(&t.endpoint, &key, &secret, None, &["logs", "create-log-group", "--log-group-name", "g2"]);
        assert!(!ok, "no longer in the group");

        root.update_access_key().user_name("reader").access_key_id(&key).status(aws_sdk_iam::types::StatusType::Inactive).send().await.unwrap();
        let after = aws_sdk_sts::Client::new(&conf).get_caller_identity().send().await;
        match mode {
            AuthMode::Enforce => assert!(after.is_err(), "an Inactive key does not authenticate"),
            AuthMode::Open => assert_ne!(after.unwrap().arn(), Some("arn:aws:iam::000000000000:user/reader"), "no longer the user"),
        }
        t.assert_no_model_violations();
    }
}

/// `--iam audit`: the denied call runs, the denial is recorded, `codeyard doctor` lists it with
/// a statement that would allow it.
#[tokio::test(flavor = "multi_thread")]
async fn audit_mode_records_what_would_be_denied() {
    let t = TestServer::start_with(|o| o.iam = codeyard_core::IamMode::Audit).await;
    let root = iam_of(&t.sdk_config().await);
    let (key, secret) = user_with_key(&root, "auditee", &[], None).await;
    let doctor = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_codeyard")).args(["doctor", "--endpoint", &t.endpoint]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(doctor().contains("no denials recorded"), "{}", doctor());

    let (ok, _, err) = aws_cli_as(&t.endpoint, &key, &secret, None, &["logs", "create-log-group", "--log-group-name", "audited"]);
    assert!(ok, "audit lets it run: {err}");
    let (ok, out, _) = aws_cli(&t.endpoint, &["logs", "describe-log-groups"]);
    assert!(ok && out.contains("audited"));

    let denials: serde_json::Value = reqwest::get(format!("{}/_codeyard/iam/denials", t.endpoint)).await.unwrap().json().await.unwrap();
    assert_eq!(denials["mode"], "audit");
    let d = &denials["denials"][0];
    assert_eq!(d["principal"], "arn:aws:iam::000000000000:user/auditee");
    assert_eq!(d["action"], "logs:CreateLogGroup");
    assert_eq!(d["enforced"], false);
    assert_eq!(d["suggested_statement"]["Effect"], "Allow");
    assert_eq!(d["suggested_statement"]["Action"], "logs:CreateLogGroup");

    // The same denial twice is listed once, with its count.
    let (ok, _, _) = aws_cli_as(&t.endpoint, &key, &secret, None, &["logs", "create-log-group", "--log-group-name", "audited"]);
    assert!(!ok, "exists already (but allowed)");
    let report = doctor();
    assert!(report.contains("(2 times, last "), "{report}");
    assert!(report.contains("WOULD DENY (audit)") && report.contains("arn:aws:iam::000000000000:user/auditee logs:CreateLogGroup"), "{report}");
    assert!(report.contains(r#"suggested policy statement: {"Effect":"Allow","Action":"logs:CreateLogGroup""#), "{report}");
}

fn trust(principal: serde_json::Value) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]}).to_string()
}

/// AssumeRole is refused by a trust policy that does not name the caller and allowed by one
/// that does; the session acts as the role (its policies, narrowed by session policies).
#[tokio::test(flavor = "multi_thread")]
async fn assume_role_follows_trust_policies() {
    let (t, root) = TestServer::with(iam_of).await;
    let (key, secret) = user_with_key(&root, "dev", &[], Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#)).await;
    root.create_role().role_name("builds-only").assume_role_policy_document(trust(serde_json::json!({"Service": "codebuild.amazonaws.com"}))).send().await.unwrap();
    root.create_role().role_name("for-dev").assume_role_policy_document(trust(serde_json::json!({"AWS": "arn:aws:iam::000000000000:user/dev"}))).send().await.unwrap();
    root.put_role_policy()
        .role_name("for-dev")
        .policy_name("logs")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:DescribeLogGroups"],"Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();

    let sts = aws_sdk_sts::Client::new(&t.sdk_config_with(&key, &secret).await);
    let refused = sts.assume_role().role_arn("arn:aws:iam::000000000000:role/builds-only").role_session_name("s1").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&refused), "AccessDenied");
    assert_eq!(
        refused.meta().message(),
        Some("User: arn:aws:iam::000000000000:user/dev is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::000000000000:role/builds-only")
    );
    let (ok, _, err) = aws_cli_as(&t.endpoint, &key, &secret, None, &["sts", "assume-role", "--role-arn", "arn:aws:iam::000000000000:role/builds-only", "--role-session-name", "s1"]);
    assert!(!ok && err.contains("AccessDenied"), "{err}");

    let assumed = sts.assume_role().role_arn("arn:aws:iam::000000000000:role/for-dev").role_session_name("work").send().await.unwrap();
    let c = assumed.credentials().unwrap();
    assert!(c.access_key_id().starts_with("ASIA"));
    let session = (c.access_key_id().to_string(), c.secret_access_key().to_string(), c.session_token().to_string());
    let (ok, out, err) = aws_cli_as(&t.endpoint, &session.0, &session.1, Some(&session.2), &["sts", "get-caller-identity"]);
    assert!(ok && out.contains("arn:aws:sts::000000000000:assumed-role/for-dev/work"), "{out}{err}");
    let (ok, _, err) = aws_cli_as(&t.endpoint, &session.0, &session.1, Some(&session.2), &["logs", "create-log-group", "--log-group-name", "by-role"]);
    assert!(ok, "the role's policy allows it: {err}");
    let (ok, _, err) = aws_cli_as(&t.endpoint, &session.0, &session.1, Some(&session.2), &["iam", "list-users"]);
    assert!(!ok && err.contains("User: arn:aws:sts::000000000000:assumed-role/for-dev/work is not authorized to perform: iam:ListUsers"), "{err}");

    // A session policy narrows the session to less than the role.
    let narrowed = sts
        .assume_role()
        .role_arn("arn:aws:iam::000000000000:role/for-dev")
        .role_session_name("narrow")
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:DescribeLogGroups","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let n = narrowed.credentials().unwrap();
    let (ok, _, err) = aws_cli_as(&t.endpoint, n.access_key_id(), n.secret_access_key(), Some(n.session_token()), &["logs", "describe-log-groups"]);
    assert!(ok, "{err}");
    let (ok, _, err) = aws_cli_as(&t.endpoint, n.access_key_id(), n.secret_access_key(), Some(n.session_token()), &["logs", "create-log-group", "--log-group-name", "narrow"]);
    assert!(!ok && err.contains("because no session policy allows the logs:CreateLogGroup action"), "{err}");

    // Another account's root, trusted by account: allowed across accounts.
    root.create_role().role_name("cross").assume_role_policy_document(trust(serde_json::json!({"AWS": "111111111111"}))).send().await.unwrap();
    let other = aws_sdk_sts::Client::new(&t.sdk_config_with("111111111111", "x").await);
    other.assume_role().role_arn("arn:aws:iam::000000000000:role/cross").role_session_name("x1").send().await.expect("trusted account");
    let third = aws_sdk_sts::Client::new(&t.sdk_config_with("222222222222", "x").await);
    let e = third.assume_role().role_arn("arn:aws:iam::000000000000:role/cross").role_session_name("x1").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "AccessDenied");

    // GetSessionToken for a user: temporary credentials acting as the user.
    let token = sts.get_session_token().send().await.unwrap();
    let c = token.credentials().unwrap();
    let (ok, out, _) = aws_cli_as(&t.endpoint, c.access_key_id(), c.secret_access_key(), Some(c.session_token()), &["sts", "get-caller-identity"]);
    assert!(ok && out.contains("arn:aws:iam::000000000000:user/dev"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_calls_answer_from_the_evaluator() {
    let (t, iam) = TestServer::with(iam_of).await;
    iam.create_user().user_name("sim").send().await.unwrap();
    iam.attach_user_policy().user_name("sim").policy_arn(READ_ONLY_S3).send().await.unwrap();
    iam.put_user_policy()
        .user_name("sim")
        .policy_name("no-secrets")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::secrets/*"}]}"#)
        .send()
        .await
        .unwrap();
    let r = iam
        .simulate_principal_policy()
        .policy_source_arn("arn:aws:iam::000000000000:user/sim")
        .action_names("s3:GetObject")
        .action_names("s3:PutObject")
        .resource_arns("arn:aws:s3:::b/k")
        .resource_arns("arn:aws:s3:::secrets/k")
        .send()
        .await
        .unwrap();
    let got: Vec<(String, String, String)> = r
        .evaluation_results()
        .iter()
        .map(|e| (e.eval_action_name().to_string(), e.eval_resource_name().unwrap_or_default().to_string(), e.eval_decision().as_str().to_string()))
        .collect();
    let want = [
        ("s3:GetObject", "arn:aws:s3:::b/k", "allowed"),
        ("s3:GetObject", "arn:aws:s3:::secrets/k", "explicitDeny"),
        ("s3:PutObject", "arn:aws:s3:::b/k", "implicitDeny"),
        ("s3:PutObject", "arn:aws:s3:::secrets/k", "implicitDeny"),
    ];
    assert_eq!(got, want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())));
    let allowed = &r.evaluation_results()[0].matched_statements()[0];
    assert_eq!(allowed.source_policy_id(), Some("AmazonS3ReadOnlyAccess"));
    let denied = &r.evaluation_results()[1].matched_statements()[0];
    assert_eq!(denied.source_policy_id(), Some("no-secrets"));
    assert_eq!(denied.source_policy_type(), Some(&aws_sdk_iam::types::PolicySourceType::User));

    // The aws CLI, custom policy with a condition key from the context entries.
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}}]}"#;
    let v = aws_cli_json(&t.endpoint, &["iam", "simulate-custom-policy", "--policy-input-list", policy, "--action-names", "logs:CreateLogGroup", "iam:CreateRole"]);
    assert_eq!(v["EvaluationResults"][0]["EvalDecision"], "allowed", "{v}");
    assert_eq!(v["EvaluationResults"][1]["EvalDecision"], "implicitDeny", "{v}");
}

/// Terraform: a user, a group, the membership, an access key, an inline user policy and a
/// managed policy attachment: apply, a plan without changes, destroy.
#[tokio::test(flavor = "multi_thread")]
async fn terraform_user_group_and_key_lifecycle() {
    let (t, ws, iam) = terraform_applied("identities", iam_of).await;
    let dir = ws.path();
    let g = iam.get_group().group_name("tf-developers").send().await.unwrap();
    assert_eq!(g.users().iter().map(|u| u.user_name()).collect::<Vec<_>>(), ["tf-alice"]);
    let groups = iam.list_groups_for_user().user_name("tf-alice").send().await.unwrap();
    let mut names: Vec<&str> = groups.groups().iter().map(|g| g.group_name()).collect();
    names.sort();
    assert_eq!(names, ["tf-developers", "tf-readers"]);
    let keys = iam.list_access_keys().user_name("tf-alice").send().await.unwrap();
    assert_eq!(keys.access_key_metadata().len(), 1);
    let attached = iam.list_attached_user_policies().user_name("tf-alice").send().await.unwrap();
    assert_eq!(attached.attached_policies()[0].policy_arn(), Some(READ_ONLY_S3));

    terraform_destroy(dir, &t.endpoint, &[]);
    assert!(iam.list_users().send().await.unwrap().users().is_empty());
    assert!(iam.list_groups().send().await.unwrap().groups().is_empty());
}

/// Permissions boundaries on users and roles: set, shown, enforced, removed; a boundary must be
/// a managed policy that exists.
#[tokio::test(flavor = "multi_thread")]
async fn permissions_boundaries_cap_users_and_roles() {
    let (t, root) = TestServer::with(iam_of).await;
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    let (key, secret) = user_with_key(&root, "capped", &[admin], None).await;
    root.put_user_permissions_boundary().user_name("capped").permissions_boundary(READ_ONLY_S3).send().await.unwrap();
    let shown = root.get_user().user_name("capped").send().await.unwrap();
    assert_eq!(shown.user().unwrap().permissions_boundary().unwrap().permissions_boundary_arn(), Some(READ_ONLY_S3));
    let (ok, _, err) = aws_cli_as(&t.endpoint, &key, &secret, None, &["iam", "list-users"]);
    assert!(!ok && err.contains("because no permissions boundary allows the iam:ListUsers action"), "{err}");
    root.delete_user_permissions_boundary().user_name("capped").send().await.unwrap();
    let (ok, _, err) = aws_cli_as(&t.endpoint, &key, &secret, None, &["iam", "list-users"]);
    assert!(ok, "AdministratorAccess again: {err}");

    let missing = root
        .create_role()
        .role_name("r")
        .assume_role_policy_document(trust(serde_json::json!({"Service": "codebuild.amazonaws.com"})))
        .permissions_boundary("arn:aws:iam::000000000000:policy/nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&missing), "NoSuchEntity");
    root.create_role()
        .role_name("r")
        .assume_role_policy_document(trust(serde_json::json!({"Service": "codebuild.amazonaws.com"})))
        .permissions_boundary(READ_ONLY_S3)
        .send()
        .await
        .unwrap();
    root.delete_role_permissions_boundary().role_name("r").send().await.unwrap();
    assert!(root.get_role().role_name("r").send().await.unwrap().role().unwrap().permissions_boundary().is_none());
    root.put_role_permissions_boundary().role_name("r").permissions_boundary(admin).send().await.unwrap();
}
