//! Engine tests against fake CodeCommit, S3 and CodeBuild registered on a real hub, with a
//! real SQLite store; the API is driven through `CodePipelineService::call`.

use crate::api::CodePipelineService;
use crate::engine::Engine;
use crate::model::{Execution, status};
use async_trait::async_trait;
use codeyard_core::hub::*;
use codeyard_core::{AwsError, AwsResult, Hub, RequestContext};
use codeyard_store::SqliteStore;
use codeyard_wire::{AuthMode, Authenticator, AwsService, Platform, ServerConfig};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "000000000000";
const REGION: &str = "eu-west-1";

/// (file holding the bytes, metadata, the options it was written with)
type StoredObject = (PathBuf, ObjectInfo, PutObjectOptions);

#[derive(Default)]
pub struct FakeObjects {
    dir: PathBuf,
    objects: Mutex<HashMap<(String, String), StoredObject>>,
}

impl FakeObjects {
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let mut k: Vec<String> = self
            .objects
            .lock()
            .unwrap()
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, k)| k.clone())
            .collect();
        k.sort();
        k
    }
    pub fn read(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let o = self.objects.lock().unwrap();
        o.get(&(bucket.to_string(), key.to_string()))
            .map(|(p, _, _)| std::fs::read(p).unwrap())
    }
    pub fn put_bytes(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let p = self.dir.join(codeyard_core::ids::uuid());
        std::fs::write(&p, bytes).unwrap();
        let info = ObjectInfo {
            bucket: bucket.into(),
            key: key.into(),
            etag: codeyard_core::ids::hex(32),
            size: bytes.len() as u64,
            ..Default::default()
        };
        self.objects.lock().unwrap().insert(
            (bucket.into(), key.into()),
            (p, info, PutObjectOptions::default()),
        );
    }
}

#[async_trait]
impl ObjectStoreApi for FakeObjects {
    async fn put_object_file(
        &self,
        _: &RequestContext,
        bucket: &str,
        key: &str,
        source: &Path,
        options: PutObjectOptions,
    ) -> AwsResult<ObjectInfo> {
        let bytes = std::fs::read(source)?;
        self.put_bytes(bucket, key, &bytes);
        let mut o = self.objects.lock().unwrap();
        let e = o.get_mut(&(bucket.to_string(), key.to_string())).unwrap();
        e.2 = options;
        Ok(e.1.clone())
    }
    async fn get_object_to_file(
        &self,
        _: &RequestContext,
        bucket: &str,
        key: &str,
        _: Option<&str>,
        dest: &Path,
    ) -> AwsResult<ObjectInfo> {
        let o = self.objects.lock().unwrap();
        let (p, info, _) = o
            .get(&(bucket.to_string(), key.to_string()))
            .ok_or_else(|| AwsError::client("NoSuchKey", key))?;
        std::fs::copy(p, dest)?;
        Ok(info.clone())
    }
    async fn head_object(
        &self,
        _: &RequestContext,
        bucket: &str,
        key: &str,
        _: Option<&str>,
    ) -> AwsResult<Option<ObjectInfo>> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .get(&(bucket.to_string(), key.to_string()))
            .map(|e| e.1.clone()))
    }
    async fn bucket_exists(&self, _: &RequestContext, bucket: &str) -> AwsResult<bool> {
        Ok(bucket != "missing-bucket")
    }
}

fn zip_bytes(files: &[(&str, &str)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, content) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(content.as_bytes()).unwrap();
        }
        w.finish().unwrap();
    }
    buf.into_inner()
}

fn unzip_names(bytes: &[u8]) -> Vec<String> {
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    (0..a.len())
        .map(|i| a.by_index(i).unwrap().name().to_string())
        .collect()
}

#[derive(Default)]
pub struct FakeGit {
    /// branch -> commit
    heads: Mutex<HashMap<String, String>>,
    messages: Mutex<HashMap<String, String>>,
}

impl FakeGit {
    pub fn push(&self, branch: &str, message: &str) -> String {
        let id = codeyard_core::ids::hex(40);
        self.heads.lock().unwrap().insert(branch.into(), id.clone());
        self.messages
            .lock()
            .unwrap()
            .insert(id.clone(), message.into());
        id
    }
}

#[async_trait]
impl GitRepositories for FakeGit {
    async fn repository(&self, _: &RequestContext, name: &str) -> AwsResult<RepositoryInfo> {
        Ok(RepositoryInfo {
            name: name.into(),
            id: "id".into(),
            arn: format!("arn:aws:codecommit:{REGION}:{ACCOUNT}:{name}"),
            clone_url_http: format!("http://localhost/v1/repos/{name}"),
            default_branch: Some("main".into()),
            path: PathBuf::new(),
        })
    }
    async fn resolve_branch(
        &self,
        _: &RequestContext,
        _repo: &str,
        branch: &str,
    ) -> AwsResult<String> {
        self.heads
            .lock()
            .unwrap()
            .get(branch)
            .cloned()
            .ok_or_else(|| AwsError::client("BranchDoesNotExistException", branch))
    }
    async fn commit(
        &self,
        _: &RequestContext,
        _repo: &str,
        commit_id: &str,
    ) -> AwsResult<CommitInfo> {
        let message = self
            .messages
            .lock()
            .unwrap()
            .get(commit_id)
            .cloned()
            .ok_or_else(|| AwsError::client("CommitDoesNotExistException", commit_id))?;
        let t = codeyard_core::time::now();
        Ok(CommitInfo {
            commit_id: commit_id.into(),
            message,
            author_name: "dev".into(),
            author_date: t,
            committer_date: t,
        })
    }
    async fn export_zip(
        &self,
        _: &RequestContext,
        _repo: &str,
        commit_id: &str,
        dest: &Path,
    ) -> AwsResult<()> {
        std::fs::write(
            dest,
            zip_bytes(&[("README.md", commit_id), ("src/Main.java", "class Main {}")]),
        )?;
        Ok(())
    }
}

struct FakeBuild {
    request: PipelineBuildRequest,
    started: Instant,
    fail: bool,
}

/// Builds take `delay`; project "fail" fails; project "flaky" fails on its first build only.
pub struct FakeBuilds {
    objects: Arc<FakeObjects>,
    delay: Duration,
    builds: Mutex<HashMap<String, FakeBuild>>,
    stopped: Mutex<Vec<String>>,
    flaky_seen: Mutex<bool>,
}

impl FakeBuilds {
    fn requests(&self) -> Vec<PipelineBuildRequest> {
        self.builds
            .lock()
            .unwrap()
            .values()
            .map(|b| b.request.clone())
            .collect()
    }
    fn running(&self) -> usize {
        self.builds
            .lock()
            .unwrap()
            .values()
            .filter(|b| b.started.elapsed() < self.delay)
            .count()
    }
}

#[async_trait]
impl BuildRunner for FakeBuilds {
    async fn start_pipeline_build(
        &self,
        ctx: &RequestContext,
        request: PipelineBuildRequest,
    ) -> AwsResult<BuildOutcome> {
        let id = format!("{}:{}", request.project_name, codeyard_core::ids::uuid());
        let fail = match request.project_name.as_str() {
            "fail" => true,
            "flaky" => {
                let mut seen = self.flaky_seen.lock().unwrap();
                let first = !*seen;
                *seen = true;
                first
            }
            _ => false,
        };
        self.builds.lock().unwrap().insert(
            id.clone(),
            FakeBuild {
                request,
                started: Instant::now(),
                fail,
            },
        );
        self.build_outcome(ctx, &id).await
    }
    async fn build_outcome(&self, _: &RequestContext, build_id: &str) -> AwsResult<BuildOutcome> {
        let b = self.builds.lock().unwrap();
        let build = b
            .get(build_id)
            .ok_or_else(|| AwsError::client("ResourceNotFoundException", build_id))?;
        let done = build.started.elapsed() >= self.delay;
        let status = match (done, build.fail) {
            (false, _) => "IN_PROGRESS",
            (true, true) => "FAILED",
            (true, false) => "SUCCEEDED",
        };
        if status == "SUCCEEDED" {
            for o in &build.request.outputs {
                if self.objects.head_object_sync(&o.bucket, &o.key).is_none() {
                    self.objects.put_bytes(
                        &o.bucket,
                        &o.key,
                        &zip_bytes(&[("target/app.jar", "jar")]),
                    );
                }
            }
        }
        Ok(BuildOutcome {
            build_id: build_id.into(),
            build_arn: format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:build/{build_id}"),
            status: status.into(),
            exported_variables: vec![("IMAGE_TAG".into(), "v1".into())],
            message: build
                .fail
                .then(|| "Phase BUILD failed: command 'mvn test' exited with 1".to_string()),
            log_url: None,
        })
    }
    async fn stop_build(&self, _: &RequestContext, build_id: &str) -> AwsResult<()> {
        self.stopped.lock().unwrap().push(build_id.into());
        Ok(())
    }
}

impl FakeObjects {
    fn head_object_sync(&self, bucket: &str, key: &str) -> Option<ObjectInfo> {
        self.objects
            .lock()
            .unwrap()
            .get(&(bucket.to_string(), key.to_string()))
            .map(|e| e.1.clone())
    }
}

pub struct Rig {
    pub svc: CodePipelineService,
    pub engine: Arc<Engine>,
    pub git: Arc<FakeGit>,
    pub objects: Arc<FakeObjects>,
    pub builds: Arc<FakeBuilds>,
    pub platform: Platform,
    _dir: Arc<tempfile::TempDir>,
}

impl Rig {
    pub async fn new(build_delay: Duration) -> Rig {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let objects = Arc::new(FakeObjects {
            dir: dir.path().to_path_buf(),
            ..Default::default()
        });
        let git = Arc::new(FakeGit::default());
        git.push("main", "initial commit");
        let builds = Arc::new(FakeBuilds {
            objects: objects.clone(),
            delay: build_delay,
            builds: Mutex::new(HashMap::new()),
            stopped: Mutex::new(Vec::new()),
            flaky_seen: Mutex::new(false),
        });
        Self::on(dir, objects, git, builds).await
    }

    /// A second engine on the same data dir and fakes (a restart).
    pub async fn restart(self) -> Rig {
        self.platform.shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
        Self::on(
            self._dir.clone(),
            self.objects.clone(),
            self.git.clone(),
            self.builds.clone(),
        )
        .await
    }

    async fn on(
        dir: Arc<tempfile::TempDir>,
        objects: Arc<FakeObjects>,
        git: Arc<FakeGit>,
        builds: Arc<FakeBuilds>,
    ) -> Rig {
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("state.db"))
                .await
                .unwrap(),
        );
        let hub = Arc::new(Hub::default());
        hub.set_objects(objects.clone());
        hub.set_git(git.clone());
        hub.set_builds(builds.clone());
        let config = Arc::new(ServerConfig {
            data_dir: dir.path().to_path_buf(),
            public_endpoint: "http://localhost:4566".into(),
            auth: AuthMode::Open,
            access_keys: Vec::new(),
            build_concurrency: 4,
            strict_models: true,
        });
        let platform = Platform {
            store,
            hub: hub.clone(),
            auth: Arc::new(Authenticator::new(&config, hub)),
            config,
            shutdown: tokio_util::sync::CancellationToken::new(),
        };
        let mut engine = Engine::new(platform.clone());
        Arc::get_mut(&mut engine).unwrap().build_poll = Duration::from_millis(20);
        engine.spawn_workers();
        Rig {
            svc: CodePipelineService {
                engine: engine.clone(),
            },
            engine,
            git,
            objects,
            builds,
            platform,
            _dir: dir,
        }
    }

    pub fn ctx(&self) -> RequestContext {
        RequestContext::internal(ACCOUNT, REGION, "http://localhost:4566")
    }

    pub async fn call(&self, op: &str, input: Value) -> AwsResult<Value> {
        self.svc.call(&self.ctx(), op, input).await
    }

    pub async fn exec(&self, pipeline: &str, id: &str) -> Execution {
        self.engine
            .execution(ACCOUNT, REGION, pipeline, id)
            .await
            .unwrap()
            .unwrap()
            .0
    }

    pub async fn executions(&self, pipeline: &str) -> Vec<Execution> {
        self.engine
            .executions(ACCOUNT, REGION, pipeline)
            .await
            .unwrap()
            .into_iter()
            .map(|(e, _)| e)
            .collect()
    }

    /// Waits until `pred` holds for the execution (10 s at most).
    pub async fn wait(
        &self,
        pipeline: &str,
        id: &str,
        pred: impl Fn(&Execution) -> bool,
    ) -> Execution {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let e = self.exec(pipeline, id).await;
            if pred(&e) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting; execution is {e:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_all_terminal(&self, pipeline: &str) -> Vec<Execution> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let all = self.executions(pipeline).await;
            if all.iter().all(|e| e.is_terminal()) {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "timed out: {:?}",
                all.iter().map(|e| &e.status).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn source_stage() -> Value {
    json!({"name": "Source", "actions": [{
        "name": "Source", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "outputArtifacts": [{"name": "source-artifact"}], "namespace": "SourceVariables",
        "configuration": {"RepositoryName": "repo", "BranchName": "main", "PollForSourceChanges": "false"}
    }]})
}

fn build_action(name: &str, project: &str, run_order: i64, output: Option<&str>) -> Value {
    let mut a = json!({
        "name": name, "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "runOrder": run_order, "inputArtifacts": [{"name": "source-artifact"}],
        "configuration": {"ProjectName": project,
            "EnvironmentVariables": "[{\"name\":\"COMMIT\",\"value\":\"#{SourceVariables.CommitId}\",\"type\":\"PLAINTEXT\"},{\"name\":\"EXEC\",\"value\":\"#{codepipeline.PipelineExecutionId}\"}]"}
    });
    if let Some(o) = output {
        a["outputArtifacts"] = json!([{"name": o}]);
    }
    a
}

fn pipeline(name: &str, mode: &str, stages: Vec<Value>) -> Value {
    let pipeline_type = if mode == "SUPERSEDED" { "V1" } else { "V2" };
    json!({"pipeline": {
        "name": name, "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/pipeline"),
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "executionMode": mode, "pipelineType": pipeline_type, "stages": stages,
    }})
}

fn seed_like(name: &str, project: &str) -> Value {
    pipeline(
        name,
        "SUPERSEDED",
        vec![
            source_stage(),
            json!({"name": "BuildAndTest", "actions": [
                build_action("BuildAndTest", project, 1, Some("app-jar-artifact")),
                {"name": "UploadJar", "runOrder": 2,
                 "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
                 "inputArtifacts": [{"name": "app-jar-artifact"}],
                 "configuration": {"BucketName": "deploy", "Extract": "true", "ObjectKey": "app-jar", "CacheControl": "max-age=60"}}
            ]}),
            json!({"name": "Docker", "actions": [build_action("BuildDockerImage", "docker", 1, None)]}),
        ],
    )
}

async fn only_execution(rig: &Rig, name: &str) -> String {
    let list = rig
        .call("ListPipelineExecutions", json!({"pipelineName": name}))
        .await
        .unwrap();
    list["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_pipeline_runs_source_build_and_deploy() {
    let rig = Rig::new(Duration::from_millis(50)).await;
    let head = rig.git.heads.lock().unwrap()["main"].clone();
    rig.call("CreatePipeline", seed_like("seed", "build"))
        .await
        .unwrap();
    let id = only_execution(&rig, "seed").await;
    let e = rig.wait("seed", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, status::SUCCEEDED, "{e:#?}");
    assert_eq!(e.trigger_type, "CreatePipeline");
    assert_eq!(e.source_revisions[0].revision_id, head);
    assert_eq!(
        e.source_revisions[0].revision_summary.as_deref(),
        Some("initial commit")
    );
    // The source zip has the commit's files, under the AWS key layout.
    let src = &e.artifacts["source-artifact"].location;
    assert_eq!(src.bucket, "artifacts");
    let parts: Vec<&str> = src.key.split('/').collect();
    assert_eq!(
        (parts[0], parts[1], parts[2].len()),
        ("seed", "source-art", 7)
    );
    assert!(
        unzip_names(&rig.objects.read("artifacts", &src.key).unwrap())
            .contains(&"src/Main.java".to_string())
    );
    // The deploy unzipped the build's artifact under the prefix.
    assert_eq!(
        rig.objects.keys("deploy"),
        vec!["app-jar/target/app.jar".to_string()]
    );
    let cache = rig.objects.objects.lock().unwrap()
        [&("deploy".to_string(), "app-jar/target/app.jar".to_string())]
        .2
        .cache_control
        .clone();
    assert_eq!(cache.as_deref(), Some("max-age=60"));
    // Variables resolved in the build's configuration.
    let reqs = rig.builds.requests();
    let build = reqs.iter().find(|r| r.project_name == "build").unwrap();
    assert!(build.environment_variables.contains(&(
        "COMMIT".into(),
        head.clone(),
        "PLAINTEXT".into()
    )));
    assert!(
        build
            .environment_variables
            .contains(&("EXEC".into(), id.clone(), "PLAINTEXT".into()))
    );
    assert_eq!(build.source_revision.as_deref(), Some(head.as_str()));
    assert_eq!(build.initiator, "codepipeline/seed");
    // ListActionExecutions: build id as external id, S3 locations, resolved configuration.
    let acts = rig
        .call(
            "ListActionExecutions",
            json!({"pipelineName": "seed", "filter": {"pipelineExecutionId": id}}),
        )
        .await
        .unwrap();
    let details = acts["actionExecutionDetails"].as_array().unwrap();
    assert_eq!(details.len(), 4);
    let b = details
        .iter()
        .find(|d| d["actionName"] == "BuildAndTest")
        .unwrap();
    assert!(
        b["output"]["executionResult"]["externalExecutionId"]
            .as_str()
            .unwrap()
            .starts_with("build:")
    );
    assert_eq!(
        b["input"]["inputArtifacts"][0]["s3location"]["key"],
        json!(src.key)
    );
    assert_eq!(b["input"]["resolvedConfiguration"]["ProjectName"], "build");
    let s = details
        .iter()
        .find(|d| d["actionName"] == "Source")
        .unwrap();
    assert_eq!(s["output"]["outputVariables"]["CommitId"], json!(head));
    // State shows every stage succeeded by this execution.
    let state = rig
        .call("GetPipelineState", json!({"name": "seed"}))
        .await
        .unwrap();
    for st in state["stageStates"].as_array().unwrap() {
        assert_eq!(st["latestExecution"]["status"], "Succeeded");
        assert_eq!(st["latestExecution"]["pipelineExecutionId"], json!(id));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_action_fails_execution_and_retry_resumes() {
    let rig = Rig::new(Duration::from_millis(30)).await;
    rig.call("CreatePipeline", seed_like("flaky", "flaky"))
        .await
        .unwrap();
    let id = only_execution(&rig, "flaky").await;
    let e = rig.wait("flaky", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, status::FAILED);
    assert!(
        e.status_summary.as_deref().unwrap().contains("mvn test"),
        "{:?}",
        e.status_summary
    );
    assert_eq!(
        e.stage("BuildAndTest").status.as_deref(),
        Some(status::FAILED)
    );
    assert!(
        e.stage("Docker").status.is_none(),
        "later stages must not run"
    );
    assert!(rig.objects.keys("deploy").is_empty());
    // A stage that did not fail cannot be retried.
    let err = rig
        .call("RetryStageExecution", json!({"pipelineName": "flaky", "stageName": "Source", "pipelineExecutionId": id, "retryMode": "FAILED_ACTIONS"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "StageNotRetryableException");
    rig.call("RetryStageExecution", json!({"pipelineName": "flaky", "stageName": "BuildAndTest", "pipelineExecutionId": id, "retryMode": "FAILED_ACTIONS"}))
        .await
        .unwrap();
    let e = rig.wait("flaky", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, status::SUCCEEDED, "{e:#?}");
    assert_eq!(
        rig.objects.keys("deploy"),
        vec!["app-jar/target/app.jar".to_string()]
    );
    // Both runs of the build are listed.
    let acts = rig
        .call("ListActionExecutions", json!({"pipelineName": "flaky"}))
        .await
        .unwrap();
    let builds: Vec<&Value> = acts["actionExecutionDetails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["actionName"] == "BuildAndTest")
        .collect();
    assert_eq!(builds.len(), 2);
    assert_eq!(builds[0]["status"], "Succeeded");
    assert_eq!(builds[1]["status"], "Failed");
}

fn two_stage(name: &str, mode: &str) -> Value {
    pipeline(
        name,
        mode,
        vec![
            source_stage(),
            json!({"name": "Build", "actions": [build_action("Build", "build", 1, None)]}),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn superseded_mode_drops_older_waiting_executions() {
    let rig = Rig::new(Duration::from_millis(600)).await;
    rig.call("CreatePipeline", two_stage("sup", "SUPERSEDED"))
        .await
        .unwrap();
    let first = only_execution(&rig, "sup").await;
    rig.wait("sup", &first, |e| e.stage("Build").status.is_some())
        .await;
    let second = rig
        .call("StartPipelineExecution", json!({"name": "sup"}))
        .await
        .unwrap()["pipelineExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    rig.wait("sup", &second, |e| {
        e.stage("Source").status.as_deref() == Some(status::SUCCEEDED)
    })
    .await;
    let third = rig
        .call("StartPipelineExecution", json!({"name": "sup"}))
        .await
        .unwrap()["pipelineExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    let all = rig.wait_all_terminal("sup").await;
    let st = |id: &str| all.iter().find(|e| e.id == id).unwrap().status.clone();
    assert_eq!(st(&first), status::SUCCEEDED);
    assert_eq!(st(&second), status::SUPERSEDED);
    assert_eq!(st(&third), status::SUCCEEDED);
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_mode_runs_all_in_order_and_parallel_overlaps() {
    let rig = Rig::new(Duration::from_millis(200)).await;
    rig.call("CreatePipeline", two_stage("q", "QUEUED"))
        .await
        .unwrap();
    for _ in 0..2 {
        rig.call("StartPipelineExecution", json!({"name": "q"}))
            .await
            .unwrap();
    }
    let all = rig.wait_all_terminal("q").await;
    assert!(
        all.iter().all(|e| e.status == status::SUCCEEDED),
        "{:?}",
        all.iter().map(|e| &e.status).collect::<Vec<_>>()
    );
    // One build at a time: build stage entries do not overlap, in start order.
    let mut entries: Vec<_> = all
        .iter()
        .map(|e| (e.seq, e.stage("Build").entered_at.unwrap()))
        .collect();
    entries.sort();
    assert!(
        entries
            .windows(2)
            .all(|w| w[1].1 >= w[0].1 + chrono::Duration::milliseconds(200))
    );

    rig.call("CreatePipeline", two_stage("par", "PARALLEL"))
        .await
        .unwrap();
    for _ in 0..4 {
        rig.call("StartPipelineExecution", json!({"name": "par"}))
            .await
            .unwrap();
    }
    let mut max_running = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        max_running = max_running.max(rig.builds.running());
        let all = rig.executions("par").await;
        if all.iter().all(|e| e.is_terminal()) {
            assert!(all.iter().all(|e| e.status == status::SUCCEEDED));
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        max_running >= 3,
        "parallel executions overlap, saw at most {max_running} builds at once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn approval_and_disabled_transition_hold_the_execution() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    let p = pipeline(
        "appr",
        "SUPERSEDED",
        vec![
            source_stage(),
            json!({"name": "Approve", "actions": [{"name": "Manual",
                "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
                "configuration": {"CustomData": "ship it?"}}]}),
            json!({"name": "Build", "actions": [build_action("Build", "build", 1, None)]}),
        ],
    );
    rig.call("CreatePipeline", p).await.unwrap();
    let id = only_execution(&rig, "appr").await;
    rig.call("DisableStageTransition", json!({"pipelineName": "appr", "stageName": "Build", "transitionType": "Inbound", "reason": "freeze"}))
        .await
        .unwrap();
    let e = rig
        .wait("appr", &id, |e| {
            e.current_run("Approve", "Manual").is_some()
        })
        .await;
    let token = e
        .current_run("Approve", "Manual")
        .unwrap()
        .token
        .clone()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rig.exec("appr", &id).await.status, status::IN_PROGRESS);
    let state = rig
        .call("GetPipelineState", json!({"name": "appr"}))
        .await
        .unwrap();
    assert_eq!(
        state["stageStates"][1]["actionStates"][0]["latestExecution"]["token"],
        json!(token)
    );
    assert_eq!(
        state["stageStates"][2]["inboundTransitionState"]["enabled"],
        json!(false)
    );
    let bad = rig
        .call("PutApprovalResult", json!({"pipelineName": "appr", "stageName": "Approve", "actionName": "Manual",
            "result": {"summary": "ok", "status": "Approved"}, "token": "00000000-0000-0000-0000-000000000000"}))
        .await
        .unwrap_err();
    assert_eq!(bad.code, "InvalidApprovalTokenException");
    let ok = rig
        .call(
            "PutApprovalResult",
            json!({"pipelineName": "appr", "stageName": "Approve", "actionName": "Manual",
            "result": {"summary": "ok", "status": "Approved"}, "token": token}),
        )
        .await
        .unwrap();
    assert!(ok["approvedAt"].is_number());
    // Approved, but the disabled transition holds it before Build.
    let e = rig
        .wait("appr", &id, |e| {
            e.stage("Approve").status.as_deref() == Some(status::SUCCEEDED)
        })
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        rig.exec("appr", &id).await.stage("Build").status.is_none(),
        "{e:#?}"
    );
    let state = rig
        .call("GetPipelineState", json!({"name": "appr"}))
        .await
        .unwrap();
    assert_eq!(
        state["stageStates"][2]["inboundExecution"]["pipelineExecutionId"],
        json!(id)
    );
    rig.call(
        "EnableStageTransition",
        json!({"pipelineName": "appr", "stageName": "Build", "transitionType": "Inbound"}),
    )
    .await
    .unwrap();
    let e = rig.wait("appr", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, status::SUCCEEDED);
    let again = rig
        .call(
            "PutApprovalResult",
            json!({"pipelineName": "appr", "stageName": "Approve", "actionName": "Manual",
            "result": {"summary": "ok", "status": "Approved"}, "token": token}),
        )
        .await
        .unwrap_err();
    assert_eq!(again.code, "ApprovalAlreadyCompletedException");
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_with_abandon_stops_the_build_and_the_execution() {
    let rig = Rig::new(Duration::from_secs(30)).await;
    rig.call("CreatePipeline", two_stage("stop", "SUPERSEDED"))
        .await
        .unwrap();
    let id = only_execution(&rig, "stop").await;
    rig.wait("stop", &id, |e| {
        e.current_run("Build", "Build")
            .is_some_and(|r| r.external_execution_id.is_some())
    })
    .await;
    rig.call("StopPipelineExecution", json!({"pipelineName": "stop", "pipelineExecutionId": id, "abandon": true, "reason": "enough"}))
        .await
        .unwrap();
    let e = rig.wait("stop", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, status::STOPPED);
    assert_eq!(
        e.current_run("Build", "Build").unwrap().status,
        status::ABANDONED
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(rig.builds.stopped.lock().unwrap().len(), 1);
    let err = rig
        .call(
            "StopPipelineExecution",
            json!({"pipelineName": "stop", "pipelineExecutionId": id}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "PipelineExecutionNotStoppableException");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_build_is_followed_again_after_a_restart() {
    let rig = Rig::new(Duration::from_millis(1500)).await;
    rig.call("CreatePipeline", seed_like("restart", "build"))
        .await
        .unwrap();
    let id = only_execution(&rig, "restart").await;
    rig.wait("restart", &id, |e| {
        e.current_run("BuildAndTest", "BuildAndTest")
            .is_some_and(|r| r.external_execution_id.is_some())
    })
    .await;
    let rig = rig.restart().await;
    let e = rig.wait("restart", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, status::SUCCEEDED, "{e:#?}");
    // The build was not started twice.
    assert_eq!(
        rig.builds
            .requests()
            .iter()
            .filter(|r| r.project_name == "build")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn variables_namespaces_and_idempotent_start() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    let mut p = pipeline(
        "vars",
        "QUEUED",
        vec![
            source_stage(),
            json!({"name": "Build", "actions": [{
                "name": "Build", "namespace": "BuildVariables",
                "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                "inputArtifacts": [{"name": "source-artifact"}],
                "configuration": {"ProjectName": "build",
                    "EnvironmentVariables": "[{\"name\":\"ENV\",\"value\":\"#{variables.env}\",\"type\":\"PLAINTEXT\"}]"}}]}),
            json!({"name": "Deploy", "actions": [{
                "name": "Deploy",
                "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                "inputArtifacts": [{"name": "source-artifact"}],
                "configuration": {"ProjectName": "deploy-#{BuildVariables.IMAGE_TAG}"}}]}),
        ],
    );
    p["pipeline"]["variables"] = json!([{"name": "env", "defaultValue": "dev"}]);
    rig.call("CreatePipeline", p).await.unwrap();
    let first = only_execution(&rig, "vars").await;
    rig.wait("vars", &first, |e| e.is_terminal()).await;
    let start = json!({"name": "vars", "clientRequestToken": "tok-1", "variables": [{"name": "env", "value": "prod"}]});
    let a = rig
        .call("StartPipelineExecution", start.clone())
        .await
        .unwrap();
    let b = rig.call("StartPipelineExecution", start).await.unwrap();
    assert_eq!(a, b, "the same clientRequestToken gives the same execution");
    let id = a["pipelineExecutionId"].as_str().unwrap();
    let e = rig.wait("vars", id, |e| e.is_terminal()).await;
    assert_eq!(e.status, status::SUCCEEDED, "{e:#?}");
    let got = rig
        .call(
            "GetPipelineExecution",
            json!({"pipelineName": "vars", "pipelineExecutionId": id}),
        )
        .await
        .unwrap();
    assert_eq!(
        got["pipelineExecution"]["variables"],
        json!([{"name": "env", "resolvedValue": "prod"}])
    );
    assert_eq!(
        got["pipelineExecution"]["trigger"]["triggerType"],
        "StartPipelineExecution"
    );
    let reqs = rig.builds.requests();
    assert!(reqs.iter().any(|r| r.environment_variables.contains(&(
        "ENV".into(),
        "prod".into(),
        "PLAINTEXT".into()
    ))));
    assert!(
        reqs.iter().any(|r| r.project_name == "deploy-v1"),
        "namespace variable resolved"
    );
    let undeclared = rig
        .call(
            "StartPipelineExecution",
            json!({"name": "vars", "variables": [{"name": "nope", "value": "x"}]}),
        )
        .await
        .unwrap_err();
    assert_eq!(undeclared.code, "ValidationException");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_for_the_branch_starts_the_pushed_commit() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    rig.call("CreatePipeline", two_stage("ev", "SUPERSEDED"))
        .await
        .unwrap();
    let first = only_execution(&rig, "ev").await;
    rig.wait("ev", &first, |e| e.is_terminal()).await;
    let pushed = rig.git.push("main", "second");
    rig.git.push("main", "third, pushed right after");
    rig.platform.hub.register_target(
        "codepipeline",
        Arc::new(crate::target::PipelineTarget {
            engine: rig.engine.clone(),
        }),
    );
    let invoker = rig.platform.hub.target("codepipeline").unwrap();
    let rule = format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/on-push");
    invoker
        .invoke(&TargetInvocation {
            account: ACCOUNT.into(),
            region: REGION.into(),
            target_arn: format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:ev"),
            role_arn: None,
            rule_arn: rule.clone(),
            input: json!({"detail": {"repositoryName": "repo", "referenceName": "main", "commitId": pushed, "event": "referenceUpdated"}}),
            endpoint: "http://localhost:4566".into(),
        })
        .await
        .unwrap();
    let list = rig
        .call("ListPipelineExecutions", json!({"pipelineName": "ev"}))
        .await
        .unwrap();
    let newest = &list["pipelineExecutionSummaries"][0];
    assert_eq!(
        newest["trigger"],
        json!({"triggerType": "CloudWatchEvent", "triggerDetail": rule})
    );
    let e = rig
        .wait("ev", newest["pipelineExecutionId"].as_str().unwrap(), |e| {
            e.is_terminal()
        })
        .await;
    assert_eq!(e.source_revisions[0].revision_id, pushed);
    let list = rig
        .call("ListPipelineExecutions", json!({"pipelineName": "ev"}))
        .await
        .unwrap();
    assert_eq!(
        list["pipelineExecutionSummaries"][0]["sourceRevisions"][0]["revisionSummary"],
        "second"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_starts_an_execution_on_a_new_commit() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    let mut p = two_stage("poll", "SUPERSEDED");
    p["pipeline"]["stages"][0]["actions"][0]["configuration"]
        .as_object_mut()
        .unwrap()
        .remove("PollForSourceChanges");
    rig.call("CreatePipeline", p).await.unwrap();
    rig.wait_all_terminal("poll").await;
    crate::poller::poll_all(&rig.engine).await.unwrap();
    assert_eq!(
        rig.executions("poll").await.len(),
        1,
        "the first look only records the head"
    );
    rig.git.push("main", "new work");
    crate::poller::poll_all(&rig.engine).await.unwrap();
    let all = rig.wait_all_terminal("poll").await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].trigger_type, "PollForSourceChanges");
    assert_eq!(
        all[1].source_revisions[0].revision_summary.as_deref(),
        Some("new work")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn structure_is_validated_as_aws_does() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    let code = |r: AwsResult<Value>| r.unwrap_err().code;
    let one_stage = pipeline("bad", "SUPERSEDED", vec![source_stage()]);
    assert_eq!(
        code(rig.call("CreatePipeline", one_stage).await),
        "InvalidStructureException"
    );
    let source_late = pipeline(
        "bad",
        "SUPERSEDED",
        vec![source_stage(), source_stage_named("Again")],
    );
    assert_eq!(
        code(rig.call("CreatePipeline", source_late).await),
        "InvalidStructureException"
    );
    let build_first = pipeline(
        "bad",
        "SUPERSEDED",
        vec![
            json!({"name": "B", "actions": [build_action("B", "p", 1, None)]}),
            source_stage(),
        ],
    );
    assert_eq!(
        code(rig.call("CreatePipeline", build_first).await),
        "InvalidStructureException"
    );
    let mut dup = seed_like("bad", "p");
    dup["pipeline"]["stages"][1]["actions"][0]["outputArtifacts"] =
        json!([{"name": "source-artifact"}]);
    assert_eq!(
        code(rig.call("CreatePipeline", dup).await),
        "InvalidStructureException"
    );
    let mut missing_input = seed_like("bad", "p");
    missing_input["pipeline"]["stages"][1]["actions"][1]["runOrder"] = json!(1);
    assert_eq!(
        code(rig.call("CreatePipeline", missing_input).await),
        "InvalidStructureException"
    );
    let mut unknown = seed_like("bad", "p");
    unknown["pipeline"]["stages"][1]["actions"][0]["actionTypeId"]["provider"] = json!("Jenkins");
    assert_eq!(
        code(rig.call("CreatePipeline", unknown).await),
        "InvalidStructureException"
    );
    let mut no_project = seed_like("bad", "p");
    no_project["pipeline"]["stages"][1]["actions"][0]["configuration"] = json!({});
    let e = rig.call("CreatePipeline", no_project).await.unwrap_err();
    assert_eq!(e.code, "InvalidActionDeclarationException");
    assert!(e.message.contains("ProjectName"));
    let mut v1_queued = seed_like("bad", "p");
    v1_queued["pipeline"]["executionMode"] = json!("QUEUED");
    assert_eq!(
        code(rig.call("CreatePipeline", v1_queued).await),
        "InvalidStructureException"
    );
    let mut bad_ref = seed_like("bad", "p");
    bad_ref["pipeline"]["stages"][1]["actions"][0]["configuration"]["ProjectName"] =
        json!("#{Nope.X}");
    assert_eq!(
        code(rig.call("CreatePipeline", bad_ref).await),
        "InvalidActionDeclarationException"
    );
    assert!(rig.executions("bad").await.is_empty());
    assert_eq!(
        code(rig.call("GetPipeline", json!({"name": "bad"})).await),
        "PipelineNotFoundException"
    );
}

fn source_stage_named(name: &str) -> Value {
    let mut s = source_stage();
    s["name"] = json!(name);
    s["actions"][0]["outputArtifacts"] = json!([{"name": "other"}]);
    s["actions"][0]["namespace"] = json!("Other");
    s
}

/// The engine's own cost (bench/codepipeline runs this with `--ignored --nocapture` in release
/// mode): a 3-stage, 4-action pipeline whose builds finish at once, and 100 executions at once
/// in PARALLEL mode. Providers are the in-memory fakes, so the figures are the engine's
/// scheduling, store commits and artifact handling only.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn bench_engine_overhead() {
    let rig = Rig::new(Duration::ZERO).await;
    let stages = |mode: &str, name: &str| {
        pipeline(
            name,
            mode,
            vec![
                source_stage(),
                json!({"name": "Build", "actions": [build_action("Build", "build", 1, Some("built"))]}),
                json!({"name": "Ship", "actions": [
                    build_action("Test", "test", 1, None),
                    {"name": "Deploy", "runOrder": 1,
                     "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
                     "inputArtifacts": [{"name": "built"}],
                     "configuration": {"BucketName": "deploy", "Extract": "true", "ObjectKey": "site"}}
                ]}),
            ],
        )
    };
    rig.call("CreatePipeline", stages("SUPERSEDED", "bench"))
        .await
        .unwrap();
    rig.wait_all_terminal("bench").await;
    let mut walls = Vec::new();
    for _ in 0..10 {
        let t0 = Instant::now();
        let id = rig
            .call("StartPipelineExecution", json!({"name": "bench"}))
            .await
            .unwrap()["pipelineExecutionId"]
            .as_str()
            .unwrap()
            .to_string();
        let e = rig.wait("bench", &id, |e| e.is_terminal()).await;
        assert_eq!(e.status, status::SUCCEEDED);
        walls.push(t0.elapsed());
    }
    walls.sort();
    println!(
        "BENCH single execution (3 stages, 4 actions, builds take 0 s): median {:?}, min {:?}, max {:?}",
        walls[5], walls[0], walls[9]
    );

    rig.call("CreatePipeline", stages("PARALLEL", "bench-par"))
        .await
        .unwrap();
    rig.wait_all_terminal("bench-par").await;
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..100 {
        let svc = CodePipelineService {
            engine: rig.engine.clone(),
        };
        let ctx = rig.ctx();
        handles.push(tokio::spawn(async move {
            svc.call(&ctx, "StartPipelineExecution", json!({"name": "bench-par"}))
                .await
                .unwrap()
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let started = t0.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let all = rig.executions("bench-par").await;
        if all.iter().all(|e| e.is_terminal()) {
            assert!(all.iter().all(|e| e.status == status::SUCCEEDED));
            assert_eq!(all.len(), 101);
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "BENCH 100 executions at once (PARALLEL): all started in {started:?}, all succeeded after {:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changes_are_published_on_the_default_bus() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    rig.call("CreatePipeline", two_stage("evts", "SUPERSEDED"))
        .await
        .unwrap();
    rig.wait_all_terminal("evts").await;
    let items = rig
        .platform
        .store
        .lease(
            codeyard_core::hub::EVENTS_INGRESS_QUEUE,
            1000,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let events: Vec<BusEvent> = items
        .iter()
        .map(|i| serde_json::from_value(i.payload.clone()).unwrap())
        .collect();
    let states = |dt: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.event["detail-type"] == dt)
            .map(|e| {
                let d = &e.event["detail"];
                format!(
                    "{}{}{}",
                    d["stage"].as_str().unwrap_or(""),
                    d["action"]
                        .as_str()
                        .map(|a| format!("/{a}"))
                        .unwrap_or_default(),
                    format_args!(":{}", d["state"].as_str().unwrap())
                )
            })
            .collect()
    };
    assert_eq!(
        states("CodePipeline Pipeline Execution State Change"),
        vec![":STARTED", ":SUCCEEDED"]
    );
    assert_eq!(
        states("CodePipeline Stage Execution State Change"),
        vec![
            "Source:STARTED",
            "Source:SUCCEEDED",
            "Build:STARTED",
            "Build:SUCCEEDED"
        ]
    );
    assert_eq!(
        states("CodePipeline Action Execution State Change"),
        vec![
            "Source/Source:STARTED",
            "Source/Source:SUCCEEDED",
            "Build/Build:STARTED",
            "Build/Build:SUCCEEDED"
        ]
    );
    let e = &events[0];
    assert_eq!(
        (e.bus.as_str(), e.event["source"].as_str().unwrap()),
        ("default", "aws.codepipeline")
    );
    assert_eq!(
        e.event["resources"][0],
        format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:evts")
    );
    assert_eq!(
        e.event["detail"]["execution-trigger"]["trigger-type"],
        "CreatePipeline"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trap_check_reads_enabled_rules_targeting_the_pipeline() {
    let rig = Rig::new(Duration::from_millis(10)).await;
    rig.call("CreatePipeline", two_stage("trap", "SUPERSEDED"))
        .await
        .unwrap();
    let arn = format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:trap");
    let decl = rig
        .engine
        .pipeline(ACCOUNT, REGION, "trap")
        .await
        .unwrap()
        .unwrap()
        .0
        .declaration;
    assert_eq!(
        crate::doctor::silent_sources(&decl),
        vec!["Source".to_string()]
    );
    assert!(!crate::doctor::rule_targets(&rig.engine, ACCOUNT, REGION, &arn).await);
    let rules = format!("events/{ACCOUNT}/{REGION}/rules");
    let rule = |state: &str| json!({"name": "on-push", "state": state, "targets": [{"Id": "p", "Arn": arn}]});
    use codeyard_store::StateStoreExt;
    rig.platform
        .store
        .put_as(&rules, "default/on-push", &rule("DISABLED"))
        .await
        .unwrap();
    assert!(!crate::doctor::rule_targets(&rig.engine, ACCOUNT, REGION, &arn).await);
    rig.platform
        .store
        .put_as(&rules, "default/on-push", &rule("ENABLED"))
        .await
        .unwrap();
    assert!(crate::doctor::rule_targets(&rig.engine, ACCOUNT, REGION, &arn).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_lets_running_actions_finish_then_retry_all_actions_reruns_the_stage() {
    let rig = Rig::new(Duration::from_millis(400)).await;
    rig.call("CreatePipeline", seed_like("soft", "build"))
        .await
        .unwrap();
    let id = only_execution(&rig, "soft").await;
    rig.wait("soft", &id, |e| {
        e.current_run("BuildAndTest", "BuildAndTest").is_some()
    })
    .await;
    rig.call(
        "StopPipelineExecution",
        json!({"pipelineName": "soft", "pipelineExecutionId": id, "reason": "later"}),
    )
    .await
    .unwrap();
    assert_eq!(rig.exec("soft", &id).await.status, status::STOPPING);
    let dup = rig
        .call(
            "StopPipelineExecution",
            json!({"pipelineName": "soft", "pipelineExecutionId": id}),
        )
        .await
        .unwrap_err();
    assert_eq!(dup.code, "DuplicatedStopRequestException");
    let e = rig.wait("soft", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, status::STOPPED);
    // The running build finished; the deploy after it did not start.
    assert_eq!(
        e.current_run("BuildAndTest", "BuildAndTest")
            .unwrap()
            .status,
        status::SUCCEEDED
    );
    assert!(e.current_run("BuildAndTest", "UploadJar").is_none());
    let list = rig
        .call("ListPipelineExecutions", json!({"pipelineName": "soft"}))
        .await
        .unwrap();
    assert_eq!(
        list["pipelineExecutionSummaries"][0]["stopTrigger"]["reason"],
        "later"
    );
    rig.call(
        "RetryStageExecution",
        json!({"pipelineName": "soft", "stageName": "BuildAndTest", "pipelineExecutionId": id, "retryMode": "ALL_ACTIONS"}),
    )
    .await
    .unwrap();
    let e = rig.wait("soft", &id, |e| e.is_terminal()).await;
    assert_eq!(e.status, status::SUCCEEDED, "{e:#?}");
    let builds = e.runs.iter().filter(|r| r.action == "BuildAndTest").count();
    assert_eq!(builds, 2, "ALL_ACTIONS runs the succeeded build again");
}
