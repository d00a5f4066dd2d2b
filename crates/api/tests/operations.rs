//! The generated operations and the IAM requests derived from them. An integration test, so
//! that the crate's megabytes of generated code are not compiled a second time for a test
//! harness (they were 105 s of a cold CI build).

use codeyard_api::access::{access_requests, denied_code, sample_input};
use codeyard_api::*;
use codeyard_core::RequestContext;
use serde_json::{Value, json};

#[test]
fn operations_carry_iam_actions() {
    let create = logs::LogsOperation::CreateLogGroup.info();
    assert_eq!(create.name, "CreateLogGroup");
    assert_eq!(create.iam[0].action, "logs:CreateLogGroup");
    assert_eq!(create.iam[0].resources[0].arn, "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}");
    assert_eq!(logs::LogsOperation::from_name("PutLogEvents"), Some(logs::LogsOperation::PutLogEvents));
    let copy: Vec<&str> = iam_actions("s3", "CopyObject").unwrap().iter().map(|a| a.action).collect();
    assert_eq!(copy, ["s3:GetObject", "s3:PutObject"]);
    assert_eq!(iam_actions("iam", "CreateRole").unwrap()[0].access, [Access::Write]);
}

#[test]
fn types_follow_the_model() {
    let input: logs::CreateLogGroupInput =
        decode(serde_json::json!({"logGroupName": "g", "logGroupClass": "INFREQUENT_ACCESS", "tags": {"a": "b"}})).unwrap();
    assert_eq!(input.log_group_name, "g");
    assert_eq!(input.log_group_class, Some(logs::LogGroupClass::InfrequentAccess));
    let out = encode(logs::DescribeLogGroupsOutput { next_token: Some("t".into()), ..Default::default() }).unwrap();
    assert_eq!(out, serde_json::json!({"nextToken": "t"}));
    let role: iam::GetRoleInput = decode(serde_json::json!({"RoleName": "r"})).unwrap();
    assert_eq!(role.role_name, "r");
    assert_eq!(logs::LogGroupClass::from("NEW"), logs::LogGroupClass::Unknown("NEW".into()));
}

#[test]
fn timestamps_are_epoch_seconds() {
    let t = Timestamp::from_millis(1_700_000_000_123);
    assert_eq!(serde_json::to_string(&t).unwrap(), "1700000000.123");
    assert_eq!(serde_json::from_str::<Timestamp>("1700000000.123").unwrap(), t);
}

// The IAM requests of operations (codeyard_api::access).


fn ctx() -> RequestContext {
    let mut c = RequestContext::internal("111122223333", "eu-west-1", "http://localhost:4566");
    c.caller_arn = "arn:aws:sts::111122223333:assumed-role/R/s".into();
    c
}

fn resources_of(model: &str, op: &str, input: Value) -> Vec<String> {
    access_requests(model, &ctx(), op, &input).into_iter().map(|r| r.resource).collect()
}

#[test]
fn names_fill_templates_case_insensitively() {
    let r = access_requests("codebuild", &ctx(), "StartBuild", &json!({"projectName": "p"}));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].action, "codebuild:StartBuild");
    assert_eq!(r[0].resource, "arn:aws:codebuild:eu-west-1:111122223333:project/p");
    assert_eq!(r[0].resource_account, None);
    assert_eq!(
        resources_of("logs", "PutLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "logEvents": []})),
        ["arn:aws:logs:eu-west-1:111122223333:log-group:g:log-stream:s"]
    );
    assert_eq!(resources_of("logs", "DescribeLogGroups", json!({})), ["*"]);
}

#[test]
fn lists_give_one_request_each_and_aliases_rename() {
    assert_eq!(
        resources_of("codecommit", "BatchGetRepositories", json!({"repositoryNames": ["a", "b"]})),
        ["arn:aws:codecommit:eu-west-1:111122223333:a", "arn:aws:codecommit:eu-west-1:111122223333:b"]
    );
    assert_eq!(
        resources_of("codebuild", "BatchGetBuilds", json!({"ids": ["p1:0000-1", "arn:aws:codebuild:eu-west-1:111122223333:build/p2:0000-2"]})),
        ["arn:aws:codebuild:eu-west-1:111122223333:project/p1", "arn:aws:codebuild:eu-west-1:111122223333:project/p2"]
    );
    assert_eq!(resources_of("codepipeline", "GetPipeline", json!({"name": "pipe"})), ["arn:aws:codepipeline:eu-west-1:111122223333:pipe"]);
    assert_eq!(
        resources_of("codepipeline", "CreatePipeline", json!({"pipeline": {"name": "pipe", "stages": []}})),
        ["arn:aws:codepipeline:eu-west-1:111122223333:pipe"]
    );
    assert_eq!(resources_of("iam", "GetRole", json!({"RoleName": "r"})), ["arn:aws:iam::111122223333:role/r"]);
    assert_eq!(
        resources_of("iam", "CreateRole", json!({"RoleName": "r", "Path": "/ci/", "AssumeRolePolicyDocument": "{}"})),
        ["arn:aws:iam::111122223333:role/ci/r"]
    );
}

#[test]
fn iam_users_groups_and_the_callers_own_user() {
    assert_eq!(resources_of("iam", "CreateUser", json!({"UserName": "alice", "Path": "/dev/"})), ["arn:aws:iam::111122223333:user/dev/alice"]);
    assert_eq!(resources_of("iam", "AddUserToGroup", json!({"UserName": "alice", "GroupName": "ops"})), ["arn:aws:iam::111122223333:group/ops"]);
    let mut me = ctx();
    me.caller_arn = "arn:aws:iam::111122223333:user/dev/alice".into();
    let r = access_requests("iam", &me, "CreateAccessKey", &json!({}));
    assert_eq!(r[0].resource, "arn:aws:iam::111122223333:user/dev/alice");
}

#[test]
fn events_rules_on_the_default_and_custom_buses() {
    assert_eq!(resources_of("events", "PutRule", json!({"Name": "r"})), ["arn:aws:events:eu-west-1:111122223333:rule/r"]);
    assert_eq!(resources_of("events", "PutRule", json!({"Name": "r", "EventBusName": "default"})), ["arn:aws:events:eu-west-1:111122223333:rule/r"]);
    assert_eq!(resources_of("events", "PutTargets", json!({"Rule": "r", "EventBusName": "b", "Targets": []})), ["arn:aws:events:eu-west-1:111122223333:rule/b/r"]);
    assert_eq!(resources_of("events", "DescribeEventBus", json!({})), ["arn:aws:events:eu-west-1:111122223333:event-bus/default"]);
    assert_eq!(
        resources_of("events", "PutEvents", json!({"Entries": [{"Source": "s"}, {"EventBusName": "b", "Source": "s"}]})),
        ["arn:aws:events:eu-west-1:111122223333:event-bus/b", "arn:aws:events:eu-west-1:111122223333:event-bus/default"]
    );
}

#[test]
fn arn_members_are_the_resource() {
    let arn = "arn:aws:logs:eu-west-1:111122223333:log-group:g";
    assert_eq!(resources_of("logs", "TagResource", json!({"resourceArn": arn, "tags": {"a": "b"}})), [arn]);
    assert_eq!(resources_of("iam", "GetPolicy", json!({"PolicyArn": "arn:aws:iam::111122223333:policy/p"})), ["arn:aws:iam::111122223333:policy/p"]);
    // Another account's role: the request says whose it is.
    let r = access_requests("sts", &ctx(), "AssumeRole", &json!({"RoleArn": "arn:aws:iam::444455556666:role/x", "RoleSessionName": "s"}));
    assert_eq!(r[0].resource, "arn:aws:iam::444455556666:role/x");
    assert_eq!(r[0].resource_account.as_deref(), Some("444455556666"));
    assert_eq!(r[0].context["sts:RoleSessionName"], ["s"]);
    // AttachRolePolicy names a policy ARN, but its resource is the role.
    let r = access_requests("iam", &ctx(), "AttachRolePolicy", &json!({"RoleName": "r", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}));
    assert_eq!(r[0].resource, "arn:aws:iam::111122223333:role/r");
    assert_eq!(r[0].context["iam:PolicyARN"], ["arn:aws:iam::aws:policy/ReadOnlyAccess"]);
}

#[test]
fn unresolved_parts_become_wildcards() {
    assert_eq!(resources_of("ecr", "DescribeRepositories", json!({})), ["arn:aws:ecr:eu-west-1:111122223333:repository/*"]);
    let r = access_requests("ecr", &ctx(), "BatchGetImage", &json!({"registryId": "444455556666", "repositoryName": "app", "imageIds": []}));
    assert_eq!(r[0].resource, "arn:aws:ecr:eu-west-1:444455556666:repository/app");
    assert_eq!(r[0].resource_account.as_deref(), Some("444455556666"));
}

#[test]
fn tags_become_request_condition_keys() {
    let r = access_requests("iam", &ctx(), "CreateRole", &json!({"RoleName": "r", "AssumeRolePolicyDocument": "{}", "Tags": [{"Key": "team", "Value": "ci"}]}));
    assert_eq!(r[0].context["aws:RequestTag/team"], ["ci"]);
    assert_eq!(r[0].context["aws:TagKeys"], ["team"]);
    let r = access_requests("logs", &ctx(), "CreateLogGroup", &json!({"logGroupName": "g", "tags": {"a": "1", "b": "2"}}));
    assert_eq!(r[0].context["aws:TagKeys"], ["a", "b"]);
    let r = access_requests("codebuild", &ctx(), "CreateProject", &json!({"name": "p", "tags": [{"key": "k", "value": "v"}], "environment": {"image": "img"}}));
    assert_eq!(r[0].context["aws:RequestTag/k"], ["v"]);
    assert_eq!(r[0].context["codebuild:environment.image"], ["img"]);
    let r = access_requests("ecr", &ctx(), "UntagResource", &json!({"resourceArn": "arn:aws:ecr:eu-west-1:111122223333:repository/a", "tagKeys": ["x"]}));
    assert_eq!(r[0].context["aws:TagKeys"], ["x"]);
}

#[test]
fn caller_identity_needs_no_permission_and_codes_follow_the_protocol() {
    assert!(access_requests("sts", &ctx(), "GetCallerIdentity", &json!({})).is_empty());
    assert_eq!(denied_code("iam"), "AccessDenied");
    assert_eq!(denied_code("logs"), "AccessDeniedException");
}

#[test]
fn sample_inputs_resolve_for_every_operation_of_every_model() {
    for model in ["iam", "sts", "logs", "codecommit", "codebuild", "codepipeline", "events", "ecr"] {
        for op in codeyard_api::generated::operations(model).unwrap() {
            let input = sample_input(model, op.name);
            for r in access_requests(model, &ctx(), op.name, &input) {
                assert!(!r.resource.contains("${"), "{model}:{}: {}", op.name, r.resource);
            }
        }
    }
}
