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

/// podman refuses a `--runroot` longer than this ("the specified runroot is longer than 50
/// characters"): the attach sockets under it must fit a Unix socket path. A default data dir
/// (`~/.local/share/codeyard/codebuild/containers/run`) is longer for every user.
pub const RUNROOT_MAX: usize = 50;

/// podman's global options for the containers' storage in `dir` (podman refuses a storage
/// opened with other paths, so anything inspecting it by hand passes these). The tmpdir is
/// where `<dir>/tmp` links to when it is a link ([`PrivateTmpdir`]), else `<dir>/tmp`.
pub fn storage_options(dir: &Path) -> Vec<String> {
    let link = dir.join("tmp");
    match std::fs::read_link(&link) {
        Ok(target) => storage_options_in(dir, &target),
        Err(_) => storage_options_in(dir, &link),
    }
}

/// [`storage_options`] with podman's tmpdir at `tmpdir` ([`PrivateTmpdir`]). podman keeps the
/// tmpdir a storage was first opened with in its database and uses that one afterwards,
/// whatever a later command passes. The runroot is `<dir>/run`, or `<tmpdir>/runroot` when
/// that is too long for podman ([`RUNROOT_MAX`]) and the tmpdir is a short one elsewhere.
fn storage_options_in(dir: &Path, tmpdir: &Path) -> Vec<String> {
    let inside = dir.join("run");
    let runroot = if inside.as_os_str().len() > RUNROOT_MAX && !tmpdir.starts_with(dir) {
        tmpdir.join("runroot")
    } else {
        inside
    };
    vec![
        "--root".to_string(),
        dir.join("storage").display().to_string(),
        "--runroot".into(),
        runroot.display().to_string(),
        "--tmpdir".into(),
        tmpdir.display().to_string(),
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

    /// [`Podman::detect`] after opening the storage's [`PrivateTmpdir`], which the caller keeps
    /// for as long as it runs containers there.
    pub async fn detect_private(dir: &Path) -> Result<(Podman, PrivateTmpdir), String> {
        let tmpdir = PrivateTmpdir::open(dir)?;
        Ok((Self::detect(dir).await?, tmpdir))
    }

    /// Finds flags under which podman runs a container here, with storage in `dir`
    /// ([`storage_options`]). The `--tmpdir` kept is the one podman really uses (its
    /// database's, for a storage opened before with another).
    pub async fn detect(dir: &Path) -> Result<Podman, String> {
        let mut podman = Self::probe(dir, storage_options(dir)).await?;
        if let Some(used) = podman.tmpdir_in_use().await {
            if let Some(i) = podman.global.iter().position(|a| a == "--tmpdir") {
                if podman.global.get(i + 1) != Some(&used) {
                    tracing::info!(tmpdir = %used, "podman: this storage keeps the tmpdir it was created with");
                    podman.global[i + 1] = used;
                }
            }
        }
        Ok(podman)
    }

    /// The tmpdir podman uses for this storage, from its own debug output ("Using tmp dir");
    /// `None` when it does not say.
    async fn tmpdir_in_use(&self) -> Option<String> {
        let out = self
            .command()
            .args(["--log-level", "debug", "ps", "-a", "-q", "--filter", "label=codeyard.none"])
            .output()
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&out.stderr);
        text.lines().find_map(|l| {
            let rest = l.split("Using tmp dir ").nth(1)?;
            Some(rest.trim_end().trim_end_matches('"').to_string())
        })
    }

    /// The tmpdir in the global options.
    pub fn tmpdir(&self) -> Option<&str> {
        self.global
            .iter()
            .skip_while(|a| *a != "--tmpdir")
            .nth(1)
            .map(String::as_str)
    }

    /// The `--network` for a container whose published ports are forwarded by a process of its
    /// own: slirp4netns with its port handler, when it is installed and its API socket
    /// (`<tmpdir>/<container id>.net`) fits a Unix socket path ([`PRIVATE_NETWORK_TMPDIR_MAX`]).
    /// `None`: podman's default network (as root, netavark's bridge, which publishes ports with
    /// host firewall rules; those outlive a container whose cleanup never ran, and a later
    /// listener on the same port of 127.0.0.1 is then unreachable: "No route to host").
    pub fn private_network(&self) -> Option<&'static str> {
        static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let found = *FOUND.get_or_init(|| {
            std::env::var_os("PATH").is_some_and(|path| {
                std::env::split_paths(&path).any(|d| d.join("slirp4netns").is_file())
            })
        });
        let fits = self.tmpdir().is_some_and(|t| t.len() <= PRIVATE_NETWORK_TMPDIR_MAX);
        (found && fits).then_some("slirp4netns:port_handler=slirp4netns")
    }

    async fn probe(dir: &Path, storage: Vec<String>) -> Result<Podman, String> {
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

/// The longest podman tmpdir under which slirp4netns's API socket
/// (`<tmpdir>/<64 hex digits of container id>.net`) fits a Unix socket path (`sun_path`: 108
/// bytes with its NUL).
pub const PRIVATE_NETWORK_TMPDIR_MAX: usize = 107 - "/".len() - 64 - ".net".len();

/// What names a private tmpdir's data dir: the `tmp` link that points at it.
const OWNER_FILE: &str = "codeyard-owner";
const TMPDIR_PREFIX: &str = "codeyard-podman-";

/// podman's tmpdir for the storage in `dir`, short enough for [`Podman::private_network`]:
/// `<dir>/tmp` itself when it is ([`PRIVATE_NETWORK_TMPDIR_MAX`]), else a private directory
/// (0700) under the system's temporary directory (`/tmp/codeyard-podman-XXXXXX`) that
/// `<dir>/tmp` links to. podman keeps a storage's first tmpdir in its database (conmon's exit
/// files and its "alive" marker live there; a tmpdir without that marker makes podman reset
/// its containers' state, as after a reboot), so the link records which one this storage has
/// and later starts create it again (0700, ours) when it is gone.
///
/// Dropped (the server stopping): a linked directory is removed when no container is left in
/// the storage (running ones keep theirs across a restart; the link stays, so the next start
/// makes the same one). At [`PrivateTmpdir::open`], linked directories whose data dir is gone
/// (the link no longer points back) are removed.
#[derive(Debug)]
pub struct PrivateTmpdir {
    /// What podman is given (`--tmpdir`).
    pub path: PathBuf,
    /// `<dir>/tmp`, when it links to `path`.
    link: Option<PathBuf>,
    /// podman's storage options, to list what is left when dropped.
    storage: Vec<String>,
}

impl PrivateTmpdir {
    /// The tmpdir of the storage in `dir` (created when missing).
    pub fn open(dir: &Path) -> Result<PrivateTmpdir, String> {
        Self::open_under(dir, &std::env::temp_dir())
    }

    fn open_under(dir: &Path, temp: &Path) -> Result<PrivateTmpdir, String> {
        use std::os::unix::fs::MetadataExt;
        let fail = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
        std::fs::create_dir_all(dir).map_err(|e| fail("creating", dir, e))?;
        let owner = std::fs::metadata(dir).map_err(|e| fail("reading", dir, e))?.uid();
        let link = dir.join("tmp");
        let base = if temp.as_os_str().len() + 1 + TMPDIR_PREFIX.len() + 6 <= PRIVATE_NETWORK_TMPDIR_MAX {
            temp.to_path_buf()
        } else {
            PathBuf::from("/tmp")
        };
        prune(&base, owner);
        let found = |path: PathBuf, link: Option<PathBuf>| PrivateTmpdir {
            storage: storage_options_in(dir, &path),
            path,
            link,
        };
        match std::fs::symlink_metadata(&link) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&link).map_err(|e| fail("reading", &link, e))?;
                if !private_dir(&target, owner)? {
                    return Err(format!(
                        "podman's tmpdir {} (linked from {}) is not a directory of this user's alone",
                        target.display(),
                        link.display()
                    ));
                }
                write_owner(&target, &link)?;
                Ok(found(target, Some(link)))
            }
            // Short enough, or podman's database already names it (a storage from before).
            Ok(m) if m.is_dir() => Ok(found(link, None)),
            Ok(_) => Err(format!("{} is not a directory", link.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if link.as_os_str().len() <= PRIVATE_NETWORK_TMPDIR_MAX {
                    std::fs::create_dir(&link).map_err(|e| fail("creating", &link, e))?;
                    return Ok(found(link, None));
                }
                use std::os::unix::fs::PermissionsExt;
                let target = tempfile::Builder::new()
                    .prefix(TMPDIR_PREFIX)
                    .permissions(std::fs::Permissions::from_mode(0o700))
                    .tempdir_in(&base)
                    .map_err(|e| fail("creating a directory in", &base, e))?
                    .keep();
                // Linked before it names its data dir: another server's prune passes over a
                // directory without the name.
                if let Err(e) = std::os::unix::fs::symlink(&target, &link) {
                    let _ = std::fs::remove_dir_all(&target);
                    return Err(fail("linking", &link, e));
                }
                write_owner(&target, &link)?;
                Ok(found(target, Some(link)))
            }
            Err(e) => Err(fail("reading", &link, e)),
        }
    }

    /// Whether `<dir>/tmp` links to `path` elsewhere (which [`Drop`] may remove).
    pub fn is_linked(&self) -> bool {
        self.link.is_some()
    }
}

/// `path` is a directory owned by `owner` that nobody else may enter (created, 0700, when
/// missing); `false` when something else is there.
fn private_dir(path: &Path, owner: u32) -> Result<bool, String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(m.is_dir() && m.uid() == owner && m.mode() & 0o077 == 0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::DirBuilder::new().mode(0o700).create(path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(format!("creating {}: {e}", path.display())),
            }
        }
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

fn write_owner(target: &Path, link: &Path) -> Result<(), String> {
    std::fs::write(target.join(OWNER_FILE), link.display().to_string())
        .map_err(|e| format!("writing in {}: {e}", target.display()))
}

/// Removes this user's linked tmpdirs under `base` whose data dir no longer links to them.
fn prune(base: &Path, owner: u32) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with(TMPDIR_PREFIX) {
            continue;
        }
        let ours = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == owner);
        let Ok(link) = std::fs::read_to_string(path.join(OWNER_FILE)) else {
            continue;
        };
        if ours && std::fs::read_link(&link).ok().as_deref() != Some(path.as_path()) {
            tracing::info!(tmpdir = %path.display(), data = %link, "podman: removing the tmpdir of a data dir that is gone");
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

impl Drop for PrivateTmpdir {
    fn drop(&mut self) {
        if self.link.is_none() {
            return;
        }
        let left = std::process::Command::new("podman")
            .args(&self.storage)
            .args(["ps", "-a", "-q"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output();
        match left {
            Ok(out) if out.status.success() && out.stdout.iter().all(u8::is_ascii_whitespace) => {
                let _ = std::fs::remove_dir_all(&self.path);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A data dir whose `<dir>/tmp` is too long for slirp4netns's socket (over
    /// [`PRIVATE_NETWORK_TMPDIR_MAX`]) but whose `<dir>/run` is not too long for podman's
    /// runroot (50 characters).
    fn long_dir(root: &Path) -> PathBuf {
        let dir = root.join("a-data").join("ecs").join("containers");
        assert!(dir.join("tmp").as_os_str().len() > PRIVATE_NETWORK_TMPDIR_MAX);
        assert!(dir.join("run").as_os_str().len() <= 50, "{}", dir.display());
        dir
    }

    #[test]
    fn a_long_data_dir_gets_a_private_tmpdir_that_later_starts_find_again() {
        let root = tempfile::tempdir().unwrap();
        let base = tempfile::tempdir().unwrap();
        let dir = long_dir(root.path());
        let tmp = PrivateTmpdir::open_under(&dir, base.path()).unwrap();
        assert!(tmp.is_linked());
        assert!(tmp.path.starts_with(base.path()), "{}", tmp.path.display());
        assert!(tmp.path.as_os_str().len() <= PRIVATE_NETWORK_TMPDIR_MAX);
        assert_eq!(std::fs::read_link(dir.join("tmp")).unwrap(), tmp.path);
        let mode = std::fs::metadata(&tmp.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let path = tmp.path.clone();
        std::mem::forget(tmp);
        // Gone (a reboot, a tmp cleaner): made again at the same path, which podman's database names.
        std::fs::remove_dir_all(&path).unwrap();
        let again = PrivateTmpdir::open_under(&dir, base.path()).unwrap();
        assert_eq!(again.path, path);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
        std::mem::forget(again);
        // Someone else's directory there is refused, not used.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = PrivateTmpdir::open_under(&dir, base.path()).unwrap_err();
        assert!(e.contains("not a directory of this user's alone"), "{e}");
        // Its data dir gone: the next open anywhere removes it.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        drop(root);
        let other = tempfile::tempdir().unwrap();
        let _short = PrivateTmpdir::open_under(&long_dir(other.path()), base.path()).unwrap();
        assert!(!path.exists(), "the orphaned tmpdir is removed");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_data_dir_too_long_for_podmans_runroot_runs_containers() {
        if let Err(e) = Podman::installed().await {
            eprintln!("skipped: {e}");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(".local/share/codeyard/codebuild/containers");
        assert!(dir.join("run").as_os_str().len() > RUNROOT_MAX);
        let tmp = PrivateTmpdir::open(&dir).unwrap();
        assert!(tmp.is_linked());
        let storage = storage_options(&dir);
        assert_eq!(storage, storage_options_in(&dir, &tmp.path), "the link is followed");
        let runroot = &storage[storage.iter().position(|a| a == "--runroot").unwrap() + 1];
        assert!(runroot.len() <= RUNROOT_MAX, "{runroot}");
        Podman::detect(&dir).await.expect("podman runs a container with this storage");
    }

    #[test]
    fn a_short_data_dir_keeps_its_tmpdir_inside() {
        let root = tempfile::tempdir().unwrap();
        let base = tempfile::tempdir().unwrap();
        let dir = root.path().join("c");
        let tmp = PrivateTmpdir::open_under(&dir, base.path()).unwrap();
        assert!(!tmp.is_linked());
        assert_eq!(tmp.path, dir.join("tmp"));
        assert!(tmp.path.is_dir());
        assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 0);
    }

    /// NAT rules (netavark's for published ports) naming `port` (`None` when `nft` cannot
    /// be read).
    fn nat_rules(port: u16) -> Option<usize> {
        let out = std::process::Command::new("nft").args(["list", "ruleset"]).output().ok()?;
        let dport = format!("dport {port} ");
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains("dnat to") && l.contains(&dport))
                .count()
        })
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_container_in_a_long_data_dir_publishes_its_port_on_loopback_without_nat_rules() {
        if let Err(e) = Podman::installed().await {
            eprintln!("skipped: {e}");
            return;
        }
        let Some(busybox) = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p).map(|d| d.join("busybox")).find(|b| b.is_file())
        }) else {
            eprintln!("skipped: busybox is not installed");
            return;
        };
        let root = tempfile::tempdir().unwrap();
        let base = tempfile::tempdir().unwrap();
        let dir = long_dir(root.path());
        let tmp = PrivateTmpdir::open_under(&dir, base.path()).unwrap();
        let podman = Podman::detect(&dir).await.unwrap();
        assert_eq!(podman.tmpdir(), Some(tmp.path.display().to_string().as_str()));
        let network = podman.private_network().expect("slirp4netns is installed");
        let rootfs = root.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("www")).unwrap();
        std::fs::write(rootfs.join("www/index.html"), "private\n").unwrap();
        std::fs::copy(&busybox, rootfs.join("busybox")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let publish = format!("127.0.0.1:{port}:{port}/tcp");
        let listen = port.to_string();
        let mut args = vec!["run", "-d", "--network", network, "-p", &publish];
        args.extend(podman.run_flags.iter().map(String::as_str));
        let root_arg = rootfs.display().to_string();
        args.extend(["--rootfs", &root_arg, "/busybox", "httpd", "-f", "-p", &listen, "-h", "/www"]);
        let cid = podman.output(&args).await.unwrap();
        let mut body = String::new();
        for _ in 0..50 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                let _ = s.read_to_string(&mut body);
                if body.contains("private") {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let published = podman.output(&["port", &cid]).await.unwrap();
        let rules = nat_rules(port);
        podman.remove(&cid).await.unwrap();
        assert!(body.contains("private"), "the port answers: {body:?}");
        assert!(published.contains(&format!("127.0.0.1:{port}")), "{published}");
        assert!(rules.unwrap_or(0) == 0, "no NAT rule for the published port: {rules:?}");
        drop(tmp);
        assert!(std::fs::read_dir(base.path()).unwrap().next().is_none(), "the tmpdir is removed with no container left");
    }
}
