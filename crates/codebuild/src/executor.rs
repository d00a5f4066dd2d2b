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
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The program exited with this code (128 + signal when a signal ended it).
    Code(i32),
    /// The sandbox was killed (stop or timeout) before or while it ran.
    Killed,
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
/// * **Concurrency**: sandboxes are independent; an executor serves many at once.
#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    fn name(&self) -> &'static str;
    async fn create(&self, spec: SandboxSpec) -> std::io::Result<Arc<dyn Sandbox>>;
}

#[async_trait::async_trait]
pub trait Sandbox: Send + Sync {
    fn root(&self) -> &Path;
    /// The output stream; `None` after the first call.
    fn take_output(&self) -> Option<mpsc::UnboundedReceiver<String>>;
    /// Writes a line of the runtime's own (phase banners) into the output stream.
    fn note(&self, line: &str);
    async fn run(&self, invocation: Invocation) -> std::io::Result<Exit>;
    fn kill(&self);
    async fn teardown(&self) -> std::io::Result<()>;
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
        let (reader, writer) = std::io::pipe()?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("codebuild-output".into())
            .spawn(move || pump_lines(reader, tx))?;
        Ok(Arc::new(LocalSandbox {
            root: spec.root,
            pgid,
            anchor: Mutex::new(Some(anchor)),
            writer: Mutex::new(Some(writer)),
            output: Mutex::new(Some(rx)),
            killed: CancellationToken::new(),
        }))
    }
}

use std::os::unix::process::CommandExt;

struct LocalSandbox {
    root: PathBuf,
    pgid: i32,
    anchor: Mutex<Option<std::process::Child>>,
    writer: Mutex<Option<std::io::PipeWriter>>,
    output: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    killed: CancellationToken,
}

/// Splits the pipe into lines, cutting very long ones, until every writer is gone.
fn pump_lines(reader: std::io::PipeReader, tx: mpsc::UnboundedSender<String>) {
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
        tokio::select! {
            status = child.wait() => {
                let status = status?;
                if self.killed.is_cancelled() {
                    return Ok(Exit::Killed);
                }
                use std::os::unix::process::ExitStatusExt;
                Ok(Exit::Code(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))))
            }
            _ = self.killed.cancelled() => {
                self.killpg();
                let _ = child.wait().await;
                Ok(Exit::Killed)
            }
        }
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
pub mod conformance {
    use super::*;
    use std::time::{Duration, Instant};

    fn inv(root: &Path, script: &str) -> Invocation {
        Invocation {
            program: "bash".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())],
            cwd: root.to_path_buf(),
        }
    }

    async fn drain(rx: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(l) = rx.recv().await {
            out.push(l);
        }
        out
    }

    /// Whether a process exists and is not a zombie (in containers nobody may reap orphans).
    fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
            Err(_) => false,
        }
    }

    pub async fn output_is_ordered_and_exit_codes_propagate(exec: &dyn Executor, scratch: &Path) {
        let root = scratch.join("order");
        let sb = exec
            .create(SandboxSpec {
                build_id: "conf:order".into(),
                root: root.clone(),
            })
            .await
            .unwrap();
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
        assert!(!root.exists(), "teardown frees the workspace");
    }

    pub async fn kill_ends_everything_quickly(exec: &dyn Executor, scratch: &Path) {
        let root = scratch.join("kill");
        let sb = exec
            .create(SandboxSpec {
                build_id: "conf:kill".into(),
                root: root.clone(),
            })
            .await
            .unwrap();
        let mut rx = sb.take_output().unwrap();
        let pidfile = scratch.join("kill.pid");
        let script = format!(
            "sleep 300 & echo $! > {}; echo started; sleep 300",
            pidfile.display()
        );
        let sb2 = sb.clone();
        let running = tokio::spawn(async move { sb2.run(inv(sb2.root(), &script)).await.unwrap() });
        while rx.recv().await.as_deref() != Some("started") {}
        let bg: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(alive(bg));
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
        sb.teardown().await.unwrap();
        // The background process was reaped by init; give it a moment to disappear.
        let deadline = Instant::now() + Duration::from_secs(1);
        while alive(bg) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(bg), "a background process survived the kill");
        tokio::time::timeout(Duration::from_secs(2), drain(&mut rx))
            .await
            .expect("output ends after teardown");
    }

    pub async fn background_processes_do_not_block(exec: &dyn Executor, scratch: &Path) {
        let root = scratch.join("bg");
        let sb = exec
            .create(SandboxSpec {
                build_id: "conf:bg".into(),
                root: root.clone(),
            })
            .await
            .unwrap();
        let mut rx = sb.take_output().unwrap();
        let pidfile = scratch.join("bg.pid");
        let t = Instant::now();
        let script = format!(
            "(sleep 0.3; echo from-background) & echo $! > {}; echo phase-1",
            pidfile.display()
        );
        assert_eq!(sb.run(inv(&root, &script)).await.unwrap(), Exit::Code(0));
        assert!(
            t.elapsed() < Duration::from_millis(250),
            "run waited for a background process"
        );
        assert_eq!(
            sb.run(inv(&root, "sleep 0.5; echo phase-2")).await.unwrap(),
            Exit::Code(0)
        );
        let lingering = format!("sleep 300 & echo $! > {}", pidfile.display());
        assert_eq!(sb.run(inv(&root, &lingering)).await.unwrap(), Exit::Code(0));
        let bg: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        sb.teardown().await.unwrap();
        let lines = drain(&mut rx).await;
        assert_eq!(lines, vec!["phase-1", "from-background", "phase-2"]);
        let deadline = Instant::now() + Duration::from_secs(1);
        while alive(bg) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(bg), "teardown left a process running");
    }

    pub async fn sandboxes_are_independent(exec: &dyn Executor, scratch: &Path) {
        let a = exec
            .create(SandboxSpec {
                build_id: "conf:a".into(),
                root: scratch.join("a"),
            })
            .await
            .unwrap();
        let b = exec
            .create(SandboxSpec {
                build_id: "conf:b".into(),
                root: scratch.join("b"),
            })
            .await
            .unwrap();
        let mut rb = b.take_output().unwrap();
        let b2 = b.clone();
        let root_b = scratch.join("b");
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

    pub async fn run_all(exec: &dyn Executor, scratch: &Path) {
        output_is_ordered_and_exit_codes_propagate(exec, scratch).await;
        kill_ends_everything_quickly(exec, scratch).await;
        background_processes_do_not_block(exec, scratch).await;
        sandboxes_are_independent(exec, scratch).await;
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread")]
    async fn local_executor_conforms() {
        let dir = tempfile::tempdir().unwrap();
        super::conformance::run_all(&super::LocalExecutor, dir.path()).await;
    }
}
