//! Running git itself. Every repository operation is a git plumbing command on the bare
//! repository, so what the API answers is exactly what git reports.

use codeyard_core::{AwsError, AwsResult};
use std::path::Path;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The object id git uses for "no object" (ref creation / deletion).
pub const ZERO_OID: &str = "0000000000000000000000000000000000000000";

/// A `git` command with a predictable environment: no user or system config, no prompts,
/// so the server behaves the same on every machine.
pub fn command(repo: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir").arg(repo);
    // No automatic gc: receive-pack starts a detached `gc --auto` after a push, which outlives
    // the server (it is not our child any more, so it does not die with a killed server) and
    // would repack and prune while the next server's start-up recovery removes temporary pack
    // files: a path to objects that refs still name going missing.
    cmd.args(["-c", "receive.autogc=false", "-c", "gc.auto=0"]);
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
        .kill_on_drop(true);
    die_with_server(&mut cmd);
    cmd
}

/// Makes the kernel kill the child when the server dies, even by SIGKILL (where
/// `kill_on_drop` never runs). A git that outlived its server could still move a ref after the
/// next server reconciled the refs with the store, or hold a ref lock while it starts; with
/// this, every git of a dead server is gone and its leftovers are only lock files and
/// temporary objects, which [`crate::recovery`] removes at start-up. (The signal follows the
/// spawning thread; git is spawned from the runtime's worker threads, which live as long as
/// the server.)
pub fn die_with_server(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent's state.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The result of a finished git command.
pub struct Output {
    pub ok: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn line(&self) -> String {
        self.text().trim().to_string()
    }
}

/// Runs git with `args` (and `stdin` bytes, if any) and collects its output.
pub async fn run_with(mut cmd: Command, args: &[&str], stdin: Option<&[u8]>) -> AwsResult<Output> {
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .map_err(|e| AwsError::internal(format!("cannot run git: {e}")))?;
    if let Some(data) = stdin {
        let mut sin = child.stdin.take().expect("piped stdin");
        let data = data.to_vec();
        // Written concurrently with reading stdout, so a large input cannot deadlock on full pipes.
        tokio::spawn(async move {
            let _ = sin.write_all(&data).await;
            let _ = sin.shutdown().await;
        });
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| AwsError::internal(format!("git: {e}")))?;
    Ok(Output {
        ok: out.status.success(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

pub async fn run(repo: &Path, args: &[&str]) -> AwsResult<Output> {
    run_with(command(repo), args, None).await
}

/// Runs git and fails with an internal error if git fails.
pub async fn run_ok(repo: &Path, args: &[&str]) -> AwsResult<Output> {
    let out = run(repo, args).await?;
    if !out.ok {
        return Err(AwsError::internal(format!(
            "git {} failed: {}",
            args.join(" "),
            out.stderr.trim()
        )));
    }
    Ok(out)
}

/// The commit a specifier (branch, full ref, tag, commit id) names, if any.
pub async fn resolve_commit(repo: &Path, spec: &str) -> AwsResult<Option<String>> {
    if spec.is_empty() || spec.starts_with('-') {
        return Ok(None);
    }
    let candidates = [
        format!("refs/heads/{spec}^{{commit}}"),
        format!("{spec}^{{commit}}"),
    ];
    for c in &candidates {
        let out = run(
            repo,
            &["rev-parse", "--verify", "--quiet", "--end-of-options", c],
        )
        .await?;
        if out.ok {
            return Ok(Some(out.line()));
        }
    }
    Ok(None)
}

/// Every ref of the repository with the object it points at.
pub async fn refs(repo: &Path) -> AwsResult<Vec<(String, String)>> {
    let out = run_ok(repo, &["for-each-ref", "--format=%(objectname) %(refname)"]).await?;
    Ok(out
        .text()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(oid, name)| (name.to_string(), oid.to_string()))
        .collect())
}

/// The object a ref points at, if it exists.
pub async fn ref_value(repo: &Path, full_ref: &str) -> AwsResult<Option<String>> {
    let out = run(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            full_ref,
        ],
    )
    .await?;
    Ok(if out.ok { Some(out.line()) } else { None })
}

/// The type of an object (`commit`, `tree`, `blob`, `tag`), if it exists.
pub async fn object_type(repo: &Path, oid: &str) -> AwsResult<Option<String>> {
    if !is_oid(oid) {
        return Ok(None);
    }
    let out = run(repo, &["cat-file", "-t", oid]).await?;
    Ok(if out.ok { Some(out.line()) } else { None })
}

pub fn is_oid(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Whether git accepts `name` as a branch name (`git check-ref-format --branch`).
pub async fn valid_branch_name(name: &str) -> bool {
    if name.is_empty() || name.starts_with('-') {
        return false;
    }
    let out = Command::new("git")
        .args(["check-ref-format", &format!("refs/heads/{name}")])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    out.map(|s| s.success()).unwrap_or(false)
}

/// Moves `full_ref` from `old` (ZERO_OID: must not exist) to `new` (ZERO_OID: delete),
/// atomically under git's own ref lock. Returns false when the ref was not at `old`.
pub async fn update_ref(repo: &Path, full_ref: &str, new: &str, old: &str) -> AwsResult<bool> {
    let out = if new == ZERO_OID {
        run(repo, &["update-ref", "-d", full_ref, old]).await?
    } else {
        run(repo, &["update-ref", full_ref, new, old]).await?
    };
    Ok(out.ok)
}

/// One entry of `git ls-tree`.
#[derive(Clone, Debug)]
pub struct TreeEntry {
    pub mode: String,
    pub kind: String,
    pub oid: String,
    pub size: Option<u64>,
    pub path: String,
}

/// `git ls-tree [-r] -l <treeish> [-- path]`, parsed (paths are NUL-terminated, so any name works).
pub async fn ls_tree(
    repo: &Path,
    treeish: &str,
    recursive: bool,
    path: Option<&str>,
) -> AwsResult<Vec<TreeEntry>> {
    let mut args = vec!["ls-tree", "-z", "-l", "--full-tree"];
    if recursive {
        args.push("-r");
    }
    args.push(treeish);
    if let Some(p) = path {
        args.push("--");
        args.push(p);
    }
    let out = run_ok(repo, &args).await?;
    let mut entries = Vec::new();
    for rec in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rec = String::from_utf8_lossy(rec);
        let Some((meta, path)) = rec.split_once('\t') else {
            continue;
        };
        let mut it = meta.split_whitespace();
        let (Some(mode), Some(kind), Some(oid), Some(size)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        entries.push(TreeEntry {
            mode: mode.into(),
            kind: kind.into(),
            oid: oid.into(),
            size: size.parse().ok(),
            path: path.into(),
        });
    }
    Ok(entries)
}

/// A new bare repository, created at `dir`.
pub async fn init_bare(dir: &Path) -> AwsResult<()> {
    let out = Command::new("git")
        .args(["init", "--bare", "--quiet", "--initial-branch=main"])
        .arg(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .await
        .map_err(|e| AwsError::internal(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(AwsError::internal(format!(
            "git init: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    // Pushes are checked (no corrupt objects) and what git writes is fsynced, so a crash leaves
    // a consistent repository. Forced pushes are allowed, as on AWS.
    for (k, v) in [
        ("receive.fsckObjects", "true"),
        ("receive.denyDeletes", "false"),
        ("core.fsync", "committed"),
        ("core.fsyncMethod", "fsync"),
        ("http.receivepack", "true"),
        ("uploadpack.allowAnySHA1InWant", "true"),
        ("gc.auto", "0"),
    ] {
        run_ok(dir, &["config", k, v]).await?;
    }
    Ok(())
}
