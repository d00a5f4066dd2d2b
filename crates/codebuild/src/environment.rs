//! The environment a build's commands see, assembled as AWS does.
//!
//! Lowest to highest precedence: a few of the server's own variables (PATH, locale, JAVA_HOME),
//! what build environment providers add (ECR's `docker`), the CODEBUILD_* and AWS_* variables,
//! the buildspec's `env.variables`, the project's variables, StartBuild's overrides. Commands
//! get temporary credentials of the project's service role, and `AWS_ENDPOINT_URL` pointing at
//! codeyard, so `aws s3 cp` and the SDKs work unchanged.
//!
//! HOME is a directory of the build's own (AWS uses `/root` in a throwaway container; here
//! builds share a machine, so `docker login` or git configuration of one build must not leak
//! into another). Cache paths under `/root/` are mapped to it.

use crate::build::BuildRecord;
use crate::buildspec::Buildspec;
use codeyard_core::RequestContext;
use codeyard_wire::Platform;
use std::collections::HashSet;
use std::path::Path;

/// Where a variable's value comes from (resolved by the `secrets` module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A parameter name (`/path/name`, an ARN, `name:3`, `name:label`).
    Parameter(String),
    /// The reference key as written.
    Secret(String),
}

#[derive(Default, Debug)]
pub struct BuildEnv {
    pub vars: Vec<(String, String)>,
    /// Names set by the project or StartBuild: the buildspec cannot override them.
    user_names: HashSet<String>,
    /// Values never to show in logs (credentials).
    pub secrets: Vec<String>,
    /// Lines for the build log (a fallback taken, ...).
    pub warnings: Vec<String>,
    /// The project's and the overrides' PARAMETER_STORE and SECRETS_MANAGER variables, resolved
    /// in DOWNLOAD_SOURCE with the buildspec's (by the `secrets` module).
    pub sourced: Vec<(String, Source)>,
}

impl BuildEnv {
    pub fn set(&mut self, k: &str, v: &str) {
        match self.vars.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => self.vars.push((k.to_string(), v.to_string())),
        }
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    /// Sets a value that came from Parameter Store or Secrets Manager: it is masked in the log,
    /// as a whole and line by line.
    pub fn set_secret(&mut self, k: &str, v: &str) {
        self.set(k, v);
        for m in std::iter::once(v).chain(v.lines()) {
            if !m.is_empty() && !self.secrets.iter().any(|s| s == m) {
                self.secrets.push(m.to_string());
            }
        }
    }

    /// The variables still to resolve: the buildspec's `env.parameter-store` and
    /// `env.secrets-manager` (below the project's and the overrides' names), then the project's
    /// and the overrides' own.
    pub fn sources(&self, spec: &Buildspec) -> Vec<(String, Source)> {
            let from_spec = spec
            .parameter_store
            .iter()
            .map(|(k, v)| (k.clone(), Source::Parameter(v.clone())))
            .chain(spec.secrets_manager.iter().map(|(k, v)| (k.clone(), Source::Secret(v.clone()))))
            .filter(|(k, _)| !self.user_names.contains(k));
        from_spec.chain(self.sourced.iter().cloned()).collect()
    }

    /// The buildspec's `env.variables`, below the project's and the overrides'.
    pub fn apply_buildspec(&mut self, spec: &Buildspec) {
        for (k, v) in &spec.variables {
            if !self.user_names.contains(k) {
                self.set(k, v);
            }
        }
    }
}

const PASSED_THROUGH: &[&str] = &[
    "PATH",
    "LANG",
    "LC_ALL",
    "JAVA_HOME",
    "TZ",
    "USER",
    "LOGNAME",
];

/// Where the build's commands run, as far as their environment is concerned.
pub enum Runs<'a> {
    /// On this machine: its PATH and tools, keys in the environment.
    Host,
    /// In a container: the image's own PATH and tools, HOME `/root`, credentials from the
    /// container credentials endpoint. `image_path` is the image's PATH, given when the build
    /// is privileged (its `docker` command goes first on PATH).
    Container {
        credentials: &'a crate::credentials::Access,
        image_path: Option<String>,
    },
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub async fn assemble(
    platform: &Platform,
    ctx: &RequestContext,
    b: &BuildRecord,
    src_dir: &Path,
    home: &Path,
    scratch: &Path,
    runs: Runs<'_>,
) -> Result<BuildEnv, String> {
    let mut env = BuildEnv::default();
    let privileged = b.config.environment.privileged_mode.unwrap_or(false);
    if let Runs::Container {
        credentials,
        image_path,
    } = runs
    {
        // Only a privileged container gets a `docker` (as on AWS, where the daemon needs it).
        if privileged {
            env.set("PATH", image_path.as_deref().unwrap_or(DEFAULT_PATH));
            apply_providers(platform, ctx, scratch, true, &mut env).await?;
        }
        container_basics(platform, b, src_dir, credentials, &mut env);
        return finish_assembly(b, env);
    }
    for k in PASSED_THROUGH {
        if let Ok(v) = std::env::var(k) {
            env.set(k, &v);
        }
    }
    if env.get("PATH").is_none() {
        env.set("PATH", DEFAULT_PATH);
    }
    apply_providers(platform, ctx, scratch, privileged, &mut env).await?;
    env.set("HOME", &home.display().to_string());
    codebuild_variables(platform, b, src_dir, &mut env);
    let creds = crate::access::role_credentials(platform, b).await;
    match creds {
        Ok(c) => {
            env.set("AWS_ACCESS_KEY_ID", &c.access_key_id);
            env.set("AWS_SECRET_ACCESS_KEY", &c.secret_access_key);
            env.secrets.push(c.access_key_id.clone());
            env.secrets.push(c.secret_access_key.clone());
            if let Some(t) = &c.session_token {
                env.set("AWS_SESSION_TOKEN", t);
                env.secrets.push(t.clone());
            }
        }
        Err((id, secret, why)) => {
            tracing::warn!(build = %b.id, "{why}");
            env.warnings.push(format!("Warning: {why}"));
            env.set("AWS_ACCESS_KEY_ID", &id);
            env.set("AWS_SECRET_ACCESS_KEY", &secret);
        }
    }
    finish_assembly(b, env)
}

/// What build environment providers add (ECR's `docker`): variables, and PATH entries first.
async fn apply_providers(
    platform: &Platform,
    ctx: &RequestContext,
    scratch: &Path,
    privileged: bool,
    env: &mut BuildEnv,
) -> Result<(), String> {
    for (i, provider) in platform.hub.build_environments().into_iter().enumerate() {
        let dir = scratch.join(format!("provider-{i}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let added = provider
            .prepare(ctx, &dir, privileged)
            .await
            .map_err(|e| format!("build environment: {}", e.message))?;
        for (k, v) in added.variables {
            env.set(&k, &v);
        }
        if !added.path_prepend.is_empty() {
            let mut parts: Vec<String> = added
                .path_prepend
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            parts.push(env.get("PATH").unwrap_or("").to_string());
            env.set("PATH", &parts.join(":"));
        }
    }
    Ok(())
}

/// A container's own environment (PATH, JAVA_HOME, ...) comes from its image; the build adds
/// CodeBuild's variables and the credentials endpoint.
fn container_basics(
    platform: &Platform,
    b: &BuildRecord,
    src_dir: &Path,
    credentials: &crate::credentials::Access,
    env: &mut BuildEnv,
) {
    env.set("HOME", "/root");
    codebuild_variables(platform, b, src_dir, env);
    env.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", &credentials.full_uri);
    env.set("AWS_CONTAINER_AUTHORIZATION_TOKEN", &credentials.token);
    env.secrets.push(credentials.token.clone());
    env.secrets.extend(credentials.secrets.iter().cloned());
    if let Some(why) = &credentials.warning {
        env.warnings.push(format!("Warning: {why}"));
    }
}

fn codebuild_variables(platform: &Platform, b: &BuildRecord, src_dir: &Path, env: &mut BuildEnv) {
    env.set("CODEBUILD_BUILD_ARN", &b.arn);
    env.set("CODEBUILD_BUILD_ID", &b.id);
    env.set(
        "CODEBUILD_BUILD_IMAGE",
        &b.config.environment.image,
    );
    env.set("CODEBUILD_BUILD_NUMBER", &b.build_number.to_string());
    env.set("CODEBUILD_BUILD_SUCCEEDING", "1");
    env.set("CODEBUILD_INITIATOR", &b.initiator);
    env.set(
        "CODEBUILD_KMS_KEY_ID",
        b.config.encryption_key.as_deref().unwrap_or(""),
    );
    env.set("CODEBUILD_LOG_PATH", &b.log_stream);
    env.set("CODEBUILD_SRC_DIR", &src_dir.display().to_string());
    env.set("CODEBUILD_START_TIME", &b.start_ms.to_string());
    env.set(
        "CODEBUILD_SOURCE_VERSION",
        b.config.source_version.as_deref().unwrap_or(""),
    );
    env.set(
        "CODEBUILD_SOURCE_REPO_URL",
        b.config.source.location.as_deref().unwrap_or(""),
    );
    env.set("AWS_REGION", &b.region);
    env.set("AWS_DEFAULT_REGION", &b.region);
    env.set(
        "AWS_ENDPOINT_URL",
        platform.config.public_endpoint.trim_end_matches('/'),
    );
    env.set("AWS_EC2_METADATA_DISABLED", "true");
    env.set("AWS_PAGER", "");
}

/// The project's variables and StartBuild's overrides, on top of everything else; those of
/// type PARAMETER_STORE and SECRETS_MANAGER are resolved later (DOWNLOAD_SOURCE).
fn finish_assembly(b: &BuildRecord, mut env: BuildEnv) -> Result<BuildEnv, String> {
    use codeyard_api::codebuild::EnvironmentVariableType as T;
    for v in b.config.environment.environment_variables.iter().flatten() {
        let (name, value) = (v.name.as_str(), v.value.as_str());
        match v.r#type.as_ref().unwrap_or(&T::Plaintext) {
            T::Plaintext => env.set(name, value),
            T::ParameterStore => env.sourced.push((name.to_string(), Source::Parameter(value.to_string()))),
            T::SecretsManager => env.sourced.push((name.to_string(), Source::Secret(value.to_string()))),
            other => return Err(format!("invalid environment variable type {} for {name}", other.as_str())),
        }
        env.user_names.insert(name.to_string());
    }
    Ok(env)
}

/// `env.git-credential-helper: yes`: git authenticates to CodeCommit with the build's role.
/// The file goes into the build's own home directory on the host (`host_home`); where the
/// commands' HOME is elsewhere (`/root` in a container) GIT_CONFIG_GLOBAL points git at it.
pub fn git_credential_helper(env: &mut BuildEnv, host_home: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(host_home)?;
    let file = host_home.join(".gitconfig");
    if env.get("HOME") != Some(host_home.display().to_string().as_str()) {
        env.set("GIT_CONFIG_GLOBAL", &file.display().to_string());
    }
    std::fs::write(
        file,
        "[credential]\n\thelper = !aws codecommit credential-helper $@\n\tUseHttpPath = true\n",
    )
}
