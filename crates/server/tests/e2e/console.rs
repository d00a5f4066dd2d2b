//! The web console in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! started by each test on a free port) against a real server. Pages turn live (server-sent
//! events) while pipelines and builds run; buttons call the real APIs; every test saves a
//! screenshot under `target/console-screenshots/`. And plain HTTP checks that nothing a
//! foreign web page can send changes state, and that `/` still reaches S3 for AWS clients.

use crate::common::*;
use codeyard_server::client::AwsClient;
use fantoccini::{Client as Web, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CONSOLE: &str = "/_codeyard/console";

/// A headless Chromium session over chromedriver; the driver dies with it.
struct Browser {
    web: Web,
    driver: Child,
    base: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("console-screenshots")
}

impl Browser {
    /// Opens the console of `t` in a fresh headless Chromium, looking at the tests' region.
    async fn open(t: &TestServer) -> Browser {
        let port = free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (apt-get install chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        wait_for("chromedriver to listen", Duration::from_secs(20), Duration::from_millis(100), || async {
            reqwest::get(format!("{url}/status")).await.ok().filter(|r| r.status().is_success()).map(|_| ())
        })
        .await;
        let caps = json!({"goog:chromeOptions": {"binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1400"]}});
        let web = ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps.as_object().unwrap().clone().into_iter().collect())
            .connect(&url)
            .await
            .expect("a Chromium session");
        let b = Browser { web, driver, base: t.endpoint.clone() };
        // The browser's first contact is `/`, as a person's would be: it lands on the console.
        b.web.goto(&format!("{}/", b.base)).await.unwrap();
        let at = b.web.current_url().await.unwrap();
        assert!(at.path().starts_with(CONSOLE), "GET / from a browser did not reach the console: {at}");
        // The tests' resources live in eu-west-1: switch the console there with its region form.
        let field = b.web.find(Locator::Css("input[name=region]")).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(REGION).await.unwrap();
        b.mark().await;
        b.web.find(Locator::Css("header form button")).await.unwrap().click().await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let reloaded = b.reloaded().await == Some(true);
            let value = match b.web.find(Locator::Css("input[name=region]")).await {
                Ok(f) => f.prop("value").await.ok().flatten(),
                Err(_) => None,
            };
            if reloaded && value.as_deref() == Some(REGION) {
                break;
            }
            if std::time::Instant::now() > deadline {
                b.fail(&format!("the region form did not reload the page in {REGION} (reloaded {reloaded}, field {value:?})")).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        b
    }

    async fn goto(&self, path: &str) {
        self.web.goto(&format!("{}{CONSOLE}{path}", self.base)).await.unwrap();
    }

    async fn text(&self, css: &str) -> Option<String> {
        self.web.find(Locator::Css(css)).await.ok()?.text().await.ok()
    }

    /// Waits until the element `css` exists and its text contains `want`; returns the text.
    async fn wait_text(&self, css: &str, want: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(t) = self.text(css).await.filter(|t| t.contains(want)) {
                return t;
            }
            if std::time::Instant::now() > deadline {
                self.fail(&format!("'{want}' in {css}: not within {limit:?}")).await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Fails the test with the page's URL and text, keeping a screenshot of it.
    async fn fail(&self, what: &str) -> ! {
        let url = self.web.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let body = self.text("body").await.unwrap_or_default();
        let name = format!("failed-{}", std::thread::current().name().unwrap_or("test").replace("::", "-"));
        self.screenshot(&name).await;
        panic!("{what}\nat {url} (screenshot {name}.png):\n{body}");
    }

    /// Marks the loaded document; [`Browser::same_document`] is true until the page reloads.
    async fn mark(&self) {
        self.web.execute("window.__codeyardMark = 42; return true;", vec![]).await.unwrap();
    }

    async fn same_document(&self) -> bool {
        self.web.execute("return window.__codeyardMark === 42;", vec![]).await.unwrap() == json!(true)
    }

    /// Whether a new document has replaced the marked one and finished loading (None while
    /// the browser is between documents).
    async fn reloaded(&self) -> Option<bool> {
        let v = self.web.execute("return document.readyState === 'complete' && window.__codeyardMark !== 42;", vec![]).await.ok()?;
        Some(v == json!(true))
    }

    async fn screenshot(&self, name: &str) {
        let png = self.web.screenshot().await.unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Saves the last screenshot, closes the browser and checks the server's answers fit the models.
    async fn finish(self, t: &TestServer, shot: &str) {
        self.screenshot(shot).await;
        self.close().await;
        t.assert_no_model_violations();
    }

    async fn close(mut self) {
        let web = self.web.clone();
        let _ = web.close().await;
        let _ = self.driver.kill();
    }
}

fn client(t: &TestServer) -> AwsClient {
    AwsClient::new(&t.endpoint, REGION, "test", "test")
}

/// Pushes `files` as one commit with `message` to a new CodeCommit repository; the commit id.
async fn push_repo(t: &TestServer, c: &AwsClient, repo: &str, files: &[(&str, &str)], message: &str) -> String {
    let created = c.json("codecommit", "CodeCommit_20150413.CreateRepository", json!({"repositoryName": repo})).await.unwrap();
    let clone_url = created["repositoryMetadata"]["cloneUrlHttp"].as_str().unwrap().to_string();
    let work = tempfile::tempdir().unwrap();
    git(work.path(), &["init", "-q", "-b", "main"]);
    for (path, content) in files {
        let p = work.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    git(work.path(), &["add", "-A"]);
    git(work.path(), &["commit", "-qm", message]);
    git(work.path(), &["push", "-q", &clone_url.replacen("://", "://u:p@", 1), "main"]);
    let _ = t;
    git(work.path(), &["rev-parse", "HEAD"])
}

async fn create_project(c: &AwsClient, name: &str, source: Value, artifacts: &str, role: &str) {
    c.json(
        "codebuild",
        "CodeBuild_20161006.CreateProject",
        json!({"name": name, "source": source, "artifacts": {"type": artifacts},
               "environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"},
               "serviceRole": role}),
    )
    .await
    .unwrap();
}

fn action(name: &str, category: &str, provider: &str, inputs: &[&str], outputs: &[&str], config: Value) -> Value {
    json!({"name": name, "actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"},
           "configuration": config,
           "inputArtifacts": inputs.iter().map(|a| json!({"name": a})).collect::<Vec<_>>(),
           "outputArtifacts": outputs.iter().map(|a| json!({"name": a})).collect::<Vec<_>>()})
}

/// A pipeline `name`: CodeCommit source (repository `name`, branch main, not polling) ->
/// optionally a manual approval -> a CodeBuild action running `buildspec` (pushed as the
/// repository's buildspec.yml with `message`). CreatePipeline starts an execution on it.
async fn small_pipeline(t: &TestServer, name: &str, buildspec: &str, message: &str, approval: bool) -> String {
    let c = client(t);
    let commit = push_repo(t, &c, name, &[("buildspec.yml", buildspec), ("README.md", "console test\n")], message).await;
    c.s3("PUT", &format!("/{name}-artifacts"), Vec::new()).await.unwrap();
    let iam = aws_sdk_iam::Client::new(&t.sdk_config().await);
    let build_role = create_service_role(&iam, &format!("{name}-build"), "codebuild.amazonaws.com", &codebuild_role_policy()).await;
    let pipeline_role = create_service_role(&iam, &format!("{name}-pipeline"), "codepipeline.amazonaws.com", &codepipeline_role_policy()).await;
    create_project(&c, name, json!({"type": "CODEPIPELINE"}), "CODEPIPELINE", &build_role).await;
    let mut stages = vec![json!({"name": "Source", "actions": [action("Source", "Source", "CodeCommit", &[], &["src"],
        json!({"RepositoryName": name, "BranchName": "main", "PollForSourceChanges": "false"}))]})];
    if approval {
        stages.push(json!({"name": "Approve", "actions": [action("Gate", "Approval", "Manual", &[], &[], json!({}))]}));
    }
    stages.push(json!({"name": "Build", "actions": [action("Build", "Build", "CodeBuild", &["src"], &[], json!({"ProjectName": name}))]}));
    c.json(
        "codepipeline",
        "CodePipeline_20150709.CreatePipeline",
        json!({"pipeline": {"name": name, "roleArn": pipeline_role, "artifactStore": {"type": "S3", "location": format!("{name}-artifacts")}, "stages": stages}}),
    )
    .await
    .unwrap();
    commit
}

async fn latest_execution(c: &AwsClient, pipeline: &str) -> Value {
    let list = c.json("codepipeline", "CodePipeline_20150709.ListPipelineExecutions", json!({"pipelineName": pipeline})).await.unwrap();
    list["pipelineExecutionSummaries"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipeline_page_turns_from_in_progress_to_succeeded_without_reload() {
    let t = TestServer::start().await;
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 6\n      - echo built\n";
    let commit = small_pipeline(&t, "live", buildspec, "console: a commit to watch", false).await;
    let b = Browser::open(&t).await;
    b.goto("/").await;
    b.wait_text("#pipelines", "live", Duration::from_secs(10)).await;
    b.goto("/pipelines/live").await;
    b.wait_text("#latest-status", "InProgress", Duration::from_secs(60)).await;
    b.mark().await;
    b.screenshot("pipeline-in-progress").await;
    b.wait_text("#latest-status", "Succeeded", Duration::from_secs(180)).await;
    assert!(b.same_document().await, "the page reloaded instead of updating live");
    // Stages drawn with their state, the source revision (commit id and message), the build link.
    assert_eq!(b.web.find(Locator::Css("#stage-Build")).await.unwrap().attr("data-status").await.unwrap().as_deref(), Some("Succeeded"));
    let source = b.text("#action-Source-Source").await.unwrap();
    assert!(source.contains(&commit[..8]) && source.contains("console: a commit to watch"), "source action: {source}");
    let history = b.text("#history").await.unwrap();
    assert!(history.contains("Succeeded") && history.contains("CreatePipeline"), "history: {history}");
    // What the console would have hidden: nothing starts this pipeline on a push.
    let warning = b.text("#doctor-warning").await.expect("the doctor's warning");
    assert!(warning.contains("will never start it"), "{warning}");
    b.screenshot("pipeline-succeeded").await;
    // The build link leads to the build that ran.
    b.web.find(Locator::Css("a.build-link")).await.unwrap().click().await.unwrap();
    b.wait_text("#build-status", "SUCCEEDED", Duration::from_secs(20)).await;
    b.wait_text("#log", "built", Duration::from_secs(20)).await;
    // The activity stream has the execution and its build.
    b.goto("/activity").await;
    let activity = b.wait_text("#activity", "pipeline live execution", Duration::from_secs(10)).await;
    assert!(activity.contains("build live #1"), "activity: {activity}");
    b.finish(&t, "activity").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn build_page_shows_log_lines_as_the_build_writes_them() {
    let t = TestServer::start().await;
    let c = client(&t);
    let role = crate::codebuild::build_role(&t.sdk_config().await, "console-logs").await;
    let buildspec = "version: 0.2\nenv:\n  exported-variables:\n    - GREETING\nphases:\n  build:\n    commands:\n      - export GREETING=hello-console\n      - echo console-first-line\n      - sleep 6\n      - echo console-late-line\n";
    create_project(&c, "logs", json!({"type": "NO_SOURCE", "buildspec": buildspec}), "NO_ARTIFACTS", &role).await;
    let started = c.json("codebuild", "CodeBuild_20161006.StartBuild", json!({"projectName": "logs"})).await.unwrap();
    let id = started["build"]["id"].as_str().unwrap().to_string();
    let b = Browser::open(&t).await;
    b.goto("/projects").await;
    b.wait_text("#projects", "logs", Duration::from_secs(10)).await;
    b.goto(&format!("/builds/{id}")).await;
    let log = b.wait_text("#log", "console-first-line", Duration::from_secs(60)).await;
    assert!(!log.contains("console-late-line"), "the late line was there before it was written:\n{log}");
    assert!(b.text("#build-status").await.unwrap().contains("IN_PROGRESS"));
    b.mark().await;
    b.screenshot("build-running").await;
    b.wait_text("#log", "console-late-line", Duration::from_secs(60)).await;
    b.wait_text("#build-status", "SUCCEEDED", Duration::from_secs(60)).await;
    assert!(b.same_document().await, "the page reloaded instead of following the log");
    let phases = b.text("#phases").await.unwrap();
    assert!(phases.contains("BUILD") && phases.contains("SUCCEEDED"), "phases: {phases}");
    b.wait_text("#exported", "hello-console", Duration::from_secs(10)).await;
    // The log holds each line once.
    let log = b.text("#log").await.unwrap();
    assert_eq!(log.lines().filter(|l| l.trim() == "console-late-line").count(), 1, "{log}");
    b.finish(&t, "build-succeeded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pending_approval_is_approved_by_clicking_and_the_execution_continues() {
    let t = TestServer::start().await;
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo after-approval\n";
    small_pipeline(&t, "gated", buildspec, "console: needs a yes", true).await;
    let b = Browser::open(&t).await;
    b.goto("/pipelines/gated").await;
    wait_for("the Approve button", Duration::from_secs(60), Duration::from_millis(200), || async {
        b.web.find(Locator::Css("#approve-Approve-Gate")).await.ok()
    })
    .await;
    b.screenshot("approval-pending").await;
    // A person clicks what is on the screen: should a live update redraw the button between
    // finding and clicking it, the redrawn one is clicked.
    wait_for("a click on Approve", Duration::from_secs(10), Duration::from_millis(100), || async {
        b.web.find(Locator::Css("#approve-Approve-Gate")).await.ok()?.click().await.ok()
    })
    .await;
    b.wait_text("#flash", "PutApprovalResult succeeded", Duration::from_secs(10)).await;
    b.wait_text("#latest-status", "Succeeded", Duration::from_secs(120)).await;
    let gate = b.text("#action-Approve-Gate").await.unwrap();
    assert!(gate.contains("Succeeded"), "approval action: {gate}");
    b.screenshot("approval-approved").await;
    b.close().await;
    // Recorded by the API as approved by the console's caller.
    let c = client(&t);
    let acts = c.json("codepipeline", "CodePipeline_20150709.ListActionExecutions", json!({"pipelineName": "gated"})).await.unwrap();
    let gate = acts["actionExecutionDetails"].as_array().unwrap().iter().find(|a| a["actionName"] == "Gate").unwrap().clone();
    assert_eq!(gate["status"], "Succeeded", "{gate}");
    assert_eq!(latest_execution(&c, "gated").await["status"], "Succeeded");
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repository_page_shows_the_pushed_commit_and_a_file() {
    let t = TestServer::start().await;
    let c = client(&t);
    let files = [("README.md", "# app\n"), ("docs/hello.txt", "hello from the codeyard console\n")];
    let commit = push_repo(&t, &c, "browse", &files, "console: add a greeting").await;
    let b = Browser::open(&t).await;
    b.goto("/repos").await;
    b.web.find(Locator::LinkText("browse")).await.unwrap().click().await.unwrap();
    let commits = b.wait_text("#commits", "console: add a greeting", Duration::from_secs(10)).await;
    assert!(commits.contains(&commit[..12]), "{commits}");
    assert!(b.text("#clone").await.unwrap().contains("/v1/repos/browse"));
    let changes = b.text("#changes").await.unwrap();
    assert!(changes.contains("docs/hello.txt") && changes.contains("README.md"), "changes: {changes}");
    b.web.find(Locator::LinkText("docs/")).await.unwrap().click().await.unwrap();
    b.wait_text("#tree", "hello.txt", Duration::from_secs(10)).await;
    b.web.find(Locator::LinkText("hello.txt")).await.unwrap().click().await.unwrap();
    b.wait_text("#file-content", "hello from the codeyard console", Duration::from_secs(10)).await;
    b.finish(&t, "repository").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn image_page_shows_the_pushed_tag_and_digest() {
    let t = TestServer::start().await;
    let ecr = aws_sdk_ecr::Client::new(&t.sdk_config().await);
    ecr.create_repository().repository_name("team/web").send().await.unwrap();
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = vec![7u8; 3000];
    let config_digest = crate::ecr::upload_layer(&ecr, "team/web", config).await;
    let layer_digest = crate::ecr::upload_layer(&ecr, "team/web", &layer).await;
    let manifest = crate::ecr::image_manifest(&config_digest, config.len(), &layer_digest, layer.len());
    let put = ecr.put_image().repository_name("team/web").image_manifest(&manifest).image_tag("v7").send().await.unwrap();
    let digest = put.image().unwrap().image_id().unwrap().image_digest().unwrap().to_string();
    let b = Browser::open(&t).await;
    b.goto("/images").await;
    b.web.find(Locator::LinkText("team/web")).await.unwrap().click().await.unwrap();
    b.wait_text("#images .tag", "v7", Duration::from_secs(10)).await;
    assert_eq!(b.text("#images .digest").await.unwrap(), digest);
    assert!(b.text("#pull").await.unwrap().contains("team/web:v7"));
    b.finish(&t, "image").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pattern_tester_answers_true_and_false() {
    let t = TestServer::start().await;
    let c = client(&t);
    c.json("events", "AWSEvents.PutRule", json!({"Name": "on-push", "EventPattern": r#"{"source":["aws.codecommit"]}"#})).await.unwrap();
    let b = Browser::open(&t).await;
    b.goto("/events").await;
    b.wait_text("main", "on-push", Duration::from_secs(10)).await;
    // The sample event is a CodeCommit push; the sample pattern matches it.
    b.web.find(Locator::Id("test-pattern")).await.unwrap().click().await.unwrap();
    b.wait_text("#pattern-result", "true", Duration::from_secs(10)).await;
    b.screenshot("pattern-true").await;
    let pattern = b.web.find(Locator::Id("pattern")).await.unwrap();
    pattern.clear().await.unwrap();
    pattern.send_keys(r#"{"source": ["aws.s3"]}"#).await.unwrap();
    b.web.find(Locator::Id("test-pattern")).await.unwrap().click().await.unwrap();
    b.wait_text("#pattern-result", "false", Duration::from_secs(10)).await;
    b.screenshot("pattern-false").await;
    // A pattern that is not one: EventBridge's own error.
    let pattern = b.web.find(Locator::Id("pattern")).await.unwrap();
    pattern.clear().await.unwrap();
    pattern.send_keys("{not json").await.unwrap();
    b.web.find(Locator::Id("test-pattern")).await.unwrap().click().await.unwrap();
    b.wait_text("#pattern-error", "InvalidEventPatternException", Duration::from_secs(10)).await;
    b.close().await;
    t.assert_no_model_violations();
}

/// The session cookie and CSRF token a browser gets from a console page.
async fn session_of(http: &reqwest::Client, url: &str) -> (String, String) {
    let resp = http.get(url).header("accept", "text/html").send().await.unwrap();
    let cookie = resp.headers().get("set-cookie").expect("a session cookie").to_str().unwrap().split(';').next().unwrap().to_string();
    let html = resp.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).expect("a CSRF field").split('"').next().unwrap().to_string();
    (cookie, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cross_site_posts_are_refused_and_change_nothing() {
    let t = TestServer::start().await;
    small_pipeline(&t, "guarded", "version: 0.2\nphases:\n  build:\n    commands:\n      - echo ok\n", "console: guarded", false).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let base = format!("{}{CONSOLE}", t.endpoint);
    let (cookie, csrf) = session_of(&http, &format!("{base}/")).await;
    let origin = t.endpoint.clone();
    let post = |path: &str, form: Vec<(&'static str, String)>, headers: Vec<(&'static str, String)>| {
        let mut r = http.post(format!("{base}{path}")).form(&form);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r.send()
    };
    let region = || vec![("csrf", csrf.clone()), ("region", REGION.to_string())];
    assert_eq!(post("/region", region(), vec![("cookie", cookie.clone()), ("origin", origin.clone())]).await.unwrap().status(), 303);
    let disable = |token: Option<String>| {
        let mut f = vec![("stage", "Build".to_string())];
        if let Some(t) = token {
            f.push(("csrf", t));
        }
        f
    };
    let refused = [
        ("cross-site", disable(Some(csrf.clone())), vec![("cookie", cookie.clone()), ("sec-fetch-site", "cross-site".to_string())]),
        ("same-site", disable(Some(csrf.clone())), vec![("cookie", cookie.clone()), ("sec-fetch-site", "same-site".to_string())]),
        ("foreign origin", disable(Some(csrf.clone())), vec![("cookie", cookie.clone()), ("origin", "http://evil.example".to_string())]),
        ("null origin", disable(Some(csrf.clone())), vec![("cookie", cookie.clone()), ("origin", "null".to_string())]),
        ("no token", disable(None), vec![("cookie", cookie.clone()), ("origin", origin.clone())]),
        ("wrong token", disable(Some("x".repeat(40))), vec![("cookie", cookie.clone()), ("origin", origin.clone())]),
        ("no session", disable(Some(csrf.clone())), vec![("origin", origin.clone())]),
    ];
    let c = client(&t);
    let inbound = || async {
        let state = c.json("codepipeline", "CodePipeline_20150709.GetPipelineState", json!({"name": "guarded"})).await.unwrap();
        let build = state["stageStates"].as_array().unwrap().iter().find(|s| s["stageName"] == "Build").unwrap().clone();
        build["inboundTransitionState"]["enabled"].as_bool().unwrap()
    };
    for (what, form, headers) in refused {
        let resp = post("/pipelines/guarded/disable", form, headers).await.unwrap();
        assert_eq!(resp.status(), 403, "{what}: {}", resp.text().await.unwrap());
        assert!(inbound().await, "{what}: the transition was disabled");
    }
    let executions = c.json("codepipeline", "CodePipeline_20150709.ListPipelineExecutions", json!({"pipelineName": "guarded"})).await.unwrap();
    let before = executions["pipelineExecutionSummaries"].as_array().unwrap().len();
    let resp = post("/pipelines/guarded/release", vec![("csrf", "bad".into())], vec![("cookie", cookie.clone()), ("sec-fetch-site", "cross-site".into())]).await.unwrap();
    assert_eq!(resp.status(), 403);
    // A GET never changes anything, not even one to an action's URL.
    assert_eq!(http.get(format!("{base}/pipelines/guarded/release")).header("cookie", &cookie).send().await.unwrap().status(), 405);
    let executions = c.json("codepipeline", "CodePipeline_20150709.ListPipelineExecutions", json!({"pipelineName": "guarded"})).await.unwrap();
    assert_eq!(executions["pipelineExecutionSummaries"].as_array().unwrap().len(), before);
    // The same form from the console's own page (same origin, its token) does it.
    let ok = post("/pipelines/guarded/disable", disable(Some(csrf.clone())), vec![("cookie", cookie.clone()), ("origin", origin.clone()), ("sec-fetch-site", "same-origin".into())])
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert!(!inbound().await, "the console's own POST did not disable the transition");
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn root_serves_the_console_to_browsers_and_s3_to_everyone_else() {
    let t = TestServer::start().await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let browser = http.get(format!("{}/", t.endpoint)).header("accept", "text/html,application/xhtml+xml").send().await.unwrap();
    assert_eq!(browser.status(), 303);
    assert_eq!(browser.headers()["location"], format!("{CONSOLE}/"));
    // Signed ListBuckets on `/` reaches S3 as before; an anonymous one gets S3's refusal.
    let s3 = s3_client(&t.endpoint).await;
    make_bucket(&s3, "still-s3").await;
    let buckets = s3.list_buckets().send().await.unwrap();
    assert!(buckets.buckets().iter().any(|b| b.name() == Some("still-s3")));
    let anonymous = http.get(format!("{}/", t.endpoint)).send().await.unwrap();
    assert_eq!(anonymous.status(), 403);
    assert!(anonymous.text().await.unwrap().contains("<Code>AccessDenied</Code>"));
    // Assets are embedded and the page names who it acts as.
    let css = http.get(format!("{}{CONSOLE}/static/console.css", t.endpoint)).send().await.unwrap();
    assert_eq!(css.status(), 200);
    let page = http.get(format!("{}{CONSOLE}/", t.endpoint)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("arn:aws:iam::000000000000:root") && page.contains("--auth open"), "{page}");
    // A page for a host that is not this server (DNS rebinding) is refused.
    let foreign = http.get(format!("{}{CONSOLE}/", t.endpoint)).header("host", "evil.example").send().await.unwrap();
    assert_eq!(foreign.status(), 403);
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enforce_mode_signs_in_with_an_access_key_and_acts_as_it() {
    let t = TestServer::start_with(|o| {
        o.auth = codeyard_server::AuthMode::Enforce;
        o.access_keys = vec![codeyard_server::AccessKey { id: "AKIDCONSOLE".into(), secret: "s3cret".into(), account: ACCOUNT.into() }];
    })
    .await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let base = format!("{}{CONSOLE}", t.endpoint);
    let first = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(first.status(), 303);
    assert_eq!(first.headers()["location"], format!("{CONSOLE}/login"));
    let cookie = first.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert!(first.headers()["set-cookie"].to_str().unwrap().contains("HttpOnly"));
    let login = http.get(format!("{base}/login")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let csrf = login.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let sign_in = |secret: &str| {
        http.post(format!("{base}/login"))
            .header("cookie", &cookie)
            .header("origin", &t.endpoint)
            .form(&[("csrf", csrf.as_str()), ("access_key", "AKIDCONSOLE"), ("secret", secret)])
            .send()
    };
    let wrong = sign_in("nope").await.unwrap();
    assert_eq!(wrong.headers()["location"], format!("{CONSOLE}/login"));
    assert_eq!(http.get(format!("{base}/")).header("cookie", &cookie).send().await.unwrap().status(), 303, "a wrong secret signed in");
    let right = sign_in("s3cret").await.unwrap();
    assert_eq!(right.headers()["location"], format!("{CONSOLE}/"));
    let page = http.get(format!("{base}/")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("arn:aws:iam::000000000000:root"));
    t.assert_no_model_violations();
}
