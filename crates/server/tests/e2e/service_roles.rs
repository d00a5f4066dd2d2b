//! Every call a service makes for a user through a role, enforced as on AWS: CodePipeline as
//! the pipeline's roleArn, CodeBuild as the project's service role, EventBridge as a target's
//! RoleArn, and iam:PassRole for a caller naming a role. Each scenario runs under the default
//! `--iam enforce` (refused, with AWS's message where a user looks for it) and under
//! `--iam audit` (the same run succeeds).

use crate::common::*;
use aws_sdk_codebuild::types::{ArtifactsType, Build, ProjectArtifacts, ProjectSource, SourceType};
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::*;
use codeyard_core::IamMode;
use serde_json::Value;
use std::time::Duration;

const BUCKET: &str = "sr-artifacts";
const PROJECT: &str = "sr-build";
const BUILDSPEC: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo built > out.txt\nartifacts:\n  files:\n    - out.txt\n";

struct Clients {
    iam: aws_sdk_iam::Client,
    s3: aws_sdk_s3::Client,
    cb: aws_sdk_codebuild::Client,
    cp: aws_sdk_codepipeline::Client,
    ev: aws_sdk_eventbridge::Client,
}

fn clients(conf: &aws_config::SdkConfig) -> Clients {
    Clients {
        iam: aws_sdk_iam::Client::new(conf),
        s3: s3_client_for(conf),
        cb: aws_sdk_codebuild::Client::new(conf),
        cp: aws_sdk_codepipeline::Client::new(conf),
        ev: aws_sdk_eventbridge::Client::new(conf),
    }
}


/// The artifact bucket with the pipeline's source zip, and the CodeBuild project the pipeline
/// builds (CODEPIPELINE source and artifacts) as a role with the usual build permissions.
async fn pipeline_fixtures(c: &Clients) {
    make_bucket(&c.s3, BUCKET).await;
    let zip = zip_of(&[("README.md", "hello\n")]);
    c.s3.put_object().bucket(BUCKET).key("src.zip").body(zip.into()).send().await.unwrap();
    let role = create_service_role(&c.iam, "sr-builder", "codebuild.amazonaws.com", &codebuild_role_policy()).await;
    let source = ProjectSource::builder().r#type(SourceType::Codepipeline).buildspec(BUILDSPEC).build().unwrap();
    create_project(&c.cb, PROJECT, source, ProjectArtifacts::builder().r#type(ArtifactsType::Codepipeline).build().unwrap(), &role).await;
}

fn action(name: &str, category: ActionCategory, provider: &str) -> aws_sdk_codepipeline::types::builders::ActionDeclarationBuilder {
    let id = ActionTypeId::builder().category(category).owner(ActionOwner::Aws).provider(provider).version("1").build().unwrap();
    ActionDeclaration::builder().name(name).action_type_id(id)
}

/// Source (the S3 zip) then Build (the project), acting as `role`.
fn declaration(name: &str, role: &str) -> PipelineDeclaration {
    let source = action("Source", ActionCategory::Source, "S3")
        .output_artifacts(OutputArtifact::builder().name("src").build().unwrap())
        .configuration("S3Bucket", BUCKET)
        .configuration("S3ObjectKey", "src.zip")
        .configuration("PollForSourceChanges", "false")
        .build()
        .unwrap();
    let build = action("Build", ActionCategory::Build, "CodeBuild")
        .input_artifacts(InputArtifact::builder().name("src").build().unwrap())
        .output_artifacts(OutputArtifact::builder().name("out").build().unwrap())
        .configuration("ProjectName", PROJECT)
        .build()
        .unwrap();
    let stage = |n: &str, a: ActionDeclaration| StageDeclaration::builder().name(n).actions(a).build().unwrap();
    PipelineDeclaration::builder()
        .name(name)
        .role_arn(role)
        .artifact_store(ArtifactStore::builder().r#type(ArtifactStoreType::S3).location(BUCKET).build().unwrap())
        .stages(stage("Source", source))
        .stages(stage("Build", build))
        .build()
        .unwrap()
}

/// The executions of `pipeline` once none is in progress.
async fn settled_executions(cp: &aws_sdk_codepipeline::Client, pipeline: &str) -> Vec<PipelineExecutionSummary> {
    wait_for(&format!("{pipeline}'s executions to end"), Duration::from_secs(90), Duration::from_millis(200), || async {
        let out = cp.list_pipeline_executions().pipeline_name(pipeline).send().await.unwrap();
        let list = out.pipeline_execution_summaries().to_vec();
        (!list.is_empty() && list.iter().all(|e| e.status() != Some(&PipelineExecutionStatus::InProgress))).then_some(list)
    })
    .await
}

/// A pipeline whose role may use its artifact bucket but not start the build: the execution
/// CreatePipeline starts ends; returns its status and the Build action's error details.
async fn pipeline_without_start_build(t: &TestServer) -> (PipelineExecutionStatus, Option<ErrorDetails>) {
    let c = clients(&t.sdk_config().await);
    pipeline_fixtures(&c).await;
    let role = create_service_role(&c.iam, "sr-pipeline", "codepipeline.amazonaws.com", &allow_policy(&[(&["s3:*"], &["*"])])).await;
    c.cp.create_pipeline().pipeline(declaration("sr-denied", &role)).send().await.unwrap();
    let executions = settled_executions(&c.cp, "sr-denied").await;
    let state = c.cp.get_pipeline_state().name("sr-denied").send().await.unwrap();
    let build = state.stage_states().iter().find(|s| s.stage_name() == Some("Build")).unwrap();
    let latest = build.action_states()[0].latest_execution().cloned();
    (executions[0].status().unwrap().clone(), latest.and_then(|l| l.error_details().cloned()))
}

/// A build whose role may write its logs but not its artifact bucket; returns the ended build.
async fn build_without_put_object(t: &TestServer) -> Build {
    let c = clients(&t.sdk_config().await);
    make_bucket(&c.s3, "sr-out").await;
    let policy = allow_policy(&[(&["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], &["*"]), (&["s3:GetObject"], &["*"])]);
    let role = create_service_role(&c.iam, "sr-no-put", "codebuild.amazonaws.com", &policy).await;
    let source = ProjectSource::builder().r#type(SourceType::NoSource).buildspec(BUILDSPEC).build().unwrap();
    create_project(&c.cb, "sr-upload", source, ProjectArtifacts::builder().r#type(ArtifactsType::S3).location("sr-out").build().unwrap(), &role).await;
    let id = c.cb.start_build().project_name("sr-upload").send().await.unwrap().build_value().unwrap().id().unwrap().to_string();
    wait_for("the build to end", Duration::from_secs(60), Duration::from_millis(200), || async {
        let out = c.cb.batch_get_builds().ids(&id).send().await.unwrap();
        out.builds().first().filter(|b| b.build_complete()).cloned()
    })
    .await
}

/// CreateProject of `name` (no source, no artifacts) as `role`, to be sent.
fn bare_project(c: &Clients, name: &str, role: &str) -> aws_sdk_codebuild::operation::create_project::builders::CreateProjectFluentBuilder {
    let source = ProjectSource::builder().r#type(SourceType::NoSource).buildspec(BUILDSPEC).build().unwrap();
    let artifacts = ProjectArtifacts::builder().r#type(ArtifactsType::NoArtifacts).build().unwrap();
    c.cb.create_project().name(name).source(source).artifacts(artifacts).environment(codebuild_environment()).service_role(role)
}

/// The rule `rule` matching events of `source`, with `target`; one such event is put and
/// delivered: returns the rule's delivery records (`/_codeyard/events/deliveries`).
async fn deliveries_of_one_event(t: &TestServer, c: &Clients, rule: &str, source: &str, target: aws_sdk_eventbridge::types::Target) -> Value {
    rule_with_targets(&c.ev, rule, &serde_json::json!({"source": [source]}).to_string(), vec![target]).await;
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder().source(source).detail_type("t").detail("{}").build();
    c.ev.put_events().entries(entry).send().await.unwrap();
    events_idle(&t.endpoint).await;
    let url = format!("{}/_codeyard/events/deliveries?rule={rule}", t.endpoint);
    reqwest::get(&url).await.unwrap().json().await.unwrap()
}

/// A rule whose target role may start builds but not the pipeline: after an event matched,
/// returns the rule's delivery records and the executions the event started.
async fn rule_without_start_pipeline(t: &TestServer) -> (Vec<Value>, usize) {
    let c = clients(&t.sdk_config().await);
    pipeline_fixtures(&c).await;
    let role = create_service_role(&c.iam, "sr-pipeline", "codepipeline.amazonaws.com", &codepipeline_role_policy()).await;
    c.cp.create_pipeline().pipeline(declaration("sr-target", &role)).send().await.unwrap();
    settled_executions(&c.cp, "sr-target").await;
    let events_role = create_service_role(&c.iam, "sr-events", "events.amazonaws.com", &allow_policy(&[(&["codebuild:StartBuild"], &["*"])])).await;
    let target = event_target("pipeline", &format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:sr-target"), Some(&events_role));
    let body = deliveries_of_one_event(t, &c, "sr-rule", "sr.test", target).await;
    let executions = settled_executions(&c.cp, "sr-target").await;
    let by_event = executions.iter().filter(|e| e.trigger().and_then(|t| t.trigger_type()) == Some(&TriggerType::CloudWatchEvent)).count();
    (body["deliveries"].as_array().cloned().unwrap_or_default(), by_event)
}

/// A session of a role that may create projects, pipelines and targets but pass no role; each
/// create naming a role answers (error code, message), or ("", "") when it succeeded.
async fn creates_without_pass_role(t: &TestServer) -> Vec<(String, String)> {
    let root = clients(&t.sdk_config().await);
    let build_role = create_service_role(&root.iam, "sr-svc", "codebuild.amazonaws.com", &codebuild_role_policy()).await;
    let pipeline_role = create_service_role(&root.iam, "sr-pipe", "codepipeline.amazonaws.com", &codepipeline_role_policy()).await;
    let events_role = create_service_role(&root.iam, "sr-ev", "events.amazonaws.com", &events_role_policy()).await;
    make_bucket(&root.s3, BUCKET).await;
    let trust = format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole"}}]}}"#);
    root.iam.create_role().role_name("sr-deployer").assume_role_policy_document(trust).send().await.unwrap();
    let policy = allow_policy(&[(&["codebuild:CreateProject", "codepipeline:CreatePipeline", "events:PutRule", "events:PutTargets"], &["*"])]);
    root.iam.put_role_policy().role_name("sr-deployer").policy_name("deploy").policy_document(policy).send().await.unwrap();
    let sts = aws_sdk_sts::Client::new(&t.sdk_config().await);
    let session = sts.assume_role().role_arn(format!("arn:aws:iam::{ACCOUNT}:role/sr-deployer")).role_session_name("ci").send().await.unwrap();
    let k = session.credentials().unwrap();
    let conf = sdk_config_for_session(&t.endpoint, k.access_key_id(), k.secret_access_key(), k.session_token()).await;
    let c = clients(&conf);
    let answer = |r: std::result::Result<(), (String, String)>| r.err().unwrap_or_default();
    let project = bare_project(&c, "sr-passed", &build_role)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| (e.code().unwrap_or("").to_string(), e.message().unwrap_or("").to_string()));
    let pipeline = c
        .cp
        .create_pipeline()
        .pipeline(declaration("sr-passed", &pipeline_role))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| (e.code().unwrap_or("").to_string(), e.message().unwrap_or("").to_string()));
    c.ev.put_rule().name("sr-passed").event_pattern(r#"{"source":["sr.test"]}"#).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("t").arn(format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:sr-passed")).role_arn(events_role).build().unwrap();
    let targets = c
        .ev
        .put_targets()
        .rule("sr-passed")
        .targets(target)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| (e.code().unwrap_or("").to_string(), e.message().unwrap_or("").to_string()));
    vec![answer(project), answer(pipeline), answer(targets)]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_role_without_start_build_fails_the_build_action() {
    let t = TestServer::start().await;
    let (status, error) = pipeline_without_start_build(&t).await;
    assert_eq!(status, PipelineExecutionStatus::Failed);
    let error = error.expect("the Build action's error details");
    assert_eq!(error.code(), Some("JobFailed"));
    let message = error.message().unwrap();
    assert!(message.starts_with("Error calling startBuild: User: arn:aws:sts::000000000000:assumed-role/sr-pipeline/"), "{message}");
    assert!(
        message.contains(&format!("is not authorized to perform: codebuild:StartBuild on resource: arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{PROJECT}")),
        "{message}"
    );
    let cb = aws_sdk_codebuild::Client::new(&t.sdk_config().await);
    assert!(cb.list_builds_for_project().project_name(PROJECT).send().await.unwrap().ids().is_empty(), "no build started");
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_role_without_put_object_fails_in_upload_artifacts() {
    let t = TestServer::start().await;
    let b = build_without_put_object(&t).await;
    assert_eq!(b.build_status().map(|s| s.as_str()), Some("FAILED"));
    let phase = |name: &str| b.phases().iter().find(|p| p.phase_type().map(|t| t.as_str()) == Some(name)).unwrap().clone();
    assert_eq!(phase("BUILD").phase_status().map(|s| s.as_str()), Some("SUCCEEDED"));
    let upload = phase("UPLOAD_ARTIFACTS");
    assert_eq!(upload.phase_status().map(|s| s.as_str()), Some("FAILED"));
    let context = &upload.contexts()[0];
    assert_eq!(context.status_code(), Some("CLIENT_ERROR"));
    let message = context.message().unwrap();
    assert!(message.contains("AccessDenied"), "{message}");
    assert!(message.contains("assumed-role/sr-no-put/AWSCodeBuild-"), "{message}");
    assert!(message.contains("is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::sr-out/"), "{message}");
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_role_without_start_pipeline_execution_starts_nothing_and_says_why() {
    let t = TestServer::start().await;
    let (deliveries, started) = rule_without_start_pipeline(&t).await;
    assert_eq!(started, 0, "the event started no execution");
    let failed = deliveries.iter().find(|d| d["status"] == "failed").unwrap_or_else(|| panic!("a failed delivery: {deliveries:?}"));
    let detail = failed["detail"].as_str().unwrap();
    assert!(detail.starts_with("AccessDeniedException: User: arn:aws:sts::000000000000:assumed-role/sr-events/"), "{detail}");
    assert!(
        detail.contains(&format!("is not authorized to perform: codepipeline:StartPipelineExecution on resource: arn:aws:codepipeline:{REGION}:{ACCOUNT}:sr-target")),
        "{detail}"
    );
    assert_eq!(deliveries.len(), 1, "a refusal is not retried: {deliveries:?}");
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn naming_a_role_needs_iam_pass_role() {
    let t = TestServer::start().await;
    let answers = creates_without_pass_role(&t).await;
    for ((code, message), role) in answers.iter().zip(["sr-svc", "sr-pipe", "sr-ev"]) {
        assert_eq!(code, "AccessDeniedException", "{message}");
        assert!(message.starts_with("User: arn:aws:sts::000000000000:assumed-role/sr-deployer/ci is not authorized to perform: iam:PassRole"), "{message}");
        assert!(message.contains(&format!("arn:aws:iam::{ACCOUNT}:role/{role}")), "{message}");
    }
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_lets_the_same_runs_succeed() {
    let audit = |o: &mut codeyard_server::Options| o.iam = IamMode::Audit;
    let t = TestServer::start_with(audit).await;
    let (status, error) = pipeline_without_start_build(&t).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{error:?}");
    let t = TestServer::start_with(audit).await;
    let b = build_without_put_object(&t).await;
    assert_eq!(b.build_status().map(|s| s.as_str()), Some("SUCCEEDED"), "{:?}", b.phases());
    let t = TestServer::start_with(audit).await;
    let (deliveries, started) = rule_without_start_pipeline(&t).await;
    assert_eq!(started, 1, "{deliveries:?}");
    let t = TestServer::start_with(audit).await;
    let answers = creates_without_pass_role(&t).await;
    assert!(answers.iter().all(|(code, _)| code.is_empty()), "{answers:?}");
    t.assert_no_model_violations();
}

/// Starts a build of a fresh project (`source`, `environment`) acting as a role with `policy`;
/// returns the ended build.
async fn build_as(t: &TestServer, name: &str, policy: &str, source: ProjectSource, environment: aws_sdk_codebuild::types::ProjectEnvironment) -> Build {
    let c = clients(&t.sdk_config().await);
    let role = create_service_role(&c.iam, name, "codebuild.amazonaws.com", policy).await;
    c.cb.create_project()
        .name(name)
        .source(source)
        .artifacts(ProjectArtifacts::builder().r#type(ArtifactsType::NoArtifacts).build().unwrap())
        .environment(environment)
        .service_role(role)
        .send()
        .await
        .unwrap();
    let id = c.cb.start_build().project_name(name).send().await.unwrap().build_value().unwrap().id().unwrap().to_string();
    wait_for("the build to end", Duration::from_secs(60), Duration::from_millis(200), || async {
        let out = c.cb.batch_get_builds().ids(&id).send().await.unwrap();
        out.builds().first().filter(|b| b.build_complete()).cloned()
    })
    .await
}

/// The failed phase of a build: (phase, context code, context message).
fn failed_phase(b: &Build) -> (String, String, String) {
    let p = b.phases().iter().find(|p| p.phase_status().is_some_and(|s| s.as_str() != "SUCCEEDED")).expect("a failed phase");
    let c = &p.contexts()[0];
    (p.phase_type().unwrap().as_str().to_string(), c.status_code().unwrap().to_string(), c.message().unwrap().to_string())
}

/// A role that may not create its log stream fails PROVISIONING, one that may not read its S3
/// source fails DOWNLOAD_SOURCE, one that may not pull its ECR image (SERVICE_ROLE pull
/// credentials) fails PROVISIONING, each with the role's session in the message.
#[tokio::test(flavor = "multi_thread")]
async fn builds_fail_where_aws_fails_them() {
    let t = TestServer::start().await;
    let no_source = ProjectSource::builder().r#type(SourceType::NoSource).buildspec(BUILDSPEC).build().unwrap();
    let b = build_as(&t, "sr-no-logs", &allow_policy(&[(&["s3:*"], &["*"])]), no_source.clone(), codebuild_environment()).await;
    let (phase, code, message) = failed_phase(&b);
    assert_eq!((phase.as_str(), code.as_str()), ("PROVISIONING", "ACCESS_DENIED"), "{message}");
    assert!(message.starts_with(&format!("Service role arn:aws:iam::{ACCOUNT}:role/sr-no-logs does not allow AWS CodeBuild to create Amazon CloudWatch Logs log streams for build")), "{message}");
    assert!(message.contains("is not authorized to perform: logs:CreateLogGroup"), "the group does not exist yet: {message}");

    let s3 = s3_client(&t.endpoint).await;
    make_bucket(&s3, "sr-src").await;
    s3.put_object().bucket("sr-src").key("src.zip").body(zip_of(&[("buildspec.yml", BUILDSPEC)]).into()).send().await.unwrap();
    let logs_only = allow_policy(&[(&["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], &["*"])]);
    let s3_source = ProjectSource::builder().r#type(SourceType::S3).location("sr-src/src.zip").build().unwrap();
    let b = build_as(&t, "sr-no-get", &logs_only, s3_source, codebuild_environment()).await;
    let (phase, code, message) = failed_phase(&b);
    assert_eq!((phase.as_str(), code.as_str()), ("DOWNLOAD_SOURCE", "CLIENT_ERROR"), "{message}");
    assert!(message.starts_with("AccessDenied: "), "{message}");
    assert!(message.contains("assumed-role/sr-no-get/AWSCodeBuild-") && message.contains("s3:GetObject"), "{message}");
    assert!(message.ends_with("for primary source and source version arn:aws:s3:::sr-src/src.zip"), "{message}");

    // An image of this server's ECR pulled with SERVICE_ROLE credentials is the role's pull.
    let image = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/sr-tools:1");
    let mut ecr_image = codebuild_environment();
    ecr_image.image = image.clone();
    ecr_image.image_pull_credentials_type = Some(aws_sdk_codebuild::types::ImagePullCredentialsType::ServiceRole);
    let b = build_as(&t, "sr-no-pull", &logs_only, no_source, ecr_image).await;
    let (phase, code, message) = failed_phase(&b);
    assert_eq!((phase.as_str(), code.as_str()), ("PROVISIONING", "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE"), "{message}");
    assert!(message.starts_with(&format!("Unable to pull customer's container image. CannotPullContainerError: Error response from daemon: pull access denied for {image}")), "{message}");
    assert!(message.contains("is not authorized to perform: ecr:GetAuthorizationToken"), "{message}");
    t.assert_no_model_violations();
}

/// CodeBuild and CodePipeline refuse a role whose trust policy does not name them.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_the_service_may_not_assume_is_refused() {
    let (_t, c) = TestServer::with(clients).await;
    let role = create_service_role(&c.iam, "sr-ec2", "ec2.amazonaws.com", &codebuild_role_policy()).await;
    make_bucket(&c.s3, BUCKET).await;
    let e = bare_project(&c, "sr-untrusted", &role).send().await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidInputException"));
    assert_eq!(e.message(), Some(format!("CodeBuild is not authorized to perform: sts:AssumeRole on {role}").as_str()));
    let e = c.cp.create_pipeline().pipeline(declaration("sr-untrusted", &role)).send().await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidStructureException"));
    assert_eq!(e.message(), Some(format!("CodePipeline is not authorized to perform AssumeRole on role {role}").as_str()));
}

/// EventBridge invokes a target through a role only when the role trusts events.amazonaws.com:
/// otherwise nothing is invoked and the delivery record says why.
#[tokio::test(flavor = "multi_thread")]
async fn eventbridge_needs_a_role_that_trusts_it() {
    let (t, c) = TestServer::with(clients).await;
    let role = create_service_role(&c.iam, "sr-untrusting", "ec2.amazonaws.com", &events_role_policy()).await;
    let target = event_target("pipeline", &format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:anything"), Some(&role));
    let body = deliveries_of_one_event(&t, &c, "sr-trust", "sr.trust", target).await;
    let d = &body["deliveries"][0];
    assert_eq!(d["status"], "failed", "{body}");
    assert_eq!(d["detail"].as_str().unwrap(), format!("AccessDenied: User: events.amazonaws.com is not authorized to perform: sts:AssumeRole on resource: {role}"));
}

/// What a build does with the credentials it is handed is the role's to allow: a build whose
/// role may `git pull` but not `git push` clones its repository and has its push refused
/// (403, the build fails in BUILD); with codecommit:GitPush the same buildspec pushes.
#[tokio::test(flavor = "multi_thread")]
async fn a_builds_git_push_needs_the_roles_git_push() {
    let t = TestServer::start().await;
    let cc = aws_sdk_codecommit::Client::new(&t.sdk_config().await);
    cc.create_repository().repository_name("sr-pushed").send().await.unwrap();
    let url = format!("{}/v1/repos/sr-pushed", t.endpoint);
    let buildspec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - git config --global credential.helper '!aws codecommit credential-helper --ignore-host-check $@'\n      - git config --global credential.UseHttpPath true\n      - git clone -q {url} r\n      - cd r && git -c user.name=b -c user.email=b@example.com commit -q --allow-empty -m built && git push -q origin HEAD:refs/heads/main\n"
    );
    let source = ProjectSource::builder().r#type(SourceType::NoSource).buildspec(&buildspec).build().unwrap();
    let logs = (&["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"][..], &["*"][..]);
    let repo = format!("arn:aws:codecommit:{REGION}:{ACCOUNT}:sr-pushed");

    let pull_only = allow_policy(&[logs, (&["codecommit:GitPull"], &[&repo])]);
    let b = build_as(&t, "sr-pull-only", &pull_only, source.clone(), codebuild_environment()).await;
    let (phase, code, message) = failed_phase(&b);
    assert_eq!((phase.as_str(), code.as_str()), ("BUILD", "COMMAND_EXECUTION_ERROR"), "{message}");
    assert!(cc.get_branch().repository_name("sr-pushed").branch_name("main").send().await.is_err(), "nothing was pushed");

    let pull_and_push = allow_policy(&[logs, (&["codecommit:GitPull", "codecommit:GitPush"], &[&repo])]);
    let b = build_as(&t, "sr-pull-push", &pull_and_push, source, codebuild_environment()).await;
    assert_eq!(b.build_status().map(|s| s.as_str()), Some("SUCCEEDED"), "{:#?}", b.phases());
    assert!(cc.get_branch().repository_name("sr-pushed").branch_name("main").send().await.is_ok(), "the push landed");
    t.assert_no_model_violations();
}

/// An artifact store with a customer managed KMS key: the pipeline's role writes the source
/// artifact under it (kms:GenerateDataKey), the build's role must decrypt it to download its
/// source; with kms:Decrypt (and GenerateDataKey for its output) the same pipeline succeeds and
/// its output artifact is SSE-KMS under the store's key.
#[tokio::test(flavor = "multi_thread")]
async fn an_artifact_store_key_binds_the_pipeline_and_build_roles() {
    let t = TestServer::start().await;
    let c = clients(&t.sdk_config().await);
    pipeline_fixtures(&c).await;
    let kms = aws_sdk_kms::Client::new(&t.sdk_config().await);
    let key = kms.create_key().send().await.unwrap().key_metadata().unwrap().arn().unwrap().to_string();
    let kms_policy = allow_policy(&[(&["kms:GenerateDataKey", "kms:Decrypt"], &[key.as_str()])]);
    let role = create_service_role(&c.iam, "sr-kms-pipeline", "codepipeline.amazonaws.com", &codepipeline_role_policy()).await;
    c.iam.put_role_policy().role_name("sr-kms-pipeline").policy_name("kms").policy_document(&kms_policy).send().await.unwrap();
    let mut declaration = declaration("sr-kms", &role);
    let store_key = EncryptionKey::builder().id(&key).r#type(EncryptionKeyType::Kms).build().unwrap();
    declaration.artifact_store = Some(ArtifactStore::builder().r#type(ArtifactStoreType::S3).location(BUCKET).encryption_key(store_key).build().unwrap());
    c.cp.create_pipeline().pipeline(declaration).send().await.unwrap();
    let executions = settled_executions(&c.cp, "sr-kms").await;
    assert_eq!(executions[0].status(), Some(&PipelineExecutionStatus::Failed));
    let ids = c.cb.list_builds_for_project().project_name(PROJECT).send().await.unwrap().ids().to_vec();
    let build = c.cb.batch_get_builds().ids(&ids[0]).send().await.unwrap().builds()[0].clone();
    let (phase, code, message) = failed_phase(&build);
    assert_eq!((phase.as_str(), code.as_str()), ("DOWNLOAD_SOURCE", "CLIENT_ERROR"), "{message}");
    assert!(message.contains("assumed-role/sr-builder/AWSCodeBuild-") && message.contains("kms:Decrypt"), "{message}");

    c.iam.put_role_policy().role_name("sr-builder").policy_name("kms").policy_document(&kms_policy).send().await.unwrap();
    let id = c.cp.start_pipeline_execution().name("sr-kms").send().await.unwrap().pipeline_execution_id().unwrap().to_string();
    let executions = settled_executions(&c.cp, "sr-kms").await;
    let run = executions.iter().find(|e| e.pipeline_execution_id() == Some(id.as_str())).unwrap();
    assert_eq!(run.status(), Some(&PipelineExecutionStatus::Succeeded));
    let actions = c.cp.list_action_executions().pipeline_name("sr-kms").filter(ActionExecutionFilter::builder().pipeline_execution_id(&id).build()).send().await.unwrap();
    let build_action = actions.action_execution_details().iter().find(|a| a.action_name() == Some("Build")).unwrap();
    let output = build_action.output().unwrap().output_artifacts()[0].s3_location().unwrap().clone();
    let head = c.s3.head_object().bucket(output.bucket().unwrap()).key(output.key().unwrap()).send().await.unwrap();
    assert_eq!(head.server_side_encryption().map(|s| s.as_str()), Some("aws:kms"));
    assert_eq!(head.ssekms_key_id(), Some(key.as_str()));
    t.assert_no_model_violations();
}
