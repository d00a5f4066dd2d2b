//! IAM end to end through aws-sdk-rust: roles, inline and managed policies, versions,
//! attachments, the conflicts IAM refuses, paging and tags.

use crate::common::error_code as code;
use crate::common::*;

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}]}"#;
const POLICY_V2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;

/// IAM answers documents percent-encoded; the SDK hands them on as they came.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}


#[tokio::test(flavor = "multi_thread")]
async fn role_lifecycle_with_inline_and_managed_policies() {
    let (_t, iam) = TestServer::with(aws_sdk_iam::Client::new).await;

    let team = aws_sdk_iam::types::Tag::builder().key("team").value("a").build().unwrap();
    let created = iam.create_role().role_name("app-role").path("/service/").description("for builds").assume_role_policy_document(TRUST).tags(team).send().await.unwrap();
    let role = created.role().unwrap();
    assert_eq!(role.arn(), "arn:aws:iam::000000000000:role/service/app-role");
    assert!(role.role_id().starts_with("AROA") && role.role_id().len() == 21, "{}", role.role_id());
    assert_eq!(role.path(), "/service/");
    let age = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - role.create_date().secs();
    assert!((0..60).contains(&age), "CreateDate is now: {age}");

    let dup = iam.create_role().role_name("APP-ROLE").assume_role_policy_document(TRUST).send().await.unwrap_err();
    assert_eq!(code(&dup.into_service_error()), "EntityAlreadyExists", "names are case-insensitive");

    let got = iam.get_role().role_name("app-role").send().await.unwrap();
    let got = got.role().unwrap();
    assert_eq!(got.max_session_duration(), Some(3600));
    assert_eq!(got.description(), Some("for builds"));
    assert_eq!(decode(got.assume_role_policy_document().unwrap()), TRUST);
    assert!(got.assume_role_policy_document().unwrap().starts_with("%7B%22Version%22"), "percent-encoded");
    assert!(got.role_last_used().is_some());
    assert_eq!(got.tags().len(), 1);

    iam.update_role().role_name("app-role").max_session_duration(7200).description("d2").send().await.unwrap();
    let new_trust = TRUST.replace("codebuild", "codepipeline");
    iam.update_assume_role_policy().role_name("app-role").policy_document(&new_trust).send().await.unwrap();
    let got = iam.get_role().role_name("app-role").send().await.unwrap();
    assert_eq!(got.role().unwrap().max_session_duration(), Some(7200));
    assert_eq!(decode(got.role().unwrap().assume_role_policy_document().unwrap()), new_trust);

    // Inline policy, kept byte for byte.
    iam.put_role_policy().role_name("app-role").policy_name("inline").policy_document(POLICY).send().await.unwrap();
    let inline = iam.get_role_policy().role_name("app-role").policy_name("inline").send().await.unwrap();
    assert_eq!(decode(inline.policy_document()), POLICY);
    assert_eq!(iam.list_role_policies().role_name("app-role").send().await.unwrap().policy_names(), ["inline"]);

    // Managed policy, attached.
    let policy = iam.create_policy().policy_name("logs-write").policy_document(POLICY).description("p").send().await.unwrap();
    let policy = policy.policy().unwrap().clone();
    let arn = policy.arn().unwrap().to_string();
    assert_eq!(arn, "arn:aws:iam::000000000000:policy/logs-write");
    assert!(policy.policy_id().unwrap().starts_with("ANPA"));
    assert_eq!(policy.default_version_id(), Some("v1"));
    iam.attach_role_policy().role_name("app-role").policy_arn(&arn).send().await.unwrap();
    let attached = iam.list_attached_role_policies().role_name("app-role").send().await.unwrap();
    assert_eq!(attached.attached_policies().len(), 1);
    assert_eq!(attached.attached_policies()[0].policy_name(), Some("logs-write"));
    assert_eq!(iam.get_policy().policy_arn(&arn).send().await.unwrap().policy().unwrap().attachment_count(), Some(1));
    let only_attached = iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).only_attached(true).send().await.unwrap();
    assert_eq!(only_attached.policies().len(), 1);
    let aws = aws_sdk_iam::types::PolicyScopeType::Aws;
    assert!(iam.list_policies().scope(aws.clone()).only_attached(true).send().await.unwrap().policies().is_empty(), "no AWS managed policy is attached");
    assert!(!iam.list_policies().scope(aws).send().await.unwrap().policies().is_empty(), "AWS managed policies are listed");

    // Deleting what is in use is refused and changes nothing.
    let e = iam.delete_role().role_name("app-role").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "DeleteConflict");
    let e = iam.delete_policy().policy_arn(&arn).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "DeleteConflict");
    iam.delete_role_policy().role_name("app-role").policy_name("inline").send().await.unwrap();
    let e = iam.delete_role().role_name("app-role").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "DeleteConflict", "still attached");
    assert!(e.meta().message().unwrap().contains("detach"));

    // Instance profiles: none exist.
    let profiles = iam.list_instance_profiles_for_role().role_name("app-role").send().await.unwrap();
    assert!(profiles.instance_profiles().is_empty());

    iam.detach_role_policy().role_name("app-role").policy_arn(&arn).send().await.unwrap();
    let e = iam.detach_role_policy().role_name("app-role").policy_arn(&arn).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "NoSuchEntity");
    iam.delete_role().role_name("app-role").send().await.unwrap();
    iam.delete_policy().policy_arn(&arn).send().await.unwrap();
    let e = iam.get_role().role_name("app-role").send().await.unwrap_err().into_service_error();
    assert!(e.is_no_such_entity_exception(), "{e:?}");
    assert_eq!(e.meta().message(), Some("The role with name app-role cannot be found."));
    let e = iam.get_policy().policy_arn(&arn).send().await.unwrap_err().into_service_error();
    assert!(e.is_no_such_entity_exception());
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_versions_up_to_five() {
    let (_t, iam) = TestServer::with(aws_sdk_iam::Client::new).await;
    let p = iam.create_policy().policy_name("versioned").path("/team/").policy_document(POLICY).send().await.unwrap();
    let arn = p.policy().unwrap().arn().unwrap().to_string();
    assert_eq!(arn, "arn:aws:iam::000000000000:policy/team/versioned");
    let v2 = iam.create_policy_version().policy_arn(&arn).policy_document(POLICY_V2).set_as_default(true).send().await.unwrap();
    assert_eq!(v2.policy_version().unwrap().version_id(), Some("v2"));
    assert!(v2.policy_version().unwrap().is_default_version());
    for _ in 0..3 {
        iam.create_policy_version().policy_arn(&arn).policy_document(POLICY).send().await.unwrap();
    }
    let e = iam.create_policy_version().policy_arn(&arn).policy_document(POLICY).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "LimitExceeded");
    let versions = iam.list_policy_versions().policy_arn(&arn).send().await.unwrap();
    let ids: Vec<&str> = versions.versions().iter().filter_map(|v| v.version_id()).collect();
    assert_eq!(ids, ["v5", "v4", "v3", "v2", "v1"]);
    let got = iam.get_policy_version().policy_arn(&arn).version_id("v2").send().await.unwrap();
    assert_eq!(decode(got.policy_version().unwrap().document().unwrap()), POLICY_V2);
    assert_eq!(iam.get_policy().policy_arn(&arn).send().await.unwrap().policy().unwrap().default_version_id(), Some("v2"));

    let e = iam.delete_policy_version().policy_arn(&arn).version_id("v2").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "DeleteConflict", "the default version stays");
    let e = iam.delete_policy().policy_arn(&arn).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "DeleteConflict", "other versions remain");
    for v in ["v1", "v3", "v4", "v5"] {
        iam.delete_policy_version().policy_arn(&arn).version_id(v).send().await.unwrap();
    }
    let e = iam.get_policy_version().policy_arn(&arn).version_id("v1").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "NoSuchEntity");
    // Version numbers are never reused.
    let v6 = iam.create_policy_version().policy_arn(&arn).policy_document(POLICY).send().await.unwrap();
    assert_eq!(v6.policy_version().unwrap().version_id(), Some("v6"));
    iam.delete_policy_version().policy_arn(&arn).version_id("v6").send().await.unwrap();
    iam.delete_policy().policy_arn(&arn).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_pages_filters_and_tags() {
    let (_t, iam) = TestServer::with(aws_sdk_iam::Client::new).await;
    for i in 0..5 {
        let path = if i % 2 == 0 { "/even/" } else { "/" };
        iam.create_role().role_name(format!("r{i}")).path(path).assume_role_policy_document(TRUST).send().await.unwrap();
    }
    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = iam.list_roles().max_items(2).set_marker(marker.clone()).send().await.unwrap();
        pages += 1;
        names.extend(page.roles().iter().map(|r| r.role_name().to_string()));
        assert!(page.roles().iter().all(|r| r.tags().is_empty() && r.role_last_used().is_none()), "ListRoles omits tags and last use");
        if !page.is_truncated() {
            break;
        }
        marker = page.marker().map(str::to_string);
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["r0", "r1", "r2", "r3", "r4"]);
    let even = iam.list_roles().path_prefix("/even/").send().await.unwrap();
    assert_eq!(even.roles().len(), 3);

    use aws_sdk_iam::types::Tag;
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().unwrap();
    iam.tag_role().role_name("r1").tags(tag("a", "1")).tags(tag("b", "2")).send().await.unwrap();
    iam.tag_role().role_name("r1").tags(tag("a", "3")).send().await.unwrap();
    iam.untag_role().role_name("r1").tag_keys("b").send().await.unwrap();
    let tags = iam.list_role_tags().role_name("r1").send().await.unwrap();
    assert_eq!(tags.tags().iter().map(|t| (t.key(), t.value())).collect::<Vec<_>>(), [("a", "3")]);
    let e = iam.list_role_tags().role_name("ghost").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "NoSuchEntity");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_documents_and_names_change_nothing() {
    let (_t, iam) = TestServer::with(aws_sdk_iam::Client::new).await;
    let e = iam.create_role().role_name("r").assume_role_policy_document("{not json").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "MalformedPolicyDocument");
    assert_eq!(e.meta().message(), Some("Syntax errors in policy."));
    let e = iam.create_role().role_name("x".repeat(65)).assume_role_policy_document(TRUST).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "ValidationError");
    assert!(e.meta().message().unwrap().contains("at 'roleName' failed to satisfy constraint: Member must have length less than or equal to 64"), "{:?}", e.meta().message());
    assert!(iam.list_roles().send().await.unwrap().roles().is_empty(), "nothing was created");

    iam.create_role().role_name("r").assume_role_policy_document(TRUST).send().await.unwrap();
    let no_actions = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#;
    let e = iam.put_role_policy().role_name("r").policy_name("p").policy_document(no_actions).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "MalformedPolicyDocument");
    assert_eq!(e.meta().message(), Some("Policy statement must contain actions."));
    assert!(iam.list_role_policies().role_name("r").send().await.unwrap().policy_names().is_empty());
    let e = iam.create_policy().policy_name("p").policy_document(TRUST).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "MalformedPolicyDocument", "an identity policy names no principal");
    let e = iam.put_role_policy().role_name("ghost").policy_name("p").policy_document(POLICY).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "NoSuchEntity");
    let e = iam.attach_role_policy().role_name("r").policy_arn("arn:aws:iam::000000000000:policy/none").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "NoSuchEntity");
}
