//! Images inside builds, without a Docker engine: each build gets a `docker` command (a bash
//! wrapper first on PATH) that runs podman with settings that work here, and maps AWS registry
//! names to codeyard's registry.
//!
//! Why a wrapper and not only configuration: a registries.conf rewrite applies to pulls only; a
//! push to `<acct>.dkr.ecr.<region>.amazonaws.com/repo` would still resolve the AWS host. So the
//! wrapper rewrites every argument mentioning such a host (`-t`, `tag`, `push`, `pull`,
//! `login https://...`, `--build-arg X=...`) to `host:port` of the registry; `FROM` lines naming
//! an AWS host are covered by the registries.conf rewrite (pulls).
//!
//! podman runs with `vfs` storage under `<data_dir>/ecr/containers` (shared by builds, so base
//! layers are pulled once) and `chroot` isolation (the OCI runtime cannot create cgroups here);
//! the registry is plain HTTP, so it is marked insecure. Where a Docker engine is reachable
//! (DOCKER_HOST set, or /var/run/docker.sock answering) builds use the real `docker` instead.

use async_trait::async_trait;
use codeyard_core::hub::{BuildEnvironmentAdditions, BuildEnvironmentProvider};
use codeyard_core::{AwsError, AwsResult, RequestContext};
use std::path::{Path, PathBuf};

pub struct PodmanDocker {
    /// `host:port` of codeyard's registry as builds reach it.
    pub registry_host: String,
    /// Shared container storage (`<data_dir>/ecr/containers`).
    pub containers_dir: PathBuf,
}

/// What a build's `docker` needs: file contents and the variables pointing at them.
pub struct DockerKit {
    pub bin_dir: PathBuf,
    pub variables: Vec<(String, String)>,
}

fn storage_conf(containers_dir: &Path) -> String {
    format!(
        "[storage]\ndriver = \"vfs\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
        containers_dir.join("run").display(),
        containers_dir.join("storage").display()
    )
}

fn registries_conf(registry: &str, account: &str, region: &str) -> String {
    format!(
        "unqualified-search-registries = [\"docker.io\"]\n\n\
         [[registry]]\nlocation = \"{registry}\"\ninsecure = true\n\n\
         # Pulls of the AWS name (FROM lines) go to codeyard.\n\
         [[registry]]\nprefix = \"{account}.dkr.ecr.{region}.amazonaws.com\"\nlocation = \"{registry}\"\ninsecure = true\n"
    )
}

fn containers_conf() -> &'static str {
    // No systemd or journald here.
    "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\n[containers]\n"
}

/// The wrapper. Environment variables already set (by the build) win over the defaults baked
/// in, so the script also works when run by hand.
fn wrapper_script(registry: &str, env: &[(String, String)]) -> String {
    let mut s = String::from(
        "#!/usr/bin/env bash\n\
         # docker for codeyard builds: podman, with AWS registry names mapped to codeyard's registry.\n\
         set -u\n",
    );
    for (k, v) in env {
        s.push_str(&format!(": \"${{{k}:={v}}}\"; export {k}\n"));
    }
    s.push_str(&format!("REGISTRY='{registry}'\n"));
    s.push_str(
        r#"AWS_HOST='[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?'
map() {
  printf '%s' "$1" | sed -E "s#^https?://(${AWS_HOST}|${REGISTRY})/?\$#${REGISTRY}#; s#${AWS_HOST}#${REGISTRY}#g"
}
args=()
for a in "$@"; do args+=("$(map "$a")"); done
exec podman "${args[@]}"
"#,
    );
    s
}

/// Writes `docker` and its configuration into `dir`; returns the bin dir and the variables.
pub fn write_kit(
    dir: &Path,
    registry: &str,
    containers_dir: &Path,
    account: &str,
    region: &str,
) -> std::io::Result<DockerKit> {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(containers_dir)?;
    let write = |name: &str, content: &str| -> std::io::Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, content)?;
        Ok(p)
    };
    let storage = write("storage.conf", &storage_conf(containers_dir))?;
    let registries = write(
        "registries.conf",
        &registries_conf(registry, account, region),
    )?;
    let containers = write("containers.conf", containers_conf())?;
    // podman and buildah refuse to start when REGISTRY_AUTH_FILE names a missing file.
    let auth = write("auth.json", "{\"auths\":{}}")?;
    let variables: Vec<(String, String)> = vec![
        (
            "CONTAINERS_STORAGE_CONF".into(),
            storage.display().to_string(),
        ),
        (
            "CONTAINERS_REGISTRIES_CONF".into(),
            registries.display().to_string(),
        ),
        ("CONTAINERS_CONF".into(), containers.display().to_string()),
        ("REGISTRY_AUTH_FILE".into(), auth.display().to_string()),
        ("BUILDAH_ISOLATION".into(), "chroot".into()),
        ("STORAGE_DRIVER".into(), "vfs".into()),
    ];
    let script = bin.join("docker");
    std::fs::write(&script, wrapper_script(registry, &variables))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(DockerKit {
        bin_dir: bin,
        variables,
    })
}

/// Whether a real Docker engine answers.
fn docker_engine_reachable() -> bool {
    if std::env::var_os("DOCKER_HOST").is_some_and(|h| !h.is_empty()) {
        return true;
    }
    #[cfg(unix)]
    {
        std::os::unix::net::UnixStream::connect("/var/run/docker.sock").is_ok()
    }
    #[cfg(not(unix))]
    false
}

#[async_trait]
impl BuildEnvironmentProvider for PodmanDocker {
    async fn prepare(
        &self,
        ctx: &RequestContext,
        scratch_dir: &Path,
        _privileged: bool,
    ) -> AwsResult<BuildEnvironmentAdditions> {
        if docker_engine_reachable() {
            return Ok(BuildEnvironmentAdditions::default());
        }
        let dir = scratch_dir.join("docker");
        let (registry, containers, account, region) = (
            self.registry_host.clone(),
            self.containers_dir.clone(),
            ctx.account.clone(),
            ctx.region.clone(),
        );
        let kit = tokio::task::spawn_blocking(move || {
            write_kit(&dir, &registry, &containers, &account, &region)
        })
        .await
        .map_err(AwsError::internal)?
        .map_err(|e| AwsError::internal(format!("preparing docker for the build: {e}")))?;
        let mut variables = kit.variables;
        variables.push(("CODEYARD_REGISTRY".into(), self.registry_host.clone()));
        Ok(BuildEnvironmentAdditions {
            variables,
            path_prepend: vec![kit.bin_dir],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_maps_aws_names() {
        let dir = tempfile::tempdir().unwrap();
        let kit = write_kit(
            dir.path(),
            "localhost:4566",
            &dir.path().join("c"),
            "000000000000",
            "eu-west-1",
        )
        .unwrap();
        let script = std::fs::read_to_string(kit.bin_dir.join("docker")).unwrap();
        // Run only the mapping function of the script.
        let func = script.split("args=()").next().unwrap().to_string();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "{func}\nmap 'https://000000000000.dkr.ecr.eu-west-1.amazonaws.com'; echo; map '000000000000.dkr.ecr.eu-west-1.amazonaws.com/app:latest'; echo; map 'BASE=123456789012.dkr.ecr.us-east-1.amazonaws.com/b:1'; echo; map 'plain:tag'"
            ))
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            text,
            "localhost:4566\nlocalhost:4566/app:latest\nBASE=localhost:4566/b:1\nplain:tag",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            kit.variables
                .iter()
                .any(|(k, v)| k == "BUILDAH_ISOLATION" && v == "chroot")
        );
        assert!(
            std::fs::read_to_string(dir.path().join("storage.conf"))
                .unwrap()
                .contains("vfs")
        );
    }
}
