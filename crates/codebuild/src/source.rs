//! DOWNLOAD_SOURCE: getting a build's sources and its buildspec.
//!
//! CodeCommit sources are cloned from the repository's bare directory on this machine (found
//! through the hub by the name at the end of the clone URL), so a build needs no credentials
//! and works the same under `--auth enforce`; `origin` is then set to the clone URL the project
//! names, as on AWS. S3 sources and pipeline artifacts are zips fetched through the hub.

use crate::artifacts;
pub use crate::io::s3_error;
use crate::io::get_file;
use codeyard_core::{AccessRequest, AwsError, RequestContext};
use codeyard_wire::Platform;
use codeyard_api::codebuild::{ProjectSource, SourceType};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub struct Fetched {
    pub resolved: Option<String>,
}

/// The repository name in a CodeCommit clone URL (`.../v1/repos/<name>`), or the location
/// itself when it is a bare name.
pub fn repository_name(location: &str) -> &str {
    match location.split_once("/v1/repos/") {
        Some((_, rest)) => rest.split(['/', '?']).next().unwrap_or(rest),
        None => location.rsplit('/').next().unwrap_or(location),
    }
}

fn is_commit_id(v: &str) -> bool {
    v.len() == 40 && v.bytes().all(|c| c.is_ascii_hexdigit())
}

async fn git(args: &[&str], cwd: Option<&Path>) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {} failed: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Where a build's sources come from and where their downloads go: the platform, the request
/// context the downloads are made as (the build's role), and the build's scratch directory.
pub struct Sources<'a> {
    pub platform: &'a Platform,
    pub ctx: &'a RequestContext,
    pub workspace: &'a Path,
}

impl Sources<'_> {
    pub async fn fetch(
        &self,
        source: &ProjectSource,
        version: Option<&str>,
        dest: &Path,
    ) -> Result<Fetched, String> {
        std::fs::create_dir_all(dest).map_err(|e| e.to_string())?;
        let location = source.location.as_deref().unwrap_or("");
        match &source.r#type {
            SourceType::NoSource => Ok(Fetched { resolved: None }),
            SourceType::S3 => {
                let (bucket, key) = location
                    .trim_start_matches("arn:aws:s3:::")
                    .split_once('/')
                    .ok_or_else(|| format!("invalid S3 source location {location}"))?;
                let resolved = self.fetch_s3_zip(bucket, key, version, dest).await?;
                Ok(Fetched { resolved })
            }
            SourceType::Codecommit => {
                let name = repository_name(location);
                let git_hub = self.platform.hub.git().map_err(|e| e.message)?;
                // Finding the repository's directory is codeyard's own lookup (AWS's build just
                // runs `git clone`), so it is made as the server; the clone is the role's GitPull.
                let lookup = RequestContext::internal(&self.ctx.account, &self.ctx.region, &self.ctx.endpoint);
                let repo = git_hub
                    .repository(&lookup, name)
                    .await
                    .map_err(|e| format!("CodeCommit repository {name}: {}", e.message))?;
                if let Err(denied) = self
                    .platform
                    .hub
                    .authorize(self.ctx, &AccessRequest::new("codecommit:GitPull", &repo.arn))
                    .await
                {
                    tracing::warn!(repository = %repo.arn, reason = %denied.message, "build source: git pull denied");
                    return Err(format!(
                        "authorization failed for primary source and source version {}",
                        version.unwrap_or("refs/heads/HEAD")
                    ));
                }
                let depth = source
                    .git_clone_depth
                    .map(i64::from)
                    .filter(|d| (1..=25).contains(d));
                let version = version.map(|v| v.strip_prefix("refs/heads/").unwrap_or(v));
                let url = format!("file://{}", repo.path.display());
                let dest_s = dest.display().to_string();
                let mut args: Vec<String> = vec!["clone".into(), "-q".into()];
                // A commit is checked out after a full clone; a branch or tag is cloned itself.
                let commit = version.filter(|v| is_commit_id(v));
                if commit.is_none() {
                    if let Some(v) = version {
                        args.extend(["--branch".into(), v.strip_prefix("refs/tags/").unwrap_or(v).to_string()]);
                    }
                    if let Some(d) = depth {
                        args.extend(["--depth".into(), d.to_string()]);
                    }
                }
                args.extend([url, dest_s]);
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                git(&argv, None).await?;
                if let Some(v) = commit {
                    git(&["checkout", "-q", v], Some(dest)).await?;
                }
                git(&["remote", "set-url", "origin", location], Some(dest)).await?;
                let head = git(&["rev-parse", "HEAD"], Some(dest))
                    .await
                    .map_err(|_| format!("CodeCommit repository {name} has no commits to build"))?;
                Ok(Fetched {
                    resolved: Some(head),
                })
            }
            other => Err(format!(
                "codeyard builds do not support source type {other} yet"
            )),
        }
    }

    /// Fetches one CodePipeline input artifact into `dest`: a zip (CODE_ZIP and build outputs) is
    /// extracted; a CodeCommit source with OutputArtifactFormat CODEBUILD_CLONE_REF stores a JSON
    /// pointer (`CloneUrl`, `CommitId`, ...) instead, and the build clones that commit with full
    /// git metadata, as on AWS. Returns the commit id for a clone.
    pub async fn fetch_pipeline_input(&self, bucket: &str, key: &str, dest: &Path) -> Result<Option<String>, String> {
        let (tmp, _) = self.download(bucket, key, None, "artifact").await?;
        let clone_ref = std::fs::read(&tmp)
            .ok()
            .filter(|bytes| bytes.first() == Some(&b'{'))
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .filter(|v| v["CloneUrl"].is_string() && v["CommitId"].is_string());
        if let Some(pointer) = clone_ref {
            let _ = std::fs::remove_file(&tmp);
            let source = ProjectSource {
                location: pointer["CloneUrl"].as_str().map(str::to_string),
                ..source_of(SourceType::Codecommit)
            };
            let fetched = self.fetch(&source, pointer["CommitId"].as_str(), dest).await?;
            return Ok(fetched.resolved);
        }
        extract(tmp, dest, bucket, key).await?;
        Ok(None)
    }

    /// Downloads a zip object and extracts it into `dest`; returns the object's version id.
    async fn fetch_s3_zip(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        dest: &Path,
    ) -> Result<Option<String>, String> {
        let (tmp, version_id) = self.download(bucket, key, version, "source.zip").await?;
        extract(tmp, dest, bucket, key).await?;
        Ok(version_id)
    }

    /// A source object in a scratch file, with its version id.
    async fn download(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        name: &str,
    ) -> Result<(PathBuf, Option<String>), String> {
        get_file(self.platform, self.ctx, bucket, key, version, self.workspace, name)
            .await
            .map_err(|e| s3_source_error(&e, bucket, key))
    }

    /// Inline YAML, an S3 object ARN, or a path relative to the source root (default buildspec.yml).
    pub async fn buildspec_text(&self, buildspec: Option<&str>, src_dir: &Path) -> Result<String, String> {
        let spec = buildspec
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or("buildspec.yml");
        if spec.contains('\n') || spec.starts_with("version") {
            return Ok(spec.to_string());
        }
        if let Some(rest) = spec.strip_prefix("arn:aws:s3:::") {
            let (bucket, key) = rest
                .split_once('/')
                .ok_or_else(|| format!("invalid buildspec location {spec}"))?;
            let (tmp, _) = get_file(self.platform, self.ctx, bucket, key, None, self.workspace, "buildspec.yml")
                .await
                .map_err(|e| format!("cannot get buildspec {spec}: {}", e.message))?;
            let text = std::fs::read_to_string(&tmp).map_err(|e| e.to_string());
            let _ = std::fs::remove_file(&tmp);
            return text;
        }
        let path = src_dir.join(spec);
        std::fs::read_to_string(&path).map_err(|e| format!("stat {}: {e}", path.display()))
    }
}

/// Extracts a downloaded source zip into `dest` (the zip is removed).
async fn extract(zip: PathBuf, dest: &Path, bucket: &str, key: &str) -> Result<(), String> {
    artifacts::extract_downloaded_zip(zip, dest.to_path_buf())
        .await
        .map_err(|e| format!("s3://{bucket}/{key} is not a zip archive: {e}"))
}

/// A source of one type with nothing else set.
fn source_of(r#type: SourceType) -> ProjectSource {
    ProjectSource {
        r#type,
        location: None,
        git_clone_depth: None,
        git_submodules_config: None,
        buildspec: None,
        auth: None,
        report_build_status: None,
        build_status_config: None,
        insecure_ssl: None,
        source_identifier: None,
    }
}

fn s3_source_error(e: &AwsError, bucket: &str, key: &str) -> String {
    if e.status == 403 {
        format!("{} for primary source and source version arn:aws:s3:::{bucket}/{key}", s3_error(e))
    } else {
        format!("cannot get s3://{bucket}/{key}: {}", e.message)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn repository_names() {
        assert_eq!(
            super::repository_name("https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/demo"),
            "demo"
        );
        assert_eq!(
            super::repository_name("http://localhost:4566/v1/repos/demo"),
            "demo"
        );
    }
}
