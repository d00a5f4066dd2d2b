//! Reading and writing repository content the way the CodeCommit API sees it: commits,
//! files, folders, differences, and new commits built from file changes (PutFile, DeleteFile,
//! CreateCommit) with a temporary index, so the repository's own state is never touched until
//! the final compare-and-swap `update-ref`.

use crate::git::{self, TreeEntry};
use crate::error::{CcResult, CodeCommitError};
use codeyard_core::AwsError;
use std::collections::HashMap;
use std::path::Path;

pub const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// git failed in a way the API does not explain: an internal error.
fn internal(msg: String) -> CodeCommitError {
    AwsError::internal(msg).into()
}

/// CodeCommit's file modes and git's.
pub fn mode_name(git_mode: &str) -> &'static str {
    match git_mode {
        "100755" => "EXECUTABLE",
        "120000" => "SYMLINK",
        _ => "NORMAL",
    }
}

pub fn git_mode(name: &str) -> CcResult<&'static str> {
    match name {
        "NORMAL" => Ok("100644"),
        "EXECUTABLE" => Ok("100755"),
        "SYMLINK" => Ok("120000"),
        other => Err(CodeCommitError::InvalidFileMode(other.to_string())),
    }
}

/// A path as the API takes it (`/a/b`, `a/b`) made relative; `..`, `.` and `.git` parts are
/// refused as CodeCommit refuses them.
pub fn normalize_path(path: &str) -> CcResult<String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Err(CodeCommitError::PathRequired);
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == ".." || *p == ".git" || p.contains('\0'))
    {
        return Err(CodeCommitError::InvalidPath(path.to_string()));
    }
    Ok(parts.join("/"))
}

/// A parsed commit object.
#[derive(Clone, Debug)]
pub struct CommitData {
    pub id: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub message: String,
    pub author: Person,
    pub committer: Person,
}

#[derive(Clone, Debug)]
pub struct Person {
    pub name: String,
    pub email: String,
    /// Epoch seconds.
    pub time: i64,
    /// `+0100`.
    pub tz: String,
}

impl Person {
    fn parse(s: &str) -> Person {
        // "Name <email> 1700000000 +0000"
        let (name, rest) = s.split_once(" <").unwrap_or((s, ""));
        let (email, rest) = rest
            .split_once("> ")
            .unwrap_or((rest.trim_end_matches('>'), ""));
        let mut it = rest.split_whitespace();
        let time = it.next().and_then(|t| t.parse().ok()).unwrap_or(0);
        let tz = it.next().unwrap_or("+0000").to_string();
        Person {
            name: name.to_string(),
            email: email.to_string(),
            time,
            tz,
        }
    }
    /// CodeCommit's UserInfo date: "<epoch seconds> <offset>".
    pub fn date(&self) -> String {
        format!("{} {}", self.time, self.tz)
    }
}

/// The commit `id`, if `id` names a commit.
pub async fn read_commit(dir: &Path, id: &str) -> CcResult<Option<CommitData>> {
    if !git::is_oid(id) {
        return Ok(None);
    }
    let out = git::run(dir, &["cat-file", "commit", id]).await?;
    if !out.ok {
        return Ok(None);
    }
    let text = out.text();
    let (head, message) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut c = CommitData {
        id: id.to_string(),
        tree: String::new(),
        parents: vec![],
        message: message.to_string(),
        author: Person::parse(""),
        committer: Person::parse(""),
    };
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("tree ") {
            c.tree = v.to_string();
        } else if let Some(v) = line.strip_prefix("parent ") {
            c.parents.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("author ") {
            c.author = Person::parse(v);
        } else if let Some(v) = line.strip_prefix("committer ") {
            c.committer = Person::parse(v);
        }
    }
    Ok(Some(c))
}

/// Resolves a commitSpecifier (branch, ref, tag or commit id; the default branch when absent).
pub async fn resolve_specifier(
    dir: &Path,
    spec: Option<&str>,
    default_branch: Option<&str>,
) -> CcResult<String> {
    let spec = match spec.filter(|s| !s.is_empty()).or(default_branch) {
        Some(s) => s,
        None => {
            return Err(CodeCommitError::EmptyRepository);
        }
    };
    git::resolve_commit(dir, spec).await?.ok_or_else(|| {
        CodeCommitError::SpecifierNotFound(spec.to_string())
    })
}

/// The types of the objects `<commit>:<path>` for several paths at once (None: missing).
async fn path_types(
    dir: &Path,
    commit: &str,
    paths: &[String],
) -> CcResult<Vec<Option<(String, String)>>> {
    let input: String = paths.iter().map(|p| format!("{commit}:{p}\n")).collect();
    let out = git::run_with(
        git::command(dir),
        &["cat-file", "--batch-check=%(objectname) %(objecttype)"],
        Some(input.as_bytes()),
    )
    .await?;
    let text = out.text();
    Ok(text
        .lines()
        .map(|l| {
            let mut it = l.split(' ');
            match (it.next(), it.next()) {
                (Some(oid), Some(t)) if git::is_oid(oid) => Some((oid.to_string(), t.to_string())),
                _ => None,
            }
        })
        .collect())
}

/// The entry at `path` in `commit`'s tree.
pub async fn entry_at(dir: &Path, commit: &str, path: &str) -> CcResult<Option<TreeEntry>> {
    let entries = git::ls_tree(dir, commit, false, Some(path)).await?;
    Ok(entries.into_iter().find(|e| e.path == path))
}

pub async fn get_file(dir: &Path, commit: &str, path: &str) -> CcResult<(TreeEntry, Vec<u8>)> {
    let norm = normalize_path(path)?;
    match entry_at(dir, commit, &norm).await? {
        Some(e) if e.kind == "blob" => {
            let content = git::run_ok(dir, &["cat-file", "blob", &e.oid])
                .await?
                .stdout;
            Ok((e, content))
        }
        _ => Err(CodeCommitError::FileNotInCommit(path.to_string())),
    }
}

/// The entries of a folder at a commit: its tree and each entry with its absolute path.
#[derive(Debug)]
pub struct FolderListing {
    pub tree: String,
    pub entries: Vec<(String, TreeEntry)>,
}

/// The folder `folder` (the root when empty) at `commit`.
pub async fn get_folder(dir: &Path, commit: &str, folder: &str) -> CcResult<FolderListing> {
    let rel = folder.trim_matches('/');
    let (tree, prefix) = if rel.is_empty() {
        (
            git::run_ok(dir, &["rev-parse", &format!("{commit}^{{tree}}")])
                .await?
                .line(),
            String::new(),
        )
    } else {
        let norm = normalize_path(folder)?;
        match entry_at(dir, commit, &norm).await? {
            Some(e) if e.kind == "tree" => (e.oid, format!("{norm}/")),
            _ => {
                return Err(CodeCommitError::FolderNotFound(folder.to_string()));
            }
        }
    };
    let entries = git::ls_tree(dir, &tree, false, None).await?;
    Ok(FolderListing {
        tree,
        entries: entries
            .into_iter()
            .map(|e| (format!("{prefix}{}", e.path), e))
            .collect(),
    })
}

/// How a path changed between two commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// A blob at a path, with its git mode (`100644`).
#[derive(Debug, Clone)]
pub struct BlobAt {
    pub oid: String,
    pub path: String,
    pub mode: String,
}

/// One changed path: the blob before (absent when added) and after (absent when deleted).
#[derive(Debug, Clone)]
pub struct Diff {
    pub kind: ChangeKind,
    pub before: Option<BlobAt>,
    pub after: Option<BlobAt>,
}

/// The differences between two commits (all files added when `before` is None), as
/// `git diff-tree -r` reports them, optionally limited to paths.
pub async fn differences(
    dir: &Path,
    before: Option<&str>,
    after: &str,
    paths: &[String],
) -> CcResult<Vec<Diff>> {
    let before_tree = match before {
        Some(b) => b.to_string(),
        None => EMPTY_TREE.to_string(),
    };
    let mut args = vec![
        "diff-tree",
        "-r",
        "-z",
        "--no-renames",
        "--raw",
        "--no-abbrev",
        &before_tree,
        after,
    ];
    if !paths.is_empty() {
        args.push("--");
        args.extend(paths.iter().map(String::as_str));
    }
    let out = git::run_ok(dir, &args).await?;
    let mut fields = out.stdout.split(|b| *b == 0).filter(|f| !f.is_empty());
    let mut diffs = Vec::new();
    while let (Some(meta), Some(path)) = (fields.next(), fields.next()) {
        let meta = String::from_utf8_lossy(meta);
        let path = String::from_utf8_lossy(path).into_owned();
        let m: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
        if m.len() < 5 {
            continue;
        }
        let (old_mode, new_mode, old_oid, new_oid, status) = (m[0], m[1], m[2], m[3], m[4]);
        let kind = match status.chars().next() {
            Some('A') => ChangeKind::Added,
            Some('D') => ChangeKind::Deleted,
            _ => ChangeKind::Modified,
        };
        let blob = |oid: &str, mode: &str| BlobAt {
            oid: oid.to_string(),
            path: path.clone(),
            mode: mode.to_string(),
        };
        diffs.push(Diff {
            kind,
            before: (kind != ChangeKind::Added).then(|| blob(old_oid, old_mode)),
            after: (kind != ChangeKind::Deleted).then(|| blob(new_oid, new_mode)),
        });
    }
    Ok(diffs)
}

/// One change to a tree.
#[derive(Clone, Debug)]
pub enum Change {
    /// Put a blob (already written) at a path with a git mode.
    Put {
        path: String,
        blob: String,
        mode: String,
    },
    Delete {
        path: String,
    },
}

/// What a set of changes did, for CreateCommit's filesAdded / filesUpdated / filesDeleted.
#[derive(Default, Debug)]
pub struct ChangeReport {
    pub added: Vec<BlobAt>,
    pub updated: Vec<BlobAt>,
    pub deleted: Vec<BlobAt>,
}

/// Writes `content` as a blob.
pub async fn write_blob(dir: &Path, content: &[u8]) -> CcResult<String> {
    let out = git::run_with(
        git::command(dir),
        &["hash-object", "-w", "--stdin"],
        Some(content),
    )
    .await?;
    if !out.ok {
        return Err(internal(format!(
            "git hash-object: {}",
            out.stderr
        )));
    }
    Ok(out.line())
}

/// Checks that `changes` fit `base` (files where files are, folders where folders are) and
/// builds the new tree with a temporary index. Returns the tree id and what changed.
pub async fn apply_changes(
    dir: &Path,
    base: Option<&str>,
    changes: &[Change],
) -> CcResult<(String, ChangeReport)> {
    let base_commit = base.unwrap_or(EMPTY_TREE);
    let mut report = ChangeReport::default();
    // Every path and every parent folder of a changed path, looked up in one git call.
    let mut probe: Vec<String> = Vec::new();
    for c in changes {
        let p = match c {
            Change::Put { path, .. } | Change::Delete { path } => path,
        };
        let parts: Vec<&str> = p.split('/').collect();
        for i in 1..=parts.len() {
            probe.push(parts[..i].join("/"));
        }
    }
    let types: HashMap<String, Option<(String, String)>> = if base.is_some() {
        probe
            .iter()
            .cloned()
            .zip(path_types(dir, base_commit, &probe).await?)
            .collect()
    } else {
        probe.iter().map(|p| (p.clone(), None)).collect()
    };
    let modes: HashMap<String, String> = if base.is_some() {
        let paths: Vec<String> = changes
            .iter()
            .map(|c| match c {
                Change::Put { path, .. } | Change::Delete { path } => path.clone(),
            })
            .collect();
        let mut m = HashMap::new();
        for p in &paths {
            if let Some(e) = entry_at(dir, base_commit, p).await? {
                m.insert(p.clone(), e.mode);
            }
        }
        m
    } else {
        HashMap::new()
    };
    let index = dir.join(format!("codeyard-index-{}", codeyard_core::ids::hex(12)));
    let result = build_tree(dir, &index, base, changes, &types, &modes, &mut report).await;
    let _ = tokio::fs::remove_file(&index).await;
    result.map(|t| (t, report))
}

async fn build_tree(
    dir: &Path,
    index: &Path,
    base: Option<&str>,
    changes: &[Change],
    types: &HashMap<String, Option<(String, String)>>,
    modes: &HashMap<String, String>,
    report: &mut ChangeReport,
) -> CcResult<String> {
    let with_index = || {
        let mut c = git::command(dir);
        c.env("GIT_INDEX_FILE", index);
        c
    };
    let read = match base {
        Some(b) => {
            git::run_with(with_index(), &["read-tree", &format!("{b}^{{tree}}")], None).await?
        }
        None => git::run_with(with_index(), &["read-tree", "--empty"], None).await?,
    };
    if !read.ok {
        return Err(internal(format!(
            "git read-tree: {}",
            read.stderr
        )));
    }
    let mut script = String::new();
    for c in changes {
        match c {
            Change::Put { path, blob, mode } => {
                let parts: Vec<&str> = path.split('/').collect();
                for i in 1..parts.len() {
                    let parent = parts[..i].join("/");
                    if let Some(Some((_, t))) = types.get(&parent)
                        && t != "tree"
                    {
                        return Err(CodeCommitError::FileInsideFile { path: path.to_string(), parent: parent.to_string() });
                    }
                }
                match types.get(path).cloned().flatten() {
                    Some((_, t)) if t == "tree" => {
                        return Err(CodeCommitError::FileNamedLikeFolder(path.to_string()));
                    }
                    Some((_, t)) if t == "commit" => {
                        return Err(CodeCommitError::FileOnSubmodule(path.to_string()));
                    }
                    Some((oid, _)) => {
                        let meta = BlobAt {
                            oid: blob.clone(),
                            path: path.clone(),
                            mode: mode.clone(),
                        };
                        if oid != *blob
                            || modes.get(path).map(String::as_str) != Some(mode.as_str())
                        {
                            report.updated.push(meta);
                        }
                    }
                    None => report.added.push(BlobAt {
                        oid: blob.clone(),
                        path: path.clone(),
                        mode: mode.clone(),
                    }),
                }
                script.push_str(&format!("{mode} {blob}\t{path}\0"));
            }
            Change::Delete { path } => {
                match types.get(path).cloned().flatten() {
                    Some((oid, t)) if t == "blob" => {
                        let mode = modes.get(path).cloned().unwrap_or_else(|| "100644".into());
                        report.deleted.push(BlobAt {
                            oid,
                            path: path.clone(),
                            mode,
                        });
                        script.push_str(&format!("0 {}\t{path}\0", git::ZERO_OID));
                    }
                    _ => {
                        return Err(CodeCommitError::FileNotFound(path.to_string()));
                    }
                }
            }
        }
    }
    let upd = git::run_with(
        with_index(),
        &["update-index", "-z", "--index-info"],
        Some(script.as_bytes()),
    )
    .await?;
    if !upd.ok {
        return Err(internal(format!(
            "git update-index: {}",
            upd.stderr
        )));
    }
    let tree = git::run_with(with_index(), &["write-tree"], None).await?;
    if !tree.ok {
        return Err(internal(format!(
            "git write-tree: {}",
            tree.stderr
        )));
    }
    Ok(tree.line())
}

/// Author and committer of a commit made through the API.
pub struct Author {
    pub name: String,
    pub email: String,
}

pub async fn commit_tree(
    dir: &Path,
    tree: &str,
    parent: Option<&str>,
    message: &str,
    who: &Author,
) -> CcResult<String> {
    let mut cmd = git::command(dir);
    cmd.env("GIT_AUTHOR_NAME", &who.name)
        .env("GIT_AUTHOR_EMAIL", &who.email)
        .env("GIT_COMMITTER_NAME", &who.name)
        .env("GIT_COMMITTER_EMAIL", &who.email);
    let mut args = vec!["commit-tree", tree];
    if let Some(p) = parent {
        args.push("-p");
        args.push(p);
    }
    // The message comes on stdin so any text (leading dashes included) is taken literally.
    let out = git::run_with(cmd, &args, Some(message.as_bytes())).await?;
    if !out.ok {
        return Err(internal(format!(
            "git commit-tree: {}",
            out.stderr
        )));
    }
    Ok(out.line())
}
