//! CodeBuild end to end: projects through the SDK, the CLI and Terraform; builds that really
//! run buildspecs (the fixture suite in `codebuild_fixtures/`), sources from S3 and CodeCommit,
//! artifacts in S3, logs in CloudWatch Logs, stop, timeout, restart, queueing, reports, events,
//! and the pipeline build runner.

use crate::common::*;

use aws_sdk_codebuild::types::{
    ArtifactPackaging, ArtifactsType, Build, ProjectArtifacts, ProjectSource, SourceType, StatusType,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) type Cb = aws_sdk_codebuild::Client;

/// The suites' project environment (the name other suites import from here).
pub(crate) use crate::common::codebuild_environment as environment;

pub(crate) fn no_source(buildspec: &str) -> ProjectSource {
    ProjectSource::builder().r#type(SourceType::NoSource).buildspec(buildspec).build().unwrap()
}

fn s3_zip_artifacts(bucket: &str, name: &str, id: Option<&str>) -> ProjectArtifacts {
    let mut b = ProjectArtifacts::builder().r#type(ArtifactsType::S3).location(bucket).name(name).packaging(ArtifactPackaging::Zip);
    if let Some(id) = id {
        b = b.artifact_identifier(id);
    }
    b.build().unwrap()
}

/// The CodeBuild service role `name` with the permissions the suite's builds need.
pub(crate) async fn build_role(conf: &aws_config::SdkConfig, name: &str) -> String {
    create_service_role(&aws_sdk_iam::Client::new(conf), name, "codebuild.amazonaws.com", &codebuild_role_policy()).await
}

pub(crate) fn no_artifacts() -> ProjectArtifacts {
    ProjectArtifacts::builder().r#type(ArtifactsType::NoArtifacts).build().unwrap()
}

pub(crate) async fn wait_build(cb: &Cb, id: &str, limit: Duration) -> Build {
    wait_for(&format!("build {id} to complete"), limit, Duration::from_millis(100), || async {
        let b = cb.batch_get_builds().ids(id).send().await.unwrap().builds()[0].clone();
        b.build_complete().then_some(b)
    })
    .await
}

async fn wait_phase(cb: &Cb, id: &str, phase: &str) -> Build {
    wait_for(&format!("build {id} to reach {phase}"), Duration::from_secs(30), Duration::from_millis(50), || async {
        let b = cb.batch_get_builds().ids(id).send().await.unwrap().builds()[0].clone();
        (b.current_phase() == Some(phase) || b.build_complete()).then_some(b)
    })
    .await
}

pub(crate) fn phase_status(b: &Build, phase: &str) -> Option<String> {
    b.phases().iter().find(|p| p.phase_type().map(|t| t.as_str()) == Some(phase)).map(|p| {
        p.phase_status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "IN_PROGRESS".into())
    })
}

pub(crate) fn phase_context(b: &Build, phase: &str) -> String {
    b.phases()
        .iter()
        .find(|p| p.phase_type().map(|t| t.as_str()) == Some(phase))
        .map(|p| p.contexts().iter().map(|c| format!("{}: {}", c.status_code().unwrap_or(""), c.message().unwrap_or(""))).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

pub(crate) async fn log_text(endpoint: &str, b: &Build) -> String {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk(endpoint).await);
    let l = b.logs().expect("logs location");
    let mut out = String::new();
    let mut token: Option<String> = None;
    loop {
        let page = logs
            .get_log_events()
            .log_group_name(l.group_name().unwrap())
            .log_stream_name(l.stream_name().unwrap())
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        for e in page.events() {
            out.push_str(e.message().unwrap_or(""));
            out.push('\n');
        }
        let next = page.next_forward_token().map(str::to_string);
        if page.events().is_empty() || next == token {
            return out;
        }
        token = next;
    }
}

async fn zip_listing(endpoint: &str, location_arn: &str) -> Vec<String> {
    let s3 = s3_client(endpoint).await;
    let (bucket, key) = location_arn.trim_start_matches("arn:aws:s3:::").split_once('/').unwrap();
    let obj = s3.get_object().bucket(bucket).key(key).send().await.unwrap_or_else(|e| panic!("artifact {location_arn}: {e:?}"));
    let bytes = obj.body.collect().await.unwrap().into_bytes();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zip");
    std::fs::write(&path, &bytes).unwrap();
    let out = std::process::Command::new("unzip").arg("-Z1").arg(&path).output().unwrap();
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    names.sort();
    names
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/codebuild_fixtures")
}

#[tokio::test(flavor = "multi_thread")]
async fn projects_round_trip_and_answer_aws_errors() {
    let (t, cb) = TestServer::with(Cb::new).await;
    build_role(&t.sdk_config().await, "cb").await;
    let created = cb
        .create_project()
        .name("p1")
        .description("first")
        .source(no_source("version: 0.2\nphases:\n  build:\n    commands: [echo hi]\n"))
        .artifacts(no_artifacts())
        .environment(environment())
        .service_role("arn:aws:iam::000000000000:role/cb")
        .tags(aws_sdk_codebuild::types::Tag::builder().key("team").value("a").build())
        .send()
        .await
        .unwrap();
    let p = created.project().unwrap();
    assert_eq!(p.arn(), Some("arn:aws:codebuild:eu-west-1:000000000000:project/p1"));
    assert_eq!(p.timeout_in_minutes(), Some(60));
    assert_eq!(p.queued_timeout_in_minutes(), Some(480));
    assert!(p.created().is_some());

    // The code CreateProject refuses a project with `source` with.
    let refused = |name: &'static str, source: ProjectSource| {
        let cb = &cb;
        async move {
            let create = cb.create_project().name(name).source(source).artifacts(no_artifacts());
            let e = create.environment(environment()).service_role("r").send().await.unwrap_err();
            error_code(&e)
        }
    };
    assert_eq!(refused("p1", no_source("version: 0.2")).await, "ResourceAlreadyExistsException");
    let no_buildspec = ProjectSource::builder().r#type(SourceType::NoSource).build().unwrap();
    assert_eq!(refused("p2", no_buildspec).await, "InvalidInputException");
    let no_location = ProjectSource::builder().r#type(SourceType::Codecommit).build().unwrap();
    assert_eq!(refused("p2", no_location).await, "InvalidInputException");

    // A CODEPIPELINE source needs no location.
    let source = ProjectSource::builder().r#type(SourceType::Codepipeline).build().unwrap();
    create_project(&cb, "pipeline-project", source, ProjectArtifacts::builder().r#type(ArtifactsType::Codepipeline).build().unwrap(), "r").await;
    let start = cb.start_build().project_name("pipeline-project").send().await.unwrap_err();
    assert_eq!(start.into_service_error().meta().code(), Some("InvalidInputException"));

    let got = cb.batch_get_projects().names("p1").names("arn:aws:codebuild:eu-west-1:000000000000:project/pipeline-project").names("nope").send().await.unwrap();
    assert_eq!(got.projects().len(), 2);
    assert_eq!(got.projects_not_found(), &["nope".to_string()]);
    assert_eq!(got.projects()[0].tags()[0].key(), Some("team"));

    cb.update_project().name("p1").description("second").timeout_in_minutes(30).send().await.unwrap();
    let p = cb.batch_get_projects().names("p1").send().await.unwrap().projects()[0].clone();
    assert_eq!(p.description(), Some("second"));
    assert_eq!(p.timeout_in_minutes(), Some(30));
    assert_eq!(p.source().unwrap().r#type(), &SourceType::NoSource, "update keeps what it does not name");
    let missing = cb.update_project().name("ghost").description("x").send().await.unwrap_err();
    assert_eq!(missing.into_service_error().meta().code(), Some("ResourceNotFoundException"));

    let names = cb.list_projects().send().await.unwrap();
    assert_eq!(names.projects(), &["p1".to_string(), "pipeline-project".to_string()]);
    let missing = cb.start_build().project_name("ghost").send().await.unwrap_err();
    assert_eq!(missing.into_service_error().meta().code(), Some("ResourceNotFoundException"));

    cb.delete_project().name("p1").send().await.unwrap();
    assert_eq!(cb.batch_get_projects().names("p1").send().await.unwrap().projects_not_found().len(), 1);

    // The aws CLI sees the same.
    let (ok, out, err) = aws_cli(&t.endpoint, &["codebuild", "list-projects"]);
    assert!(ok, "{err}");
    assert!(out.contains("pipeline-project"));
}

/// Each directory in `codebuild_fixtures/` is a buildspec and what its build must report
/// (`expect.json`: status, phases, absent_phases, contexts, exported, artifacts,
/// secondary_artifacts, log_contains, log_lacks, timeout_minutes, stop_in_phase).
///
/// The server runs as its own process with a build "minute" of 600 ms, so the timeout fixture
/// (5 minutes) times out after 3 s while the others (60 minutes) have 36 s.
#[tokio::test(flavor = "multi_thread")]
async fn buildspec_fixture_suite() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn_with_env(dir.path(), &[("CODEYARD_BUILD_MINUTE_MS", "600")], &["--strict-models", "--build-concurrency", "16"]);
    let endpoint = server.endpoint.clone();
    let cb = client_for(&endpoint).await;
    make_bucket(&s3_client(&endpoint).await, "fixture-artifacts").await;
    build_role(&sdk(&endpoint).await, "fixtures").await;
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    let mut started = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().replace('_', "-");
        let buildspec = std::fs::read_to_string(dir.join("buildspec.yml")).unwrap();
        let expect: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json")).unwrap()).unwrap();
        let mut req = cb
            .create_project()
            .name(&name)
            .source(no_source(&buildspec))
            .artifacts(match expect.get("artifacts") {
                Some(_) => s3_zip_artifacts("fixture-artifacts", &format!("{name}.zip"), None),
                None => no_artifacts(),
            })
            .environment(environment())
            .timeout_in_minutes(expect["timeout_minutes"].as_i64().unwrap_or(60) as i32)
            .service_role("arn:aws:iam::000000000000:role/fixtures");
        for id in expect["secondary_artifacts"].as_object().into_iter().flat_map(|m| m.keys()) {
            req = req.secondary_artifacts(s3_zip_artifacts("fixture-artifacts", &format!("{name}-{id}.zip"), Some(id)));
        }
        req.send().await.unwrap();
        let b = cb.start_build().project_name(&name).send().await.unwrap();
        started.push((dir.clone(), expect, b.build_value().unwrap().id().unwrap().to_string()));
    }
    for (_, expect, id) in &started {
        if let Some(phase) = expect["stop_in_phase"].as_str() {
            wait_phase(&cb, id, phase).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            cb.stop_build().id(id).send().await.unwrap();
        }
    }
    let mut failures = Vec::new();
    for (dir, expect, id) in started {
        let case = dir.file_name().unwrap().to_string_lossy().to_string();
        let b = wait_build(&cb, &id, Duration::from_secs(60)).await;
        let mut fail = |what: String| failures.push(format!("{case}: {what}"));
        if b.build_status().map(|s| s.as_str()) != expect["status"].as_str() {
            fail(format!("status {:?}, expected {}; phases {:?}", b.build_status(), expect["status"], b.phases()));
        }
        for (phase, status) in expect["phases"].as_object().into_iter().flatten() {
            let got = phase_status(&b, phase);
            if got.as_deref() != status.as_str() {
                fail(format!("phase {phase} is {got:?}, expected {status}"));
            }
        }
        for phase in expect["absent_phases"].as_array().into_iter().flatten() {
            if let Some(s) = phase_status(&b, phase.as_str().unwrap()) {
                fail(format!("phase {phase} ran ({s})"));
            }
        }
        for (phase, text) in expect["contexts"].as_object().into_iter().flatten() {
            let ctx = phase_context(&b, phase);
            if !ctx.contains(text.as_str().unwrap()) {
                fail(format!("context of {phase} is {ctx:?}, expected it to contain {text}"));
            }
        }
        if let Some(vars) = expect["exported"].as_object() {
            let got: Vec<(String, String)> = b
                .exported_environment_variables()
                .iter()
                .map(|v| (v.name().unwrap_or("").to_string(), v.value().unwrap_or("").to_string()))
                .collect();
            for (k, v) in vars {
                if !got.contains(&(k.clone(), v.as_str().unwrap().to_string())) {
                    fail(format!("exported {k}={v} missing from {got:?}"));
                }
            }
        }
        if let Some(files) = expect["artifacts"].as_array() {
            let loc = b.artifacts().and_then(|a| a.location()).unwrap_or("").to_string();
            let got = zip_listing(&endpoint, &loc).await;
            let want: Vec<String> = files.iter().map(|f| f.as_str().unwrap().to_string()).collect();
            if got != want {
                failures.push(format!("{case}: artifact holds {got:?}, expected {want:?}"));
            }
        }
        for (id, files) in expect["secondary_artifacts"].as_object().into_iter().flatten() {
            let loc = b.secondary_artifacts().iter().find(|a| a.artifact_identifier() == Some(id.as_str())).and_then(|a| a.location()).unwrap_or("").to_string();
            let got = zip_listing(&endpoint, &loc).await;
            let want: Vec<String> = files.as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
            if got != want {
                failures.push(format!("{case}: secondary artifact {id} holds {got:?}, expected {want:?}"));
            }
        }
        if expect.get("log_contains").is_some() || expect.get("log_lacks").is_some() {
            let log = log_text(&endpoint, &b).await;
            for s in expect["log_contains"].as_array().into_iter().flatten() {
                if !log.contains(s.as_str().unwrap()) {
                    failures.push(format!("{case}: log lacks {s}:\n{log}"));
                }
            }
            for s in expect["log_lacks"].as_array().into_iter().flatten() {
                if log.contains(s.as_str().unwrap()) {
                    failures.push(format!("{case}: log has {s}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "fixture failures:\n{}", failures.join("\n"));
    let violations: Value = reqwest::get(format!("{endpoint}/_codeyard/model-violations")).await.unwrap().json().await.unwrap();
    assert_eq!(violations, serde_json::json!([]), "answers that do not fit AWS's models");
    drop(server);
}

/// The acceptance app's Java build, from an S3 zip of the app tree, with the CLI starting it.
#[tokio::test(flavor = "multi_thread")]
async fn acceptance_java_build_from_s3_source() {
    let (t, cb) = TestServer::with(Cb::new).await;
    make_bucket(&s3_client(&t.endpoint).await, "src-bucket").await;
    make_bucket(&s3_client(&t.endpoint).await, "out-bucket").await;
    build_role(&t.sdk_config().await, "java").await;
    let app = acceptance_app();
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("app.zip");
    let st = std::process::Command::new("zip").current_dir(&app).arg("-qr").arg(&zip).arg(".").status().unwrap();
    assert!(st.success());
    let s3 = s3_client(&t.endpoint).await;
    s3.put_object().bucket("src-bucket").key("app.zip").body(aws_sdk_s3::primitives::ByteStream::from(std::fs::read(&zip).unwrap())).send().await.unwrap();
    let source = ProjectSource::builder().r#type(SourceType::S3).location("src-bucket/app.zip").buildspec("codebuild/buildspec_build_and_test.yml").build().unwrap();
    create_project(&cb, "java-app", source, s3_zip_artifacts("out-bucket", "app-artifact.zip", None), "arn:aws:iam::000000000000:role/java").await;
    let started = aws_cli_json(&t.endpoint, &["codebuild", "start-build", "--project-name", "java-app"]);
    let id = started["build"]["id"].as_str().unwrap().to_string();
    assert_eq!(started["build"]["buildNumber"], 1);
    let b = wait_build(&cb, &id, Duration::from_secs(120)).await;
    let log = log_text(&t.endpoint, &b).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "phases: {:#?}\nlog:\n{log}", b.phases());
    assert!(log.contains("CODEBUILD_BUILD_SUCCEEDING=1"), "{log}");
    assert!(log.contains("app.jar"));
    assert_eq!(zip_listing(&t.endpoint, b.artifacts().unwrap().location().unwrap()).await, vec!["target/app.jar"]);
    assert_eq!(b.logs().unwrap().group_name(), Some("/aws/codebuild/java-app"));
    let phases: Vec<&str> = b.phases().iter().map(|p| p.phase_type().unwrap().as_str()).collect();
    assert_eq!(
        phases,
        [
            "SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD",
            "UPLOAD_ARTIFACTS", "FINALIZING", "COMPLETED"
        ]
    );
    let (ok, out, err) = aws_cli(&t.endpoint, &["codebuild", "batch-get-builds", "--ids", &id]);
    assert!(ok, "{err}");
    assert!(out.contains("\"buildStatus\": \"SUCCEEDED\""));
    let (ok, out, _) = aws_cli(&t.endpoint, &["codebuild", "list-builds-for-project", "--project-name", "java-app"]);
    assert!(ok && out.contains(&id));

    // A secondary source lands in CODEBUILD_SRC_DIR_<sourceIdentifier>.
    let secondary = ProjectSource::builder().r#type(SourceType::S3).location("src-bucket/app.zip").source_identifier("extra").build().unwrap();
    let check = "version: 0.2\nphases:\n  build:\n    commands:\n      - test -f \"$CODEBUILD_SRC_DIR_extra/codebuild/buildspec_build_and_test.yml\"\n      - test \"$CODEBUILD_SRC_DIR_extra\" != \"$CODEBUILD_SRC_DIR\"\n";
    let id = cb
        .start_build()
        .project_name("java-app")
        .secondary_sources_override(secondary)
        .buildspec_override(check)
        .artifacts_override(no_artifacts())
        .send()
        .await
        .unwrap()
        .build_value()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    let b = wait_build(&cb, &id, Duration::from_secs(60)).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{:#?}", b.phases());
}

fn acceptance_app() -> PathBuf {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/acceptance/devops-demo/app");
    if app.is_dir() { app } else { PathBuf::from("/work/shared/acceptance/devops-demo/app") }
}

/// The acceptance app pushed to a codeyard repository and built from its CODECOMMIT source
/// with `aws codebuild start-build`: a depth-1 clone at the pushed commit with `.git`, the jar
/// in S3, the log readable with `aws logs get-log-events`.
#[tokio::test(flavor = "multi_thread")]
async fn acceptance_app_builds_from_its_codecommit_source() {
    let (t, cb) = TestServer::with(Cb::new).await;
    let cc = aws_sdk_codecommit::Client::new(&t.sdk_config().await);
    make_bucket(&s3_client(&t.endpoint).await, "jars").await;
    build_role(&t.sdk_config().await, "git").await;
    let repo = cc.create_repository().repository_name("cb-src").send().await.unwrap();
    let clone_url = repo.repository_metadata().unwrap().clone_url_http().unwrap().to_string();
    let work = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| git(work.path(), args);
    git(&["init", "-q", "-b", "master"]);
    assert!(std::process::Command::new("cp").arg("-r").arg(format!("{}/.", acceptance_app().display())).arg(work.path()).status().unwrap().success());
    git(&["add", "-A"]);
    git(&["commit", "-qm", "CRM demo service"]);
    std::fs::write(work.path().join("marker.txt"), "second\n").unwrap();
    git(&["add", "-A"]);
    git(&["commit", "-qm", "two"]);
    let head = git(&["rev-parse", "HEAD"]);
    git(&["push", "-q", &clone_url, "master"]);
    let source = ProjectSource::builder().r#type(SourceType::Codecommit).location(&clone_url).git_clone_depth(1).buildspec("codebuild/buildspec_build_and_test.yml").build().unwrap();
    create_project(&cb, "from-git", source, s3_zip_artifacts("jars", "app.zip", None), "arn:aws:iam::000000000000:role/git").await;
    let (ok, out, err) = aws_cli(&t.endpoint, &["codebuild", "start-build", "--project-name", "from-git"]);
    assert!(ok, "{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["build"]["id"].as_str().unwrap().to_string();
    let b = wait_build(&cb, &id, Duration::from_secs(120)).await;
    let (ok, out, err) = aws_cli(
        &t.endpoint,
        &["logs", "get-log-events", "--log-group-name", "/aws/codebuild/from-git", "--log-stream-name", b.logs().unwrap().stream_name().unwrap(), "--start-from-head"],
    );
    assert!(ok, "{err}");
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{:#?}\n{out}", b.phases());
    assert!(out.contains("CODEBUILD_BUILD_SUCCEEDING=1"), "{out}");
    assert_eq!(b.resolved_source_version(), Some(head.as_str()));
    assert_eq!(zip_listing(&t.endpoint, b.artifacts().unwrap().location().unwrap()).await, vec!["target/app.jar"]);

    // The same source, with checks of the clone itself as an inline buildspec override.
    let checks = "version: 0.2\nphases:\n  build:\n    commands:\n      - test -d .git\n      - git log --oneline | wc -l\n      - cat marker.txt\n      - git remote get-url origin\n";
    let id = cb.start_build().project_name("from-git").buildspec_override(checks).artifacts_override(no_artifacts()).source_version("master").send().await.unwrap().build_value().unwrap().id().unwrap().to_string();
    let b = wait_build(&cb, &id, Duration::from_secs(60)).await;
    let log = log_text(&t.endpoint, &b).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{:#?}\n{log}", b.phases());
    assert!(log.lines().any(|l| l.trim() == "1"), "depth 1 clone has one commit:\n{log}");
    assert!(log.contains("second"));
    assert!(log.contains(&clone_url), "origin is the project's clone URL:\n{log}");
}

/// StopBuild ends the build within a second and leaves no process; queueing beyond the limit.
#[tokio::test(flavor = "multi_thread")]
async fn stop_kills_the_build_and_builds_queue_beyond_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start_in(dir.path().to_path_buf(), |o| o.build_concurrency = 1).await;
    let cb = Cb::new(&t.sdk_config().await);
    let pidfile = dir.path().join("bg.pid");
    let spec = format!("version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300 & echo $! > {}\n      - echo started\n      - sleep 300\n", pidfile.display());
    for name in ["long", "quick"] {
        let spec = if name == "long" { spec.clone() } else { "version: 0.2\nphases:\n  build:\n    commands: [echo quick]\n".into() };
        create_project(&cb, name, no_source(&spec), no_artifacts(), "r").await;
    }
    cb.update_project().name("long").concurrent_build_limit(1).send().await.unwrap();
    let long = cb.start_build().project_name("long").send().await.unwrap().build_value().unwrap().id().unwrap().to_string();
    let over = cb.start_build().project_name("long").send().await.unwrap_err();
    assert_eq!(over.into_service_error().meta().code(), Some("AccountLimitExceededException"));
    wait_phase(&cb, &long, "BUILD").await;
    let quick = cb.start_build().project_name("quick").send().await.unwrap().build_value().unwrap().id().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let q = cb.batch_get_builds().ids(&quick).send().await.unwrap().builds()[0].clone();
    assert_eq!(q.current_phase(), Some("QUEUED"), "the second build waits for the only slot");
    let bg: i32 = file_written(&pidfile).await.trim().parse().unwrap();
    let t0 = Instant::now();
    let stopped = cb.stop_build().id(&long).send().await.unwrap();
    let b = stopped.build_value().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1), "StopBuild took {:?}", t0.elapsed());
    assert_eq!(b.build_status(), Some(&StatusType::Stopped));
    assert_eq!(phase_status(b, "BUILD").as_deref(), Some("STOPPED"));
    let stat = std::fs::read_to_string(format!("/proc/{bg}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.rsplit(')').next().unwrap().trim_start().starts_with('Z'), "process {bg} survived: {stat}");
    let q = wait_build(&cb, &quick, Duration::from_secs(30)).await;
    assert_eq!(q.build_status(), Some(&StatusType::Succeeded));
    let listed = cb.list_builds().send().await.unwrap();
    assert_eq!(listed.ids(), &[quick.clone(), long.clone()], "newest first");
    let retried = cb.retry_build().id(&quick).send().await.unwrap();
    let r = retried.build_value().unwrap();
    assert_eq!(r.build_number(), Some(2));
    wait_build(&cb, r.id().unwrap(), Duration::from_secs(30)).await;
    let del = cb.batch_delete_builds().ids(&quick).ids("quick:nope").send().await.unwrap();
    assert_eq!(del.builds_deleted(), &[quick.clone()]);
    assert_eq!(del.builds_not_deleted()[0].status_code(), Some("BUILD_NOT_FOUND"));
    t.assert_no_model_violations();
}

/// Reports: a JUnit file in `reports:` lands in report group `<project>-<name>`.
#[tokio::test(flavor = "multi_thread")]
async fn junit_reports_are_parsed() {
    let (_t, cb) = TestServer::with(Cb::new).await;
    let spec = r#"version: 0.2
phases:
  build:
    commands:
      - mkdir -p reports
      - |
        cat > reports/TEST-demo.xml <<'EOF'
        <testsuite name="demo.CrmTest" tests="3"><testcase classname="demo.CrmTest" name="finds" time="0.25"/>
        <testcase classname="demo.CrmTest" name="breaks" time="0.5"><failure message="expected Timo">at line 3</failure></testcase>
        <testcase classname="demo.CrmTest" name="later"><skipped/></testcase></testsuite>
        EOF
reports:
  unit:
    files: ['**/*.xml']
    base-directory: reports
"#;
    create_project(&cb, "rep", no_source(spec), no_artifacts(), "r").await;
    let id = cb.start_build().project_name("rep").send().await.unwrap().build_value().unwrap().id().unwrap().to_string();
    let b = wait_build(&cb, &id, Duration::from_secs(60)).await;
    assert_eq!(b.report_arns().len(), 1, "{b:#?}");
    let groups = cb.list_report_groups().send().await.unwrap();
    assert_eq!(groups.report_groups(), &["arn:aws:codebuild:eu-west-1:000000000000:report-group/rep-unit".to_string()]);
    let reports = cb.batch_get_reports().report_arns(&b.report_arns()[0]).send().await.unwrap();
    let r = &reports.reports()[0];
    assert_eq!(r.status().map(|s| s.as_str()), Some("FAILED"));
    let summary = r.test_summary().unwrap();
    assert_eq!(summary.total(), 3);
    assert_eq!(summary.status_counts().get("FAILED"), Some(&1));
    let failed = cb.describe_test_cases().report_arn(&b.report_arns()[0]).filter(
        aws_sdk_codebuild::types::TestCaseFilter::builder().status("FAILED").build(),
    ).send().await.unwrap();
    assert_eq!(failed.test_cases().len(), 1);
    assert_eq!(failed.test_cases()[0].name(), Some("breaks"));
    assert!(failed.test_cases()[0].message().unwrap().contains("expected Timo"));
    let listed = cb.list_reports_for_report_group().report_group_arn(&groups.report_groups()[0]).send().await.unwrap();
    assert_eq!(listed.reports().len(), 1);
    let err = cb.delete_report_group().arn(&groups.report_groups()[0]).send().await.unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("InvalidInputException"));
    cb.delete_report_group().arn(&groups.report_groups()[0]).delete_reports(true).send().await.unwrap();
}

/// The pipeline's BuildRunner: inputs from S3 zips, outputs zipped back, exported variables.
#[tokio::test(flavor = "multi_thread")]
async fn pipeline_builds_take_and_give_artifacts() {
    use codeyard_core::hub::{ArtifactLocation, PipelineBuildRequest};
    let (t, cb) = TestServer::with(Cb::new).await;
    make_bucket(&s3_client(&t.endpoint).await, "pipe-art").await;
    let tmp = tempfile::tempdir().unwrap();
    for (name, file, content) in [("src", "main.txt", "primary"), ("extra", "lib.txt", "secondary")] {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(file), content).unwrap();
        assert!(std::process::Command::new("zip").current_dir(&d).args(["-qr", "../in.zip", "."]).status().unwrap().success());
        let s3 = s3_client(&t.endpoint).await;
        s3.put_object()
            .bucket("pipe-art")
            .key(format!("p/{name}/in.zip"))
            .body(aws_sdk_s3::primitives::ByteStream::from(std::fs::read(tmp.path().join("in.zip")).unwrap()))
            .send()
            .await
            .unwrap();
    }
    cb.create_project()
        .name("piped")
        .source(
            ProjectSource::builder()
                .r#type(SourceType::Codepipeline)
                .buildspec("version: 0.2\nenv:\n  exported-variables: [RESULT]\nphases:\n  build:\n    commands:\n      - cat main.txt $CODEBUILD_SRC_DIR_extra/lib.txt > out.txt\n      - RESULT=$(cat out.txt | tr -d '\\n')\n      - echo \"rev=$CODEBUILD_RESOLVED_SOURCE_VERSION src=$CODEBUILD_SOURCE_VERSION by=$CODEBUILD_INITIATOR\"\nartifacts:\n  files: [out.txt]\n")
                .build()
                .unwrap(),
        )
        .artifacts(ProjectArtifacts::builder().r#type(ArtifactsType::Codepipeline).build().unwrap())
        .environment(environment())
        .service_role("r")
        .send()
        .await
        .unwrap();
    let runner = t.server.as_ref().unwrap().platform.hub.builds().unwrap();
    let ctx = codeyard_core::RequestContext::internal(ACCOUNT, REGION, &t.endpoint);
    let loc = |name: &str, key: &str| ArtifactLocation { name: name.into(), bucket: "pipe-art".into(), key: key.into(), kms_key_id: None };
    let started = runner
        .start_pipeline_build(
            &ctx,
            PipelineBuildRequest {
                project_name: "piped".into(),
                inputs: vec![loc("src", "p/src/in.zip"), loc("extra", "p/extra/in.zip")],
                outputs: vec![loc("out", "p/out/result.zip")],
                environment_variables: vec![("FROM_ACTION".into(), "1".into(), "PLAINTEXT".into())],
                buildspec_override: None,
                source_revision: Some("abc123".into()),
                initiator: "codepipeline/demo".into(),
            },
        )
        .await
        .unwrap();
    let outcome = wait_for("the pipeline build to end", Duration::from_secs(60), Duration::from_millis(100), || async {
        Some(runner.build_outcome(&ctx, &started.build_id).await.unwrap()).filter(|o| o.status.as_str() != "IN_PROGRESS")
    })
    .await;
    assert_eq!(outcome.status.as_str(), "SUCCEEDED", "{outcome:?}");
    assert_eq!(outcome.exported_variables, vec![("RESULT".to_string(), "primarysecondary".to_string())]);
    assert_eq!(zip_listing(&t.endpoint, "arn:aws:s3:::pipe-art/p/out/result.zip").await, vec!["out.txt"]);
    let b = cb.batch_get_builds().ids(&started.build_id).send().await.unwrap().builds()[0].clone();
    assert_eq!(b.initiator(), Some("codepipeline/demo"));
    assert_eq!(b.resolved_source_version(), Some("abc123"));
    let log = log_text(&t.endpoint, &b).await;
    assert!(log.contains("rev=abc123 src=arn:aws:s3:::pipe-art/p/src/in.zip by=codepipeline/demo"), "{log}");
}

/// An EventBridge rule whose target is a project starts a build with the event's overrides.
#[tokio::test(flavor = "multi_thread")]
async fn event_rule_targeting_a_project_starts_a_build() {
    let (t, cb) = TestServer::with(Cb::new).await;
    let ev = aws_sdk_eventbridge::Client::new(&t.sdk_config().await);
    create_project(&cb, "on-event", no_source("version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"greeting=$GREETING\"\n"), no_artifacts(), "r").await;
    ev.put_rule().name("go").event_pattern(r#"{"source":["my.app"]}"#).send().await.unwrap();
    let mut target = event_target("cb", "arn:aws:codebuild:eu-west-1:000000000000:project/on-event", None);
    target.input = Some(r#"{"environmentVariablesOverride":[{"name":"GREETING","value":"hello","type":"PLAINTEXT"}]}"#.into());
    add_targets(&ev, "go", vec![target]).await;
    ev.put_events().entries(aws_sdk_eventbridge::types::PutEventsRequestEntry::builder().source("my.app").detail_type("x").detail("{}").build()).send().await.unwrap();
    let id = first_build_of(&cb, "on-event").await;
    let b = wait_build(&cb, &id, Duration::from_secs(30)).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded));
    assert!(log_text(&t.endpoint, &b).await.contains("greeting=hello"));
    assert_eq!(b.initiator(), Some("events/go"));

    // The build's own "CodeBuild Build State Change" event (AWS's detail shape) chains a second
    // project through a rule on the default bus.
    create_project(&cb, "chained", no_source("version: 0.2\nphases:\n  build:\n    commands: [echo chained]\n"), no_artifacts(), "r").await;
    let succeeded = r#"{"source":["aws.codebuild"],"detail-type":["CodeBuild Build State Change"],"detail":{"build-status":["SUCCEEDED"],"project-name":["on-event"]}}"#;
    let next = event_target("next", "arn:aws:codebuild:eu-west-1:000000000000:project/chained", None);
    rule_with_targets(&ev, "after-on-event", succeeded, vec![next]).await;
    cb.start_build().project_name("on-event").send().await.unwrap();
    let chained = first_build_of(&cb, "chained").await;
    assert_eq!(wait_build(&cb, &chained, Duration::from_secs(30)).await.build_status(), Some(&StatusType::Succeeded));
}

async fn client_for(endpoint: &str) -> Cb {
    Cb::new(&sdk(endpoint).await)
}

/// build_timeout gives TIMED_OUT (a minute lasts 100 ms in this server), and a build running
/// when the server is killed ends FAULT after restart, its processes gone.
#[tokio::test(flavor = "multi_thread")]
async fn timeout_and_crash_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn_with_env(dir.path(), &[("CODEYARD_BUILD_MINUTE_MS", "100")], &[]);
    let cb = client_for(&server.endpoint).await;
    let pidfile = dir.path().join("orphan.pid");
    let spec = format!("version: 0.2\nphases:\n  build:\n    commands:\n      - echo $$ > {}\n      - sleep 300\n", pidfile.display());
    cb.create_project().name("slow").source(no_source(&spec)).artifacts(no_artifacts()).environment(environment()).service_role("r").timeout_in_minutes(5).send().await.unwrap();
    let id = cb.start_build().project_name("slow").send().await.unwrap().build_value().unwrap().id().unwrap().to_string();
    let b = wait_build(&cb, &id, Duration::from_secs(20)).await;
    assert_eq!(b.build_status(), Some(&StatusType::TimedOut));
    assert_eq!(phase_status(&b, "BUILD").as_deref(), Some("TIMED_OUT"));
    server.kill9();

    let server = ServerProcess::spawn(dir.path(), &[]);
    let cb = client_for(&server.endpoint).await;
    let _ = std::fs::remove_file(&pidfile);
    let id = cb.start_build().project_name("slow").send().await.unwrap().build_value().unwrap().id().unwrap().to_string();
    let pid: i32 = file_written(&pidfile).await.trim().parse().unwrap();
    server.kill9();
    let server = ServerProcess::spawn(dir.path(), &[]);
    let cb = client_for(&server.endpoint).await;
    let b = cb.batch_get_builds().ids(&id).send().await.unwrap().builds()[0].clone();
    assert!(b.build_complete());
    assert_eq!(b.build_status(), Some(&StatusType::Fault));
    assert!(phase_context(&b, "BUILD").contains("codeyard restarted during the build"), "{:#?}", b.phases());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.rsplit(')').next().unwrap().trim_start().starts_with('Z'), "orphan {pid} survived the restart");
    drop(server);
}

/// Terraform: both project shapes of the acceptance topology plus one with a CODEPIPELINE
/// source, cache and logs_config: apply, an empty plan, destroy.
#[tokio::test(flavor = "multi_thread")]
async fn terraform_projects_apply_plan_destroy() {
    let (t, ws, cb) = terraform_applied("codebuild", Cb::new).await;
    let got = cb.batch_get_projects().names("tf-build-and-test").names("tf-docker-image").names("tf-pipeline").send().await.unwrap();
    assert_eq!(got.projects().len(), 3);
    terraform_destroy(ws.path(), &t.endpoint, &[]);
    assert!(cb.list_projects().send().await.unwrap().projects().is_empty());
}

/// Commands get the service role's temporary credentials (masked in the log) and codeyard's
/// endpoint, so the aws CLI works unchanged; a LOCAL custom cache survives between builds;
/// `codeyard logs` reads the finished build back.
#[tokio::test(flavor = "multi_thread")]
async fn commands_use_the_role_and_the_cache_persists() {
    let (t, cb) = TestServer::with(Cb::new).await;
    let role_arn = build_role(&t.sdk_config().await, "builder").await;
    make_bucket(&s3_client(&t.endpoint).await, "from-build").await;
    let spec = r#"version: 0.2
cache:
  paths:
    - 'deps/**/*'
    - '/root/.m2/**/*'
phases:
  build:
    commands:
      - aws sts get-caller-identity --query Arn --output text
      - echo "secret=$AWS_SECRET_ACCESS_KEY"
      - echo hello > hello.txt && aws s3 cp hello.txt s3://from-build/hello.txt
      - echo "cached-before=$(cat deps/n 2>/dev/null || echo none) m2=$(cat $HOME/.m2/n 2>/dev/null || echo none)"
      - mkdir -p deps $HOME/.m2 && echo "$CODEBUILD_BUILD_NUMBER" > deps/n && echo "$CODEBUILD_BUILD_NUMBER" > $HOME/.m2/n
"#;
    cb.create_project()
        .name("with-role")
        .source(no_source(spec))
        .artifacts(no_artifacts())
        .environment(environment())
        .service_role(&role_arn)
        .cache(
            aws_sdk_codebuild::types::ProjectCache::builder()
                .r#type(aws_sdk_codebuild::types::CacheType::Local)
                .modes(aws_sdk_codebuild::types::CacheMode::LocalCustomCache)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let mut logs = Vec::new();
    for _ in 0..2 {
        let id = cb.start_build().project_name("with-role").send().await.unwrap().build_value().unwrap().id().unwrap().to_string();
        let b = wait_build(&cb, &id, Duration::from_secs(60)).await;
        let log = log_text(&t.endpoint, &b).await;
        assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{log}");
        logs.push((id, log));
    }
    let (id, first) = &logs[0];
    assert!(first.contains(":assumed-role/builder/AWSCodeBuild-"), "{first}");
    assert!(first.contains("secret=***"), "the role's secret key is masked:\n{first}");
    assert!(first.contains("cached-before=none m2=none"), "{first}");
    assert!(logs[1].1.contains("cached-before=1 m2=1"), "{}", logs[1].1);
    // The same with an S3 cache (cacheOverride): the second build restores what the first saved.
    let s3_cache = aws_sdk_codebuild::types::ProjectCache::builder().r#type(aws_sdk_codebuild::types::CacheType::S3).location("from-build/cache").build().unwrap();
    let mut s3_logs = Vec::new();
    for _ in 0..2 {
        let id = cb.start_build().project_name("with-role").cache_override(s3_cache.clone()).send().await.unwrap().build_value().unwrap().id().unwrap().to_string();
        let b = wait_build(&cb, &id, Duration::from_secs(60)).await;
        assert_eq!(b.build_status(), Some(&StatusType::Succeeded));
        s3_logs.push(log_text(&t.endpoint, &b).await);
    }
    assert!(s3_logs[0].contains("cached-before=none m2=none"), "{}", s3_logs[0]);
    assert!(s3_logs[1].contains("cached-before=3 m2=3"), "{}", s3_logs[1]);
    let s3 = s3_client(&t.endpoint).await;
    let obj = s3.get_object().bucket("from-build").key("hello.txt").send().await.unwrap();
    assert_eq!(obj.body.collect().await.unwrap().into_bytes().as_ref(), b"hello\n");
    // SAFETY of the env var: this test binary reads AWS_REGION only here.
    unsafe { std::env::set_var("AWS_REGION", REGION) };
    codeyard_codebuild::cli_logs(&t.endpoint, id, true).await.unwrap();
    assert!(codeyard_codebuild::cli_logs(&t.endpoint, "with-role:nope", false).await.is_err());
}

/// Under `--auth enforce` a build's commands authenticate with the role credentials STS issued
/// for it, and `codeyard logs` signs its requests.
#[tokio::test(flavor = "multi_thread")]
async fn builds_work_under_auth_enforce() {
    let t = TestServer::enforcing("test", "test").await;
    let bad = Cb::new(&t.sdk_config_with("test", "wrong").await).list_projects().send().await;
    assert!(bad.is_err(), "enforce mode refuses a wrong secret");
    let cb = Cb::new(&t.sdk_config().await);
    let iam = aws_sdk_iam::Client::new(&t.sdk_config().await);
    let role = build_role(&t.sdk_config().await, "enforced").await;
    let list = allow_policy(&[(&["codebuild:ListProjects"], &["*"])]);
    iam.put_role_policy().role_name("enforced").policy_name("list").policy_document(list).send().await.unwrap();
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - aws sts get-caller-identity --query Arn --output text\n      - aws codebuild list-projects --output text\n";
    create_project(&cb, "enforced", no_source(spec), no_artifacts(), &role).await;
    let id = cb.start_build().project_name("enforced").send().await.unwrap().build_value().unwrap().id().unwrap().to_string();
    let b = wait_build(&cb, &id, Duration::from_secs(60)).await;
    let log = log_text(&t.endpoint, &b).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{log}");
    assert!(log.contains("assumed-role/enforced/AWSCodeBuild-") && log.contains("enforced"), "{log}");
    // SAFETY of the env vars: every test in this binary uses the same test/test key.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::set_var("AWS_REGION", REGION);
    }
    codeyard_codebuild::cli_logs(&t.endpoint, &id, false).await.unwrap();
}
