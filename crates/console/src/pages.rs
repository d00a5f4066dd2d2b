//! The pages. Each handler reads through the real APIs as the session's caller
//! ([`Console::call`]) and renders a template; the `live` handlers stream re-rendered fragments
//! (and build log lines) as server-sent events.

use crate::session::{Caller, Session, refused};
use crate::{Console, PREFIX, Shared};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use codeyard_api::Timestamp;
use codeyard_api::codebuild::{BatchGetBuildsOutput, BatchGetReportsOutput, Build, DescribeTestCasesOutput, ListProjectsOutput};
use codeyard_api::codecommit::{Commit, GetBranchOutput, GetCommitOutput, GetFileOutput, GetFolderOutput, GetRepositoryOutput, ListBranchesOutput, ListRepositoriesOutput};
use codeyard_api::codepipeline::{
    GetPipelineOutput, GetPipelineStateOutput, ListActionExecutionsOutput, ListPipelineExecutionsOutput, ListPipelinesOutput, PipelineDeclaration,
    PipelineExecutionSummary, SourceRevision,
};
use codeyard_api::ecr::{DescribeImagesOutput, DescribeRepositoriesOutput};
use codeyard_api::events::{ListEventBusesOutput, ListRulesOutput, ListTargetsByRuleOutput, Rule, Target, TestEventPatternOutput};
use codeyard_core::AwsError;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

/// How often a live page's state is re-read.
const LIVE_EVERY: Duration = Duration::from_millis(400);

macro_rules! session {
    ($c:expr, $headers:expr) => {
        match $c.session(&$headers).await {
            Ok(s) => s,
            Err(r) => return r,
        }
    };
}

/// The session of a live stream or a download (the flash stays for the next page).
macro_rules! quiet_session {
    ($c:expr, $headers:expr) => {
        match $c.quiet_session(&$headers).await {
            Ok(s) => s,
            Err(r) => return r,
        }
    };
}

macro_rules! ok {
    ($c:expr, $s:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $c.error_page(&$s, &e),
        }
    };
}

#[derive(Deserialize)]
struct Token {
    csrf: Option<String>,
}

/// A state-changing form: its fields, and the session it may act in (see
/// [`Console::post_session`]: cross-site, foreign origin, no session or a wrong token are refused).
async fn posted<T: for<'de> Deserialize<'de>>(c: &Console, headers: &HeaderMap, body: &Bytes, require_login: bool) -> Result<(T, Session), Response> {
    let malformed = |e: serde_urlencoded::de::Error| refused(&format!("malformed form: {e}"));
    let token: Token = serde_urlencoded::from_bytes(body).map_err(malformed)?;
    let s = c.post_session(headers, token.csrf.as_deref(), require_login).await?;
    let fields = serde_urlencoded::from_bytes(body).map_err(malformed)?;
    Ok((fields, s))
}

macro_rules! posted {
    ($c:expr, $headers:expr, $body:expr, $login:expr) => {
        match posted(&$c, &$headers, &$body, $login).await {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

fn back_to(path: String) -> Response {
    Redirect::to(&path).into_response()
}

fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = cookie.parse() {
        r.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    r
}

fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---------------------------------------------------------------- session pages

#[derive(Deserialize)]
pub struct LoginForm {
    access_key: String,
    secret: String,
    #[serde(default)]
    session_token: String,
}

pub async fn login_form(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = match c.session_inner(&headers, false, crate::session::Flash::Take).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    c.page(&s, "login.html", "Sign in", json!({"enforce": c.enforce()}))
}

pub async fn login(State(c): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (f, s): (LoginForm, Session) = posted!(c, headers, body, false);
    let auth = &c.app.platform.auth;
    let key = f.access_key.trim();
    let ok = match auth.lookup(key).await {
        Some((secret, identity)) => {
            let token_ok = match auth.session_token_of(key).await {
                Some(expected) => crate::session::constant_time_eq(expected.as_bytes(), f.session_token.trim().as_bytes()),
                None => true,
            };
            (crate::session::constant_time_eq(secret.as_bytes(), f.secret.as_bytes()) && token_ok).then_some(identity)
        }
        None => None,
    };
    match ok {
        Some(identity) => {
            let caller = Caller { account: identity.account, access_key: identity.access_key, arn: identity.arn };
            match c.sessions.sign_in(&s.id, caller).await {
                Some(id) => with_cookie(back_to(format!("{PREFIX}/")), &crate::session::set_cookie(&id)),
                None => c.error_page(&s, &AwsError::new(500, "InternalFailure", "the console could not store the session")),
            }
        }
        None => {
            c.sessions.set_flash(&s.id, "The security token included in the request is invalid: unknown access key or wrong secret.").await;
            back_to(format!("{PREFIX}/login"))
        }
    }
}

#[derive(Deserialize)]
pub struct RegionForm {
    region: Option<String>,
}

pub async fn logout(State(c): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (_, s): (RegionForm, Session) = posted!(c, headers, body, false);
    c.sessions.remove(&s.id).await;
    with_cookie(back_to(format!("{PREFIX}/login")), &crate::session::clear_cookie())
}

pub async fn set_region(State(c): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (f, s): (RegionForm, Session) = posted!(c, headers, body, true);
    let region = f.region.unwrap_or_default();
    let valid = region.split('-').count() >= 3 && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        c.sessions.set_region(&s.id, &region).await;
    } else {
        c.sessions.set_flash(&s.id, format!("'{region}' is not a region name")).await;
    }
    let referer = headers.get(http::header::REFERER).and_then(|v| v.to_str().ok()).and_then(|r| r.find(PREFIX).map(|i| r[i..].to_string()));
    back_to(referer.unwrap_or_else(|| format!("{PREFIX}/")))
}

// ---------------------------------------------------------------- pipelines

#[derive(Serialize)]
struct PipelineRow {
    name: String,
    updated: Option<Timestamp>,
    latest: Option<PipelineExecutionSummary>,
}

pub async fn pipelines(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let list: ListPipelinesOutput = ok!(c, s, c.call(&s, "codepipeline", "ListPipelines", json!({})).await);
    let summaries = list.pipelines.unwrap_or_default();
    let latest = futures::future::join_all(summaries.iter().map(|p| {
        let name = p.name.clone().unwrap_or_default();
        let (c, s) = (&c, &s);
        async move {
            let ex: Result<ListPipelineExecutionsOutput, _> = c.call(s, "codepipeline", "ListPipelineExecutions", json!({"pipelineName": name, "maxResults": 1})).await;
            ex.ok().and_then(|e| e.pipeline_execution_summaries.unwrap_or_default().into_iter().next())
        }
    }))
    .await;
    let rows: Vec<PipelineRow> = summaries.into_iter().zip(latest).map(|(p, latest)| PipelineRow { name: p.name.unwrap_or_default(), updated: p.updated, latest }).collect();
    c.page(&s, "pipelines.html", "Pipelines", json!({"pipelines": rows}))
}

#[derive(Serialize)]
struct PipelineView {
    name: String,
    arn: String,
    stages: Vec<StageView>,
    executions: Vec<PipelineExecutionSummary>,
    latest: Option<PipelineExecutionSummary>,
    variables: Vec<(String, String)>,
}

#[derive(Serialize)]
struct StageView {
    name: String,
    status: String,
    execution_id: Option<String>,
    inbound_enabled: bool,
    disabled_reason: Option<String>,
    first: bool,
    retryable: bool,
    actions: Vec<ActionView>,
}

#[derive(Serialize)]
struct ActionView {
    name: String,
    category: String,
    provider: String,
    status: String,
    summary: Option<String>,
    started: Option<Timestamp>,
    updated: Option<Timestamp>,
    external_id: Option<String>,
    build_id: Option<String>,
    build_label: String,
    token: Option<String>,
    error: Option<String>,
    revision: Option<SourceRevision>,
}

/// The live part of a pipeline page: stages with their actions' state, and the executions.
async fn pipeline_view(c: &Console, s: &Session, name: &str) -> Result<PipelineView, AwsError> {
    let got: GetPipelineOutput = c.call(s, "codepipeline", "GetPipeline", json!({"name": name})).await?;
    let decl = got.pipeline.unwrap_or_default();
    let state: GetPipelineStateOutput = c.call(s, "codepipeline", "GetPipelineState", json!({"name": name})).await?;
    let ex: ListPipelineExecutionsOutput = c.call(s, "codepipeline", "ListPipelineExecutions", json!({"pipelineName": name, "maxResults": 20})).await?;
    let executions = ex.pipeline_execution_summaries.unwrap_or_default();
    let latest = executions.first().cloned();
    let mut details = Vec::new();
    let mut variables = Vec::new();
    if let Some(id) = latest.as_ref().and_then(|l| l.pipeline_execution_id.clone()) {
        let acts: ListActionExecutionsOutput =
            c.call(s, "codepipeline", "ListActionExecutions", json!({"pipelineName": name, "filter": {"pipelineExecutionId": id}})).await?;
        details = acts.action_execution_details.unwrap_or_default();
        for d in &details {
            for (k, v) in d.output.as_ref().and_then(|o| o.output_variables.clone()).unwrap_or_default() {
                variables.push((format!("{}.{k}", d.action_name.clone().unwrap_or_default()), v));
            }
        }
    }
    let revisions = latest.as_ref().and_then(|l| l.source_revisions.clone()).unwrap_or_default();
    let states = state.stage_states.unwrap_or_default();
    let stages = decl
        .stages
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let ss = states.iter().find(|x| x.stage_name.as_deref() == Some(st.name.as_str()));
            let status = ss.and_then(|x| x.latest_execution.as_ref()).map(|e| e.status.as_str().to_string()).unwrap_or_default();
            let transition = ss.and_then(|x| x.inbound_transition_state.as_ref());
            let actions = st
                .actions
                .iter()
                .map(|a| {
                    let ast = ss.and_then(|x| x.action_states.as_ref()).and_then(|v| v.iter().find(|x| x.action_name.as_deref() == Some(a.name.as_str())));
                    let le = ast.and_then(|x| x.latest_execution.as_ref());
                    let detail = details.iter().find(|d| d.stage_name.as_deref() == Some(st.name.as_str()) && d.action_name.as_deref() == Some(a.name.as_str()));
                    let status = le.and_then(|e| e.status.as_ref()).map(|s| s.as_str().to_string()).unwrap_or_default();
                    let provider = a.action_type_id.provider.clone();
                    let external_id = le.and_then(|e| e.external_execution_id.clone());
                    ActionView {
                        name: a.name.clone(),
                        category: a.action_type_id.category.as_str().to_string(),
                        build_id: external_id.clone().filter(|_| provider == "CodeBuild"),
                        build_label: external_id.as_deref().and_then(|i| i.split(':').nth(1)).unwrap_or("").chars().take(8).collect(),
                        token: le.and_then(|e| e.token.clone()).filter(|_| status == "InProgress" && a.action_type_id.category.as_str() == "Approval"),
                        provider,
                        summary: le.and_then(|e| e.summary.clone()),
                        started: detail.and_then(|d| d.start_time),
                        updated: detail.and_then(|d| d.last_update_time).or_else(|| le.and_then(|e| e.last_status_change)),
                        external_id,
                        error: le.and_then(|e| e.error_details.as_ref()).and_then(|d| d.message.clone()),
                        revision: revisions.iter().find(|r| r.action_name == a.name).cloned(),
                        status,
                    }
                })
                .collect();
            StageView {
                name: st.name.clone(),
                retryable: matches!(status.as_str(), "Failed" | "Stopped"),
                execution_id: ss.and_then(|x| x.latest_execution.as_ref()).map(|e| e.pipeline_execution_id.clone()),
                inbound_enabled: transition.and_then(|t| t.enabled).unwrap_or(true),
                disabled_reason: transition.and_then(|t| t.disabled_reason.clone()),
                first: i == 0,
                status,
                actions,
            }
        })
        .collect();
    Ok(PipelineView { name: name.to_string(), arn: got.metadata.and_then(|m| m.pipeline_arn).unwrap_or_default(), stages, executions, latest, variables })
}

#[derive(Serialize)]
struct Trigger {
    bus: String,
    rule: Rule,
    target: Target,
}

/// The EventBridge rules (on every bus of the region) with a target naming the pipeline.
async fn triggers(c: &Console, s: &Session, arn: &str) -> Result<Vec<Trigger>, AwsError> {
    let buses: ListEventBusesOutput = c.call(s, "events", "ListEventBuses", json!({})).await?;
    let mut out = Vec::new();
    for bus in buses.event_buses.unwrap_or_default() {
        let bus = bus.name.unwrap_or_default();
        let rules: ListRulesOutput = c.call(s, "events", "ListRules", json!({"EventBusName": bus})).await?;
        for rule in rules.rules.unwrap_or_default() {
            let targets: ListTargetsByRuleOutput =
                c.call(s, "events", "ListTargetsByRule", json!({"Rule": rule.name.clone().unwrap_or_default(), "EventBusName": bus})).await?;
            for target in targets.targets.unwrap_or_default().into_iter().filter(|t| t.arn == arn) {
                out.push(Trigger { bus: bus.clone(), rule: rule.clone(), target });
            }
        }
    }
    Ok(out)
}

/// `codeyard doctor`'s warning when no enabled rule targets the pipeline and its CodeCommit
/// source does not poll (the console's hidden piece: a push will never start it).
fn nothing_starts(decl: &PipelineDeclaration, triggers: &[Trigger]) -> Option<String> {
    if triggers.iter().any(|t| t.rule.state.as_ref().is_none_or(|s| *s != codeyard_api::events::RuleState::Disabled)) {
        return None;
    }
    let v1 = decl.pipeline_type.as_ref().is_none_or(|t| t.as_str() == "V1");
    let silent: Vec<String> = decl
        .stages
        .first()
        .map(|st| {
            st.actions
                .iter()
                .filter(|a| a.action_type_id.provider == "CodeCommit")
                .filter(|a| match a.configuration.as_ref().and_then(|c| c.get("PollForSourceChanges")) {
                    Some(v) => !v.eq_ignore_ascii_case("true"),
                    None => !v1,
                })
                .map(|a| a.name.clone())
                .collect()
        })
        .unwrap_or_default();
    (!silent.is_empty()).then(|| codeyard_codepipeline::doctor::finding(&decl.name, &silent))
}

pub async fn pipeline(State(c): State<Shared>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let view = ok!(c, s, pipeline_view(&c, &s, &name).await);
    let got: GetPipelineOutput = ok!(c, s, c.call(&s, "codepipeline", "GetPipeline", json!({"name": name})).await);
    let decl = got.pipeline.unwrap_or_default();
    let (triggers, trigger_error) = match triggers(&c, &s, &view.arn).await {
        Ok(t) => (t, None),
        Err(e) => (Vec::new(), Some(format!("{}: {}", e.code, e.message))),
    };
    let warning = if trigger_error.is_none() { nothing_starts(&decl, &triggers) } else { None };
    let seen = digest(&c.fragment(&s, "pipeline_live.html", &json!({"p": view})));
    let data = json!({"p": view, "declaration": decl, "triggers": triggers, "trigger_error": trigger_error, "warning": warning,
        "live": format!("{PREFIX}/pipelines/{}/live?seen={seen:x}", seg(&name))});
    c.page(&s, "pipeline.html", &name, data)
}

/// `?seen=`: the digest of the fragment the page was rendered with, not sent again.
#[derive(Deserialize)]
pub struct LiveQuery {
    seen: Option<String>,
}

impl LiveQuery {
    fn seen(&self) -> u64 {
        self.seen.as_deref().and_then(|h| u64::from_str_radix(h, 16).ok()).unwrap_or(0)
    }
}

fn digest(html: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    html.hash(&mut h);
    h.finish()
}

pub async fn pipeline_live(State(c): State<Shared>, Path(name): Path<String>, Query(q): Query<LiveQuery>, headers: HeaderMap) -> Response {
    let s = quiet_session!(c, headers);
    let seen = q.seen();
    let render = move |c: Shared, s: Session| {
        let name = name.clone();
        async move {
            match pipeline_view(&c, &s, &name).await {
                Ok(v) => c.fragment(&s, "pipeline_live.html", &json!({"p": v})),
                Err(e) => format!("<p class=\"error\">{}: {}</p>", e.code, crate::views::escape(&e.message)),
            }
        }
    };
    live_fragments(c, s, seen, render)
}

/// A stream of `state` events: the fragment re-rendered every [`LIVE_EVERY`], sent when it
/// changed. Ends when the server shuts down (or the browser goes away).
fn live_fragments<F, Fut>(c: Shared, s: Session, seen: u64, render: F) -> Response
where
    F: Fn(Shared, Session) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + Send,
{
    let stream = futures::stream::unfold((c, s, render, seen, true), |(c, s, render, last, first)| async move {
        let mut first = first;
        loop {
            if !first && !pause(&c).await {
                return None;
            }
            first = false;
            let html = render(c.clone(), s.clone()).await;
            let d = digest(&html);
            if d != last {
                let event = Event::default().event("state").data(sse_safe(&html));
                return Some((Ok::<Event, Infallible>(event), (c, s, render, d, false)));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// Waits one live interval; false when the server is shutting down.
async fn pause(c: &Console) -> bool {
    tokio::select! {
        _ = c.app.platform.shutdown.cancelled() => false,
        _ = tokio::time::sleep(LIVE_EVERY) => true,
    }
}

fn sse_safe(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

#[derive(Deserialize)]
pub struct ActionForm {
    execution_id: Option<String>,
    stage: Option<String>,
    action: Option<String>,
    token: Option<String>,
    reason: Option<String>,
    summary: Option<String>,
}

pub async fn pipeline_action(State(c): State<Shared>, Path((name, action)): Path<(String, String)>, headers: HeaderMap, body: Bytes) -> Response {
    let (f, s): (ActionForm, Session) = posted!(c, headers, body, true);
    let stage = f.stage.clone().unwrap_or_default();
    let reason = f.reason.clone().filter(|r| !r.is_empty());
    let (op, input) = match action.as_str() {
        "release" => ("StartPipelineExecution", json!({"name": name})),
        "stop" | "abandon" => (
            "StopPipelineExecution",
            json!({"pipelineName": name, "pipelineExecutionId": f.execution_id, "abandon": action == "abandon", "reason": reason.clone().unwrap_or_else(|| "Stopped from the codeyard console".into())}),
        ),
        "retry" => ("RetryStageExecution", json!({"pipelineName": name, "stageName": stage, "pipelineExecutionId": f.execution_id, "retryMode": "FAILED_ACTIONS"})),
        "approve" | "reject" => (
            "PutApprovalResult",
            json!({"pipelineName": name, "stageName": stage, "actionName": f.action, "token": f.token,
                   "result": {"status": if action == "approve" { "Approved" } else { "Rejected" },
                              "summary": f.summary.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| format!("{} in the codeyard console by {}", if action == "approve" { "Approved" } else { "Rejected" }, s.caller.arn))}}),
        ),
        "disable" => (
            "DisableStageTransition",
            json!({"pipelineName": name, "stageName": stage, "transitionType": "Inbound", "reason": reason.unwrap_or_else(|| "Disabled in the codeyard console".into())}),
        ),
        "enable" => ("EnableStageTransition", json!({"pipelineName": name, "stageName": stage, "transitionType": "Inbound"})),
        other => return refused(&format!("no pipeline action '{other}'")),
    };
    let input = strip_nulls(input);
    let result: Result<serde_json::Value, AwsError> = c.call(&s, "codepipeline", op, input).await;
    match result {
        Ok(out) => {
            let id = out.get("pipelineExecutionId").and_then(|v| v.as_str()).map(|i| format!(" (execution {i})")).unwrap_or_default();
            c.sessions.set_flash(&s.id, format!("{op} succeeded{id}")).await;
        }
        Err(e) => c.sessions.set_flash(&s.id, format!("{op} failed: {}: {}", e.code, e.message)).await,
    }
    back_to(format!("{PREFIX}/pipelines/{}", seg(&name)))
}

fn strip_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls(v))).collect()),
        other => other,
    }
}

// ---------------------------------------------------------------- builds

#[derive(Deserialize, Default)]
struct Ids {
    ids: Option<Vec<String>>,
}

async fn builds_of(c: &Console, s: &Session, project: &str, max: usize) -> Result<Vec<Build>, AwsError> {
    let ids: Ids = c.call(s, "codebuild", "ListBuildsForProject", json!({"projectName": project, "sortOrder": "DESCENDING"})).await?;
    let ids: Vec<String> = ids.ids.unwrap_or_default().into_iter().take(max).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let got: BatchGetBuildsOutput = c.call(s, "codebuild", "BatchGetBuilds", json!({"ids": ids})).await?;
    Ok(got.builds.unwrap_or_default())
}

pub async fn projects(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let list: ListProjectsOutput = ok!(c, s, c.call(&s, "codebuild", "ListProjects", json!({})).await);
    let names = list.projects.unwrap_or_default();
    let latest = futures::future::join_all(names.iter().map(|n| builds_of(&c, &s, n, 1))).await;
    let rows: Vec<serde_json::Value> =
        names.iter().zip(latest).map(|(n, b)| json!({"name": n, "latest": b.ok().and_then(|b| b.into_iter().next())})).collect();
    c.page(&s, "projects.html", "Build projects", json!({"projects": rows}))
}

pub async fn project(State(c): State<Shared>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let builds = ok!(c, s, builds_of(&c, &s, &name, 50).await);
    c.page(&s, "project.html", &name, json!({"name": name, "builds": builds}))
}

async fn get_build(c: &Console, s: &Session, id: &str) -> Result<Build, AwsError> {
    let got: BatchGetBuildsOutput = c.call(s, "codebuild", "BatchGetBuilds", json!({"ids": [id]})).await?;
    got.builds.unwrap_or_default().into_iter().next().ok_or_else(|| AwsError::client("ResourceNotFoundException", format!("Build {id} not found")))
}

#[derive(Serialize)]
struct ReportView {
    report: codeyard_api::codebuild::Report,
    cases: Vec<codeyard_api::codebuild::TestCase>,
}

pub async fn build(State(c): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let build = ok!(c, s, get_build(&c, &s, &id).await);
    let mut reports = Vec::new();
    let arns = build.report_arns.clone().unwrap_or_default();
    if !arns.is_empty()
        && let Ok(got) = c.call::<BatchGetReportsOutput>(&s, "codebuild", "BatchGetReports", json!({"reportArns": arns})).await
    {
        for report in got.reports.unwrap_or_default() {
            let arn = report.arn.clone().unwrap_or_default();
            let cases: DescribeTestCasesOutput = c.call(&s, "codebuild", "DescribeTestCases", json!({"reportArn": arn})).await.unwrap_or_default();
            reports.push(ReportView { report, cases: cases.test_cases.unwrap_or_default() });
        }
    }
    let artifacts = artifacts(&build);
    let seen = digest(&c.fragment(&s, "build_live.html", &json!({"b": build, "artifacts": artifacts})));
    let live = format!("{PREFIX}/builds/{}/live?seen={seen:x}", seg(&id));
    c.page(&s, "build.html", &id, json!({"b": build, "reports": reports, "live": live, "artifacts": artifacts}))
}

/// The artifacts of a build with where the console downloads each (`arn:aws:s3:::bucket/key`).
fn artifacts(build: &Build) -> Vec<serde_json::Value> {
    let all = build.artifacts.iter().chain(build.secondary_artifacts.iter().flatten());
    all.filter_map(|a| {
        let location = a.location.clone().filter(|l| !l.is_empty())?;
        let download = location.strip_prefix("arn:aws:s3:::").filter(|p| p.contains('/')).map(|p| format!("{PREFIX}/download/{p}"));
        Some(json!({"location": location, "sha256": a.sha256sum, "download": download, "id": a.artifact_identifier}))
    })
    .collect()
}

/// Log lines of a build from `token` on (None: from the start); the next token.
async fn log_lines(c: &Console, s: &Session, build: &Build, token: Option<String>) -> (Vec<String>, Option<String>) {
    let Some(logs) = build.logs.as_ref() else { return (Vec::new(), token) };
    let (Some(group), Some(stream)) = (logs.group_name.clone(), logs.stream_name.clone()) else { return (Vec::new(), token) };
    let mut input = json!({"logGroupName": group, "logStreamName": stream, "startFromHead": true});
    if let Some(t) = &token {
        input["nextToken"] = json!(t);
    }
    match c.call::<codeyard_api::logs::GetLogEventsOutput>(s, "logs", "GetLogEvents", input).await {
        Ok(out) => {
            let lines = out.events.unwrap_or_default().into_iter().filter_map(|e| e.message).map(|m| m.trim_end_matches(['\n', '\r']).to_string()).collect();
            (lines, out.next_forward_token.or(token))
        }
        Err(_) => (Vec::new(), token),
    }
}

struct BuildLive {
    c: Shared,
    s: Session,
    id: String,
    last: u64,
    token: Option<String>,
    queue: VecDeque<Event>,
    first: bool,
    finished: bool,
}

pub async fn build_live(State(c): State<Shared>, Path(id): Path<String>, Query(q): Query<LiveQuery>, headers: HeaderMap) -> Response {
    let s = quiet_session!(c, headers);
    let start = BuildLive { c, s, id, last: q.seen(), token: None, queue: VecDeque::new(), first: true, finished: false };
    let stream = futures::stream::unfold(start, |mut st| async move {
        loop {
            if let Some(e) = st.queue.pop_front() {
                return Some((Ok::<Event, Infallible>(e), st));
            }
            if st.finished || (!st.first && !pause(&st.c).await) {
                return None;
            }
            st.first = false;
            let build = match get_build(&st.c, &st.s, &st.id).await {
                Ok(b) => b,
                Err(e) => {
                    st.queue.push_back(Event::default().event("state").data(sse_safe(&format!("<p class=\"error\">{}: {}</p>", e.code, crate::views::escape(&e.message)))));
                    st.finished = true;
                    continue;
                }
            };
            let html = st.c.fragment(&st.s, "build_live.html", &json!({"b": build, "artifacts": artifacts(&build)}));
            let d = digest(&html);
            if d != st.last {
                st.queue.push_back(Event::default().event("state").data(sse_safe(&html)));
                st.last = d;
            }
            let complete = build.build_complete.unwrap_or(false);
            let (lines, token) = log_lines(&st.c, &st.s, &build, st.token.take()).await;
            st.token = token;
            if !lines.is_empty() {
                st.queue.push_back(Event::default().event("log").data(sse_safe(&lines.join("\n"))));
            } else if complete {
                st.queue.push_back(Event::default().event("done").data("done"));
                st.finished = true;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

// ---------------------------------------------------------------- repositories

pub async fn repos(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let list: ListRepositoriesOutput = ok!(c, s, c.call(&s, "codecommit", "ListRepositories", json!({})).await);
    c.page(&s, "repos.html", "Repositories", json!({"repos": list.repositories.unwrap_or_default()}))
}

#[derive(Deserialize)]
pub struct RepoQuery {
    branch: Option<String>,
    path: Option<String>,
    file: Option<String>,
}

pub async fn repo(State(c): State<Shared>, Path(name): Path<String>, Query(q): Query<RepoQuery>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let meta: GetRepositoryOutput = ok!(c, s, c.call(&s, "codecommit", "GetRepository", json!({"repositoryName": name})).await);
    let meta = meta.repository_metadata.unwrap_or_default();
    let branches: ListBranchesOutput = ok!(c, s, c.call(&s, "codecommit", "ListBranches", json!({"repositoryName": name})).await);
    let branches = branches.branches.unwrap_or_default();
    let branch = q.branch.clone().or(meta.default_branch.clone()).or_else(|| branches.first().cloned());
    let mut commits: Vec<Commit> = Vec::new();
    let mut folder: Option<GetFolderOutput> = None;
    let mut file: Option<serde_json::Value> = None;
    let mut changes = Vec::new();
    if let Some(branch) = &branch {
        let b: GetBranchOutput = ok!(c, s, c.call(&s, "codecommit", "GetBranch", json!({"repositoryName": name, "branchName": branch})).await);
        let head = b.branch.and_then(|b| b.commit_id);
        let mut next = head.clone();
        while let Some(id) = next.take() {
            if commits.len() >= 20 {
                break;
            }
            let got: GetCommitOutput = ok!(c, s, c.call(&s, "codecommit", "GetCommit", json!({"repositoryName": name, "commitId": id})).await);
            let mut commit = got.commit;
            if commit.commit_id.is_none() {
                commit.commit_id = Some(id);
            }
            next = commit.parents.as_ref().and_then(|p| p.first().cloned());
            commits.push(commit);
        }
        if let Some(first) = commits.first() {
            // What the latest commit changed (against its first parent).
            let mut input = json!({"repositoryName": name, "afterCommitSpecifier": first.commit_id});
            if let Some(parent) = first.parents.as_ref().and_then(|p| p.first()) {
                input["beforeCommitSpecifier"] = json!(parent);
            }
            let diff: Result<codeyard_api::codecommit::GetDifferencesOutput, _> = c.call(&s, "codecommit", "GetDifferences", input).await;
            changes = diff.ok().and_then(|d| d.differences).unwrap_or_default();
        }
        if let Some(head) = &head {
            let path = q.path.clone().unwrap_or_else(|| "/".into());
            folder = Some(ok!(c, s, c.call(&s, "codecommit", "GetFolder", json!({"repositoryName": name, "commitSpecifier": head, "folderPath": path})).await));
            if let Some(fp) = &q.file {
                let got: GetFileOutput = ok!(c, s, c.call(&s, "codecommit", "GetFile", json!({"repositoryName": name, "commitSpecifier": head, "filePath": fp})).await);
                let text = String::from_utf8(got.file_content.0.clone()).ok();
                file = Some(json!({"path": got.file_path, "size": got.file_size, "blob": got.blob_id, "text": text}));
            }
        }
    }
    let path = q.path.clone().unwrap_or_else(|| "/".into());
    let parent = match path.trim_end_matches('/').rsplit_once('/') {
        Some((p, _)) if !p.is_empty() => p.to_string(),
        _ => "/".to_string(),
    };
    let data = json!({"changes": changes, "parent": parent, "name": name, "meta": meta, "branches": branches, "branch": branch, "commits": commits, "folder": folder, "file": file,
        "path": q.path.unwrap_or_else(|| "/".into())});
    c.page(&s, "repo.html", &name, data)
}

// ---------------------------------------------------------------- images

pub async fn images(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let list: DescribeRepositoriesOutput = ok!(c, s, c.call(&s, "ecr", "DescribeRepositories", json!({})).await);
    c.page(&s, "images.html", "Images", json!({"repos": list.repositories.unwrap_or_default()}))
}

pub async fn image(State(c): State<Shared>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let repo: DescribeRepositoriesOutput = ok!(c, s, c.call(&s, "ecr", "DescribeRepositories", json!({"repositoryNames": [name]})).await);
    let repo = repo.repositories.unwrap_or_default().into_iter().next();
    let images: DescribeImagesOutput = ok!(c, s, c.call(&s, "ecr", "DescribeImages", json!({"repositoryName": name})).await);
    let mut images = images.image_details.unwrap_or_default();
    images.sort_by_key(|i| std::cmp::Reverse(i.image_pushed_at.as_ref().map(|t| t.millis())));
    let registry = repo.as_ref().and_then(|r| r.repository_uri.as_deref()).and_then(|u| u.split('/').next()).unwrap_or("").to_string();
    c.page(&s, "image.html", &name, json!({"name": name, "repo": repo, "images": images, "registry": registry}))
}

// ---------------------------------------------------------------- EventBridge

#[derive(Serialize)]
struct RuleView {
    rule: Rule,
    targets: Vec<Target>,
}

const SAMPLE_EVENT: &str = r#"{
  "id": "7bf73129-1428-4cd3-a780-95db273d1602",
  "detail-type": "CodeCommit Repository State Change",
  "source": "aws.codecommit",
  "account": "000000000000",
  "time": "2026-01-01T00:00:00Z",
  "region": "us-east-1",
  "resources": ["arn:aws:codecommit:us-east-1:000000000000:app"],
  "detail": {"event": "referenceUpdated", "referenceType": "branch", "referenceName": "main"}
}"#;

const SAMPLE_PATTERN: &str = r#"{"source": ["aws.codecommit"], "detail-type": ["CodeCommit Repository State Change"]}"#;

/// Recent EventBridge deliveries in the session's account and region (newest first): each
/// event with the rule it matched, the target and what became of it.
async fn recent_events(c: &Console, s: &Session) -> Vec<codeyard_events::model::DeliveryRecord> {
    let all = codeyard_events::delivery::recent_deliveries(&c.app.platform, None, None).await.unwrap_or_default();
    all.into_iter().filter(|d| d.account == s.caller.account && d.region == s.region).take(50).collect()
}

async fn events_page(c: &Console, s: &Session, tester: serde_json::Value) -> Response {
    let buses: ListEventBusesOutput = ok!(c, s, c.call(s, "events", "ListEventBuses", json!({})).await);
    let mut out = Vec::new();
    for bus in buses.event_buses.unwrap_or_default() {
        let name = bus.name.clone().unwrap_or_default();
        let rules: ListRulesOutput = ok!(c, s, c.call(s, "events", "ListRules", json!({"EventBusName": name})).await);
        let mut views = Vec::new();
        for rule in rules.rules.unwrap_or_default() {
            let targets: ListTargetsByRuleOutput =
                c.call(s, "events", "ListTargetsByRule", json!({"Rule": rule.name.clone().unwrap_or_default(), "EventBusName": name})).await.unwrap_or_default();
            views.push(RuleView { rule, targets: targets.targets.unwrap_or_default() });
        }
        out.push(json!({"bus": bus, "rules": views}));
    }
    let recent = recent_events(c, s).await;
    c.page(s, "events.html", "EventBridge", json!({"buses": out, "tester": tester, "recent": recent}))
}

#[derive(Deserialize)]
pub struct EventsQuery {
    /// Prefill the tester with this recent delivery's event.
    delivery: Option<i64>,
}

pub async fn events(State(c): State<Shared>, Query(q): Query<EventsQuery>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let mut event = SAMPLE_EVENT.to_string();
    let mut pattern = SAMPLE_PATTERN.to_string();
    if let Some(seq) = q.delivery
        && let Some(d) = recent_events(&c, &s).await.into_iter().find(|d| d.seq == seq)
    {
        event = serde_json::to_string_pretty(&d.input).unwrap_or_default();
        let rule: Result<codeyard_api::events::DescribeRuleOutput, _> = c.call(&s, "events", "DescribeRule", json!({"Name": d.rule, "EventBusName": d.bus})).await;
        if let Some(p) = rule.ok().and_then(|r| r.event_pattern) {
            pattern = p;
        }
    }
    events_page(&c, &s, json!({"pattern": pattern, "event": event})).await
}

#[derive(Deserialize)]
pub struct PatternForm {
    pattern: String,
    event: String,
}

pub async fn test_pattern(State(c): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (f, s): (PatternForm, Session) = posted!(c, headers, body, true);
    let answer: Result<TestEventPatternOutput, AwsError> = c.call(&s, "events", "TestEventPattern", json!({"EventPattern": f.pattern, "Event": f.event})).await;
    let (result, error) = match answer {
        Ok(o) => (o.result, None),
        Err(e) => (None, Some(format!("{}: {}", e.code, e.message))),
    };
    events_page(&c, &s, json!({"pattern": f.pattern, "event": f.event, "result": result, "error": error})).await
}

// ---------------------------------------------------------------- IAM

pub async fn roles(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let list: serde_json::Value = ok!(c, s, c.call(&s, "iam", "ListRoles", json!({})).await);
    let roles: Vec<codeyard_api::iam::Role> = serde_json::from_value(list["Roles"].clone()).unwrap_or_default();
    let mut out = Vec::new();
    for role in roles {
        let name = role.role_name.clone();
        let inline: serde_json::Value = c.call(&s, "iam", "ListRolePolicies", json!({"RoleName": name})).await.unwrap_or_default();
        let attached: serde_json::Value = c.call(&s, "iam", "ListAttachedRolePolicies", json!({"RoleName": name})).await.unwrap_or_default();
        let mut policies = HashMap::new();
        for p in inline["PolicyNames"].as_array().into_iter().flatten().filter_map(|p| p.as_str()) {
            let doc: serde_json::Value = c.call(&s, "iam", "GetRolePolicy", json!({"RoleName": name, "PolicyName": p})).await.unwrap_or_default();
            let text = doc["PolicyDocument"].as_str().map(|d| url::form_urlencoded::parse(format!("x={d}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default());
            policies.insert(p.to_string(), text.unwrap_or_default());
        }
        out.push(json!({"role": role, "inline": policies, "attached": attached["AttachedPolicies"]}));
    }
    c.page(&s, "roles.html", "IAM roles", json!({"roles": out}))
}

impl Console {
    /// A fragment (no layout) rendered with the common context.
    pub(crate) fn fragment<T: Serialize>(&self, s: &Session, template: &str, data: &T) -> String {
        let common = self.common(s, template, None);
        self.templates.render(template, &common, data).unwrap_or_else(|e| format!("<pre>{}</pre>", crate::views::escape(&e.to_string())))
    }
}

// ---------------------------------------------------------------- activity

#[derive(Serialize)]
struct Activity {
    /// Epoch seconds.
    time: f64,
    kind: &'static str,
    status: String,
    text: String,
    link: Option<String>,
}

fn secs(t: &Option<Timestamp>) -> f64 {
    t.as_ref().map(|t| t.millis() as f64 / 1000.0).unwrap_or(0.0)
}

/// What just happened across the services, newest first: events matching rules, pipeline
/// executions, builds, image pushes.
async fn activity(c: &Console, s: &Session) -> Vec<Activity> {
    let mut out = Vec::new();
    for d in recent_events(c, s).await.into_iter().take(30) {
        let time = chrono::DateTime::parse_from_rfc3339(&d.time).map(|t| t.timestamp_millis() as f64 / 1000.0).unwrap_or(0.0);
        let what = d.input.get("detail-type").and_then(|v| v.as_str()).unwrap_or("event");
        out.push(Activity { time, kind: "event", status: d.status.to_string(), text: format!("{what} matched rule {} -> {}", d.rule, d.target_arn), link: Some(format!("{PREFIX}/events")) });
    }
    if let Ok(list) = c.call::<ListPipelinesOutput>(s, "codepipeline", "ListPipelines", json!({})).await {
        for p in list.pipelines.unwrap_or_default() {
            let name = p.name.unwrap_or_default();
            let ex: ListPipelineExecutionsOutput = c.call(s, "codepipeline", "ListPipelineExecutions", json!({"pipelineName": name, "maxResults": 5})).await.unwrap_or_default();
            for e in ex.pipeline_execution_summaries.unwrap_or_default() {
                let trigger = e.trigger.as_ref().and_then(|t| t.trigger_type.as_ref()).map(|t| t.as_str().to_string()).unwrap_or_default();
                out.push(Activity {
                    time: secs(&e.last_update_time).max(secs(&e.start_time)),
                    kind: "execution",
                    status: e.status.as_ref().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    text: format!("pipeline {name} execution {} ({trigger})", e.pipeline_execution_id.as_deref().unwrap_or("").chars().take(8).collect::<String>()),
                    link: Some(format!("{PREFIX}/pipelines/{}", seg(&name))),
                });
            }
        }
    }
    let ids: Ids = c.call(s, "codebuild", "ListBuilds", json!({"sortOrder": "DESCENDING"})).await.unwrap_or_default();
    let ids: Vec<String> = ids.ids.unwrap_or_default().into_iter().take(20).collect();
    if !ids.is_empty()
        && let Ok(got) = c.call::<BatchGetBuildsOutput>(s, "codebuild", "BatchGetBuilds", json!({"ids": ids})).await
    {
        for b in got.builds.unwrap_or_default() {
            let id = b.id.clone().unwrap_or_default();
            out.push(Activity {
                time: secs(&b.end_time).max(secs(&b.start_time)),
                kind: "build",
                status: b.build_status.as_ref().map(|s| s.as_str().to_string()).unwrap_or_default(),
                text: format!("build {} #{} ({})", b.project_name.unwrap_or_default(), b.build_number.unwrap_or(0), b.current_phase.unwrap_or_default()),
                link: Some(format!("{PREFIX}/builds/{}", seg(&id))),
            });
        }
    }
    if let Ok(repos) = c.call::<DescribeRepositoriesOutput>(s, "ecr", "DescribeRepositories", json!({})).await {
        for r in repos.repositories.unwrap_or_default() {
            let name = r.repository_name.unwrap_or_default();
            let images: DescribeImagesOutput = c.call(s, "ecr", "DescribeImages", json!({"repositoryName": name})).await.unwrap_or_default();
            for i in images.image_details.unwrap_or_default() {
                let tags = i.image_tags.clone().unwrap_or_default().join(", ");
                out.push(Activity {
                    time: secs(&i.image_pushed_at),
                    kind: "image",
                    status: "pushed".into(),
                    text: format!("image {name}:{tags} {}", i.image_digest.as_deref().unwrap_or("").chars().take(19).collect::<String>()),
                    link: Some(format!("{PREFIX}/images/{name}")),
                });
            }
        }
    }
    out.sort_by(|a, b| b.time.total_cmp(&a.time));
    out.truncate(60);
    out
}

pub async fn activity_page(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let items = activity(&c, &s).await;
    let seen = digest(&c.fragment(&s, "activity_live.html", &json!({"items": items})));
    c.page(&s, "activity.html", "Activity", json!({"items": items, "live": format!("{PREFIX}/activity/live?seen={seen:x}")}))
}

pub async fn activity_live(State(c): State<Shared>, Query(q): Query<LiveQuery>, headers: HeaderMap) -> Response {
    let s = quiet_session!(c, headers);
    let seen = q.seen();
    live_fragments(c, s, seen, |c: Shared, s: Session| async move { c.fragment(&s, "activity_live.html", &json!({"items": activity(&c, &s).await})) })
}

mod s3;
mod terraform;
pub use s3::{bucket, bucket_settings, buckets, download};
pub use terraform::{account_terraform, pipeline_terraform};
