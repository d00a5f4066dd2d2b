//! The `container` executor: each build is one podman container of the project's image.
//!
//! * **Runtime**: [`Podman::detect`] tries flag sets at start-up (on this kind of machine the
//!   default crun fails; `--runtime runc --cgroup-manager cgroupfs` with explicit ulimits works)
//!   by running a probe container from a one-file root filesystem, and keeps the first that
//!   works. Storage is `vfs` under `<data_dir>/codebuild/containers`, private to the server, so
//!   start-up can remove every container an earlier run left (they carry the label
//!   `codeyard.build-id`).
//! * **The container**: created in PROVISIONING ([`Sandbox::provision`]) after the image is
//!   resolved ([`crate::images`]) and pulled. Its PID 1 is podman's `catatonit` in pause mode,
//!   bind-mounted from the host, so any image works and orphans are reaped. It shares the
//!   host's network (builds reach codeyard at `localhost:<port>`, as on the host). The sandbox
//!   root is mounted twice: at its host path (the runtime's scripts name host paths) and at
//!   `/codebuild/output/src<n>`, where CodeBuild keeps sources; values of the environment and
//!   the working directory are rewritten to the second path.
//! * **Runs**: `podman exec` of `/bin/sh -c 'exec "$0" "$@" > FIFO 2>&1' program args`. Output
//!   goes through a FIFO in the sandbox root that the executor reads, not through podman's
//!   attach streams: stdout and stderr stay in order, and a background process's output
//!   outlives the `exec` that started it (the contract).
//! * **Kill**: SIGKILL to the container's PID 1 from the host; the kernel then kills every
//!   process of its pid namespace at once. Teardown removes the container (`podman rm -f`).

use crate::executor::{
    Exit, Invocation, LocalSandbox, Placement, ProvisionError, Provisioning, Sandbox, SandboxSpec,
    pump_lines,
};
use crate::images::{ImageResolver, ResolvedImage};
pub use codeyard_podman::{Podman, storage_options};
use crate::script::single_quote;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The label every build container carries (value: the build id).
pub const BUILD_LABEL: &str = "codeyard.build-id";

const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs builds in containers of their images.
pub struct ContainerExecutor {
    pub podman: Arc<Podman>,
    pub images: Arc<ImageResolver>,
    /// `auto`: a curated image that cannot be had runs on the host, saying so in the log.
    pub host_fallback: bool,
    /// Host directories every container also sees at the same path (tests).
    pub extra_mounts: Vec<PathBuf>,
    /// Host directories privileged containers also see at the same path: the image storage
    /// of the `docker` wrapper (`<data_dir>/ecr/containers`), shared with the host's builds.
    pub privileged_mounts: Vec<PathBuf>,
}

#[async_trait::async_trait]
impl crate::executor::Executor for ContainerExecutor {
    fn name(&self) -> &'static str {
        "container"
    }

    async fn create(&self, spec: SandboxSpec) -> std::io::Result<Arc<dyn Sandbox>> {
        let control = spec.root.join(".codeyard");
        std::fs::create_dir_all(&control)?;
        let fifo = control.join("output");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes())
            .map_err(std::io::Error::other)?;
        // SAFETY: mkfifo only reads the NUL-terminated path.
        if unsafe { libc::mkfifo(c_path.as_ptr(), 0o666) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Reader first (non-blocking so the open does not wait for a writer), then our writer:
        // the stream ends only when ours and every process's copy are closed.
        use std::os::unix::fs::OpenOptionsExt;
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)?;
        let writer = std::fs::OpenOptions::new().write(true).open(&fifo)?;
        set_blocking(&reader)?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("codebuild-output".into())
            .spawn(move || pump_lines(reader, tx))?;
        Ok(Arc::new(ContainerSandbox {
            podman: self.podman.clone(),
            images: self.images.clone(),
            host_fallback: self.host_fallback,
            extra_mounts: self.extra_mounts.clone(),
            privileged_mounts: self.privileged_mounts.clone(),
            spec,
            fifo,
            writer: Mutex::new(Some(writer)),
            output: Mutex::new(Some(rx)),
            killed: CancellationToken::new(),
            state: Mutex::new(State::New),
        }))
    }
}

/// The `container` executor as `--executor container|auto` starts it: podman is probed (a
/// probe container run, [`Podman::detect`]) when the first build needs it, not at start-up,
/// so a server stopped right after it started leaves no `runc init` or `conmon` behind, and
/// start-up costs no container run. What the probe found goes into the shared
/// [`crate::ExecutorStatus`] (`/_codeyard/health`: "not probed yet" until then). Under `auto`
/// a failed probe sends builds to the host, each build's log saying why; under `container` it
/// fails each build's PROVISIONING.
pub struct LazyContainerExecutor {
    pub dir: PathBuf,
    pub images: Arc<ImageResolver>,
    pub host_fallback: bool,
    pub privileged_mounts: Vec<PathBuf>,
    pub status: crate::ExecutorStatus,
    probed: tokio::sync::OnceCell<Result<Arc<ContainerExecutor>, String>>,
    /// podman's tmpdir (and runroot) outside the data dir when its paths are too long there.
    tmpdir: std::sync::OnceLock<codeyard_podman::PrivateTmpdir>,
}

impl LazyContainerExecutor {
    pub fn new(
        dir: PathBuf,
        images: Arc<ImageResolver>,
        host_fallback: bool,
        privileged_mounts: Vec<PathBuf>,
        status: crate::ExecutorStatus,
    ) -> Self {
        LazyContainerExecutor {
            dir,
            images,
            host_fallback,
            privileged_mounts,
            status,
            probed: tokio::sync::OnceCell::new(),
            tmpdir: std::sync::OnceLock::new(),
        }
    }

    /// The probed executor (probing once, on the first call).
    pub async fn probe(&self) -> Result<Arc<ContainerExecutor>, String> {
        self.probed
            .get_or_init(|| async {
                let detected = Podman::detect_private(&self.dir).await.map(|(podman, tmp)| {
                    let _ = self.tmpdir.set(tmp);
                    podman
                });
                match detected {
                    Ok(podman) => {
                        tracing::info!("codebuild executor: containers ({})", podman.description);
                        self.status.set("container", &podman.description, Some(podman.global.clone()));
                        Ok(Arc::new(ContainerExecutor {
                            podman: Arc::new(podman),
                            images: self.images.clone(),
                            host_fallback: self.host_fallback,
                            extra_mounts: vec![],
                            privileged_mounts: self.privileged_mounts.clone(),
                        }))
                    }
                    Err(why) => {
                        tracing::warn!("codebuild executor: containers unavailable: {why}");
                        if self.host_fallback {
                            self.status.set("local", &format!("containers unavailable, builds run on this machine: {why}"), None);
                        } else {
                            self.status.set("container", &format!("podman cannot run build containers: {why}"), None);
                        }
                        Err(why)
                    }
                }
            })
            .await
            .clone()
    }

    /// Removes the build containers an earlier run left (after a `kill -9`): probes podman
    /// only when the storage lists some.
    pub async fn remove_leftovers(&self) {
        match Podman::labelled_in(&self.dir, BUILD_LABEL).await {
            Ok(ids) if ids.is_empty() => {}
            Ok(ids) => match self.probe().await {
                Ok(exec) => match exec.podman.remove_labelled(BUILD_LABEL).await {
                    Ok(n) => tracing::warn!("removed {n} build containers an earlier run left"),
                    Err(e) => tracing::warn!("cannot remove {} earlier build containers: {e}", ids.len()),
                },
                Err(e) => tracing::warn!("cannot remove {} earlier build containers: {e}", ids.len()),
            },
            Err(e) => tracing::warn!("cannot list earlier build containers: {e}"),
        }
    }
}

#[async_trait::async_trait]
impl crate::executor::Executor for LazyContainerExecutor {
    fn name(&self) -> &'static str {
        "container"
    }

    async fn create(&self, spec: SandboxSpec) -> std::io::Result<Arc<dyn Sandbox>> {
        match self.probe().await {
            Ok(exec) => exec.create(spec).await,
            Err(_) if self.host_fallback => crate::executor::LocalExecutor.create(spec).await,
            Err(why) => Err(std::io::Error::other(format!("--executor container: {why}"))),
        }
    }

    async fn prepare(&self) {
        let _ = self.probe().await;
    }

    fn notice(&self) -> Option<String> {
        match self.probed.get() {
            Some(Err(why)) if self.host_fallback => {
                Some(format!("Warning: executor auto: {why}; this build runs on the host"))
            }
            _ => None,
        }
    }
}

fn set_blocking(f: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

struct Running {
    id: String,
    pid1: i32,
    /// Where the sandbox root is seen inside (`/codebuild/output/src<n>`).
    src_root: String,
}

#[derive(Clone)]
enum State {
    New,
    Container(Arc<Running>),
    Host(Arc<LocalSandbox>),
    Gone,
}

struct ContainerSandbox {
    podman: Arc<Podman>,
    images: Arc<ImageResolver>,
    host_fallback: bool,
    extra_mounts: Vec<PathBuf>,
    privileged_mounts: Vec<PathBuf>,
    spec: SandboxSpec,
    fifo: PathBuf,
    writer: Mutex<Option<std::fs::File>>,
    output: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    killed: CancellationToken,
    state: Mutex<State>,
}

fn pull_error(image: &str, why: &str) -> ProvisionError {
    ProvisionError {
        code: "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE".into(),
        message: format!(
            "Unable to pull customer's container image. CannotPullContainerError: {image}: {why}"
        ),
    }
}

fn kill_pid(pid: i32) {
    if pid > 0 {
        // SAFETY: sends a signal to the container's init, which this sandbox started.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

impl ContainerSandbox {
    fn container_name(&self) -> String {
        let clean: String = self
            .spec
            .build_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("codeyard-build-{clean}")
    }

    /// Pulls the image when needed (always from codeyard's registry, whose tags move; other
    /// registries only when the image is not here yet). Returns the image id.
    async fn ensure_image(&self, image: &ResolvedImage, login: Option<&(String, String)>) -> Result<String, String> {
        let inspect = |r: String| {
            let podman = self.podman.clone();
            async move {
                podman
                    .output(&["image", "inspect", "--format", "{{.Id}}", &r])
                    .await
            }
        };
        if !image.local_registry
            && let Ok(id) = inspect(image.reference.clone()).await
        {
            return Ok(id);
        }
        let creds = login.map(|(user, token)| format!("{user}:{token}"));
        let mut args = vec!["pull", "-q"];
        if image.local_registry {
            args.push("--tls-verify=false");
            if let Some(c) = &creds {
                args.extend(["--creds", c.as_str()]);
            }
        }
        args.push(&image.reference);
        let pull = self.podman.output(&args);
        tokio::select! {
            r = tokio::time::timeout(PULL_TIMEOUT, pull) => match r {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(format!("the pull took longer than {} s", PULL_TIMEOUT.as_secs())),
            },
            _ = self.killed.cancelled() => return Err("the build was stopped during the pull".into()),
        }
        inspect(image.reference.clone()).await
    }

    async fn start_container(
        &self,
        image: &ResolvedImage,
        privileged: bool,
    ) -> Result<Running, String> {
        let root = self.spec.root.display().to_string();
        // AWS's directory names carry a number (src123456789); ours is stable per build.
        let n: u64 = self
            .spec
            .build_id
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
            % 1_000_000_000;
        let src_root = format!("/codebuild/output/src{n}");
        let mut args: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--replace".into(),
            "--name".into(),
            self.container_name(),
            "--label".into(),
            format!("{BUILD_LABEL}={}", self.spec.build_id),
            "--network".into(),
            "host".into(),
            "--pull".into(),
            "never".into(),
        ];
        args.extend(self.podman.run_flags.iter().cloned());
        if privileged {
            args.push("--privileged".into());
        }
        let mut mount = |host: &str, inside: &str, opts: &str| {
            args.push("-v".into());
            args.push(format!("{host}:{inside}{opts}"));
        };
        mount(&root, &root, "");
        mount(&root, &src_root, "");
        let privileged_mounts = if privileged {
            &self.privileged_mounts[..]
        } else {
            &[]
        };
        for m in self.extra_mounts.iter().chain(privileged_mounts) {
            let _ = std::fs::create_dir_all(m);
            let m = m.display().to_string();
            mount(&m, &m, "");
        }
        mount(
            &self.podman.init.display().to_string(),
            "/.codeyard/init",
            ":ro",
        );
        let pidfile = self.spec.root.join(".codeyard").join("pid");
        args.push("--pidfile".into());
        args.push(pidfile.display().to_string());
        args.extend([
            "--entrypoint".into(),
            "/.codeyard/init".into(),
            image.reference.clone(),
            "-P".into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = self.podman.output(&args).await?;
        let pid = match std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            Some(pid) => pid,
            None => self
                .podman
                .output(&["inspect", "--format", "{{.State.Pid}}", &id])
                .await?
                .parse::<i32>()
                .map_err(|e| format!("reading the container's pid: {e}"))?,
        };
        Ok(Running {
            id,
            pid1: pid,
            src_root,
        })
    }

    fn in_container(&self, r: &Running, value: &str) -> String {
        value.replace(&self.spec.root.display().to_string(), &r.src_root)
    }

    async fn exec(&self, r: &Running, inv: Invocation) -> std::io::Result<Exit> {
        let (out, err) = {
            let guard = self.writer.lock().unwrap();
            let Some(w) = guard.as_ref() else {
                return Ok(Exit::Killed);
            };
            (w.try_clone()?, w.try_clone()?)
        };
        let mut cmd = self.podman.command();
        cmd.arg("exec")
            .arg("--workdir")
            .arg(self.in_container(r, &inv.cwd.display().to_string()));
        if let Some(user) = &inv.user {
            cmd.arg("--user").arg(user);
        }
        for (k, v) in &inv.env {
            cmd.arg("--env")
                .arg(format!("{k}={}", self.in_container(r, v)));
        }
        cmd.arg(&r.id)
            .arg("/bin/sh")
            .arg("-c")
            .arg(format!(
                "exec \"$0\" \"$@\" > {} 2>&1",
                single_quote(&self.fifo.display().to_string())
            ))
            .arg(&inv.program)
            .args(&inv.args)
            .stdout(out)
            .stderr(err);
        let mut child = cmd.spawn()?;
        drop(cmd);
        crate::executor::wait_or_killed(&mut child, &self.killed, || kill_pid(r.pid1)).await
    }
}

#[async_trait::async_trait]
impl Sandbox for ContainerSandbox {
    fn root(&self) -> &Path {
        &self.spec.root
    }

    fn take_output(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.output.lock().unwrap().take()
    }

    fn note(&self, line: &str) {
        if let Some(w) = self.writer.lock().unwrap().as_mut() {
            let _ = w.write_all(format!("{line}\n").as_bytes());
        }
    }

    async fn provision(&self, p: &Provisioning) -> Result<Placement, ProvisionError> {
        let resolved = self
            .images
            .resolve(&p.image)
            .map_err(|why| pull_error(&p.image, &why))?;
        let shown = match &resolved.curated {
            Some(c) => format!("{c} ({})", resolved.reference),
            None => resolved.reference.clone(),
        };
        let image_id = match self.ensure_image(&resolved, p.registry_login.as_ref()).await {
            Ok(id) => id,
            Err(why)
                if self.host_fallback
                    && resolved.curated.is_some()
                    && !self.killed.is_cancelled() =>
            {
                let writer = self
                    .writer
                    .lock()
                    .unwrap()
                    .as_ref()
                    .map(|w| w.try_clone())
                    .transpose()
                    .map_err(|e| ProvisionError {
                        code: "CLIENT_ERROR".into(),
                        message: e.to_string(),
                    })?;
                let Some(writer) = writer else {
                    return Err(pull_error(&p.image, "the build was stopped"));
                };
                let local =
                    LocalSandbox::start(self.spec.clone(), writer).map_err(|e| ProvisionError {
                        code: "CLIENT_ERROR".into(),
                        message: e.to_string(),
                    })?;
                self.note(&crate::logs::agent_line(&format!(
                    "Warning: executor auto: the image {shown} cannot be had ({why}); this build runs on the host instead (see `codeyard images build-standard`, or map the name with CODEYARD_IMAGE_MAP)"
                )));
                *self.state.lock().unwrap() = State::Host(Arc::new(local));
                return Ok(Placement::Host);
            }
            Err(why) if resolved.local_registry && why.contains("denied") => {
                // The registry refused the login's principal (the repository policy).
                return Err(ProvisionError {
                    code: "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE".into(),
                    message: crate::access::pull_denied(
                        &p.image,
                        why.rsplit_once("denied: ").map_or(why.as_str(), |(_, m)| m),
                    ),
                });
            }
            Err(why) => return Err(pull_error(&shown, &why)),
        };
        if self.killed.is_cancelled() {
            return Err(pull_error(&shown, "the build was stopped"));
        }
        let running = self
            .start_container(&resolved, p.privileged)
            .await
            .map_err(|why| ProvisionError {
                code: "CLIENT_ERROR".into(),
                message: format!("cannot start the build container of {shown}: {why}"),
            })?;
        let short: String = running.id.chars().take(12).collect();
        let short_image: String = image_id.chars().take(12).collect();
        self.note(&crate::logs::agent_line(&format!(
            "Running in container {short} of image {shown} ({short_image})"
        )));
        let path = if p.privileged {
            self.podman
                .output(&[
                    "image",
                    "inspect",
                    "--format",
                    "{{json .Config.Env}}",
                    &resolved.reference,
                ])
                .await
                .ok()
                .and_then(|j| serde_json::from_str::<Vec<String>>(&j).ok())
                .and_then(|env| {
                    env.into_iter()
                        .find_map(|kv| kv.strip_prefix("PATH=").map(str::to_string))
                })
        } else {
            None
        };
        let placement = Placement::Container {
            image: resolved.reference.clone(),
            image_id,
            src_root: running.src_root.clone(),
            path,
        };
        let mut state = self.state.lock().unwrap();
        if matches!(*state, State::Gone) || self.killed.is_cancelled() {
            // Killed or torn down while starting: do not leave it running.
            kill_pid(running.pid1);
        }
        *state = State::Container(Arc::new(running));
        Ok(placement)
    }

    async fn run(&self, inv: Invocation) -> std::io::Result<Exit> {
        if self.killed.is_cancelled() {
            return Ok(Exit::Killed);
        }
        let state = self.state.lock().unwrap().clone();
        match state {
            State::Container(r) => self.exec(&r, inv).await,
            State::Host(local) => local.run(inv).await,
            State::New => Err(std::io::Error::other("the sandbox was not provisioned")),
            State::Gone => Ok(Exit::Killed),
        }
    }

    fn kill(&self) {
        self.killed.cancel();
        match &*self.state.lock().unwrap() {
            State::Container(r) => kill_pid(r.pid1),
            State::Host(local) => local.kill(),
            _ => {}
        }
    }

    async fn teardown(&self) -> std::io::Result<()> {
        let state = std::mem::replace(&mut *self.state.lock().unwrap(), State::Gone);
        match state {
            State::Container(r) => {
                kill_pid(r.pid1);
                if let Err(why) = self.podman.remove(&r.id).await {
                    tracing::warn!(container = %r.id, "cannot remove the build container: {why}");
                    let short: String = r.id.chars().take(12).collect();
                    self.note(&crate::logs::agent_line(&format!(
                        "Warning: the build container {short} could not be removed: {why} (the next start-up of codeyard removes it)"
                    )));
                }
            }
            State::Host(local) => {
                local.teardown().await?;
            }
            State::New | State::Gone => {}
        }
        self.writer.lock().unwrap().take();
        if self.spec.root.exists() {
            let root = self.spec.root.clone();
            tokio::task::spawn_blocking(move || std::fs::remove_dir_all(root))
                .await
                .ok();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::conformance;

    /// A root filesystem from the host's own files: bash (with its libraries) and busybox.
    pub fn test_rootfs(dir: &Path) -> bool {
        let busybox = Path::new("/bin/busybox");
        if !busybox.exists() {
            return false;
        }
        let script = format!(
            "set -e; r='{}'; mkdir -p $r/bin $r/tmp; cp /bin/busybox $r/bin/; cp /bin/bash $r/bin/; \
             for lib in $(ldd /bin/bash | grep -o '/[^ ]*'); do mkdir -p $r$(dirname $lib); cp -L $lib $r$lib; done; \
             for a in sh sleep head tr cat echo ls wget env mkdir rm printf; do ln -sf busybox $r/bin/$a; done",
            dir.display()
        );
        std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .status()
            .is_ok_and(|s| s.success())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn container_executor_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let podman = match Podman::detect(&dir.path().join("containers")).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("SKIPPED: the container executor's conformance run needs podman: {e}");
                return;
            }
        };
        let rootfs = dir.path().join("rootfs");
        if !test_rootfs(&rootfs) {
            eprintln!("SKIPPED: no busybox to build the test image from");
            return;
        }
        let import = format!(
            "tar -C '{}' -c . | podman {} import - localhost/codeyard-conformance:1",
            rootfs.display(),
            podman.global.join(" ")
        );
        let ok = std::process::Command::new("bash")
            .arg("-c")
            .arg(import)
            .status()
            .unwrap();
        assert!(ok.success(), "importing the test image");
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let exec = ContainerExecutor {
            podman: Arc::new(podman),
            images: Arc::new(ImageResolver::new("http://localhost:1", dir.path())),
            host_fallback: false,
            extra_mounts: vec![scratch.clone()],
            privileged_mounts: vec![],
        };
        let prov = Provisioning {
            image: "localhost/codeyard-conformance:1".into(),
            ..Default::default()
        };
        conformance::run_all(&exec, &scratch, &prov).await;
        let left = exec
            .podman
            .output(&[
                "ps",
                "-a",
                "-q",
                "--filter",
                &format!("label={BUILD_LABEL}"),
            ])
            .await
            .unwrap();
        assert_eq!(left, "", "teardown removes the containers");
    }
}
