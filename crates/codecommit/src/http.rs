//! Git smart HTTP on `/v1/repos/<name>`: authentication as CodeCommit does it, then git's own
//! `upload-pack` / `receive-pack --stateless-rpc` with bodies streamed through pipes.
//!
//! IAM, as the key's principal on the repository ARN: clone and fetch need codecommit:GitPull;
//! a push needs codecommit:GitPush twice, as on AWS: for `info/refs` without references, then
//! for the receive-pack request with `codecommit:References` (the refs it moves, read from the
//! command list before git sees the body), which is what branch-protecting policies test
//! (`StringEqualsIfExists` + `Null: false`). A denial answers 403 with AWS's message, which git
//! shows as "The requested URL returned error: 403".

use crate::CodeCommit;
use crate::events::RefUpdate;
use crate::git;
use crate::repos::Repository;
use async_trait::async_trait;
use axum::body::Body;
use base64::Engine;
use codeyard_core::RequestContext;
use codeyard_wire::{AuthMode, HttpService, Identity, sigv4};
use futures::TryStreamExt;
use http::{Response, StatusCode, header};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::io::{ReaderStream, StreamReader};

pub struct GitHttp(pub Arc<CodeCommit>);

/// Largest receive-pack answer kept (it is progress and the per-ref status, never pack data).
const MAX_REPORT: usize = 8 * 1024 * 1024;
/// How far the signed timestamp may be from now, as for SigV4.
const MAX_SKEW_SECS: i64 = 15 * 60;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Service {
    UploadPack,
    ReceivePack,
}

impl Service {
    fn parse(s: &str) -> Option<Service> {
        match s {
            "git-upload-pack" => Some(Service::UploadPack),
            "git-receive-pack" => Some(Service::ReceivePack),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }
    fn subcommand(self) -> &'static str {
        &self.name()[4..]
    }
}

enum Route {
    InfoRefs(Service),
    Rpc(Service),
}

/// `/v1/repos/<name>/info/refs` or `/v1/repos/<name>/git-*-pack`: (signed base path, name, route).
fn route(path: &str, query: Option<&str>) -> Option<(String, String, Route)> {
    let rest = path.strip_prefix("/v1/repos/")?;
    let (name, tail) = rest.split_once('/')?;
    let base = format!("/v1/repos/{name}");
    let name = name.strip_suffix(".git").unwrap_or(name).to_string();
    let route = match tail {
        "info/refs" => {
            let svc = query?
                .split('&')
                .find_map(|kv| kv.strip_prefix("service="))?;
            Route::InfoRefs(Service::parse(svc)?)
        }
        t => Route::Rpc(Service::parse(t)?),
    };
    Some((base, name, route))
}

fn text(status: StatusCode, msg: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(format!("{msg}\n")))
        .expect("response builds")
}

fn challenge(msg: &str) -> Response<Body> {
    let mut r = text(StatusCode::UNAUTHORIZED, msg);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Basic realm=\"codeyard CodeCommit\""),
    );
    r
}

/// The Basic credentials of a request: (access key id, password).
fn basic_auth(headers: &http::HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (user, pass) = raw.split_once(':')?;
    // Temporary credentials come as "<access key id>%<session token>".
    let key = user.split('%').next().unwrap_or(user).to_string();
    Some((key, pass.to_string()))
}

/// The password the credential helper computes for `path` on `host` in `region`:
/// `<amz date>Z<signature>`, SigV4 over `GIT\n<path>\n\nhost:<host>\n\nhost\n`.
pub fn expected_password(
    secret: &str,
    amz_date: &str,
    region: &str,
    host: &str,
    path: &str,
) -> String {
    let canonical = format!("GIT\n{path}\n\nhost:{host}\n\nhost\n");
    let date = &amz_date[..8.min(amz_date.len())];
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/codecommit/aws4_request\n{}",
        sigv4::sha256_hex(canonical.as_bytes())
    );
    format!(
        "{amz_date}Z{}",
        sigv4::sign(secret, date, region, "codecommit", &string_to_sign)
    )
}

fn fresh(amz_date: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%S")
        .map(|t| (chrono::Utc::now().naive_utc() - t).num_seconds().abs() <= MAX_SKEW_SECS)
        .unwrap_or(false)
}

#[async_trait]
impl HttpService for GitHttp {
    fn name(&self) -> &'static str {
        "codecommit-git"
    }

    fn claims(&self, parts: &http::request::Parts) -> bool {
        parts.uri.path().starts_with("/v1/repos/")
    }

    async fn handle(&self, ctx: RequestContext, req: http::Request<Body>) -> Response<Body> {
        let Some((signed_path, name, route)) = route(req.uri().path(), req.uri().query()) else {
            return text(StatusCode::NOT_FOUND, "not a git smart HTTP request");
        };
        let headers = req.headers().clone();
        let (repo, identity) = match self.authorize(&headers, &signed_path, &name).await {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let ctx = caller_context(&ctx, &repo, identity);
        // IAM: fetches need GitPull; a push GitPush, asked again with the refs it moves
        // (`codecommit:References`) once the request names them.
        let action = match route {
            Route::InfoRefs(Service::UploadPack) | Route::Rpc(Service::UploadPack) => {
                Some("codecommit:GitPull")
            }
            Route::InfoRefs(Service::ReceivePack) => Some("codecommit:GitPush"),
            Route::Rpc(Service::ReceivePack) => None,
        };
        if let Some(action) = action
            && let Err(resp) = self.permit(&ctx, &repo, action, &[]).await
        {
            return resp;
        }
        let dir = self.0.repos.dir(&repo);
        let protocol = req
            .headers()
            .get("git-protocol")
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"=:._-".contains(&b))
            })
            .map(str::to_string);
        let result = match route {
            Route::InfoRefs(svc) => info_refs(&dir, svc, protocol).await,
            Route::Rpc(Service::UploadPack) => upload_pack(&dir, protocol, req).await,
            Route::Rpc(Service::ReceivePack) => self.receive_pack(&ctx, &repo, protocol, req).await,
        };
        result.unwrap_or_else(|e| {
            tracing::warn!(repository = %repo.name, "git request failed: {e}");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("git failed: {e}"),
            )
        })
    }
}

impl GitHttp {
    /// IAM's answer for a git request on the repository: 403 with AWS's message when denied.
    async fn permit(
        &self,
        ctx: &RequestContext,
        repo: &Repository,
        action: &str,
        refs: &[String],
    ) -> Result<(), Response<Body>> {
        let mut request = codeyard_core::AccessRequest::new(action, repo.arn());
        if !refs.is_empty() {
            request
                .context
                .insert("codecommit:References".into(), refs.to_vec());
        }
        self.0
            .platform
            .hub
            .authorize(ctx, &request)
            .await
            .map_err(|d| text(StatusCode::FORBIDDEN, &d.message))
    }

    /// Finds the repository and checks the credentials; the answer to send otherwise.
    async fn authorize(
        &self,
        headers: &http::HeaderMap,
        signed_path: &str,
        name: &str,
    ) -> Result<(Repository, Identity), Response<Body>> {
        let Some((key, password)) = basic_auth(headers) else {
            // git sends credentials only after a challenge; then it asks the credential helper.
            return Err(challenge("authentication required"));
        };
        let auth = &self.0.platform.auth;
        let known = auth.lookup(&key).await;
        let identity = match (&known, auth.mode) {
            (Some((_, id)), _) => id.clone(),
            (None, AuthMode::Open) => auth.identify_open(&key).await,
            (None, AuthMode::Enforce) => {
                return Err(text(
                    StatusCode::FORBIDDEN,
                    "The security token included in the request is invalid.",
                ));
            }
        };
        let mut candidates = self
            .0
            .repos
            .regions_with(&identity.account, name)
            .await
            .map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
        candidates.sort_by(|a, b| a.region.cmp(&b.region));
        // The signature names the region (git requests carry no other sign of it): the repository
        // is the one whose region makes the signature valid.
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(|h| h.split(':').next().unwrap_or(h).to_string())
            .unwrap_or_default();
        let amz_date = password
            .split_once('Z')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        let verified = match &known {
            Some((secret, _)) if amz_date.len() == 15 => candidates.iter().find(|r| {
                let expected = expected_password(secret, &amz_date, &r.region, &host, signed_path);
                sigv4::constant_time_eq(expected.as_bytes(), password.as_bytes())
            }),
            _ => None,
        };
        if auth.mode == AuthMode::Enforce {
            return match verified {
                Some(r) if fresh(&amz_date) => Ok((r.clone(), identity)),
                Some(_) => Err(text(
                    StatusCode::FORBIDDEN,
                    "The request signature has expired.",
                )),
                None if candidates.is_empty() => Err(text(
                    StatusCode::FORBIDDEN,
                    "The request signature does not match, or the repository does not exist.",
                )),
                None => Err(text(
                    StatusCode::FORBIDDEN,
                    "The request signature we calculated does not match the signature you provided.",
                )),
            };
        }
        match verified.or(candidates.first()) {
            Some(r) => Ok((r.clone(), identity)),
            None => Err(text(
                StatusCode::NOT_FOUND,
                &format!("repository '{name}' not found"),
            )),
        }
    }

    async fn receive_pack(
        &self,
        ctx: &RequestContext,
        repo: &Repository,
        protocol: Option<String>,
        req: http::Request<Body>,
    ) -> anyhow::Result<Response<Body>> {
        let dir = self.0.repos.dir(repo);
        let (commands, body) = read_commands(request_reader(req)).await?;
        let refs: Vec<String> = commands.iter().map(|c| c.name.clone()).collect();
        if let Err(denied) = self.permit(ctx, repo, "codecommit:GitPush", &refs).await {
            return Ok(denied);
        }
        let caller_arn = Some(ctx.caller_arn.clone());
        let flight = self.0.events.begin(repo);
        // Whatever happens to the request, the publisher hears about it: when the exact updates
        // are unknown (an error), the last in-flight request publishes what differs on disk.
        // A task of its own, so a client that hangs up after git updated refs still gets its
        // update published.
        let service = self.0.clone();
        let repo = repo.clone();
        let outcome = tokio::spawn(async move {
            let outcome = run_receive_pack(&dir, protocol, body).await;
            let updates = match &outcome {
                Ok((_, updates)) => updates.clone(),
                Err(_) => Vec::new(),
            };
            service
                .events
                .finish(&repo, flight, updates, caller_arn.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            outcome
        })
        .await?;
        let (report, _) = outcome?;
        Ok(Response::builder()
            .status(StatusCode::OK)
            .header(
                header::CONTENT_TYPE,
                "application/x-git-receive-pack-result",
            )
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from(report))?)
    }
}

/// The caller of a git request (git signs with its own scheme, so the wire saw no signature):
/// the key's identity, in the repository's account and region.
fn caller_context(wire: &RequestContext, repo: &Repository, identity: Identity) -> RequestContext {
    RequestContext {
        account: identity.account,
        region: repo.region.clone(),
        access_key: identity.access_key,
        caller_arn: identity.arn,
        ..wire.clone()
    }
}

/// Reads a receive-pack request up to the end of its command list (the refs it moves); the
/// body to hand git is what was read, then the rest.
async fn read_commands(
    mut body: Box<dyn AsyncRead + Send + Unpin>,
) -> std::io::Result<(Vec<RefUpdate>, Box<dyn AsyncRead + Send + Unpin>)> {
    let mut parser = CommandParser::default();
    let mut head = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while !parser.done && head.len() < MAX_REPORT {
        let n = body.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        parser.feed(&buf[..n]);
        head.extend_from_slice(&buf[..n]);
    }
    let rest: Box<dyn AsyncRead + Send + Unpin> = Box::new(std::io::Cursor::new(head).chain(body));
    Ok((parser.commands, rest))
}

/// Starts `git <pack> --stateless-rpc` on `dir` with the client's protocol version, stdin and
/// stdout piped: (child, stdin, stdout).
fn spawn_stateless(
    dir: &std::path::Path,
    pack: &str,
    protocol: Option<&str>,
) -> std::io::Result<(
    tokio::process::Child,
    tokio::process::ChildStdin,
    tokio::process::ChildStdout,
)> {
    let mut cmd = git::command(dir);
    cmd.args([pack, "--stateless-rpc"]).arg(dir);
    if let Some(p) = protocol {
        cmd.env("GIT_PROTOCOL", p);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn()?;
    let stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    Ok((child, stdin, stdout))
}

/// Runs receive-pack on the streamed request; returns its answer and the updates it accepted.
async fn run_receive_pack(
    dir: &std::path::Path,
    protocol: Option<String>,
    body: Box<dyn AsyncRead + Send + Unpin>,
) -> anyhow::Result<(Vec<u8>, Vec<RefUpdate>)> {
    let (mut child, stdin, mut stdout) = spawn_stateless(dir, "receive-pack", protocol.as_deref())?;
    let pump = tokio::spawn(async move {
        let mut parser = CommandParser::default();
        let r = pump_body(body, stdin, Some(&mut parser)).await;
        (r, parser)
    });
    let mut report = Vec::new();
    (&mut stdout)
        .take(MAX_REPORT as u64)
        .read_to_end(&mut report)
        .await?;
    let status = child.wait().await?;
    let (pumped, parser) = pump.await?;
    if let Err(e) = pumped {
        tracing::info!(dir = %dir.display(), "push aborted: {e}");
    }
    let updates = match accepted_updates(&parser, &report, parser.side_band()) {
        Some(list) => list,
        // No report-status requested: what git did is what the refs now say.
        None => {
            let mut list = Vec::new();
            for u in parser.commands.iter() {
                let now = git::ref_value(dir, &u.name)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| git::ZERO_OID.into());
                if now == u.new {
                    list.push(u.clone());
                }
            }
            list
        }
    };
    tracing::debug!(dir = %dir.display(), ?status, accepted = updates.len(), "receive-pack finished");
    Ok((report, updates))
}

/// The request body as a byte stream, gunzipped when the client compressed it.
fn request_reader(req: http::Request<Body>) -> Box<dyn AsyncRead + Send + Unpin> {
    let gzip = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip"));
    let stream = req
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let reader = StreamReader::new(stream);
    if gzip {
        Box::new(async_compression::tokio::bufread::GzipDecoder::new(reader))
    } else {
        Box::new(reader)
    }
}

/// Copies the request body into git's stdin (parsing push commands on the way), then closes it.
async fn pump_body(
    mut body: Box<dyn AsyncRead + Send + Unpin>,
    mut stdin: tokio::process::ChildStdin,
    mut parser: Option<&mut CommandParser>,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = body.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if let Some(p) = parser.as_deref_mut() {
            p.feed(&buf[..n]);
        }
        stdin.write_all(&buf[..n]).await?;
        total += n as u64;
    }
    stdin.shutdown().await?;
    Ok(total)
}

async fn info_refs(
    dir: &std::path::Path,
    svc: Service,
    protocol: Option<String>,
) -> anyhow::Result<Response<Body>> {
    let mut cmd = git::command(dir);
    cmd.args([svc.subcommand(), "--stateless-rpc", "--advertise-refs"])
        .arg(dir);
    let v2 = protocol
        .as_deref()
        .is_some_and(|p| p.split(':').any(|x| x == "version=2"));
    if let Some(p) = &protocol {
        cmd.env("GIT_PROTOCOL", p);
    }
    let out = git::run_with(cmd, &[], None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !out.ok {
        anyhow::bail!(
            "{} --advertise-refs: {}",
            svc.subcommand(),
            out.stderr.trim()
        );
    }
    let mut body = Vec::new();
    // As git-http-backend: protocol v0/v1 answers start with the service announcement.
    if !(v2 && svc == Service::UploadPack) {
        body.extend_from_slice(&pkt_line(format!("# service={}\n", svc.name()).as_bytes()));
        body.extend_from_slice(b"0000");
    }
    body.extend_from_slice(&out.stdout);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            format!("application/x-{}-advertisement", svc.name()),
        )
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(body))?)
}

async fn upload_pack(
    dir: &std::path::Path,
    protocol: Option<String>,
    req: http::Request<Body>,
) -> anyhow::Result<Response<Body>> {
    let (mut child, stdin, stdout) = spawn_stateless(dir, "upload-pack", protocol.as_deref())?;
    let body = request_reader(req);
    tokio::spawn(async move {
        if let Err(e) = pump_body(body, stdin, None).await {
            tracing::debug!("upload-pack request body: {e}");
        }
        // Reaps the child once it is done (a client that goes away closes its stdout pipe).
        let _ = child.wait().await;
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-git-upload-pack-result")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(ReaderStream::with_capacity(
            stdout,
            64 * 1024,
        )))?)
}

fn pkt_line(data: &[u8]) -> Vec<u8> {
    let mut v = format!("{:04x}", data.len() + 4).into_bytes();
    v.extend_from_slice(data);
    v
}

/// Reads the command list at the start of a receive-pack request
/// (`<old> <new> <ref>\0<capabilities>` pkt-lines up to the first flush).
#[derive(Default, Debug)]
pub struct CommandParser {
    buf: Vec<u8>,
    done: bool,
    pub commands: Vec<RefUpdate>,
    pub capabilities: Vec<String>,
}

impl CommandParser {
    pub fn feed(&mut self, mut data: &[u8]) {
        while !self.done && !data.is_empty() {
            let need = if self.buf.len() < 4 {
                4 - self.buf.len()
            } else {
                match parse_len(&self.buf[..4]) {
                    Some(n) if n >= 4 => n - self.buf.len(),
                    // A flush ends the command list; anything malformed ends parsing too.
                    _ => {
                        self.done = true;
                        return;
                    }
                }
            };
            let take = need.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() >= 4 {
                match parse_len(&self.buf[..4]) {
                    Some(0) => {
                        self.done = true;
                    }
                    Some(n) if n >= 4 && self.buf.len() == n => {
                        let line = std::mem::take(&mut self.buf);
                        self.line(&line[4..]);
                    }
                    Some(n) if n < 4 => self.done = true,
                    None => self.done = true,
                    _ => {}
                }
            }
            if self.commands.len() > 100_000 {
                self.done = true;
            }
        }
    }

    fn line(&mut self, payload: &[u8]) {
        let (main, caps) = match payload.iter().position(|b| *b == 0) {
            Some(i) => (&payload[..i], Some(&payload[i + 1..])),
            None => (payload, None),
        };
        if let Some(c) = caps {
            self.capabilities = String::from_utf8_lossy(c)
                .split_whitespace()
                .map(str::to_string)
                .collect();
        }
        let line = String::from_utf8_lossy(main);
        let mut it = line.trim_end_matches('\n').splitn(3, ' ');
        if let (Some(old), Some(new), Some(name)) = (it.next(), it.next(), it.next())
            && git::is_oid(old)
            && git::is_oid(new)
        {
            self.commands.push(RefUpdate {
                name: name.to_string(),
                old: old.into(),
                new: new.into(),
            });
        }
    }

    fn side_band(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| c == "side-band-64k" || c == "side-band")
    }

    fn wants_report(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| c == "report-status" || c == "report-status-v2")
    }
}

fn parse_len(b: &[u8]) -> Option<usize> {
    usize::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok()
}

/// Splits pkt-lines (stopping at anything malformed); flushes and delimiters are skipped.
fn pkt_lines(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let Some(n) = parse_len(&data[..4]) else {
            break;
        };
        if n < 4 {
            data = &data[4..];
            continue;
        }
        if n > data.len() {
            break;
        }
        out.push(&data[4..n]);
        data = &data[n..];
    }
    out
}

/// The commands receive-pack reported `ok` for, from its report-status (demultiplexed from
/// side-band channel 1 when the client asked for side-band). None when there is no report.
fn accepted_updates(
    parser: &CommandParser,
    report: &[u8],
    side_band: bool,
) -> Option<Vec<RefUpdate>> {
    if !parser.wants_report() {
        return None;
    }
    let status: Vec<u8> = if side_band {
        let mut inner = Vec::new();
        for l in pkt_lines(report) {
            if l.first() == Some(&1) {
                inner.extend_from_slice(&l[1..]);
            }
        }
        inner
    } else {
        report.to_vec()
    };
    let ok: std::collections::HashSet<String> = pkt_lines(&status)
        .into_iter()
        .filter_map(|l| {
            let s = String::from_utf8_lossy(l);
            s.trim_end_matches('\n')
                .strip_prefix("ok ")
                .map(str::to_string)
        })
        .collect();
    Some(
        parser
            .commands
            .iter()
            .filter(|c| ok.contains(&c.name))
            .cloned()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_matches_the_cli_algorithm() {
        // From `aws codecommit credential-helper --ignore-host-check get` (secret "test",
        // region eu-west-1) given host=localhost:4566 and path=v1/repos/demo.
        let p = expected_password(
            "test",
            "20261127T092520",
            "eu-west-1",
            "localhost",
            "/v1/repos/demo",
        );
        assert_eq!(
            p,
            "20261127T092520Z45445c06835d0297b9999bdf0a5b6049ff3684dc9463922086620c0dfb52c7ab"
        );
    }

    /// The first pkt-line of a push creating `refs/heads/main` at `commit`, with its capabilities.
    fn first_command(commit: &str) -> Vec<u8> {
        pkt_line(format!("{} {commit} refs/heads/main\0report-status side-band-64k\n", git::ZERO_OID).as_bytes())
    }

    #[test]
    fn parses_push_commands_split_anywhere() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let mut req = first_command(&a);
        req.extend(pkt_line(format!("{a} {b} refs/tags/v1\n").as_bytes()));
        req.extend_from_slice(b"0000PACK....");
        for split in 1..req.len() {
            let mut p = CommandParser::default();
            for chunk in req.chunks(split) {
                p.feed(chunk);
            }
            assert_eq!(p.commands.len(), 2, "split {split}");
            assert_eq!(p.commands[0].name, "refs/heads/main");
            assert_eq!(p.commands[1].new, b);
            assert!(p.side_band() && p.wants_report());
        }
    }

    #[test]
    fn reads_ok_lines_from_side_band() {
        let mut p = CommandParser::default();
        let a = "a".repeat(40);
        let mut req = first_command(&a);
        req.extend(pkt_line(
            format!("{} {a} refs/heads/other\n", git::ZERO_OID).as_bytes(),
        ));
        req.extend_from_slice(b"0000");
        p.feed(&req);
        let mut inner = pkt_line(b"unpack ok\n");
        inner.extend(pkt_line(b"ok refs/heads/main\n"));
        inner.extend(pkt_line(b"ng refs/heads/other fetch first\n"));
        inner.extend_from_slice(b"0000");
        let mut band = vec![1u8];
        band.extend(inner);
        let mut report = pkt_line(&band);
        report.extend_from_slice(b"0000");
        let acc = accepted_updates(&p, &report, true).unwrap();
        assert_eq!(acc.len(), 1);
        assert_eq!(acc[0].name, "refs/heads/main");
    }
}
