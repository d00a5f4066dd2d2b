//! Where build commands run: the [`Executor`] trait, its `local` backend and the conformance
//! suite every backend must pass.
//!
//! The build runtime above this module decides *what* runs (one generated shell script per
//! phase, see `script.rs`); an executor decides *where*. Keeping the interface this small
//! (create a sandbox, run programs in it, kill it, tear it down) is what lets a container or a
//! remote backend be added later without touching buildspec semantics.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Longest line forwarded to the log; longer ones are cut and marked.
pub const MAX_LINE_BYTES: usize = 32 * 1024;

/// What to create a sandbox for.
#[derive(Clone, Debug)]
pub struct SandboxSpec {
    /// The build id, for diagnostics and for finding orphans after a crash.
    pub build_id: String,
    /// The workspace directory the sandbox owns (created by `create`, removed by `teardown`).
    pub root: PathBuf,
}

/// One program to run inside a sandbox.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub program: String,
    pub args: Vec<String>,
    /// The complete environment (nothing is inherited from the server).
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// The user it runs as (the buildspec's `run-as`); `None`: the sandbox's own (root in a
    /// container). The `local` backend runs everything as the server's user.
    pub user: Option<String>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The program exited with this code (128 + signal when a signal ended it).
    Code(i32),
    /// The sandbox was killed (stop or timeout) before or while it ran.
    Killed,
}

impl Exit {
    /// How a finished process ended, as the runtime reports it: its exit code, or 128 + the
    /// signal that ended it (a shell's convention).
    pub fn from_status(status: std::process::ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        Exit::Code(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }
}

/// What PROVISIONING asks of a sandbox: the build environment of the project.
#[derive(Clone, Debug, Default)]
pub struct Provisioning {
    /// `environment.image` as the project names it.
    pub image: String,
    pub privileged: bool,
    /// `imagePullCredentialsType`: CODEBUILD or SERVICE_ROLE.
    pub pull_credentials: String,
    /// For an image in codeyard's ECR: the registry login (user, token) the pull presents,
    /// issued to the service role (SERVICE_ROLE) or to CodeBuild itself (CODEBUILD).
    pub registry_login: Option<(String, String)>,
}

/// Where a sandbox's programs run, once provisioned.
#[derive(Clone, Debug, PartialEq)]
pub enum Placement {
    /// On this machine, with its tools (the `local` executor, or `auto` falling back).
    Host,
    /// In a container of `image`; the sandbox root is also seen at `src_root`.
    Container {
        image: String,
        image_id: String,
        src_root: String,
        /// The image's PATH, read for privileged builds (their `docker` goes first on it).
        path: Option<String>,
    },
}

/// Why a sandbox could not be provisioned: a CodeBuild phase context (code, message).
#[derive(Clone, Debug)]
pub struct ProvisionError {
    pub code: String,
    pub message: String,
}

/// A backend that runs builds.
///
/// # Contract
///
/// * **Lifecycle**: `create` → any number of sequential [`Sandbox::run`] calls →
///   [`Sandbox::teardown`]. `kill` may be called at any time from any task.
/// * **Output**: everything the programs write to stdout and stderr, and every
///   [`Sandbox::note`], arrives on the receiver from [`Sandbox::take_output`] as lines (without
///   the newline, cut at [`MAX_LINE_BYTES`]), in the order written. The stream ends only after
///   `teardown`, so output of background processes a phase left running is not lost and a
///   background process never blocks the next run.
/// * **Kill**: `kill` ends every process the sandbox started (including background ones)
///   within a second; a `run` in progress returns [`Exit::Killed`], and later runs return it at
///   once.
/// * **Teardown** is idempotent: it kills what is left, ends the output stream and frees the
///   workspace. Calling it twice, or after `kill`, is fine.
/// * **Provisioning**: [`Sandbox::provision`] is called once, after `create` and before the
///   first `run`; it may take long (an image pull) and reports where runs will happen. A
///   backend whose `run` needs nothing provisioned keeps the default (the host).
/// * **Paths**: programs see the sandbox root at its host path (invocations, scripts and the
///   environment name host paths); a container backend may show it at a second path too.
/// * **Concurrency**: sandboxes are independent; an executor serves many at once.
#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    fn name(&self) -> &'static str;
    async fn create(&self, spec: SandboxSpec) -> std::io::Result<Arc<dyn Sandbox>>;
    /// A line for the log of each build this executor runs (why `auto` runs it on the host).
    fn notice(&self) -> Option<String> {
        None
    }
    /// Readies the executor for a build that just left the queue (the container executor
    /// probes podman the first time), before the build's timeout starts counting.
    async fn prepare(&self) {}
}

#[async_trait::async_trait]
pub trait Sandbox: Send + Sync {
    fn root(&self) -> &Path;
    /// The output stream; `None` after the first call.
    fn take_output(&self) -> Option<mpsc::UnboundedReceiver<String>>;
    /// Writes a line of the runtime's own (phase banners) into the output stream.
    fn note(&self, line: &str);
    async fn provision(&self, _p: &Provisioning) -> Result<Placement, ProvisionError> {
        Ok(Placement::Host)
    }
    async fn run(&self, invocation: Invocation) -> std::io::Result<Exit>;
    fn kill(&self);
    async fn teardown(&self) -> std::io::Result<()>;
}

/// Waits for a run's `child` to end, or for the sandbox to be killed: then `kill` ends what
/// runs (the process group, the container's init) and the child is reaped. A run that ends
/// while the sandbox is being killed counts as killed.
pub(crate) async fn wait_or_killed(
    child: &mut tokio::process::Child,
    killed: &CancellationToken,
    kill: impl FnOnce(),
) -> std::io::Result<Exit> {
    tokio::select! {
        status = child.wait() => {
            let status = status?;
            if killed.is_cancelled() {
                return Ok(Exit::Killed);
            }
            Ok(Exit::from_status(status))
        }
        _ = killed.cancelled() => {
            kill();
            let _ = child.start_kill();
            let _ = child.wait().await;
            Ok(Exit::Killed)
        }
    }
}

/// Runs builds as processes on this machine: one process group per build, anchored by an idle
/// `sleep` so that every phase joins the same group and one `killpg` ends all of them.
pub struct LocalExecutor;

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn create(&self, spec: SandboxSpec) -> std::io::Result<Arc<dyn Sandbox>> {
        let (reader, writer) = std::io::pipe()?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("codebuild-output".into())
            .spawn(move || pump_lines(reader, tx))?;
        let sandbox = LocalSandbox::start(
            spec,
            std::fs::File::from(std::os::fd::OwnedFd::from(writer)),
        )?;
        *sandbox.output.lock().unwrap() = Some(rx);
        Ok(Arc::new(sandbox))
    }
}

impl LocalSandbox {
    /// Starts the anchor of a host sandbox whose programs write to `writer` (the caller reads
    /// the other end).
    pub(crate) fn start(spec: SandboxSpec, writer: std::fs::File) -> std::io::Result<LocalSandbox> {
        std::fs::create_dir_all(&spec.root)?;
        let anchor = std::process::Command::new("sleep")
            .arg("infinity")
            .env("CODEYARD_BUILD_ANCHOR", &spec.build_id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()?;
        let pgid = anchor.id() as i32;
        Ok(LocalSandbox {
            root: spec.root,
            pgid,
            anchor: Mutex::new(Some(anchor)),
            writer: Mutex::new(Some(writer)),
            output: Mutex::new(None),
            killed: CancellationToken::new(),
        })
    }
}

use std::os::unix::process::CommandExt;

pub(crate) struct LocalSandbox {
    root: PathBuf,
    pgid: i32,
    anchor: Mutex<Option<std::process::Child>>,
    writer: Mutex<Option<std::fs::File>>,
    output: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    killed: CancellationToken,
}

/// Splits the pipe into lines, cutting very long ones, until every writer is gone.
pub(crate) fn pump_lines(reader: impl Read, tx: mpsc::UnboundedSender<String>) {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut line: Vec<u8> = Vec::new();
    let mut truncated = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok([]) => break,
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let (used, newline) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let take = if newline { used - 1 } else { used };
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        if take > room {
            truncated = true;
        }
        line.extend_from_slice(&buf[..take.min(room)]);
        reader.consume(used);
        if newline {
            let mut text = String::from_utf8_lossy(&line).into_owned();
            if text.ends_with('\r') {
                text.pop();
            }
            if truncated {
                text.push_str(" [line truncated]");
            }
            let _ = tx.send(text);
            line.clear();
            truncated = false;
        }
    }
    if !line.is_empty() {
        let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
    }
}

impl LocalSandbox {
    fn killpg(&self) {
        // SAFETY: killpg only sends a signal; the group is the one this sandbox created.
        unsafe {
            libc::killpg(self.pgid, libc::SIGKILL);
        }
    }
}

#[async_trait::async_trait]
impl Sandbox for LocalSandbox {
    fn root(&self) -> &Path {
        &self.root
    }

    fn take_output(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.output.lock().unwrap().take()
    }

    fn note(&self, line: &str) {
        if let Some(w) = self.writer.lock().unwrap().as_mut() {
            let _ = w.write_all(format!("{line}\n").as_bytes());
        }
    }

    async fn run(&self, inv: Invocation) -> std::io::Result<Exit> {
        if self.killed.is_cancelled() {
            return Ok(Exit::Killed);
        }
        let (out, err) = {
            let guard = self.writer.lock().unwrap();
            let Some(w) = guard.as_ref() else {
                return Ok(Exit::Killed);
            };
            (w.try_clone()?, w.try_clone()?)
        };
        let mut cmd = tokio::process::Command::new(&inv.program);
        cmd.args(&inv.args)
            .env_clear()
            .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&inv.cwd)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(self.pgid)
            .kill_on_drop(false);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            // The group is gone: the sandbox was killed between the check and the spawn.
            Err(_) if self.killed.is_cancelled() => return Ok(Exit::Killed),
            Err(e) => return Err(e),
        };
        drop(cmd);
        wait_or_killed(&mut child, &self.killed, || self.killpg()).await
    }

    fn kill(&self) {
        self.killed.cancel();
        self.killpg();
    }

    async fn teardown(&self) -> std::io::Result<()> {
        self.killpg();
        let anchor = self.anchor.lock().unwrap().take();
        if let Some(mut a) = anchor {
            tokio::task::spawn_blocking(move || a.wait()).await.ok();
        }
        self.writer.lock().unwrap().take();
        if self.root.exists() {
            let root = self.root.clone();
            tokio::task::spawn_blocking(move || std::fs::remove_dir_all(root))
                .await
                .ok();
        }
        Ok(())
    }
}

/// Kills the process group of a build that was running when the server died: its anchor
/// carries `CODEYARD_BUILD_ANCHOR=<build id>` in its environment.
pub fn kill_orphans(build_id: &str) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let needle = format!("CODEYARD_BUILD_ANCHOR={build_id}");
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let mut env = Vec::new();
        if std::fs::File::open(e.path().join("environ"))
            .and_then(|mut f| f.read_to_end(&mut env))
            .is_err()
        {
            continue;
        }
        if env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()) {
            // SAFETY: signals the orphaned group the anchor leads.
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
            }
        }
    }
}

/// The conformance suite: every [`Executor`] backend runs [`conformance::run_all`].
///
/// Whether a process still runs is seen through a heartbeat file it appends to (in `scratch`,
/// which the backend must make visible to its programs at the same path): process ids mean
/// nothing across a container's pid namespace.
pub mod conformance {
    use super::*;
    use std::time::{Duration, Instant};

    fn inv(root: &Path, script: &str) -> Invocation {
        Invocation {
            program: "bash".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())],
            cwd: root.to_path_buf(),
            user: None,
        }
    }

    /// Every line to the end of the stream, without the backend's own `[Container]` notes
    /// (provisioning may write some).
    async fn drain(rx: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(l) = rx.recv().await {
            if !l.starts_with("[Container] ") {
                out.push(l);
            }
        }
        out
    }

    /// A shell fragment that starts a background process appending to `beat` forever.
    fn heartbeat(beat: &Path) -> String {
        format!(
            "(while :; do echo . >> '{}'; sleep 0.05; done) >/dev/null 2>&1 &",
            beat.display()
        )
    }

    fn size(beat: &Path) -> u64 {
        std::fs::metadata(beat).map(|m| m.len()).unwrap_or(0)
    }

    /// Whether the heartbeat file grows within 400 ms.
    async fn beating(beat: &Path) -> bool {
        let before = size(beat);
        tokio::time::sleep(Duration::from_millis(400)).await;
        size(beat) > before
    }

    /// Waits up to `within` for the heartbeat to stop; true when it did.
    async fn stops_beating(beat: &Path, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if !beating(beat).await {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
        }
    }

    /// A provisioned sandbox `conf:<name>` rooted at `<scratch>/<name>`, and that root.
    async fn sandbox(exec: &dyn Executor, scratch: &Path, name: &str, prov: &Provisioning) -> (Arc<dyn Sandbox>, PathBuf) {
        let root = scratch.join(name);
        let id = format!("conf:{name}");
        let sb = exec.create(SandboxSpec { build_id: id.clone(), root: root.clone() }).await.unwrap();
        if let Err(e) = sb.provision(prov).await {
            panic!("provisioning {id} failed: {}: {}", e.code, e.message);
        }
        (sb, root)
    }

    pub async fn output_is_ordered_and_exit_codes_propagate(
        exec: &dyn Executor,
        scratch: &Path,
        prov: &Provisioning,
    ) {
        let (sb, root) = sandbox(exec, scratch, "order", prov).await;
        let mut rx = sb.take_output().unwrap();
        assert!(sb.take_output().is_none(), "output can be taken once");
        sb.note("banner 1");
        assert_eq!(
            sb.run(inv(&root, "echo out; echo err >&2; printf 'no newline'"))
                .await
                .unwrap(),
            Exit::Code(0)
        );
        sb.note("banner 2");
        assert_eq!(sb.run(inv(&root, "exit 7")).await.unwrap(), Exit::Code(7));
        let long = MAX_LINE_BYTES * 2;
        assert_eq!(
            sb.run(inv(
                &root,
                &format!("head -c {long} /dev/zero | tr '\\0' x; echo")
            ))
            .await
            .unwrap(),
            Exit::Code(0)
        );
        std::fs::write(root.join("input.txt"), "from the host\n").unwrap();
        assert_eq!(
            sb.run(inv(&root, "cat input.txt; echo written > output.txt"))
                .await
                .unwrap(),
            Exit::Code(0)
        );
        assert_eq!(
            std::fs::read_to_string(root.join("output.txt")).unwrap(),
            "written\n",
            "programs share the root with the host"
        );
        sb.teardown().await.unwrap();
        sb.teardown().await.unwrap();
        let lines = drain(&mut rx).await;
        assert_eq!(
            &lines[..4],
            &["banner 1", "out", "err", "no newlinebanner 2"]
        );
        assert!(
            lines[4].len() < MAX_LINE_BYTES + 40 && lines[4].ends_with("[line truncated]"),
            "long line is cut"
        );
        assert_eq!(lines[5], "from the host");
        assert!(!root.exists(), "teardown frees the workspace");
    }

    pub async fn kill_ends_everything_quickly(
        exec: &dyn Executor,
        scratch: &Path,
        prov: &Provisioning,
    ) {
        let (sb, root) = sandbox(exec, scratch, "kill", prov).await;
        let mut rx = sb.take_output().unwrap();
        let beat = scratch.join("kill.beat");
        let script = format!("{} echo started; sleep 300", heartbeat(&beat));
        let sb2 = sb.clone();
        let running = tokio::spawn(async move { sb2.run(inv(sb2.root(), &script)).await.unwrap() });
        while rx.recv().await.as_deref() != Some("started") {}
        assert!(beating(&beat).await, "the background process runs");
        let t = Instant::now();
        sb.kill();
        assert_eq!(running.await.unwrap(), Exit::Killed);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "kill took {:?}",
            t.elapsed()
        );
        assert_eq!(
            sb.run(inv(&root, "echo later")).await.unwrap(),
            Exit::Killed,
            "runs after kill are refused"
        );
        assert!(
            stops_beating(&beat, Duration::from_secs(1)).await,
            "a background process survived the kill"
        );
        sb.teardown().await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), drain(&mut rx))
            .await
            .expect("output ends after teardown");
    }

    pub async fn background_processes_do_not_block(
        exec: &dyn Executor,
        scratch: &Path,
        prov: &Provisioning,
    ) {
        let (sb, root) = sandbox(exec, scratch, "bg", prov).await;
        let mut rx = sb.take_output().unwrap();
        let t = Instant::now();
        let script = "(sleep 1; echo from-background) & echo phase-1";
        assert_eq!(sb.run(inv(&root, script)).await.unwrap(), Exit::Code(0));
        assert!(
            t.elapsed() < Duration::from_millis(900),
            "run waited for a background process ({:?})",
            t.elapsed()
        );
        assert_eq!(
            sb.run(inv(&root, "sleep 1.5; echo phase-2")).await.unwrap(),
            Exit::Code(0)
        );
        let beat = scratch.join("bg.beat");
        assert_eq!(
            sb.run(inv(&root, &heartbeat(&beat))).await.unwrap(),
            Exit::Code(0)
        );
        assert!(
            beating(&beat).await,
            "a lingering process runs until teardown"
        );
        sb.teardown().await.unwrap();
        let lines = drain(&mut rx).await;
        assert_eq!(lines, vec!["phase-1", "from-background", "phase-2"]);
        assert!(
            stops_beating(&beat, Duration::from_secs(1)).await,
            "teardown left a process running"
        );
    }

    pub async fn sandboxes_are_independent(
        exec: &dyn Executor,
        scratch: &Path,
        prov: &Provisioning,
    ) {
        let (a, _) = sandbox(exec, scratch, "a", prov).await;
        let (b, root_b) = sandbox(exec, scratch, "b", prov).await;
        let mut rb = b.take_output().unwrap();
        let b2 = b.clone();
        let running = tokio::spawn(async move {
            b2.run(inv(&root_b, "sleep 0.3; echo b-done"))
                .await
                .unwrap()
        });
        a.kill();
        a.teardown().await.unwrap();
        assert_eq!(running.await.unwrap(), Exit::Code(0));
        b.teardown().await.unwrap();
        assert_eq!(drain(&mut rb).await, vec!["b-done"]);
    }

    pub async fn run_all(exec: &dyn Executor, scratch: &Path, prov: &Provisioning) {
        output_is_ordered_and_exit_codes_propagate(exec, scratch, prov).await;
        kill_ends_everything_quickly(exec, scratch, prov).await;
        background_processes_do_not_block(exec, scratch, prov).await;
        sandboxes_are_independent(exec, scratch, prov).await;
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread")]
    async fn local_executor_conforms() {
        let dir = tempfile::tempdir().unwrap();
        super::conformance::run_all(&super::LocalExecutor, dir.path(), &Default::default()).await;
    }
}
