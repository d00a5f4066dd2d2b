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

/// `--auth enforce` with the console suites' access key, AKIDCONSOLE / s3cret.
fn enforce_console_key() -> impl Fn(&mut codeyard_server::Options) + Clone {
    auth_with_key(codeyard_server::AuthMode::Enforce, "AKIDCONSOLE", "s3cret")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enforce_mode_signs_in_with_an_access_key_and_acts_as_it() {
    let t = TestServer::start_with(enforce_console_key()).await;
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
    // Signed in under a new session id; the pre-login one is gone.
    let signed_in = right.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert_ne!(signed_in, cookie);
    assert_eq!(http.get(format!("{base}/")).header("cookie", &cookie).send().await.unwrap().status(), 303);
    let page = http.get(format!("{base}/")).header("cookie", &signed_in).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("arn:aws:iam::000000000000:root"));
    t.assert_no_model_violations();
}

// ---------------------------------------------------------------- S3 browser

/// The href of the first element `css` (absolute, as the browser resolved it).
async fn href(b: &Browser, css: &str) -> String {
    let el = b.web.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no {css}"));
    el.prop("href").await.unwrap().unwrap_or_else(|| panic!("{css} has no href"))
}

/// What a same-origin `fetch` of `url` from the page answers (with the session cookie, as a
/// click on a download link would): status, Content-Disposition and body text.
async fn fetch_in_page(b: &Browser, url: &str) -> (u16, String, String) {
    let v = b
        .web
        .execute(
            "return fetch(arguments[0]).then(r => r.text().then(t => [r.status, r.headers.get('content-disposition') || '', t]));",
            vec![json!(url)],
        )
        .await
        .unwrap();
    (v[0].as_u64().unwrap() as u16, v[1].as_str().unwrap().to_string(), v[2].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_browser_shows_folders_objects_settings_and_downloads() {
    let t = TestServer::start().await;
    let s3 = s3_client(&t.endpoint).await;
    make_bucket(&s3, "browse-me").await;
    for (key, body) in [("a/b.txt", "bytes of b\n"), ("c.txt", "bytes of c\n")] {
        s3.put_object().bucket("browse-me").key(key).body(body.as_bytes().to_vec().into()).send().await.unwrap();
    }
    s3.put_bucket_versioning()
        .bucket("browse-me")
        .versioning_configuration(aws_sdk_s3::types::VersioningConfiguration::builder().status(aws_sdk_s3::types::BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .unwrap();
    let tag = aws_sdk_s3::types::Tag::builder().key("team").value("console").build().unwrap();
    s3.put_bucket_tagging().bucket("browse-me").tagging(aws_sdk_s3::types::Tagging::builder().tag_set(tag).build().unwrap()).send().await.unwrap();
    let b = Browser::open(&t).await;
    b.goto("/s3").await;
    b.wait_text("#buckets", "browse-me", Duration::from_secs(10)).await;
    b.web.find(Locator::LinkText("browse-me")).await.unwrap().click().await.unwrap();
    // The root: the folder a/ and the object c.txt, not a/b.txt.
    let root = b.wait_text("#objects", "c.txt", Duration::from_secs(10)).await;
    assert!(root.contains("a/") && !root.contains("b.txt"), "root listing: {root}");
    b.screenshot("s3-bucket").await;
    // c.txt downloads with its bytes, as an attachment named c.txt.
    let (status, disposition, body) = fetch_in_page(&b, &href(&b, "tr.object a.download").await).await;
    assert_eq!((status, body.as_str()), (200, "bytes of c\n"));
    assert!(disposition.starts_with("attachment;") && disposition.contains("filename=\"c.txt\""), "{disposition}");
    // Into the folder: b.txt, and its download.
    b.web.find(Locator::LinkText("a/")).await.unwrap().click().await.unwrap();
    let folder = b.wait_text("#objects", "b.txt", Duration::from_secs(10)).await;
    assert!(!folder.contains("c.txt"), "a/ listing: {folder}");
    assert!(b.text("#crumbs").await.unwrap().contains("a/"));
    let (status, _, body) = fetch_in_page(&b, &href(&b, "tr.object a.download").await).await;
    assert_eq!((status, body.as_str()), (200, "bytes of b\n"));
    b.screenshot("s3-folder").await;
    // Paging: one entry a page, the folder first, then c.txt behind "Next page".
    b.goto("/s3/browse-me?max=1").await;
    let first = b.wait_text("#objects", "a/", Duration::from_secs(10)).await;
    assert!(!first.contains("c.txt"), "page 1: {first}");
    b.web.find(Locator::Id("next-page")).await.unwrap().click().await.unwrap();
    let second = b.wait_text("#objects", "c.txt", Duration::from_secs(10)).await;
    assert!(!second.contains("a/\n") && b.web.find(Locator::Id("next-page")).await.is_err(), "page 2: {second}");
    // Settings: versioning and tags as S3 answers them.
    b.goto("/s3/browse-me/settings").await;
    b.wait_text("#versioning", "Enabled", Duration::from_secs(10)).await;
    assert!(b.text("#tags").await.unwrap().contains("team=console"));
    assert!(b.text("#eventbridge").await.unwrap().contains("Off"));
    // A bucket that is not there: S3's error, on the page.
    b.goto("/s3/no-such-bucket-here").await;
    b.wait_text("#error", "NoSuchBucket", Duration::from_secs(10)).await;
    b.goto("/s3/browse-me/settings").await;
    b.finish(&t, "s3-settings").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_pages_act_under_the_callers_iam_permissions() {
    let t = TestServer::start_with(enforce_console_key()).await;
    let root = sdk_config_for(&t.endpoint, "AKIDCONSOLE", "s3cret").await;
    let s3 = s3_client_for(&root);
    make_bucket(&s3, "private-stuff").await;
    s3.put_object().bucket("private-stuff").key("secret.txt").body(b"no".to_vec().into()).send().await.unwrap();
    // A user who may list buckets and this bucket's keys, but read no object.
    let iam = aws_sdk_iam::Client::new(&root);
    iam.create_user().user_name("lister").send().await.unwrap();
    let policy = allow_policy(&[(&["s3:ListAllMyBuckets", "s3:ListBucket"], &["*"])]);
    iam.put_user_policy().user_name("lister").policy_name("list").policy_document(policy).send().await.unwrap();
    let key = iam.create_access_key().user_name("lister").send().await.unwrap();
    let key = key.access_key().unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let base = format!("{}{CONSOLE}", t.endpoint);
    let cookie = sign_in(&http, &t, key.access_key_id(), key.secret_access_key()).await;
    let get = |path: &str| http.get(format!("{base}{path}")).header("cookie", &cookie).send();
    let buckets = get("/s3").await.unwrap();
    assert_eq!(buckets.status(), 200);
    assert!(buckets.text().await.unwrap().contains("private-stuff"));
    let listing = get("/s3/private-stuff").await.unwrap().text().await.unwrap();
    assert!(listing.contains("secret.txt"), "{listing}");
    let download = get("/download/private-stuff/secret.txt").await.unwrap();
    assert_eq!(download.status(), 403);
    let text = download.text().await.unwrap();
    assert!(text.contains("AccessDenied") && text.contains("s3:GetObject"), "{text}");
    let settings = get("/s3/private-stuff/settings").await.unwrap();
    assert_eq!(settings.status(), 403);
    assert!(settings.text().await.unwrap().contains("s3:GetBucketVersioning"));
    // The key is deleted: the console session ends with it.
    iam.delete_access_key().user_name("lister").access_key_id(key.access_key_id()).send().await.unwrap();
    let after = get("/s3").await.unwrap();
    assert_eq!(after.status(), 303);
    assert_eq!(after.headers()["location"], format!("{CONSOLE}/login"));
    t.assert_no_model_violations();
}

// ---------------------------------------------------------------- sessions

/// Signs in on the console's login form over plain HTTP; the session cookie (`name=value`).
async fn sign_in(http: &reqwest::Client, t: &TestServer, key: &str, secret: &str) -> String {
    let base = format!("{}{CONSOLE}", t.endpoint);
    let form = http.get(format!("{base}/login")).send().await.unwrap();
    let cookie = form.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let html = form.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let resp = http
        .post(format!("{base}/login"))
        .header("cookie", &cookie)
        .header("origin", &t.endpoint)
        .form(&[("csrf", csrf.as_str()), ("access_key", key), ("secret", secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], format!("{CONSOLE}/"), "sign-in of {key} failed");
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Max-Age=43200"), "{set}");
    let signed_in = set.split(';').next().unwrap().to_string();
    assert_ne!(signed_in, cookie, "signing in issues a new session id");
    signed_in
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_survive_a_restart_and_end_at_sign_out() {
    let dir = tempfile::tempdir().unwrap();
    let enforce = enforce_console_key();
    let t = TestServer::start_in(dir.path().to_path_buf(), enforce.clone()).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = sign_in(&http, &t, "AKIDCONSOLE", "s3cret").await;
    let id = cookie.split('=').nth(1).unwrap().to_string();
    assert_eq!(id.len(), 64, "256 bits in hex: {id}");
    // Neither the session id nor the secret is in the data dir in plain sight.
    t.stop().await;
    for needle in [id.as_bytes(), b"s3cret".as_slice()] {
        let found = files_containing(dir.path(), needle);
        assert!(found.is_empty(), "{} found in {found:?}", String::from_utf8_lossy(needle));
    }
    // Restarted: the same cookie is still signed in.
    let t = TestServer::start_in(dir.path().to_path_buf(), enforce).await;
    let base = format!("{}{CONSOLE}", t.endpoint);
    let page = http.get(format!("{base}/")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200, "the restart signed the session out");
    let html = page.text().await.unwrap();
    assert!(html.contains("arn:aws:iam::000000000000:root") && html.contains("Sign out"), "{html}");
    // Sign out: the cookie is cleared and the session is gone for good.
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let out = http.post(format!("{base}/logout")).header("cookie", &cookie).header("origin", &t.endpoint).form(&[("csrf", csrf)]).send().await.unwrap();
    assert_eq!(out.headers()["location"], format!("{CONSOLE}/login"));
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let again = http.get(format!("{base}/")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(again.status(), 303, "the signed-out session still works");
    t.assert_no_model_violations();
    t.stop().await;
}

// ---------------------------------------------------------------- As Terraform

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipeline_page_has_an_as_terraform_view() {
    let t = TestServer::start().await;
    small_pipeline(&t, "exported", "version: 0.2\nphases:\n  build:\n    commands:\n      - echo ok\n", "console: export me", false).await;
    let b = Browser::open(&t).await;
    b.goto("/pipelines/exported").await;
    b.web.find(Locator::Id("as-terraform")).await.unwrap().click().await.unwrap();
    let hcl = b.wait_text("#terraform", "resource \"aws_codepipeline\"", Duration::from_secs(30)).await;
    assert!(hcl.contains("variable \"endpoint\"") && hcl.contains(&t.endpoint), "{hcl}");
    assert!(hcl.contains("resource \"aws_iam_role\"") && hcl.contains("resource \"aws_codebuild_project\""), "what the pipeline depends on: {hcl}");
    // The download link answers the same HCL as a .tf attachment.
    let (status, disposition, body) = fetch_in_page(&b, &href(&b, "#download-terraform").await).await;
    assert_eq!(status, 200);
    assert!(disposition.contains("exported.tf"), "{disposition}");
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(words(&body), words(&hcl));
    b.web.find(Locator::Id("copy-terraform")).await.unwrap().click().await.unwrap();
    b.wait_text("#copy-terraform", "Copied", Duration::from_secs(5)).await;
    b.screenshot("pipeline-terraform").await;
    b.goto("/terraform").await;
    let all = b.wait_text("#terraform", "resource \"aws_codepipeline\"", Duration::from_secs(30)).await;
    assert!(all.contains("resource \"aws_s3_bucket\""), "the account's buckets: {all}");
    b.screenshot("account-terraform").await;
    // A pipeline that is not there: CodePipeline's error, on the page.
    b.goto("/pipelines/nope/terraform").await;
    b.wait_text("#terraform-error", "PipelineNotFoundException", Duration::from_secs(10)).await;
    b.finish(&t, "terraform-error").await;
}

// ---------------------------------------------------------------- the other buttons

/// A [`small_pipeline`] `name` running `buildspec`, its server, an SDK client and a browser on
/// its page.
async fn pipeline_in_browser(name: &str, buildspec: &str, approval: bool) -> (TestServer, aws_sdk_codepipeline::Client, Browser) {
    let t = TestServer::start().await;
    small_pipeline(&t, name, buildspec, &format!("console: {name}"), approval).await;
    let cp = aws_sdk_codepipeline::Client::new(&t.sdk_config().await);
    let b = Browser::open(&t).await;
    b.goto(&format!("/pipelines/{name}")).await;
    (t, cp, b)
}

/// The `data-status` of the element `css` once it is `want`.
async fn wait_status(b: &Browser, css: &str, want: &str, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Ok(el) = b.web.find(Locator::Css(css)).await
            && el.attr("data-status").await.ok().flatten().as_deref() == Some(want)
        {
            return;
        }
        if std::time::Instant::now() > deadline {
            b.fail(&format!("{css} did not turn {want} within {limit:?}")).await;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Clicks what is on the screen now (a live update may redraw it between find and click).
async fn click(b: &Browser, css: &str) {
    wait_for(&format!("a click on {css}"), Duration::from_secs(60), Duration::from_millis(150), || async {
        b.web.find(Locator::Css(css)).await.ok()?.click().await.ok()
    })
    .await;
}

/// Whether the inbound transition of `stage` is enabled, and its reason, as GetPipelineState says.
async fn inbound_transition(cp: &aws_sdk_codepipeline::Client, pipeline: &str, stage: &str) -> (bool, Option<String>) {
    let state = cp.get_pipeline_state().name(pipeline).send().await.unwrap();
    let st = state.stage_states().iter().find(|s| s.stage_name() == Some(stage)).unwrap().clone();
    let t = st.inbound_transition_state().unwrap();
    (t.enabled(), t.disabled_reason().map(str::to_string))
}

async fn execution_status(cp: &aws_sdk_codepipeline::Client, pipeline: &str, id: &str) -> String {
    let got = cp.get_pipeline_execution().pipeline_name(pipeline).pipeline_execution_id(id).send().await.unwrap();
    got.pipeline_execution().unwrap().status().unwrap().as_str().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transition_and_stop_buttons_call_the_apis() {
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 15\n      - echo slow\n";
    let (t, cp, b) = pipeline_in_browser("halt", buildspec, false).await;
    // Disable the transition into Build, then enable it again.
    click(&b, "button.transition-button[data-stage=Build]").await;
    b.wait_text("#flash", "DisableStageTransition succeeded", Duration::from_secs(10)).await;
    let (enabled, reason) = inbound_transition(&cp, "halt", "Build").await;
    assert!(!enabled, "the transition is still enabled");
    assert_eq!(reason.as_deref(), Some("Disabled in the codeyard console"));
    b.wait_text("button.transition-button[data-stage=Build]", "Enable transition", Duration::from_secs(10)).await;
    b.screenshot("transition-disabled").await;
    click(&b, "button.transition-button[data-stage=Build]").await;
    b.wait_text("#flash", "EnableStageTransition succeeded", Duration::from_secs(10)).await;
    assert!(inbound_transition(&cp, "halt", "Build").await.0, "the transition is still disabled");
    // Stop the execution while its build runs.
    wait_status(&b, "#stage-Build", "InProgress", Duration::from_secs(120)).await;
    let execution = latest_execution(&client(&t), "halt").await["pipelineExecutionId"].as_str().unwrap().to_string();
    click(&b, "#stop").await;
    b.wait_text("#flash", "StopPipelineExecution succeeded", Duration::from_secs(10)).await;
    let status = execution_status(&cp, "halt", &execution).await;
    assert!(status == "Stopping" || status == "Stopped", "after Stop: {status}");
    // Stop (not abandon) lets the running build finish, then the execution is Stopped.
    b.wait_text("#latest-status", "Stopped", Duration::from_secs(120)).await;
    assert_eq!(execution_status(&cp, "halt", &execution).await, "Stopped");
    b.finish(&t, "execution-stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_stage_is_retried_by_clicking() {
    // The first build fails, the second (the retry) succeeds.
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo build number $CODEBUILD_BUILD_NUMBER\n      - test \"$CODEBUILD_BUILD_NUMBER\" -ge 2\n";
    let (t, cp, b) = pipeline_in_browser("flaky", buildspec, false).await;
    b.wait_text("#latest-status", "Failed", Duration::from_secs(180)).await;
    let execution = latest_execution(&client(&t), "flaky").await["pipelineExecutionId"].as_str().unwrap().to_string();
    assert_eq!(execution_status(&cp, "flaky", &execution).await, "Failed");
    b.screenshot("stage-failed").await;
    click(&b, "#retry-Build").await;
    b.wait_text("#flash", "RetryStageExecution succeeded", Duration::from_secs(10)).await;
    b.wait_text("#latest-status", "Succeeded", Duration::from_secs(180)).await;
    // The same execution, retried: Succeeded, with a second build.
    assert_eq!(execution_status(&cp, "flaky", &execution).await, "Succeeded");
    let state = cp.get_pipeline_state().name("flaky").send().await.unwrap();
    let build = state.stage_states().iter().find(|s| s.stage_name() == Some("Build")).unwrap();
    let action = &build.action_states()[0];
    let external = action.latest_execution().unwrap().external_execution_id().unwrap_or_default().to_string();
    let builds = c_builds(&t, "flaky").await;
    assert_eq!(builds.len(), 2, "{builds:?}");
    assert!(builds.contains(&external), "{external} not in {builds:?}");
    b.finish(&t, "stage-retried").await;
}

async fn c_builds(t: &TestServer, project: &str) -> Vec<String> {
    let cb = aws_sdk_codebuild::Client::new(&t.sdk_config().await);
    cb.list_builds_for_project().project_name(project).send().await.unwrap().ids().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pending_approval_is_rejected_by_clicking_and_the_execution_fails() {
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo never\n";
    let (t, cp, b) = pipeline_in_browser("vetoed", buildspec, true).await;
    click(&b, "#reject-Approve-Gate").await;
    b.wait_text("#flash", "PutApprovalResult succeeded", Duration::from_secs(10)).await;
    b.wait_text("#latest-status", "Failed", Duration::from_secs(60)).await;
    let execution = latest_execution(&client(&t), "vetoed").await["pipelineExecutionId"].as_str().unwrap().to_string();
    assert_eq!(execution_status(&cp, "vetoed", &execution).await, "Failed");
    let state = cp.get_pipeline_state().name("vetoed").send().await.unwrap();
    let gate = state.stage_states().iter().find(|s| s.stage_name() == Some("Approve")).unwrap();
    let latest = gate.action_states()[0].latest_execution().unwrap();
    assert_eq!(latest.status().unwrap().as_str(), "Failed");
    assert!(latest.summary().unwrap_or_default().contains("Rejected in the codeyard console"), "{latest:?}");
    // Build never ran.
    assert!(c_builds(&t, "vetoed").await.is_empty());
    b.finish(&t, "approval-rejected").await;
}
