//! podman as codeyard runs it: one probe at start-up finds the flags under which a container
//! runs on this machine, and every later command carries them.
//!
//! On this kind of machine the default crun fails ("setrlimit RLIMIT_NOFILE: Operation not
//! permitted", then "cgroups in hybrid mode not supported"); `--runtime runc --cgroup-manager
//! cgroupfs` with explicit ulimits works. [`Podman::detect`] tries the candidates in order by
//! running a probe container from a one-file root filesystem (podman's `catatonit`), and keeps
//! the first that works. Storage is `vfs` in a directory private to the caller, so the caller
//! can remove every container an earlier run of it left ([`Podman::remove_labelled`]).
//! Used by CodeBuild's container executor and by ECS tasks.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How podman is run on this machine.
#[derive(Clone, Debug)]
pub struct Podman {
    /// Global options (storage, runtime, cgroup manager) given to every podman command.
    pub global: Vec<String>,
    /// Options every `podman run` needs here (explicit ulimits).
    pub run_flags: Vec<String>,
    /// The init bind-mounted as each container's PID 1.
    pub init: PathBuf,
    /// registries.conf for pulls (short names resolve on docker.io).
    pub registries_conf: PathBuf,
    /// What was chosen, for the log and /_codeyard/health.
    pub description: String,
}

/// podman's global options for the build containers' storage in `dir` (podman refuses a
/// storage opened with other paths, so anything inspecting it by hand passes these).
pub fn storage_options(dir: &Path) -> Vec<String> {
    vec![
        "--root".to_string(),
        dir.join("storage").display().to_string(),
        "--runroot".into(),
        dir.join("run").display().to_string(),
        "--tmpdir".into(),
        dir.join("tmp").display().to_string(),
        "--storage-driver".into(),
        "vfs".into(),
        "--events-backend".into(),
        "file".into(),
    ]
}

fn find_init() -> Option<PathBuf> {
    [
        "/usr/bin/catatonit",
        "/usr/libexec/podman/catatonit",
        "/usr/local/bin/catatonit",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .trim_start_matches("Error: ")
        .to_string()
}

impl Podman {
    /// A podman command with the global options and a clean container configuration.
    pub fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("podman");
        c.args(&self.global)
            .env("CONTAINERS_REGISTRIES_CONF", &self.registries_conf)
            .env_remove("CONTAINERS_CONF")
            .env_remove("CONTAINERS_STORAGE_CONF")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs a podman command to its end; stdout, or the last line podman wrote to stderr.
    pub async fn output(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .command()
            .args(args)
            .output()
            .await
            .map_err(|e| format!("cannot run podman: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(last_line(&out.stderr))
        }
    }

    /// What [`Podman::detect`] needs installed (podman and catatonit), checked without
    /// running a container: podman's version line.
    pub async fn installed() -> Result<String, String> {
        let version = tokio::process::Command::new("podman")
            .arg("--version")
            .output()
            .await
            .map_err(|e| format!("podman is not installed ({e})"))?;
        find_init().ok_or("catatonit (podman's init) is not installed")?;
        Ok(String::from_utf8_lossy(&version.stdout).trim().to_string())
    }

    /// Ids of the containers carrying `label` in the storage in `dir`, listed without probing
    /// (a listing starts no container): whether an earlier run left any.
    pub async fn labelled_in(dir: &Path, label: &str) -> Result<Vec<String>, String> {
        let lister = Podman {
            global: storage_options(dir),
            run_flags: vec![],
            init: PathBuf::new(),
            registries_conf: dir.join("registries.conf"),
            description: String::new(),
        };
        let ids = lister
            .output(&["ps", "-a", "-q", "--filter", &format!("label={label}")])
            .await?;
        Ok(ids.split_whitespace().map(str::to_string).collect())
    }

    /// Whether the container `id` still exists (`podman container exists`).
    pub async fn exists(&self, id: &str) -> Result<bool, String> {
        let status = self
            .command()
            .args(["container", "exists", id])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .map_err(|e| format!("cannot run podman: {e}"))?;
        match status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            other => Err(format!("podman container exists answered {other:?}")),
        }
    }

    /// Removes the container `id` and waits until podman no longer lists it: `rm -f` is
    /// retried (a container still stopping refuses removal for a moment), with podman's own
    /// state, not a fixed pause, deciding when it is gone. `Err`: why it is still there.
    pub async fn remove(&self, id: &str) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 0..4u32 {
            if attempt > 0 {
                // Let a container that is stopping reach "exited" first.
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    self.output(&["wait", "--condition", "exited", id]),
                )
                .await;
            }
            match tokio::time::timeout(Duration::from_secs(30), self.output(&["rm", "-f", "-t", "0", id])).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => last = e,
                Err(_) => last = "podman rm timed out after 30 s".into(),
            }
            match self.exists(id).await {
                Ok(false) => return Ok(()),
                Ok(true) if last.is_empty() => last = "podman rm answered, yet the container is still there".into(),
                Ok(true) => {}
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Finds flags under which podman runs a container here, with storage in `dir`.
    pub async fn detect(dir: &Path) -> Result<Podman, String> {
        let version = Self::installed().await?;
        let init = find_init().ok_or("catatonit (podman's init) is not installed")?;
        let probe = dir.join("probe-rootfs");
        std::fs::create_dir_all(&probe).map_err(|e| e.to_string())?;
        let probe_init = probe.join("init");
        if !probe_init.exists() {
            std::fs::copy(&init, &probe_init).map_err(|e| format!("preparing the probe: {e}"))?;
        }
        let registries_conf = dir.join("registries.conf");
        std::fs::write(
            &registries_conf,
            "unqualified-search-registries = [\"docker.io\"]\nshort-name-mode = \"permissive\"\n",
        )
        .map_err(|e| e.to_string())?;
        let storage = storage_options(dir);
        let ulimits: Vec<String> = [
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ]
        .map(String::from)
        .to_vec();
        let candidates: Vec<(Vec<&str>, Vec<String>, &str)> = vec![
            (
                vec!["--runtime", "runc", "--cgroup-manager", "cgroupfs"],
                ulimits.clone(),
                "runtime runc, cgroup manager cgroupfs, explicit ulimits",
            ),
            (
                vec!["--cgroup-manager", "cgroupfs"],
                vec![],
                "default runtime, cgroup manager cgroupfs",
            ),
            (vec![], vec![], "podman's defaults"),
        ];
        let mut failures = Vec::new();
        for (flags, run_flags, what) in candidates {
            let mut global = storage.clone();
            global.extend(flags.iter().map(|s| s.to_string()));
            let podman = Podman {
                global,
                run_flags: run_flags.clone(),
                init: init.clone(),
                registries_conf: registries_conf.clone(),
                description: format!("{version}, {what}, storage vfs"),
            };
            let mut args: Vec<String> = vec![
                "run".into(),
                "--rm".into(),
                "--network".into(),
                "host".into(),
            ];
            args.extend(run_flags);
            args.extend([
                "--rootfs".into(),
                probe.display().to_string(),
                "/init".into(),
                "--version".into(),
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            match tokio::time::timeout(Duration::from_secs(30), podman.output(&args)).await {
                Ok(Ok(_)) => return Ok(podman),
                Ok(Err(e)) => failures.push(format!("{what}: {e}")),
                Err(_) => failures.push(format!("{what}: timed out")),
            }
        }
        Err(format!(
            "podman cannot run a container here: {}",
            failures.join("; ")
        ))
    }

    /// Removes every container carrying `label` (`key` or `key=value`): those of earlier runs at
    /// start-up, or one ECS task's.
    pub async fn remove_labelled(&self, label: &str) -> Result<usize, String> {
        let ids = self
            .output(&[
                "ps",
                "-a",
                "-q",
                "--filter",
                &format!("label={label}"),
            ])
            .await?;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-t", "0"];
            args.extend(&ids);
            self.output(&args).await?;
        }
        Ok(ids.len())
    }
}
