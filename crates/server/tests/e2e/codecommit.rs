//! CodeCommit end to end: the API through aws-sdk-rust and the aws CLI, git over smart HTTP
//! with the aws credential helper, events, concurrency, crashes, memory, Terraform.

use crate::common::*;

use aws_sdk_codecommit::Client;
use aws_sdk_codecommit::primitives::Blob;
use codeyard_core::hub::{TargetInvocation, TargetInvoker};
use codeyard_core::AwsResult;
use serde_json::Value;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Collects the events EventBridge delivers to a rule on `aws.codecommit` (a test target type
/// registered on the hub), so the count is what a pipeline would see.
struct Collector(Mutex<Vec<Value>>);

impl TargetInvoker for Collector {
    fn invoke<'a, 'b, 'c>(&'a self, invocation: &'b TargetInvocation) -> Pin<Box<dyn Future<Output = AwsResult<String>> + Send + 'c>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        self.0.lock().unwrap().push(invocation.input.clone());
        Box::pin(async { Ok("collected".to_string()) })
    }
}

async fn collect_events(t: &TestServer) -> Arc<Collector> {
    let collector = Arc::new(Collector(Mutex::new(Vec::new())));
    let server = t.server.as_ref().unwrap();
    server.platform.hub.register_target("lambda", collector.clone());
    let eb = aws_sdk_eventbridge::Client::new(&t.sdk_config().await);
    let pattern = r#"{"source":["aws.codecommit"],"detail-type":["CodeCommit Repository State Change"]}"#;
    let target = event_target("collector", &format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:collector"), None);
    rule_with_targets(&eb, "codecommit-events", pattern, vec![target]).await;
    collector
}

/// Waits until `n` events arrived and EventBridge has nothing left to deliver (so no more
/// will come); returns them.
async fn events_settled(t: &TestServer, c: &Collector, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} events"), Duration::from_secs(30), Duration::from_millis(50), || async {
        (c.0.lock().unwrap().len() >= n).then_some(())
    })
    .await;
    events_idle(&t.endpoint).await;
    c.0.lock().unwrap().clone()
}

fn code<T, E, R>(r: Result<T, aws_sdk_codecommit::error::SdkError<E, R>>) -> String
where
    E: aws_sdk_codecommit::error::ProvideErrorMetadata,
{
    match r {
        Ok(_) => "no error".into(),
        Err(e) => e.as_service_error().and_then(|s| s.code()).unwrap_or("not a service error").to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn repositories_tags_and_errors() {
    let (t, cc) = TestServer::with(Client::new).await;
    let created = cc.create_repository().repository_name("alpha").repository_description("first").tags("team", "a").send().await.unwrap();
    let md = created.repository_metadata().unwrap();
    assert_eq!(md.clone_url_http(), Some(format!("{}/v1/repos/alpha", t.endpoint).as_str()));
    assert_eq!(md.arn(), Some(format!("arn:aws:codecommit:{REGION}:{ACCOUNT}:alpha").as_str()));
    assert_eq!(md.repository_id().unwrap().len(), 36);
    assert!(md.creation_date().is_some());
    assert!(md.default_branch().is_none());

    assert_eq!(code(cc.create_repository().repository_name("alpha").send().await), "RepositoryNameExistsException");
    assert_eq!(code(cc.create_repository().repository_name("bad name!").send().await), "InvalidRepositoryNameException");
    assert_eq!(code(cc.create_repository().repository_name("x.git").send().await), "InvalidRepositoryNameException");
    assert_eq!(code(cc.get_repository().repository_name("nope").send().await), "RepositoryDoesNotExistException");
    // A missing name is CodeCommit's own exception, not a generic ValidationException.
    let r = reqwest::Client::new()
        .post(&t.endpoint)
        .header("x-amz-target", "CodeCommit_20150413.GetRepository")
        .header("content-type", "application/x-amz-json-1.1")
        .header("authorization", format!("AWS4-HMAC-SHA256 Credential=test/20240101/{REGION}/codecommit/aws4_request, SignedHeaders=host, Signature=x"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["__type"], "RepositoryNameRequiredException");

    cc.create_repository().repository_name("beta").send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    cc.create_repository().repository_name("Gamma").send().await.unwrap();
    let names = |l: &aws_sdk_codecommit::operation::list_repositories::ListRepositoriesOutput| {
        l.repositories().iter().map(|r| r.repository_name().unwrap().to_string()).collect::<Vec<_>>()
    };
    let asc = cc.list_repositories().send().await.unwrap();
    assert_eq!(names(&asc), ["Gamma", "alpha", "beta"]);
    let desc = cc
        .list_repositories()
        .sort_by(aws_sdk_codecommit::types::SortByEnum::ModifiedDate)
        .order(aws_sdk_codecommit::types::OrderEnum::Descending)
        .send()
        .await
        .unwrap();
    assert_eq!(names(&desc), ["Gamma", "beta", "alpha"]);

    let batch = cc.batch_get_repositories().repository_names("alpha").repository_names("zzz").send().await.unwrap();
    assert_eq!(batch.repositories().len(), 1);
    assert_eq!(batch.repositories_not_found(), ["zzz"]);

    cc.update_repository_description().repository_name("alpha").repository_description("second").send().await.unwrap();
    let arn = format!("arn:aws:codecommit:{REGION}:{ACCOUNT}:alpha");
    cc.tag_resource().resource_arn(&arn).tags("env", "dev").send().await.unwrap();
    cc.untag_resource().resource_arn(&arn).tag_keys("team").send().await.unwrap();
    let tags = cc.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
    assert_eq!(tags.tags().unwrap().len(), 1);
    assert_eq!(tags.tags().unwrap()["env"], "dev");
    assert_eq!(code(cc.list_tags_for_resource().resource_arn(format!("arn:aws:codecommit:{REGION}:{ACCOUNT}:nope")).send().await), "RepositoryDoesNotExistException");
    assert_eq!(code(cc.list_tags_for_resource().resource_arn("arn:aws:s3:::bucket").send().await), "InvalidResourceArnException");

    // Renaming keeps the id; the old name is free.
    let id = md.repository_id().unwrap().to_string();
    cc.update_repository_name().old_name("alpha").new_name("delta").send().await.unwrap();
    assert_eq!(code(cc.update_repository_name().old_name("beta").new_name("delta").send().await), "RepositoryNameExistsException");
    let renamed = cc.get_repository().repository_name("delta").send().await.unwrap();
    assert_eq!(renamed.repository_metadata().unwrap().repository_id(), Some(id.as_str()));
    assert_eq!(renamed.repository_metadata().unwrap().repository_description(), Some("second"));
    assert_eq!(code(cc.get_repository().repository_name("alpha").send().await), "RepositoryDoesNotExistException");

    // Delete removes the data; the name is free again; deleting again answers no id.
    let repo_dir = t.data_dir.join("codecommit").join(ACCOUNT).join(REGION).join(format!("{id}.git"));
    assert!(repo_dir.is_dir());
    let del = cc.delete_repository().repository_name("delta").send().await.unwrap();
    assert_eq!(del.repository_id(), Some(id.as_str()));
    assert!(!repo_dir.exists());
    assert!(cc.delete_repository().repository_name("delta").send().await.unwrap().repository_id().is_none());
    let again = cc.create_repository().repository_name("delta").send().await.unwrap();
    assert_ne!(again.repository_metadata().unwrap().repository_id(), Some(id.as_str()));

    // The aws CLI sees the same.
    let v = aws_cli_json(&t.endpoint, &["codecommit", "get-repository", "--repository-name", "delta"]);
    assert_eq!(v["repositoryMetadata"]["repositoryName"], "delta");
}

#[tokio::test(flavor = "multi_thread")]
async fn files_commits_branches_and_differences_match_git() {
    let (t, cc) = TestServer::with(Client::new).await;
    let events = collect_events(&t).await;
    cc.create_repository().repository_name("files").send().await.unwrap();

    // An empty repository takes a first PutFile without a parent; the branch becomes default.
    let first = cc
        .put_file()
        .repository_name("files")
        .branch_name("main")
        .file_path("README.md")
        .file_content(Blob::new("hello\n"))
        .commit_message("first")
        .name("Alice")
        .email("alice@example.com")
        .send()
        .await
        .unwrap();
    let c1 = first.commit_id().to_string();
    let repo = cc.get_repository().repository_name("files").send().await.unwrap();
    assert_eq!(repo.repository_metadata().unwrap().default_branch(), Some("main"));

    let put = |path: &'static str, content: &'static str, parent: Option<String>| {
        let cc = cc.clone();
        async move {
            cc.put_file()
                .repository_name("files")
                .branch_name("main")
                .file_path(path)
                .file_content(Blob::new(content))
                .set_parent_commit_id(parent)
                .send()
                .await
        }
    };
    assert_eq!(code(put("b.txt", "b", None).await), "ParentCommitIdRequiredException");
    assert_eq!(code(put("README.md", "hello\n", Some(c1.clone())).await), "SameFileContentException");
    let c2 = put("src/lib/b.txt", "b\n", Some(c1.clone())).await.unwrap().commit_id().to_string();
    assert_eq!(code(put("c.txt", "c", Some(c1.clone())).await), "ParentCommitIdOutdatedException");
    assert_eq!(code(put("README.md/x", "c", Some(c2.clone())).await), "DirectoryNameConflictsWithFileNameException");
    assert_eq!(code(cc.put_file().repository_name("files").branch_name("main").file_path("x").send().await), "FileContentRequiredException");

    let commit = cc
        .create_commit()
        .repository_name("files")
        .branch_name("main")
        .parent_commit_id(&c2)
        .commit_message("several")
        .author_name("Bob")
        .put_files(
            aws_sdk_codecommit::types::PutFileEntry::builder()
                .file_path("run.sh")
                .file_mode(aws_sdk_codecommit::types::FileModeTypeEnum::Executable)
                .file_content(Blob::new("#!/bin/sh\necho hi\n"))
                .build()
                .unwrap(),
        )
        .put_files(
            aws_sdk_codecommit::types::PutFileEntry::builder()
                .file_path("README.md")
                .file_content(Blob::new("hello again\n"))
                .build()
                .unwrap(),
        )
        .delete_files(aws_sdk_codecommit::types::DeleteFileEntry::builder().file_path("src/lib/b.txt").build().unwrap())
        .send()
        .await
        .unwrap();
    let c3 = commit.commit_id().unwrap().to_string();
    assert_eq!(commit.files_added().len(), 1);
    assert_eq!(commit.files_updated().len(), 1);
    assert_eq!(commit.files_deleted().len(), 1);
    let nochange = cc
        .create_commit()
        .repository_name("files")
        .branch_name("main")
        .parent_commit_id(&c3)
        .put_files(aws_sdk_codecommit::types::PutFileEntry::builder().file_path("README.md").file_content(Blob::new("hello again\n")).build().unwrap())
        .send()
        .await;
    assert_eq!(code(nochange), "NoChangeException");

    // Branches.
    cc.create_branch().repository_name("files").branch_name("feature").commit_id(&c2).send().await.unwrap();
    assert_eq!(code(cc.create_branch().repository_name("files").branch_name("feature").commit_id(&c2).send().await), "BranchNameExistsException");
    assert_eq!(code(cc.create_branch().repository_name("files").branch_name("x").commit_id("0".repeat(40)).send().await), "CommitDoesNotExistException");
    assert_eq!(code(cc.get_branch().repository_name("files").branch_name("nope").send().await), "BranchDoesNotExistException");
    let branches = cc.list_branches().repository_name("files").send().await.unwrap();
    assert_eq!(branches.branches(), ["feature", "main"]);
    assert_eq!(code(cc.delete_branch().repository_name("files").branch_name("main").send().await), "DefaultBranchCannotBeDeletedException");
    let deleted = cc.delete_branch().repository_name("files").branch_name("feature").send().await.unwrap();
    assert_eq!(deleted.deleted_branch().unwrap().commit_id(), Some(c2.as_str()));
    cc.delete_file().repository_name("files").branch_name("main").file_path("run.sh").parent_commit_id(&c3).send().await.unwrap();
    let tip = cc.get_branch().repository_name("files").branch_name("main").send().await.unwrap();
    let c4 = tip.branch().unwrap().commit_id().unwrap().to_string();

    // Compare with what git itself says, in a clone over HTTP.
    let work = tempfile::tempdir().unwrap();
    let clone = clone_repo(work.path(), &format!("{}/v1/repos/files", t.endpoint), "clone");
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]), c4);
    assert_eq!(git(&clone, &["log", "--format=%H", "-n", "4"]).lines().collect::<Vec<_>>(), [c4.as_str(), &c3, &c2, &c1]);

    let commit3 = cc.get_commit().repository_name("files").commit_id(&c3).send().await.unwrap();
    let c = commit3.commit().unwrap();
    assert_eq!(c.parents(), [c2.clone()]);
    assert_eq!(c.tree_id().unwrap(), git(&clone, &["rev-parse", &format!("{c3}^{{tree}}")]));
    assert_eq!(c.message().unwrap().trim(), "several");
    assert_eq!(c.author().unwrap().name(), Some("Bob"));
    assert_eq!(c.author().unwrap().date().unwrap(), git(&clone, &["log", "-1", "--format=%at %ad", "--date=format:%z", &c3]));
    assert_eq!(code(cc.get_commit().repository_name("files").commit_id("f".repeat(40)).send().await), "CommitIdDoesNotExistException");
    let batch = cc.batch_get_commits().repository_name("files").commit_ids(&c1).commit_ids("e".repeat(40)).send().await.unwrap();
    assert_eq!(batch.commits().len(), 1);
    assert_eq!(batch.errors().len(), 1);

    let file = cc.get_file().repository_name("files").commit_specifier(&c3).file_path("run.sh").send().await.unwrap();
    assert_eq!(file.file_content().as_ref(), b"#!/bin/sh\necho hi\n");
    assert_eq!(file.file_mode().as_str(), "EXECUTABLE");
    assert_eq!(file.blob_id(), git(&clone, &["rev-parse", &format!("{c3}:run.sh")]));
    assert_eq!(code(cc.get_file().repository_name("files").file_path("run.sh").send().await), "FileDoesNotExistException");
    let blob = cc.get_blob().repository_name("files").blob_id(file.blob_id()).send().await.unwrap();
    assert_eq!(blob.content().as_ref(), b"#!/bin/sh\necho hi\n");

    let folder = cc.get_folder().repository_name("files").commit_specifier(&c2).folder_path("/").send().await.unwrap();
    let git_root = git(&clone, &["ls-tree", &c2]);
    let mut from_api: Vec<String> = folder.files().iter().map(|f| format!("blob {} {}", f.blob_id().unwrap(), f.relative_path().unwrap())).collect();
    from_api.extend(folder.sub_folders().iter().map(|f| format!("tree {} {}", f.tree_id().unwrap(), f.relative_path().unwrap())));
    from_api.sort();
    let mut from_git: Vec<String> = git_root
        .lines()
        .map(|l| {
            let (meta, path) = l.split_once('\t').unwrap();
            let p: Vec<&str> = meta.split(' ').collect();
            format!("{} {} {path}", p[1], p[2])
        })
        .collect();
    from_git.sort();
    assert_eq!(from_api, from_git);
    let sub = cc.get_folder().repository_name("files").commit_specifier(&c2).folder_path("src/lib").send().await.unwrap();
    assert_eq!(sub.files()[0].absolute_path(), Some("src/lib/b.txt"));
    assert_eq!(code(cc.get_folder().repository_name("files").folder_path("nope").send().await), "FolderDoesNotExistException");

    let diff = cc.get_differences().repository_name("files").before_commit_specifier(&c1).after_commit_specifier("main").send().await.unwrap();
    let mut from_api: Vec<String> = diff
        .differences()
        .iter()
        .map(|d| {
            let path = d.after_blob().or(d.before_blob()).unwrap().path().unwrap().to_string();
            format!("{} {path}", d.change_type().unwrap().as_str())
        })
        .collect();
    from_api.sort();
    let mut from_git: Vec<String> = git(&clone, &["diff", "--name-status", "--no-renames", &c1, &c4]).lines().map(|l| l.replace('\t', " ")).collect();
    from_git.sort();
    assert_eq!(from_api, from_git);
    let all = cc.get_differences().repository_name("files").after_commit_specifier(&c2).send().await.unwrap();
    assert_eq!(all.differences().len(), 2);
    assert!(all.differences().iter().all(|d| d.change_type().unwrap().as_str() == "A" && d.before_blob().is_none()));

    // One event per branch change: 3 PutFile/CreateCommit updates + create + delete + DeleteFile.
    let got = events_settled(&t, &events, 6).await;
    let kinds: Vec<String> = got.iter().map(|e| format!("{} {}", e["detail"]["event"].as_str().unwrap(), e["detail"]["referenceName"].as_str().unwrap())).collect();
    assert_eq!(got.len(), 6, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "referenceCreated main").count(), 1);
    assert_eq!(kinds.iter().filter(|k| *k == "referenceUpdated main").count(), 3);
    assert!(kinds.contains(&"referenceCreated feature".to_string()));
    assert!(kinds.contains(&"referenceDeleted feature".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn push_with_credential_helper_raises_one_event_per_ref() {
    let (t, cc) = TestServer::with(Client::new).await;
    let events = collect_events(&t).await;
    let created = cc.create_repository().repository_name("app").send().await.unwrap();
    let repo_id = created.repository_metadata().unwrap().repository_id().unwrap().to_string();
    let url = format!("{}/v1/repos/app", t.endpoint);

    let work = tempfile::tempdir().unwrap();
    let dir = clone_repo(work.path(), &url, "app");
    let c1 = push_file(&dir, "main", "src/main.rs", "fn main() {}\n", "first");

    let v = aws_cli_json(&t.endpoint, &["codecommit", "get-branch", "--repository-name", "app", "--branch-name", "main"]);
    assert_eq!(v["branch"]["commitId"], c1);

    // A multi-ref push: a branch update, a new branch and a tag in one request.
    let c2 = commit_file(&dir, "README.md", "docs\n", "second");
    git(&dir, &["branch", "release"]);
    git(&dir, &["tag", "v1"]);
    git(&dir, &["push", "-q", "origin", "main", "release", "v1"]);
    // A deletion, and a rejected non-fast-forward push.
    git(&dir, &["push", "-q", "origin", ":release"]);
    let other = work.path().join("other");
    git(work.path(), &["clone", "-q", &url, "other"]);
    push_file(&dir, "main", "a.txt", "a\n", "third");
    commit_file(&other, "b.txt", "b\n", "diverged");
    let mut stale = git_command(&other);
    stale.args(["push", "-q", "origin", "main"]);
    assert!(!stale.output().unwrap().status.success(), "a non-fast-forward push must be rejected");

    // Fetch with protocol v2 and v0 sees the same.
    let tip = git(&dir, &["rev-parse", "HEAD"]);
    let v2 = git(&other, &["-c", "protocol.version=2", "ls-remote", "origin", "refs/heads/main"]);
    let v0 = git(&other, &["-c", "protocol.version=0", "ls-remote", "origin", "refs/heads/main"]);
    assert!(v2.starts_with(&tip) && v0.starts_with(&tip), "{v2} / {v0}");
    git(&other, &["-c", "protocol.version=2", "fetch", "-q", "origin"]);
    assert_eq!(git(&other, &["rev-parse", "origin/main"]), tip);

    // A gzip-compressed protocol v2 request (git compresses large fetch requests).
    let mut raw = Vec::new();
    raw.extend_from_slice(b"0014command=ls-refs\n");
    raw.extend_from_slice(b"0001");
    raw.extend_from_slice(b"0000");
    let gz = {
        let mut c = std::process::Command::new("gzip");
        c.arg("-c").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), &raw).unwrap();
        drop(child.stdin.take());
        child.wait_with_output().unwrap().stdout
    };
    let resp = reqwest::Client::new()
        .post(format!("{url}/git-upload-pack"))
        .header("authorization", "Basic dGVzdDp4")
        .header("git-protocol", "version=2")
        .header("content-type", "application/x-git-upload-pack-request")
        .header("content-encoding", "gzip")
        .body(gz)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let listing = resp.text().await.unwrap();
    assert!(listing.contains(&format!("{tip} refs/heads/main")), "{listing}");

    let got = events_settled(&t, &events, 6).await;
    let summary: Vec<String> = got
        .iter()
        .map(|e| format!("{} {} {}", e["detail"]["event"].as_str().unwrap(), e["detail"]["referenceType"].as_str().unwrap(), e["detail"]["referenceFullName"].as_str().unwrap()))
        .collect();
    assert_eq!(got.len(), 6, "{summary:?}");
    for want in [
        "referenceCreated branch refs/heads/main",
        "referenceUpdated branch refs/heads/main",
        "referenceCreated branch refs/heads/release",
        "referenceCreated tag refs/tags/v1",
        "referenceDeleted branch refs/heads/release",
    ] {
        assert!(summary.contains(&want.to_string()), "{want} missing from {summary:?}");
    }
    let first = got.iter().find(|e| e["detail"]["event"] == "referenceCreated" && e["detail"]["referenceName"] == "main").unwrap();
    assert_eq!(first["source"], "aws.codecommit");
    assert_eq!(first["detail-type"], "CodeCommit Repository State Change");
    assert_eq!(first["resources"][0], format!("arn:aws:codecommit:{REGION}:{ACCOUNT}:app"));
    assert_eq!(first["detail"]["repositoryId"], repo_id);
    assert_eq!(first["detail"]["repositoryName"], "app");
    assert_eq!(first["detail"]["commitId"], c1);
    assert!(first["detail"].get("oldCommitId").is_none());
    let update = got.iter().find(|e| e["detail"]["event"] == "referenceUpdated" && e["detail"]["commitId"] == c2).unwrap();
    assert_eq!(update["detail"]["oldCommitId"], c1);

    // The hub interface pipelines use.
    let hub = t.server.as_ref().unwrap().platform.hub.git().unwrap();
    let ctx = t.server.as_ref().unwrap().platform.internal_context(ACCOUNT, REGION);
    assert_eq!(hub.resolve_branch(&ctx, "app", "main").await.unwrap(), tip);
    let zip = work.path().join("src.zip");
    hub.export_zip(&ctx, "app", &tip, &zip).await.unwrap();
    let listing = run_ok({
        let mut c = Command::new("unzip");
        c.arg("-Z1").arg(&zip);
        c
    });
    assert!(listing.contains("src/main.rs") && listing.contains("a.txt") && !listing.contains(".git/"), "{listing}");
    assert_eq!(hub.commit(&ctx, "app", &c2).await.unwrap().message.trim(), "second");
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_pushes_one_winner_per_old_value() {
    let (t, cc) = TestServer::with(Client::new).await;
    let events = collect_events(&t).await;
    cc.create_repository().repository_name("race").send().await.unwrap();
    let url = format!("{}/v1/repos/race", t.endpoint);
    let work = tempfile::tempdir().unwrap();
    let seed = clone_repo(work.path(), &url, "seed");
    let base = push_file(&seed, "main", "base.txt", "base\n", "base");

    // Credentials from the real helper once, then sent directly: 60 Python start-ups of the
    // helper would only measure the 2-core machine.
    let helper = {
        let mut c = Command::new("sh");
        c.args(["-c", &format!("printf 'protocol=http\\nhost={}\\npath=v1/repos/race\\n' | aws codecommit credential-helper --ignore-host-check get", t.endpoint.trim_start_matches("http://"))])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", REGION);
        run_ok(c)
    };
    let user = helper.lines().find_map(|l| l.strip_prefix("username=")).unwrap().to_string();
    let pass = helper.lines().find_map(|l| l.strip_prefix("password=")).unwrap().to_string();
    let auth = format!("http.extraHeader=Authorization: Basic {}", base64_encode(format!("{user}:{pass}").as_bytes()));
    let ga = |dir: &Path, args: &[&str]| {
        let mut c = git_command(dir);
        c.args(["-c", &auth]).args(args);
        run_ok(c)
    };

    let mut clones = Vec::new();
    for i in 0..20 {
        let name = format!("c{i}");
        ga(work.path(), &["clone", "-q", &url, &name]);
        let d = work.path().join(&name);
        let c = commit_file(&d, &format!("f{i}.txt"), &format!("{i}\n"), &format!("change {i}"));
        clones.push((d, c));
    }
    let handles: Vec<_> = clones
        .iter()
        .cloned()
        .map(|(d, c)| {
            let auth = auth.clone();
            std::thread::spawn(move || {
                let mut cmd = git_command(&d);
                cmd.args(["-c", &auth, "push", "-q", "origin", "main"]);
                (cmd.output().unwrap().status.success(), c)
            })
        })
        .collect();
    let results: Vec<(bool, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<&String> = results.iter().filter(|(ok, _)| *ok).map(|(_, c)| c).collect();
    assert_eq!(winners.len(), 1, "exactly one push from the same old value wins: {results:?}");

    // The losers rebase and push again, one after another: every round has one winner.
    let mut accepted = vec![winners[0].clone()];
    for (d, c) in &clones {
        if c == winners[0] {
            continue;
        }
        ga(d, &["pull", "-q", "--rebase", "origin", "main"]);
        ga(d, &["push", "-q", "origin", "main"]);
        accepted.push(git(d, &["rev-parse", "HEAD"]));
    }
    let tip = cc.get_branch().repository_name("race").branch_name("main").send().await.unwrap();
    let tip = tip.branch().unwrap().commit_id().unwrap().to_string();
    let last = &clones[19].0;
    ga(last, &["fetch", "-q", "origin"]);
    let history = git(last, &["rev-list", &tip]);
    for c in accepted.iter().chain([&base]) {
        assert!(history.lines().any(|l| l == c), "accepted commit {c} missing from history");
    }
    assert_eq!(history.lines().count(), 21);

    // Exactly one event per accepted update: the creation of main and 20 updates, chained.
    let got = events_settled(&t, &events, 21).await;
    assert_eq!(got.len(), 21);
    let updates: Vec<(String, String)> = got
        .iter()
        .filter(|e| e["detail"]["event"] == "referenceUpdated")
        .map(|e| (e["detail"]["oldCommitId"].as_str().unwrap().to_string(), e["detail"]["commitId"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(updates.len(), 20);
    let mut at = base.clone();
    for _ in 0..20 {
        let next = updates.iter().find(|(old, _)| *old == at).unwrap_or_else(|| panic!("no event moves main from {at}"));
        at = next.1.clone();
    }
    assert_eq!(at, tip);
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn enforce_mode_checks_the_signed_password() {
    let t = TestServer::enforcing("AKIDGOOD", "s3cret").await;
    let cc = Client::new(&t.sdk_config_with("AKIDGOOD", "s3cret").await);
    cc.create_repository().repository_name("locked").send().await.unwrap();
    let url = format!("{}/v1/repos/locked", t.endpoint);
    let work = tempfile::tempdir().unwrap();
    let with_keys = |key: &str, secret: &str, args: &[&str]| {
        let mut c = git_command(work.path());
        c.env("AWS_ACCESS_KEY_ID", key).env("AWS_SECRET_ACCESS_KEY", secret).args(args);
        c.output().unwrap()
    };
    assert!(!with_keys("AKIDGOOD", "wrong", &["clone", "-q", &url, "bad1"]).status.success());
    assert!(!with_keys("AKIDUNKNOWN", "s3cret", &["clone", "-q", &url, "bad2"]).status.success());
    let r = reqwest::get(format!("{url}/info/refs?service=git-upload-pack")).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let out = with_keys("AKIDGOOD", "s3cret", &["clone", "-q", &url, "good"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let good = work.path().join("good");
    let c = commit_file(&good, "x.txt", "x\n", "x");
    let mut push = git_command(&good);
    push.env("AWS_ACCESS_KEY_ID", "AKIDGOOD").env("AWS_SECRET_ACCESS_KEY", "wrong").args(["push", "-q", "origin", "main"]);
    assert!(!push.output().unwrap().status.success());
    assert_eq!(code(cc.get_branch().repository_name("locked").branch_name("main").send().await), "BranchDoesNotExistException");
    let mut push = git_command(&good);
    push.env("AWS_ACCESS_KEY_ID", "AKIDGOOD").env("AWS_SECRET_ACCESS_KEY", "s3cret").args(["push", "-q", "origin", "main"]);
    assert!(push.output().unwrap().status.success());
    let b = cc.get_branch().repository_name("locked").branch_name("main").send().await.unwrap();
    assert_eq!(b.branch().unwrap().commit_id(), Some(c.as_str()));
}

fn vm_hwm_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap()
}

fn make_big_commit(dir: &Path, mb: usize, name: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(format!("head -c {}M /dev/urandom > '{name}'", mb)).current_dir(dir).status().unwrap();
    assert!(out.success());
    git(dir, &["add", name]);
    git(dir, &["commit", "-q", "-m", &format!("big {name}")]);
    git(dir, &["rev-parse", "HEAD"])
}

/// A 200 MB push through a separate server process keeps its memory small; then a push
/// killed by `kill -9` of the server leaves a consistent repository at the old or new commit.
#[test]
fn large_push_memory_and_kill9_during_push() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(data.path(), &[]);
    let (ok, _, err) = aws_cli(&server.endpoint, &["codecommit", "create-repository", "--repository-name", "big"]);
    assert!(ok, "{err}");
    let url = format!("{}/v1/repos/big", server.endpoint);
    let work = tempfile::tempdir().unwrap();
    let dir = clone_repo(work.path(), &url, "big");
    git(&dir, &["config", "core.compression", "0"]);
    git(&dir, &["config", "pack.compression", "0"]);
    let first = make_big_commit(&dir, 200, "blob1.bin");
    let before = vm_hwm_kb(server.child.id());
    let started = Instant::now();
    git(&dir, &["push", "-q", "origin", "main"]);
    let peak = vm_hwm_kb(server.child.id());
    eprintln!("200 MB push in {:?}; server peak RSS {} kB (before {} kB)", started.elapsed(), peak, before);
    assert!(peak < 100 * 1024, "server peak RSS {peak} kB during a 200 MB push");

    // Start another large push and kill the server in the middle of it.
    let second = make_big_commit(&dir, 80, "blob2.bin");
    let mut push = git_command(&dir);
    push.args(["push", "-q", "origin", "main"]).stderr(std::process::Stdio::null());
    let mut child = push.spawn().unwrap();
    let repo_dir: PathBuf = std::fs::read_dir(data.path().join("codecommit").join(ACCOUNT).join(REGION))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "git"))
        .unwrap();
    // Kill once receive-pack is writing the pack into its quarantine directory.
    let deadline = Instant::now() + Duration::from_secs(120);
    let receiving = || {
        std::fs::read_dir(repo_dir.join("objects"))
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains("incoming"))
    };
    while !receiving() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(receiving(), "the push never reached the server");
    std::thread::sleep(Duration::from_millis(300));
    server.kill9();
    let _ = child.wait();

    // Restart: the repository is consistent and main is at the old or the new commit.
    let server = ServerProcess::spawn(data.path(), &[]);
    let fsck = Command::new("git").arg("--git-dir").arg(&repo_dir).args(["fsck", "--full", "--no-progress"]).output().unwrap();
    assert!(fsck.status.success(), "fsck: {}", String::from_utf8_lossy(&fsck.stderr));
    let v = aws_cli_json(&server.endpoint, &["codecommit", "get-branch", "--repository-name", "big", "--branch-name", "main"]);
    let at = v["branch"]["commitId"].as_str().unwrap().to_string();
    assert!(at == first || at == second, "main at {at}, neither {first} nor {second}");
    // And the push can simply be made again (the restarted server has a new port).
    git(&dir, &["remote", "set-url", "origin", &format!("{}/v1/repos/big", server.endpoint)]);
    git(&dir, &["push", "-q", "origin", "main"]);
    let (_, out, _) = aws_cli(&server.endpoint, &["codecommit", "get-branch", "--repository-name", "big", "--branch-name", "main"]);
    assert!(out.contains(&second));
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_repository_lifecycle() {
    let (t, ws, cc) = terraform_applied("codecommit", Client::new).await;
    let dir = ws.path();
    let r = cc.get_repository().repository_name("tf-repo").send().await.unwrap();
    let md = r.repository_metadata().unwrap();
    assert_eq!(md.repository_description(), Some("managed by terraform"));
    let tags = cc.list_tags_for_resource().resource_arn(md.arn().unwrap()).send().await.unwrap();
    assert_eq!(tags.tags().unwrap()["env"], "test");

    // Change description and tags.
    let main_tf = std::fs::read_to_string(dir.join("main.tf")).unwrap();
    std::fs::write(dir.join("main.tf"), main_tf.replace("managed by terraform", "updated by terraform").replace("\"test\"", "\"prod\"").replace("owner = \"ci\"", "team = \"devops\"")).unwrap();
    terraform_apply_clean(dir, &t.endpoint, &[]);
    let r = cc.get_repository().repository_name("tf-repo").send().await.unwrap();
    assert_eq!(r.repository_metadata().unwrap().repository_description(), Some("updated by terraform"));
    let tags = cc.list_tags_for_resource().resource_arn(md.arn().unwrap()).send().await.unwrap();
    let tags = tags.tags().unwrap();
    assert_eq!(tags["env"], "prod");
    assert_eq!(tags.get("team").map(String::as_str), Some("devops"));
    assert!(!tags.contains_key("owner"));

    terraform_destroy(dir, &t.endpoint, &[]);
    let left = cc.list_repositories().send().await.unwrap();
    assert!(left.repositories().is_empty());
}

/// Metadata changes racing on one repository all land: each is a compare-and-swap that is
/// retried on contention (`StateStoreExt::update`), not a ConcurrentModificationException.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_tagging_loses_no_tag() {
    let (_t, cc) = TestServer::with(Client::new).await;
    cc.create_repository().repository_name("busy").send().await.unwrap();
    let arn = format!("arn:aws:codecommit:{REGION}:{ACCOUNT}:busy");
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (cc, arn) = (cc.clone(), arn.clone());
        calls.spawn(async move { cc.tag_resource().resource_arn(arn).tags(format!("k{i}"), "v").send().await.map(|_| ()).map_err(|e| format!("{e:?}")) });
    }
    let description = cc.clone();
    calls.spawn(async move { description.update_repository_description().repository_name("busy").repository_description("d").send().await.map(|_| ()).map_err(|e| format!("{e:?}")) });
    while let Some(done) = calls.join_next().await {
        done.unwrap().expect("a racing metadata change succeeds");
    }
    let tags = cc.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
    assert_eq!(tags.tags().map(|t| t.len()), Some(16));
    let md = cc.get_repository().repository_name("busy").send().await.unwrap();
    assert_eq!(md.repository_metadata().unwrap().repository_description(), Some("d"));
}
