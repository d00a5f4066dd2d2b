//! In-memory CodeCommit, S3 and CodeBuild behind the hub's interfaces.

use super::{ACCOUNT, REGION};
use async_trait::async_trait;
use codeyard_core::hub::*;
use codeyard_core::{AwsError, AwsResult, RequestContext};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// (file holding the bytes, metadata, the options it was written with)
pub type StoredObject = (PathBuf, ObjectInfo, PutObjectOptions);

#[derive(Default)]
pub struct FakeObjects {
    pub dir: PathBuf,
    pub objects: Mutex<HashMap<(String, String), StoredObject>>,
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

pub fn zip_bytes(files: &[(&str, &str)]) -> Vec<u8> {
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

pub fn unzip_names(bytes: &[u8]) -> Vec<String> {
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    (0..a.len())
        .map(|i| a.by_index(i).unwrap().name().to_string())
        .collect()
}

#[derive(Default)]
pub struct FakeGit {
    /// branch -> commit
    pub heads: Mutex<HashMap<String, String>>,
    pub messages: Mutex<HashMap<String, String>>,
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

pub struct FakeBuild {
    pub request: PipelineBuildRequest,
    pub started: Instant,
    pub fail: bool,
}

/// Builds take `delay`; project "fail" fails; project "flaky" fails on its first build only.
pub struct FakeBuilds {
    pub objects: Arc<FakeObjects>,
    pub delay: Duration,
    pub builds: Mutex<HashMap<String, FakeBuild>>,
    pub stopped: Mutex<Vec<String>>,
    pub flaky_seen: Mutex<bool>,
}

impl FakeBuilds {
    pub fn requests(&self) -> Vec<PipelineBuildRequest> {
        self.builds
            .lock()
            .unwrap()
            .values()
            .map(|b| b.request.clone())
            .collect()
    }
    pub fn running(&self) -> usize {
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
            (false, _) => BuildStatus::InProgress,
            (true, true) => BuildStatus::Failed,
            (true, false) => BuildStatus::Succeeded,
        };
        if status == BuildStatus::Succeeded {
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
            status,
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
    pub fn head_object_sync(&self, bucket: &str, key: &str) -> Option<ObjectInfo> {
        self.objects
            .lock()
            .unwrap()
            .get(&(bucket.to_string(), key.to_string()))
            .map(|e| e.1.clone())
    }
}

/// The content of `name` in a zip.
pub fn unzip_file(bytes: &[u8], name: &str) -> String {
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    std::io::read_to_string(a.by_name(name).unwrap()).unwrap()
}

/// ECR with one repository, `web`, whose `latest` tag names one image; other repositories
/// are missing, as ECR answers them.
pub struct FakeImages {
    pub image: ImageInfo,
}

impl Default for FakeImages {
    fn default() -> Self {
        FakeImages {
            image: ImageInfo {
                registry_id: ACCOUNT.into(),
                repository_name: "web".into(),
                repository_uri: format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web"),
                image_digest: format!("sha256:{}", "ab".repeat(32)),
                image_tags: vec!["latest".into(), "v7".into()],
                image_pushed_at: "2019-01-21T20:04:00Z".parse().unwrap(),
                image_size_in_bytes: 44728918,
                image_manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            },
        }
    }
}

#[async_trait]
impl ContainerImages for FakeImages {
    async fn image_by_tag(
        &self,
        _: &RequestContext,
        repository: &str,
        tag: &str,
    ) -> AwsResult<Option<ImageInfo>> {
        if repository != self.image.repository_name {
            return Err(AwsError::client(
                "RepositoryNotFoundException",
                format!("The repository with name '{repository}' does not exist"),
            ));
        }
        Ok(self
            .image
            .image_tags
            .iter()
            .any(|t| t == tag)
            .then(|| self.image.clone()))
    }
    async fn pull_spec(&self, _: &RequestContext, _: &str) -> AwsResult<Option<PullSpec>> {
        Ok(None)
    }
}

/// ECS behind the deploy action: each deployment is IN_PROGRESS for `polls` looks, then ends
/// as `outcome`; service "denied" answers 403, service "gone" ServiceNotFoundException.
pub struct FakeDeployer {
    pub polls: usize,
    pub outcome: Mutex<ServiceDeploymentState>,
    pub requests: Mutex<Vec<ServiceDeployRequest>>,
    pub looks: Mutex<HashMap<String, usize>>,
}

impl Default for FakeDeployer {
    fn default() -> Self {
        FakeDeployer {
            polls: 2,
            outcome: Mutex::new(ServiceDeploymentState::Completed),
            requests: Mutex::default(),
            looks: Mutex::default(),
        }
    }
}

#[async_trait]
impl ServiceDeployer for FakeDeployer {
    async fn deploy_images(
        &self,
        _: &RequestContext,
        request: &ServiceDeployRequest,
    ) -> AwsResult<ServiceDeployment> {
        match request.service.as_str() {
            "denied" => {
                return Err(AwsError::new(
                    403,
                    "AccessDeniedException",
                    "User: pipeline is not authorized to perform: ecs:UpdateService",
                ));
            }
            "gone" => return Err(AwsError::client("ServiceNotFoundException", "Service not found.")),
            _ => {}
        }
        let mut requests = self.requests.lock().unwrap();
        requests.push(request.clone());
        let n = requests.len() + 1;
        Ok(ServiceDeployment {
            deployment_id: format!("ecs-svc/{n:019}"),
            service_arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{}/{}", request.cluster, request.service),
            task_definition_arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{}:{n}", request.service),
        })
    }
    async fn deployment_state(
        &self,
        _: &RequestContext,
        _cluster: &str,
        _service: &str,
        deployment_id: &str,
    ) -> AwsResult<ServiceDeploymentState> {
        let mut looks = self.looks.lock().unwrap();
        let seen = looks.entry(deployment_id.to_string()).or_default();
        *seen += 1;
        if *seen <= self.polls {
            return Ok(ServiceDeploymentState::InProgress);
        }
        Ok(self.outcome.lock().unwrap().clone())
    }
}
