//! Engine tests against fake CodeCommit, S3 and CodeBuild registered on a real hub, with a
//! real SQLite store; the API is driven through `CodePipelineService::call`.
//!
//! [`fakes`] are the providers, [`Rig`] one engine over them, the builders below pipeline
//! declarations; [`runs`] covers executions (modes, approvals, stop, retry, restart) and
//! [`triggers`] what starts them and what they publish (events, polling, validation).

mod deploy;
mod fakes;
mod runs;
mod triggers;

use crate::api::CodePipelineService;
use crate::engine::Engine;
use crate::model::Execution;
use codeyard_core::hub::*;
use codeyard_core::{AwsResult, Hub, RequestContext};
use codeyard_store::SqliteStore;
use codeyard_wire::{AuthMode, Authenticator, Platform, ServerConfig};
use fakes::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ACCOUNT: &str = "000000000000";
pub const REGION: &str = "eu-west-1";

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

    /// Waits until the engine has handled every tick committed so far (its work queue counts
    /// leased items until they are acknowledged): the barrier before checking that something
    /// did not happen.
    pub async fn settled(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let queued = self
                .platform
                .store
                .queue_len(crate::engine::WORK_QUEUE)
                .await
                .unwrap();
            if queued == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "{queued} ticks still queued");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
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
            iam: codeyard_core::IamMode::Off,
            build_concurrency: 4,
            strict_models: true,
        });
        let platform = Platform {
            store,
            hub: hub.clone(),
            auth: Arc::new(Authenticator::new(&config, hub)),
            config,
            shutdown: tokio_util::sync::CancellationToken::new(),
            clock: Arc::new(codeyard_core::SystemClock),
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

    /// `op`, which must succeed; answers its output.
    pub async fn ok(&self, op: &str, input: Value) -> Value {
        self.call(op, input).await.unwrap_or_else(|e| panic!("{op}: {e:?}"))
    }

    /// `op`, which must fail; answers its error.
    pub async fn refused(&self, op: &str, input: Value) -> codeyard_core::AwsError {
        match self.call(op, input).await {
            Ok(out) => panic!("{op} succeeded: {out}"),
            Err(e) => e,
        }
    }

    /// CreatePipeline (which starts it); answers that first execution's id.
    pub async fn create(&self, decl: Value) -> String {
        let name = decl["pipeline"]["name"].as_str().unwrap().to_string();
        self.ok("CreatePipeline", decl).await;
        only_execution(self, &name).await
    }

    /// StartPipelineExecution of `name`; answers the execution's id.
    pub async fn start(&self, name: &str) -> String {
        let out = self.ok("StartPipelineExecution", json!({"name": name})).await;
        out["pipelineExecutionId"].as_str().unwrap().to_string()
    }

    pub async fn state(&self, name: &str) -> Value {
        self.ok("GetPipelineState", json!({"name": name})).await
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

pub fn source_stage() -> Value {
    json!({"name": "Source", "actions": [{
        "name": "Source", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "outputArtifacts": [{"name": "source-artifact"}], "namespace": "SourceVariables",
        "configuration": {"RepositoryName": "repo", "BranchName": "main", "PollForSourceChanges": "false"}
    }]})
}

pub fn build_action(name: &str, project: &str, run_order: i64, output: Option<&str>) -> Value {
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

pub fn pipeline(name: &str, mode: &str, stages: Vec<Value>) -> Value {
    let pipeline_type = if mode == "SUPERSEDED" { "V1" } else { "V2" };
    json!({"pipeline": {
        "name": name, "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/pipeline"),
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "executionMode": mode, "pipelineType": pipeline_type, "stages": stages,
    }})
}

pub fn seed_like(name: &str, project: &str) -> Value {
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

impl Rig {
    /// Creates the pipeline (which starts it) and waits until the build of `stage`/`action`
    /// has started; returns the execution id.
    pub async fn create_and_wait_for_build(
        &self,
        decl: Value,
        stage: &str,
        action: &str,
    ) -> String {
        let name = decl["pipeline"]["name"].as_str().unwrap().to_string();
        let id = self.create(decl).await;
        self.wait(&name, &id, |e| {
            e.current_run(stage, action)
                .is_some_and(|r| r.external_execution_id.is_some())
        })
        .await;
        id
    }
}

pub async fn only_execution(rig: &Rig, name: &str) -> String {
    let list = rig.ok("ListPipelineExecutions", json!({"pipelineName": name})).await;
    list["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn two_stage(name: &str, mode: &str) -> Value {
    pipeline(
        name,
        mode,
        vec![
            source_stage(),
            json!({"name": "Build", "actions": [build_action("Build", "build", 1, None)]}),
        ],
    )
}

pub fn source_stage_named(name: &str) -> Value {
    let mut s = source_stage();
    s["name"] = json!(name);
    s["actions"][0]["outputArtifacts"] = json!([{"name": "other"}]);
    s["actions"][0]["namespace"] = json!("Other");
    s
}
