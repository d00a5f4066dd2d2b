//! IAM at the edges (`--iam enforce`, the default): on every surface a role session that lacks
//! the permission is refused with AWS's error and message and nothing changes, and one that has
//! it succeeds: awsJson (CloudWatch Logs), awsQuery (IAM), S3 (a bucket policy's Deny over the
//! role's Allow), git (GitPull-only, and a `codecommit:References` condition), the registry
//! (skopeo push with a pull-only role), and the hub's S3 and CodeCommit for services acting
//! through a role.

use crate::common::*;
use crate::ecr::{OCI_LAYOUT, sh};

fn denial_message(err: &impl aws_sdk_s3::error::ProvideErrorMetadata) -> String {
    err.message().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_json_calls_need_the_action_on_the_resource() {
    let t = TestServer::start().await;
    let reader = RoleSession::start(&t, "log-reader", &allow_policy(&[(&["logs:DescribeLogGroups"], &["*"])])).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&reader.conf);
    let err = logs.create_log_group().log_group_name("app").send().await.unwrap_err().into_service_error();
    assert_eq!(error_code(&err), "AccessDeniedException");
    let resource = format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:app");
    assert_eq!(
        denial_message(&err),
        format!("User: {} is not authorized to perform: logs:CreateLogGroup on resource: {resource} because no identity-based policy allows the logs:CreateLogGroup action", reader.arn)
    );
    // Nothing was created; what the role may do, it does.
    let groups = logs.describe_log_groups().send().await.unwrap();
    assert!(groups.log_groups().is_empty());

    let writer = RoleSession::start(&t, "log-writer", &allow_policy(&[(&["logs:CreateLogGroup"], &[&resource])])).await;
    aws_sdk_cloudwatchlogs::Client::new(&writer.conf).create_log_group().log_group_name("app").send().await.unwrap();
    let other = aws_sdk_cloudwatchlogs::Client::new(&writer.conf).create_log_group().log_group_name("other").send().await.unwrap_err();
    assert_eq!(error_code(&other.into_service_error()), "AccessDeniedException", "the policy names one log group");
    assert_eq!(logs.describe_log_groups().send().await.unwrap().log_groups().len(), 1);
    // CodeBuild (not on a generated trait) resolves its resources the same way.
    let cb = aws_sdk_codebuild::Client::new(&reader.conf);
    let err = cb.batch_get_projects().names("p").send().await.unwrap_err().into_service_error();
    assert_eq!(error_code(&err), "AccessDeniedException");
    assert!(denial_message(&err).contains(&format!("codebuild:BatchGetProjects on resource: arn:aws:codebuild:{REGION}:{ACCOUNT}:project/p")), "{}", denial_message(&err));
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_query_create_role_needs_iam_create_role() {
    let t = TestServer::start().await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let viewer = RoleSession::start(&t, "viewer", &allow_policy(&[(&["iam:GetRole"], &["*"])])).await;
    let iam = aws_sdk_iam::Client::new(&viewer.conf);
    let err = iam.create_role().role_name("made").assume_role_policy_document(trust).send().await.unwrap_err().into_service_error();
    assert_eq!(error_code(&err), "AccessDenied");
    assert!(
        denial_message(&err).starts_with(&format!("User: {} is not authorized to perform: iam:CreateRole on resource: arn:aws:iam::{ACCOUNT}:role/made", viewer.arn)),
        "{}",
        denial_message(&err)
    );
    let root = aws_sdk_iam::Client::new(&t.sdk_config().await);
    let missing = root.get_role().role_name("made").send().await.unwrap_err().into_service_error();
    assert_eq!(error_code(&missing), "NoSuchEntity", "a refused CreateRole creates nothing");
    // The same CLI call as a session whose role may create roles.
    let admin = RoleSession::start(&t, "role-admin", &allow_policy(&[(&["iam:CreateRole"], &["*"])])).await;
    let (ok, _, stderr) =
        aws_cli_as(&t.endpoint, &admin.key, &admin.secret, Some(&admin.token), &["iam", "create-role", "--role-name", "made", "--assume-role-policy-document", trust]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = aws_cli_as(&t.endpoint, &viewer.key, &viewer.secret, Some(&viewer.token), &["iam", "delete-role", "--role-name", "made"]);
    assert!(!ok && stderr.contains("AccessDenied") && stderr.contains("iam:DeleteRole"), "{stderr}");
    root.get_role().role_name("made").send().await.unwrap();
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_bucket_policy_deny_overrides_the_roles_allow() {
    let t = TestServer::start().await;
    let root = s3_client(&t.endpoint).await;
    make_bucket(&root, "guarded").await;
    let writer = RoleSession::start(&t, "s3-writer", &allow_policy(&[(&["s3:*"], &["arn:aws:s3:::guarded", "arn:aws:s3:::guarded/*"])])).await;
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": {"AWS": writer.role_arn}, "Action": "s3:PutObject", "Resource": "arn:aws:s3:::guarded/locked/*"}]});
    root.put_bucket_policy().bucket("guarded").policy(policy.to_string()).send().await.unwrap();

    let s3 = s3_client_for(&writer.conf);
    s3.put_object().bucket("guarded").key("open/a").body(b"a".to_vec().into()).send().await.unwrap();
    let err = s3.put_object().bucket("guarded").key("locked/b").body(b"b".to_vec().into()).send().await.unwrap_err().into_service_error();
    assert_eq!(error_code(&err), "AccessDenied");
    assert_eq!(
        denial_message(&err),
        format!("User: {} is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::guarded/locked/b with an explicit deny in a resource-based policy", writer.arn)
    );
    let head = root.head_object().bucket("guarded").key("locked/b").send().await.unwrap_err();
    assert_eq!(head.raw_response().map(|r| r.status().as_u16()), Some(404), "the refused PUT wrote nothing");
    let got = s3.get_object().bucket("guarded").key("open/a").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"a");
    let listed = s3.list_objects_v2().bucket("guarded").prefix("open/").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(1));

    // A role that may only write cannot read, list or delete.
    let put_only = RoleSession::start(&t, "s3-put-only", &allow_policy(&[(&["s3:PutObject"], &["arn:aws:s3:::guarded/*"])])).await;
    let s3 = s3_client_for(&put_only.conf);
    s3.put_object().bucket("guarded").key("open/c").body(b"c".to_vec().into()).send().await.unwrap();
    let err = s3.get_object().bucket("guarded").key("open/a").send().await.unwrap_err().into_service_error();
    assert_eq!(error_code(&err), "AccessDenied");
    let err = s3.list_objects_v2().bucket("guarded").send().await.unwrap_err().into_service_error();
    assert_eq!(error_code(&err), "AccessDenied");
    let err = s3.delete_object().bucket("guarded").key("open/a").send().await.unwrap_err().into_service_error();
    assert_eq!(error_code(&err), "AccessDenied");
    // A copy reads its source: s3:GetObject on it, which this role lacks.
    let err = s3.copy_object().bucket("guarded").key("open/copy").copy_source("guarded/open/a").send().await.unwrap_err().into_service_error();
    assert!(denial_message(&err).contains("s3:GetObject on resource: arn:aws:s3:::guarded/open/a"), "{}", denial_message(&err));
    // DeleteObjects: each key on its own, a denied one reported in the result.
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let batch = |keys: &[&str]| Delete::builder().set_objects(Some(keys.iter().map(|k| ObjectIdentifier::builder().key(*k).build().unwrap()).collect())).build().unwrap();
    let out = s3.delete_objects().bucket("guarded").delete(batch(&["open/a"])).send().await.unwrap();
    assert_eq!(out.errors().iter().map(|e| (e.key().unwrap(), e.code().unwrap())).collect::<Vec<_>>(), [("open/a", "AccessDenied")]);
    root.head_object().bucket("guarded").key("open/a").send().await.unwrap();
    let out = s3_client_for(&writer.conf).delete_objects().bucket("guarded").delete(batch(&["open/c"])).send().await.unwrap();
    assert!(out.errors().is_empty() && out.deleted().len() == 1, "{out:?}");
    t.assert_no_model_violations();
}

/// A repository with one commit on main, pushed as root; returns the work tree.
async fn repository_with_main(t: &TestServer, name: &str) -> tempfile::TempDir {
    let cc = aws_sdk_codecommit::Client::new(&t.sdk_config().await);
    cc.create_repository().repository_name(name).send().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    git(w, &["init", "-q"]);
    std::fs::write(w.join("README"), "one\n").unwrap();
    git(w, &["add", "."]);
    git(w, &["commit", "-qm", "one"]);
    git(w, &["push", "-q", &format!("{}/v1/repos/{name}", t.endpoint), "HEAD:refs/heads/main"]);
    work
}

fn branch_head(t: &TestServer, work: &std::path::Path, repo: &str, branch: &str) -> String {
    git(work, &["ls-remote", &format!("{}/v1/repos/{repo}", t.endpoint), &format!("refs/heads/{branch}")])
}

#[tokio::test(flavor = "multi_thread")]
async fn git_push_needs_git_push_and_honours_the_references_condition() {
    let t = TestServer::start().await;
    let work = repository_with_main(&t, "guarded").await;
    let url = format!("{}/v1/repos/guarded", t.endpoint);
    let before = branch_head(&t, work.path(), "guarded", "main");

    // GitPull only: clone works, push is refused with 403 and moves nothing.
    let puller = RoleSession::start(&t, "git-puller", &allow_policy(&[(&["codecommit:GitPull"], &["*"])])).await;
    let clone = tempfile::tempdir().unwrap();
    let mut c = puller.git_command(clone.path());
    c.args(["clone", "-q", &url, "tree"]);
    run_ok(c);
    let tree = clone.path().join("tree");
    std::fs::write(tree.join("README"), "two\n").unwrap();
    run_ok({
        let mut c = puller.git_command(&tree);
        c.args(["commit", "-qam", "two"]);
        c
    });
    let mut push = puller.git_command(&tree);
    push.args(["push", "-q", "origin", "HEAD:refs/heads/main"]);
    let out = push.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("403"), "{stderr}");
    assert_eq!(branch_head(&t, work.path(), "guarded", "main"), before);

    // GitPush, except to main (AWS's documented policy for protecting a branch).
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["codecommit:GitPull", "codecommit:GitPush", "codecommit:GetBranch", "codecommit:PutFile"], "Resource": "*"},
        {"Effect": "Deny", "Action": ["codecommit:GitPush", "codecommit:PutFile"], "Resource": format!("arn:aws:codecommit:{REGION}:{ACCOUNT}:guarded"),
         "Condition": {"StringEqualsIfExists": {"codecommit:References": ["refs/heads/main"]}, "Null": {"codecommit:References": "false"}}}]});
    let dev = RoleSession::start(&t, "git-dev", &policy.to_string()).await;
    let mut push = dev.git_command(&tree);
    push.args(["push", "-q", "origin", "HEAD:refs/heads/main"]);
    let out = push.output().unwrap();
    assert!(!out.status.success(), "a push to main is denied");
    assert_eq!(branch_head(&t, work.path(), "guarded", "main"), before);
    let mut push = dev.git_command(&tree);
    push.args(["push", "-q", "origin", "HEAD:refs/heads/feature"]);
    run_ok(push);
    assert!(!branch_head(&t, work.path(), "guarded", "feature").is_empty());
    // The API's branch-moving calls carry the same condition key.
    let cc = aws_sdk_codecommit::Client::new(&dev.conf);
    let feature = cc.get_branch().repository_name("guarded").branch_name("feature").send().await.unwrap();
    let parent = feature.branch().unwrap().commit_id().unwrap().to_string();
    let put = |branch: &str, parent: &str| {
        cc.put_file()
            .repository_name("guarded")
            .branch_name(branch)
            .file_path("api.txt")
            .file_content(aws_sdk_codecommit::primitives::Blob::new("x"))
            .parent_commit_id(parent)
            .send()
    };
    put("feature", &parent).await.unwrap();
    let main_head = before.split_whitespace().next().unwrap().to_string();
    let err = put("main", &main_head).await.unwrap_err().into_service_error();
    assert_eq!(error_code(&err), "AccessDeniedException");
    assert!(denial_message(&err).contains("codecommit:PutFile"), "{}", denial_message(&err));
    assert_eq!(branch_head(&t, work.path(), "guarded", "main"), before);
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_push_needs_the_push_actions() {
    // Under --auth enforce the registry challenges, so tools send their token (in open mode a
    // tool that sends none is served as by a local registry).
    let t = TestServer::enforcing("test", "test").await;
    let ecr_root = aws_sdk_ecr::Client::new(&t.sdk_config().await);
    ecr_root.create_repository().repository_name("app").send().await.unwrap();
    let pull = ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"];
    let push = ["ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"];
    let puller = RoleSession::start(&t, "ecr-puller", &allow_policy(&[(&pull, &["*"])])).await;
    let pusher = RoleSession::start(&t, "ecr-pusher", &allow_policy(&[(&pull, &["*"]), (&push, &["*"])])).await;
    let login = |s: &RoleSession| {
        let conf = s.conf.clone();
        async move {
            let out = aws_sdk_ecr::Client::new(&conf).get_authorization_token().send().await.unwrap();
            crate::ecr::base64_decode(out.authorization_data()[0].authorization_token().unwrap())
        }
    };
    let (pull_creds, push_creds) = (login(&puller).await, login(&pusher).await);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    sh(&t, w, OCI_LAYOUT);

    let refused = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("skopeo copy -q --dest-tls-verify=false --dest-creds '{pull_creds}' oci:layout:v1 docker://{}/app:denied", crate::ecr::registry(&t)))
        .current_dir(w)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("denied"), "{stderr}");
    let images = ecr_root.list_images().repository_name("app").send().await.unwrap();
    assert!(images.image_ids().is_empty(), "a refused push stores no image");

    sh(&t, w, &format!("skopeo copy -q --dest-tls-verify=false --dest-creds '{push_creds}' oci:layout:v1 docker://$REG/app:v1"));
    sh(&t, w, &format!("skopeo copy -q --src-tls-verify=false --src-creds '{pull_creds}' docker://$REG/app:v1 oci:pulled:v1"));
    // The registry's error body, as ECR's.
    let resp = reqwest::Client::new()
        .put(format!("{}/v2/app/manifests/v2", t.endpoint))
        .basic_auth("AWS", pull_creds.strip_prefix("AWS:"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("is not authorized to perform: ecr:PutImage"), "{body}");
}

/// The hub's S3 and CodeCommit authorize the context they are handed: a service acting through
/// a role gets the role's permissions, with AWS's message.
#[tokio::test(flavor = "multi_thread")]
async fn hub_calls_act_as_the_role_they_are_given() {
    let t = TestServer::start().await;
    let root = s3_client(&t.endpoint).await;
    make_bucket(&root, "artifacts").await;
    root.put_object().bucket("artifacts").key("in.zip").body(b"zip".to_vec().into()).send().await.unwrap();
    let _work = repository_with_main(&t, "src").await;
    let iam = aws_sdk_iam::Client::new(&t.sdk_config().await);
    let reader = create_service_role(&iam, "reads-artifacts", "codepipeline.amazonaws.com", &allow_policy(&[(&["s3:GetObject"], &["arn:aws:s3:::artifacts/*"])])).await;
    let platform = &t.server.as_ref().unwrap().platform;
    let ctx = platform.internal_context(ACCOUNT, REGION).acting_as_role(&reader, "pipeline");
    let objects = platform.hub.objects().unwrap();
    let dir = tempfile::tempdir().unwrap();
    objects.get_object_to_file(&ctx, "artifacts", "in.zip", None, &dir.path().join("in.zip")).await.unwrap();
    assert!(objects.head_object(&ctx, "artifacts", "in.zip", None).await.unwrap().is_some(), "HeadObject needs s3:GetObject");
    let err = objects.put_object_file(&ctx, "artifacts", "out.zip", &dir.path().join("in.zip"), Default::default()).await.unwrap_err();
    assert_eq!((err.status, err.code.as_str()), (403, "AccessDenied"));
    assert!(err.message.contains("assumed-role/reads-artifacts/pipeline is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::artifacts/out.zip"), "{}", err.message);
    let err = objects.bucket_exists(&ctx, "artifacts").await.unwrap_err();
    assert!(err.message.contains("s3:ListBucket"), "{}", err.message);

    let git = platform.hub.git().unwrap();
    let err = git.resolve_branch(&ctx, "src", "main").await.unwrap_err();
    assert_eq!(err.code, "AccessDeniedException");
    assert!(err.message.contains(&format!("codecommit:GetBranch on resource: arn:aws:codecommit:{REGION}:{ACCOUNT}:src")), "{}", err.message);
    let puller = create_service_role(&iam, "pulls-source", "codebuild.amazonaws.com", &allow_policy(&[(&["codecommit:GitPull", "codecommit:GetBranch"], &["*"])])).await;
    let ctx = platform.internal_context(ACCOUNT, REGION).acting_as_role(&puller, "build");
    git.repository(&ctx, "src").await.unwrap();
    let head = git.resolve_branch(&ctx, "src", "main").await.unwrap();
    let err = git.export_zip(&ctx, "src", &head, &dir.path().join("src.zip")).await.unwrap_err();
    assert!(err.message.contains("codecommit:UploadArchive"), "{}", err.message);
    t.assert_no_model_violations();
}
