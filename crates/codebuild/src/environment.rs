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

#[derive(Default, Debug)]
pub struct BuildEnv {
    pub vars: Vec<(String, String)>,
    /// Names set by the project or StartBuild: the buildspec cannot override them.
    user_names: HashSet<String>,
    /// Values never to show in logs (credentials).
    pub secrets: Vec<String>,
    /// Lines for the build log (a fallback taken, ...).
    pub warnings: Vec<String>,
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

pub async fn assemble(
    platform: &Platform,
    ctx: &RequestContext,
    b: &BuildRecord,
    src_dir: &Path,
    home: &Path,
    scratch: &Path,
) -> Result<BuildEnv, String> {
    let mut env = BuildEnv::default();
    for k in PASSED_THROUGH {
        if let Ok(v) = std::env::var(k) {
            env.set(k, &v);
        }
    }
    if env.get("PATH").is_none() {
        env.set(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
    }
    let privileged = b.environment["privilegedMode"].as_bool().unwrap_or(false);
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
    env.set("HOME", &home.display().to_string());
    env.set("CODEBUILD_BUILD_ARN", &b.arn);
    env.set("CODEBUILD_BUILD_ID", &b.id);
    env.set(
        "CODEBUILD_BUILD_IMAGE",
        b.environment["image"].as_str().unwrap_or(""),
    );
    env.set("CODEBUILD_BUILD_NUMBER", &b.build_number.to_string());
    env.set("CODEBUILD_BUILD_SUCCEEDING", "1");
    env.set("CODEBUILD_INITIATOR", &b.initiator);
    env.set(
        "CODEBUILD_KMS_KEY_ID",
        b.encryption_key.as_deref().unwrap_or(""),
    );
    env.set("CODEBUILD_LOG_PATH", &b.log_stream);
    env.set("CODEBUILD_SRC_DIR", &src_dir.display().to_string());
    env.set("CODEBUILD_START_TIME", &b.start_ms.to_string());
    env.set(
        "CODEBUILD_SOURCE_VERSION",
        b.source_version.as_deref().unwrap_or(""),
    );
    env.set(
        "CODEBUILD_SOURCE_REPO_URL",
        b.source["location"].as_str().unwrap_or(""),
    );
    env.set("AWS_REGION", &b.region);
    env.set("AWS_DEFAULT_REGION", &b.region);
    env.set(
        "AWS_ENDPOINT_URL",
        platform.config.public_endpoint.trim_end_matches('/'),
    );
    env.set("AWS_EC2_METADATA_DISABLED", "true");
    env.set("AWS_PAGER", "");
    let creds = role_credentials(platform, b).await;
    match creds {
        Ok(c) => {
            env.set("AWS_ACCESS_KEY_ID", &c.access_key_id);
            env.set("AWS_SECRET_ACCESS_KEY", &c.secret_access_key);
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
    let mut unsupported = Vec::new();
    for v in b.environment["environmentVariables"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = v["name"].as_str().unwrap_or("");
        let value = v["value"].as_str().unwrap_or("");
        match v["type"].as_str().unwrap_or("PLAINTEXT") {
            "PLAINTEXT" => {
                env.set(name, value);
                env.user_names.insert(name.to_string());
            }
            other => unsupported.push(format!("{name} ({other}: {value})")),
        }
    }
    if !unsupported.is_empty() {
        return Err(format!(
            "codeyard cannot resolve PARAMETER_STORE or SECRETS_MANAGER environment variables yet: {}",
            unsupported.join(", ")
        ));
    }
    Ok(env)
}

/// The service role's temporary credentials, or (Err) a fallback key and why it was used.
async fn role_credentials(
    platform: &Platform,
    b: &BuildRecord,
) -> Result<codeyard_core::hub::Credentials, (String, String, String)> {
    let fallback = |why: String| {
        let (id, secret) = platform
            .config
            .access_keys
            .first()
            .map(|k| (k.id.clone(), k.secret.clone()))
            .unwrap_or_else(|| ("test".into(), "test".into()));
        (id, secret, why)
    };
    let issuer = platform.hub.credentials().map_err(|_| {
        fallback("no STS in this server: commands get static test credentials".into())
    })?;
    if b.service_role.is_empty() {
        return Err(fallback(
            "the project has no service role: commands get static test credentials".into(),
        ));
    }
    issuer
        .assume_role(
            &b.account,
            &b.service_role,
            &format!("AWSCodeBuild-{}", b.uuid),
            3600,
        )
        .await
        .map_err(|e| {
            fallback(format!(
                "cannot assume the service role {}: {} (commands get static test credentials)",
                b.service_role, e.message
            ))
        })
}

/// `env.git-credential-helper: yes`: git authenticates to CodeCommit with the build's role.
pub fn git_credential_helper(env: &BuildEnv) -> std::io::Result<()> {
    let home = env.get("HOME").unwrap_or("/root");
    std::fs::write(
        Path::new(home).join(".gitconfig"),
        "[credential]\n\thelper = !aws codecommit credential-helper $@\n\tUseHttpPath = true\n",
    )
}
