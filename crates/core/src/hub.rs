//! How services call each other without depending on each other's crates.
//!
//! Each service registers the interfaces it provides on the shared [`Hub`] when the server
//! starts; callers look them up when they need them (so start-up order does not matter) and get
//! an AWS-shaped error if the provider is missing.
//!
//! Events do not go through the hub: a service raises an event by enqueueing a [`BusEvent`] on
//! the store's [`EVENTS_INGRESS_QUEUE`], in the same store commit as the state change that caused
//! it (an outbox), and the EventBridge crate drains that queue.

use crate::{AwsError, AwsResult, RequestContext, time::Timestamp};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

/// The durable queue (in the state store) that every event for an event bus goes through.
pub const EVENTS_INGRESS_QUEUE: &str = "events.ingress";

/// One event on its way to a bus. `event` is the full EventBridge event
/// (`version`, `id`, `detail-type`, `source`, `account`, `time`, `region`, `resources`, `detail`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BusEvent {
    pub account: String,
    pub region: String,
    /// Bus name (`default` for AWS service events).
    pub bus: String,
    pub event: Value,
}

impl BusEvent {
    /// An AWS service event for the account's and region's default bus, with a fresh id and time.
    pub fn aws_service_event(
        account: &str,
        region: &str,
        source: &str,
        detail_type: &str,
        resources: Vec<String>,
        detail: Value,
    ) -> BusEvent {
        let event = serde_json::json!({
            "version": "0",
            "id": crate::ids::uuid(),
            "detail-type": detail_type,
            "source": source,
            "account": account,
            "time": crate::time::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "region": region,
            "resources": resources,
            "detail": detail,
        });
        BusEvent { account: account.into(), region: region.into(), bus: "default".into(), event }
    }
}

/// A matched rule's target being invoked by EventBridge delivery.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetInvocation {
    pub account: String,
    pub region: String,
    pub target_arn: String,
    pub role_arn: Option<String>,
    pub rule_arn: String,
    /// What the target receives, already shaped by Input / InputPath / InputTransformer.
    pub input: Value,
    /// The server's endpoint URL, for targets that hand it on (builds).
    pub endpoint: String,
}

impl TargetInvocation {
    /// The context the target is invoked in: EventBridge's session of the target's `RoleArn`
    /// when it has one (so the invoker's authorization evaluates that role), else the server's
    /// own (root) context.
    pub fn context(&self) -> RequestContext {
        let ctx = RequestContext::internal(&self.account, &self.region, &self.endpoint);
        match &self.role_arn {
            Some(role) if !role.is_empty() => ctx.acting_as_role(role, &crate::ids::hex(16)),
            _ => ctx,
        }
    }
}

/// A kind of EventBridge target (keyed by the ARN's service: `codepipeline`, `codebuild`).
#[async_trait]
pub trait TargetInvoker: Send + Sync {
    /// Invokes the target; returns a short description of what was started (an execution or
    /// build id) for delivery logs. An error is retried by delivery with backoff.
    async fn invoke(&self, invocation: &TargetInvocation) -> AwsResult<String>;
}

/// Metadata of a stored S3 object.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub bucket: String,
    pub key: String,
    pub etag: String,
    pub size: u64,
    pub version_id: Option<String>,
    pub last_modified: Option<Timestamp>,
}

/// Extra attributes for an object written by another service (pipeline S3 deploy).
#[derive(Clone, Debug, Default)]
pub struct PutObjectOptions {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub canned_acl: Option<String>,
    pub metadata: HashMap<String, String>,
    /// SSE-KMS under this key (id, ARN or alias), as `x-amz-server-side-encryption-aws-kms-key-id`
    /// with `aws:kms`; `None`: the bucket's default encryption.
    pub kms_key_id: Option<String>,
}

/// S3 as other services use it (pipeline artifacts, build sources and artifacts, deploys).
#[async_trait]
pub trait ObjectStoreApi: Send + Sync {
    async fn put_object_file(
        &self,
        ctx: &RequestContext,
        bucket: &str,
        key: &str,
        source: &Path,
        options: PutObjectOptions,
    ) -> AwsResult<ObjectInfo>;
    /// Writes the object's bytes to `dest` (created or replaced).
    async fn get_object_to_file(
        &self,
        ctx: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        dest: &Path,
    ) -> AwsResult<ObjectInfo>;
    async fn head_object(
        &self,
        ctx: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> AwsResult<Option<ObjectInfo>>;
    async fn bucket_exists(&self, ctx: &RequestContext, bucket: &str) -> AwsResult<bool>;

    // Reads for the console's S3 browser and `codeyard export terraform`. Each authorizes the
    // context as the matching S3 call would (`s3:ListAllMyBuckets`, `s3:ListBucket`,
    // `s3:GetBucket*`), so the console stays under IAM.
    /// The buckets of the context's account (every region), as ListBuckets.
    async fn list_buckets(&self, ctx: &RequestContext) -> AwsResult<Vec<BucketSummary>> {
        let _ = ctx;
        Err(missing("listing buckets"))
    }
    /// One page of a bucket's keys, as ListObjectsV2 with `prefix`, `delimiter` and a
    /// continuation token from the previous page.
    async fn list_objects(&self, ctx: &RequestContext, bucket: &str, query: ObjectListQuery) -> AwsResult<ObjectListing> {
        let _ = (ctx, bucket, query);
        Err(missing("listing objects"))
    }
    /// What Terraform's `aws_s3_bucket*` resources describe about a bucket.
    async fn bucket_settings(&self, ctx: &RequestContext, bucket: &str) -> AwsResult<BucketSettings> {
        let _ = (ctx, bucket);
        Err(missing("bucket settings"))
    }
    /// The object's bytes read straight from storage as they stream out (the console's
    /// download), authorized as GetObject; no copy is written anywhere.
    async fn open_object(&self, ctx: &RequestContext, bucket: &str, key: &str, version_id: Option<&str>) -> AwsResult<(ObjectInfo, ObjectReader)> {
        let _ = (ctx, bucket, key, version_id);
        Err(missing("streaming objects"))
    }
}

/// The bytes of an object being read ([`ObjectStoreApi::open_object`]).
pub type ObjectReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// One bucket, as ListBuckets names it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BucketSummary {
    pub name: String,
    pub region: String,
    pub created: Timestamp,
}

/// The arguments of [`ObjectStoreApi::list_objects`].
#[derive(Clone, Debug, Default)]
pub struct ObjectListQuery {
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    pub continuation_token: Option<String>,
    /// At most this many keys (0: S3's default of 1,000).
    pub max_keys: usize,
}

/// One page of [`ObjectStoreApi::list_objects`].
#[derive(Clone, Debug, Default)]
pub struct ObjectListing {
    pub objects: Vec<ListedObject>,
    pub common_prefixes: Vec<String>,
    pub next_continuation_token: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub last_modified: Timestamp,
}

/// A bucket's configuration as far as an export recreates it. Fields are added as exports
/// grow; absent means "not configured".
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BucketSettings {
    pub region: String,
    /// `None` when versioning was never configured.
    pub versioning: Option<Versioning>,
    /// The bucket policy document as stored.
    pub policy: Option<String>,
    pub tags: Vec<(String, String)>,
    /// `PutBucketNotificationConfiguration` with `EventBridgeConfiguration`.
    pub eventbridge_notifications: bool,
}

/// A bucket's versioning once it was configured (S3's `BucketVersioningStatus`; stored as
/// `Enabled` / `Suspended`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    Enabled,
    Suspended,
}

impl Versioning {
    pub fn as_str(self) -> &'static str {
        match self {
            Versioning::Enabled => "Enabled",
            Versioning::Suspended => "Suspended",
        }
    }

    /// The status PutBucketVersioning names; `None` for anything else.
    pub fn parse(s: &str) -> Option<Versioning> {
        match s {
            "Enabled" => Some(Versioning::Enabled),
            "Suspended" => Some(Versioning::Suspended),
            _ => None,
        }
    }
}

/// CloudWatch Logs as builds use it. The account and region are the context's; the caller is
/// authorized (`logs:CreateLogGroup` when the group is created, `logs:CreateLogStream`,
/// `logs:PutLogEvents`), so a build passes its service role's session.
#[async_trait]
pub trait LogSink: Send + Sync {
    /// Creates the group and stream if they do not exist.
    async fn ensure_stream(&self, ctx: &RequestContext, group: &str, stream: &str) -> AwsResult<()>;
    /// Appends events (epoch milliseconds, message) in order.
    async fn append(&self, ctx: &RequestContext, group: &str, stream: &str, events: Vec<(i64, String)>) -> AwsResult<()>;
}

/// Temporary or long-term credentials.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expiration: Option<Timestamp>,
    pub account: String,
    /// The principal: `arn:aws:sts::<acct>:assumed-role/<role>/<session>` or a user/root ARN.
    pub arn: String,
}

/// STS as other services use it (builds get the project's role credentials) and as the
/// request authenticator uses it (temporary keys verify like configured ones).
#[async_trait]
pub trait CredentialIssuer: Send + Sync {
    async fn assume_role(
        &self,
        account: &str,
        role_arn: &str,
        session_name: &str,
        duration_seconds: u32,
    ) -> AwsResult<Credentials>;
    /// Credentials for a service (`codebuild.amazonaws.com`, `codepipeline.amazonaws.com`,
    /// `events.amazonaws.com`) assuming `role_arn` for `account`, as AWS services do: refused
    /// with AccessDenied unless the role's trust policy names that service principal (under
    /// `--iam enforce`; `audit` records it and issues, `off` issues).
    async fn assume_role_as_service(
        &self,
        account: &str,
        role_arn: &str,
        service_principal: &str,
        session_name: &str,
        duration_seconds: u32,
    ) -> AwsResult<Credentials>;
    /// Credentials issued earlier for this access key id, if they are still valid.
    async fn lookup(&self, access_key_id: &str) -> AwsResult<Option<Credentials>>;
}

/// A CodeCommit repository as other services see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepositoryInfo {
    pub name: String,
    pub id: String,
    pub arn: String,
    pub clone_url_http: String,
    pub default_branch: Option<String>,
    /// The bare repository on disk.
    pub path: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitInfo {
    pub commit_id: String,
    pub message: String,
    pub author_name: String,
    pub author_date: Timestamp,
    pub committer_date: Timestamp,
}

/// CodeCommit as pipelines and builds use it.
#[async_trait]
pub trait GitRepositories: Send + Sync {
    async fn repository(&self, ctx: &RequestContext, name: &str) -> AwsResult<RepositoryInfo>;
    /// The commit a branch points at (BranchDoesNotExistException if none).
    async fn resolve_branch(&self, ctx: &RequestContext, repo: &str, branch: &str) -> AwsResult<String>;
    async fn commit(&self, ctx: &RequestContext, repo: &str, commit_id: &str) -> AwsResult<CommitInfo>;
    /// Writes a zip of the commit's tree (no `.git`) to `dest`: CodePipeline's CODE_ZIP.
    async fn export_zip(&self, ctx: &RequestContext, repo: &str, commit_id: &str, dest: &Path) -> AwsResult<()>;
}

/// Where a pipeline artifact lives.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ArtifactLocation {
    pub name: String,
    pub bucket: String,
    pub key: String,
    /// The artifact store's KMS key, which the artifact is written under (SSE-KMS); `None`:
    /// the bucket's default encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

/// A build started by a CodePipeline CodeBuild action.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PipelineBuildRequest {
    pub project_name: String,
    /// The primary input (becomes CODEBUILD_SRC_DIR) then the others
    /// (CODEBUILD_SRC_DIR_<name>).
    pub inputs: Vec<ArtifactLocation>,
    /// The first output is the primary artifact; others map to secondary-artifacts by name.
    pub outputs: Vec<ArtifactLocation>,
    /// From the action's EnvironmentVariables configuration: (name, value, type).
    pub environment_variables: Vec<(String, String, String)>,
    pub buildspec_override: Option<String>,
    /// The source revision (commit id) for CODEBUILD_RESOLVED_SOURCE_VERSION.
    pub source_revision: Option<String>,
    /// `codepipeline/<pipeline name>`.
    pub initiator: String,
}

/// A build's status (CodeBuild's `StatusType`); serialized as its wire string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildStatus {
    InProgress,
    Succeeded,
    Failed,
    Fault,
    TimedOut,
    Stopped,
}

impl BuildStatus {
    /// The wire string (`IN_PROGRESS`, `SUCCEEDED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::InProgress => "IN_PROGRESS",
            BuildStatus::Succeeded => "SUCCEEDED",
            BuildStatus::Failed => "FAILED",
            BuildStatus::Fault => "FAULT",
            BuildStatus::TimedOut => "TIMED_OUT",
            BuildStatus::Stopped => "STOPPED",
        }
    }

    /// The status a wire string names; `None` for one CodeBuild does not have.
    pub fn from_wire(s: &str) -> Option<BuildStatus> {
        [
            BuildStatus::InProgress,
            BuildStatus::Succeeded,
            BuildStatus::Failed,
            BuildStatus::Fault,
            BuildStatus::TimedOut,
            BuildStatus::Stopped,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }

    pub fn is_done(self) -> bool {
        self != BuildStatus::InProgress
    }
}

impl std::fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a build as a pipeline follows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BuildOutcome {
    pub build_id: String,
    pub build_arn: String,
    pub status: BuildStatus,
    pub exported_variables: Vec<(String, String)>,
    /// A one-line summary for failures (failing phase, command and exit code).
    pub message: Option<String>,
    pub log_url: Option<String>,
}

/// CodeBuild as pipelines use it.
#[async_trait]
pub trait BuildRunner: Send + Sync {
    async fn start_pipeline_build(&self, ctx: &RequestContext, request: PipelineBuildRequest) -> AwsResult<BuildOutcome>;
    async fn build_outcome(&self, ctx: &RequestContext, build_id: &str) -> AwsResult<BuildOutcome>;
    async fn stop_build(&self, ctx: &RequestContext, build_id: &str) -> AwsResult<()>;
}

/// What a provider adds to a build's environment.
#[derive(Clone, Debug, Default)]
pub struct BuildEnvironmentAdditions {
    /// Variables to set (the build's own and the user's variables take precedence).
    pub variables: Vec<(String, String)>,
    /// Directories to put first on PATH (e.g. one holding a `docker` command).
    pub path_prepend: Vec<PathBuf>,
}

/// Something that prepares tools for builds before their commands run: ECR provides a
/// `docker` that builds with podman and pushes to codeyard's registry.
#[async_trait]
pub trait BuildEnvironmentProvider: Send + Sync {
    /// Called once per build with the build's own scratch directory (empty, under the data
    /// dir). `privileged` is the project's privilegedMode.
    async fn prepare(&self, ctx: &RequestContext, scratch_dir: &Path, privileged: bool) -> AwsResult<BuildEnvironmentAdditions>;
}

/// KMS as other services use it: SSM SecureString values and Secrets Manager secrets are
/// stored encrypted under a KMS key, never in plain text; S3's SSE-KMS objects carry a data key
/// sealed under one. The context's caller is authorized
/// (`kms:Encrypt`, `kms:Decrypt`, `kms:GenerateDataKey`) on the key, with `kms:ViaService` set to
/// `via_service` (`ssm.<region>.amazonaws.com`) when a service asks on the caller's behalf.
#[async_trait]
pub trait KeyVault: Send + Sync {
    /// Encrypts under `key_id`: a key id, key ARN, alias name (`alias/...`) or alias ARN. The
    /// AWS managed aliases (`alias/aws/ssm`, `alias/aws/secretsmanager`) are created on first
    /// use, as AWS does. The ciphertext names its key.
    async fn encrypt(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        plaintext: &[u8],
        encryption_context: &BTreeMap<String, String>,
        via_service: Option<&str>,
    ) -> AwsResult<KeyVaultOutput>;
    /// A fresh 256-bit data key encrypted under `key_id` (as `encrypt` names keys), authorized
    /// as `kms:GenerateDataKey`: S3's SSE-KMS seals each object's data key this way. Only the
    /// ciphertext is returned.
    async fn generate_data_key(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        encryption_context: &BTreeMap<String, String>,
        via_service: Option<&str>,
    ) -> AwsResult<KeyVaultOutput>;
    /// Decrypts a ciphertext `encrypt` (or the KMS Encrypt API) produced with the same
    /// encryption context.
    async fn decrypt(
        &self,
        ctx: &RequestContext,
        ciphertext: &[u8],
        encryption_context: &BTreeMap<String, String>,
        via_service: Option<&str>,
    ) -> AwsResult<KeyVaultOutput>;
}

/// What [`KeyVault`] returns: the bytes (ciphertext or plaintext) and the ARN of the key used.
#[derive(Clone, Debug)]
pub struct KeyVaultOutput {
    pub bytes: Vec<u8>,
    pub key_arn: String,
}

/// Parameter Store as builds use it (`env.parameter-store`, PARAMETER_STORE variables). The
/// context is the build's service role session; it is authorized for `ssm:GetParameters`
/// (and, for a SecureString, KMS decrypt through SSM) as AWS does.
#[async_trait]
pub trait ParameterReader: Send + Sync {
    /// The value of `name` (`/path/name`, a parameter ARN, `name:3` or `name:label`),
    /// decrypted. A missing parameter is an error with code `ParameterNotFound`.
    async fn parameter_value(&self, ctx: &RequestContext, name: &str) -> AwsResult<String>;
}

/// Secrets Manager as builds use it (`env.secrets-manager`, SECRETS_MANAGER variables). The
/// context is the build's service role session, authorized for `secretsmanager:GetSecretValue`.
#[async_trait]
pub trait SecretReader: Send + Sync {
    /// The SecretString of `secret_id` (name or ARN) at a version stage (default AWSCURRENT)
    /// or version id. A missing secret is an error with code `ResourceNotFoundException`.
    async fn secret_value(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        version_stage: Option<&str>,
        version_id: Option<&str>,
    ) -> AwsResult<String>;
}

/// The registry of cross-service interfaces, filled in at start-up.
#[derive(Default)]
pub struct Hub {
    objects: OnceLock<Arc<dyn ObjectStoreApi>>,
    logs: OnceLock<Arc<dyn LogSink>>,
    credentials: OnceLock<Arc<dyn CredentialIssuer>>,
    git: OnceLock<Arc<dyn GitRepositories>>,
    builds: OnceLock<Arc<dyn BuildRunner>>,
    targets: RwLock<HashMap<String, Arc<dyn TargetInvoker>>>,
    build_env: RwLock<Vec<Arc<dyn BuildEnvironmentProvider>>>,
    authorizer: OnceLock<Arc<dyn crate::Authorizer>>,
    keys: OnceLock<Arc<dyn KeyVault>>,
    parameters: OnceLock<Arc<dyn ParameterReader>>,
    secrets: OnceLock<Arc<dyn SecretReader>>,
    images: OnceLock<Arc<dyn ContainerImages>>,
    service_deployer: OnceLock<Arc<dyn ServiceDeployer>>,
}

fn missing(what: &str) -> AwsError {
    AwsError::internal(format!("{what} is not available in this server"))
}

impl Hub {
    pub fn set_objects(&self, v: Arc<dyn ObjectStoreApi>) {
        let _ = self.objects.set(v);
    }
    pub fn set_logs(&self, v: Arc<dyn LogSink>) {
        let _ = self.logs.set(v);
    }
    pub fn set_credentials(&self, v: Arc<dyn CredentialIssuer>) {
        let _ = self.credentials.set(v);
    }
    pub fn set_git(&self, v: Arc<dyn GitRepositories>) {
        let _ = self.git.set(v);
    }
    pub fn set_builds(&self, v: Arc<dyn BuildRunner>) {
        let _ = self.builds.set(v);
    }
    /// Registers the invoker for targets whose ARN names `arn_service` (`codepipeline`, ...).
    pub fn register_target(&self, arn_service: &str, v: Arc<dyn TargetInvoker>) {
        self.targets.write().unwrap().insert(arn_service.to_string(), v);
    }

    pub fn objects(&self) -> AwsResult<Arc<dyn ObjectStoreApi>> {
        self.objects.get().cloned().ok_or_else(|| missing("S3"))
    }
    pub fn logs(&self) -> AwsResult<Arc<dyn LogSink>> {
        self.logs.get().cloned().ok_or_else(|| missing("CloudWatch Logs"))
    }
    pub fn credentials(&self) -> AwsResult<Arc<dyn CredentialIssuer>> {
        self.credentials.get().cloned().ok_or_else(|| missing("STS"))
    }
    pub fn git(&self) -> AwsResult<Arc<dyn GitRepositories>> {
        self.git.get().cloned().ok_or_else(|| missing("CodeCommit"))
    }
    pub fn builds(&self) -> AwsResult<Arc<dyn BuildRunner>> {
        self.builds.get().cloned().ok_or_else(|| missing("CodeBuild"))
    }
    pub fn set_keys(&self, v: Arc<dyn KeyVault>) {
        let _ = self.keys.set(v);
    }
    pub fn set_parameters(&self, v: Arc<dyn ParameterReader>) {
        let _ = self.parameters.set(v);
    }
    pub fn set_secrets(&self, v: Arc<dyn SecretReader>) {
        let _ = self.secrets.set(v);
    }
    pub fn keys(&self) -> AwsResult<Arc<dyn KeyVault>> {
        self.keys.get().cloned().ok_or_else(|| missing("KMS"))
    }
    pub fn parameters(&self) -> AwsResult<Arc<dyn ParameterReader>> {
        self.parameters.get().cloned().ok_or_else(|| missing("SSM Parameter Store"))
    }
    pub fn secrets(&self) -> AwsResult<Arc<dyn SecretReader>> {
        self.secrets.get().cloned().ok_or_else(|| missing("Secrets Manager"))
    }
    pub fn set_authorizer(&self, v: Arc<dyn crate::Authorizer>) {
        let _ = self.authorizer.set(v);
    }
    /// Asks IAM whether the context's caller may do `request` (see [`crate::authz`]). Allowed
    /// when no authorizer is registered (a server without IAM, unit tests).
    pub async fn authorize(&self, ctx: &RequestContext, request: &crate::AccessRequest) -> Result<(), crate::Denied> {
        match self.authorizer.get() {
            Some(a) => a.authorize(ctx, request).await,
            None => Ok(()),
        }
    }
    /// The IAM mode in force (`Off` without an authorizer).
    pub fn iam_mode(&self) -> crate::IamMode {
        self.authorizer.get().map(|a| a.mode()).unwrap_or(crate::IamMode::Off)
    }
    pub fn add_build_environment(&self, v: Arc<dyn BuildEnvironmentProvider>) {
        self.build_env.write().unwrap().push(v);
    }
    pub fn build_environments(&self) -> Vec<Arc<dyn BuildEnvironmentProvider>> {
        self.build_env.read().unwrap().clone()
    }
    /// The invoker for a target ARN's service, if one is registered.
    pub fn target(&self, arn_service: &str) -> Option<Arc<dyn TargetInvoker>> {
        self.targets.read().unwrap().get(arn_service).cloned()
    }
}

/// An image in codeyard's ECR as other services see it (CodePipeline's ECR source action).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageInfo {
    pub registry_id: String,
    pub repository_name: String,
    /// `<host:port>/<name>`, as DescribeRepositories answers it.
    pub repository_uri: String,
    pub image_digest: String,
    pub image_tags: Vec<String>,
    pub image_pushed_at: Timestamp,
    pub image_size_in_bytes: u64,
    pub image_manifest_media_type: String,
}

/// How podman pulls an image from codeyard's registry: the reference on the registry's own
/// host (plain HTTP) and a registry token for the context's caller.
#[derive(Clone, Debug)]
pub struct PullSpec {
    pub reference: String,
    pub username: String,
    pub password: String,
}

/// ECR as other services use it: image lookup (CodePipeline) and pulls (ECS tasks).
#[async_trait]
pub trait ContainerImages: Send + Sync {
    /// The image a tag names in a repository of the context's account and region (the caller
    /// is authorized for `ecr:DescribeImages`); `None` when the tag is not there. A missing
    /// repository is an error with code `RepositoryNotFoundException`.
    async fn image_by_tag(&self, ctx: &RequestContext, repository: &str, tag: &str) -> AwsResult<Option<ImageInfo>>;
    /// How to pull `image` when it names codeyard's registry (an ECR URI
    /// `<acct>.dkr.ecr.<region>.amazonaws.com/repo:tag` or the registry's own host), with a
    /// token issued to the context's caller; `None` for any other registry.
    async fn pull_spec(&self, ctx: &RequestContext, image: &str) -> AwsResult<Option<PullSpec>>;
}

/// What CodePipeline's ECS deploy action asks ECS to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceDeployRequest {
    pub cluster: String,
    pub service: String,
    /// (container name, image URI) from `imagedefinitions.json`.
    pub images: Vec<(String, String)>,
}

/// A deployment ECS started for [`ServiceDeployer::deploy_images`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceDeployment {
    pub deployment_id: String,
    pub service_arn: String,
    pub task_definition_arn: String,
}

/// Where a service deployment is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ServiceDeploymentState {
    InProgress,
    /// The new tasks run and the old ones are gone.
    Completed,
    /// With ECS's reason (a task's stopped reason, the circuit breaker).
    Failed(String),
}

/// ECS as CodePipeline's ECS deploy action uses it. The caller is authorized
/// (`ecs:DescribeServices`, `ecs:DescribeTaskDefinition`, `ecs:RegisterTaskDefinition`,
/// `ecs:UpdateService`, `iam:PassRole` for the task definition's roles).
#[async_trait]
pub trait ServiceDeployer: Send + Sync {
    /// Registers a revision of the service's task definition with the images replaced and
    /// updates the service to it.
    async fn deploy_images(&self, ctx: &RequestContext, request: &ServiceDeployRequest) -> AwsResult<ServiceDeployment>;
    async fn deployment_state(&self, ctx: &RequestContext, cluster: &str, service: &str, deployment_id: &str) -> AwsResult<ServiceDeploymentState>;
}

impl Hub {
    pub fn set_images(&self, v: Arc<dyn ContainerImages>) {
        let _ = self.images.set(v);
    }
    pub fn images(&self) -> AwsResult<Arc<dyn ContainerImages>> {
        self.images.get().cloned().ok_or_else(|| missing("ECR"))
    }
    pub fn set_service_deployer(&self, v: Arc<dyn ServiceDeployer>) {
        let _ = self.service_deployer.set(v);
    }
    pub fn service_deployer(&self) -> AwsResult<Arc<dyn ServiceDeployer>> {
        self.service_deployer.get().cloned().ok_or_else(|| missing("ECS"))
    }
}
