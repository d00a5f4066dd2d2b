//! The crash test: while a client pushes to two branches, puts objects and sends events in a
//! loop, the server process is killed with SIGKILL at a random moment, then restarted on the
//! same data dir; at least 20 times. After each restart:
//!
//! * every acknowledged object is there with its exact bytes, and an object whose PUT was cut
//!   off is either absent or whole (never partial);
//! * every branch is at its last acknowledged push or at a later push that landed without its
//!   answer, accepts the next push, and `git fsck` of the server's repository is clean;
//! * every acknowledged PutEvents event is delivered to its rule's target;
//!
//! and at the end every ref move (acknowledged or not) has raised exactly one "CodeCommit
//! Repository State Change" event (at-least-once delivery may repeat a delivery of one event,
//! never a second event for one move).
//!
//! Self-contained (its own process handling and HTTP probes) so that it needs nothing of the
//! in-process harness. `CRASH_KILLS=n` changes the number of kills; the random seed is printed
//! and `CRASH_SEED=s` replays one; `CRASH_SERVER_BIN=path` runs it against another build.

use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "000000000000";
const ZERO: &str = "0000000000000000000000000000000000000000";
const BRANCHES: [&str; 2] = ["main", "feature"];

/// xorshift64*: enough randomness for kill times and sizes, reproducible from the seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The bytes of an object are a function of its key, so any copy can be checked whole.
fn object_bytes(key: &str, size: usize) -> Vec<u8> {
    let mut seed = key.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(size);
    out
}

/// What the client did and what the server acknowledged.
#[derive(Default)]
struct Ledger {
    /// key -> (size, acknowledged)
    objects: BTreeMap<String, (usize, bool)>,
    /// Event ids PutEvents answered, per cycle.
    events_acked: Vec<(usize, String)>,
    /// branch -> commits pushed in order, each with whether the push was acknowledged.
    pushes: HashMap<String, Vec<(String, bool)>>,
}

struct Server {
    child: std::process::Child,
}

impl Server {
    fn start(data_dir: &Path, port: u16, log: &Path) -> Server {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        // CRASH_SERVER_BIN runs the test against another build (e.g. an older release).
        let bin = std::env::var("CRASH_SERVER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_codeyard").to_string());
        let child = std::process::Command::new(bin)
            .args(["serve", "--port", &port.to_string(), "--data-dir"])
            .arg(data_dir)
            .env("CODEYARD_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("codeyard starts");
        Server { child }
    }
    fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A plain HTTP/1.0 GET on localhost: (status, body).
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

async fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some((200, _)) = http_get(port, "/_codeyard/health").await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the server did not come back within 30 s");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn git_in(dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new("git");
    c.current_dir(dir)
        .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "-c", "init.defaultBranch=main"])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0");
    c
}

fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git_in(dir).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A new local commit on the branch's own working repository; answers its id.
fn local_commit(work: &Path, n: usize, big: bool) -> String {
    std::fs::write(work.join("counter.txt"), format!("{n}\n")).unwrap();
    if big {
        // Now and then a push with a pack of a few MB, so kills land inside pack transfer too.
        std::fs::write(work.join("blob.bin"), object_bytes(&format!("{:?}-{n}", work), 3 << 20)).unwrap();
    }
    git_ok(work, &["add", "-A"]);
    git_ok(work, &["commit", "-q", "-m", &format!("change {n}")]);
    git_ok(work, &["rev-parse", "HEAD"])
}

/// `git push` as a child that dies with the task (an aborted task must not leave a git client
/// that reaches the next server).
async fn push(work: &Path, url: &str, branch: &str) -> Result<(), String> {
    let out = tokio::process::Command::new("git")
        .current_dir(work)
        .args(["push", "-q", url, &format!("HEAD:refs/heads/{branch}")])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

async fn clients(endpoint: &str) -> (aws_sdk_s3::Client, aws_sdk_eventbridge::Client, aws_sdk_codecommit::Client) {
    let creds = aws_credential_types::Credentials::new("test", "test", None, None, "crash-test");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        // A request cut off by the kill is not acknowledged; no SDK retry may carry it over to
        // the next server.
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(aws_config::timeout::TimeoutConfig::builder().operation_timeout(Duration::from_secs(20)).build())
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
    (s3, aws_sdk_eventbridge::Client::new(&conf), aws_sdk_codecommit::Client::new(&conf))
}

/// The client's loop for one cycle: all three writers at once until the task is aborted.
async fn write_loop(endpoint: String, cycle: usize, works: Vec<PathBuf>, ledger: Arc<Mutex<Ledger>>, seed: u64) {
    let (s3, eb, _) = clients(&endpoint).await;
    let url = format!("{}/v1/repos/crash", endpoint.replace("http://", "http://test:x@"));
    let objects = {
        let ledger = ledger.clone();
        async move {
            let mut rng = Rng(seed | 1);
            for n in 0.. {
                let key = format!("c{cycle:02}/o{n:03}");
                let size = match rng.below(10) {
                    0 => 2 << 20,
                    1..=3 => rng.below(256 << 10) as usize + 1,
                    _ => rng.below(8 << 10) as usize + 1,
                };
                ledger.lock().unwrap().objects.insert(key.clone(), (size, false));
                let put = s3.put_object().bucket("crash").key(&key).body(object_bytes(&key, size).into()).send().await;
                if put.is_ok() {
                    ledger.lock().unwrap().objects.get_mut(&key).unwrap().1 = true;
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        }
    };
    let events = {
        let ledger = ledger.clone();
        async move {
            for n in 0.. {
                let entry = PutEventsRequestEntry::builder()
                    .source("crash.test")
                    .detail_type("crash")
                    .detail(json!({"cycle": cycle, "n": n}).to_string())
                    .build();
                if let Ok(out) = eb.put_events().entries(entry).send().await
                    && out.failed_entry_count() == 0
                    && let Some(id) = out.entries().first().and_then(|e| e.event_id())
                {
                    ledger.lock().unwrap().events_acked.push((cycle, id.to_string()));
                }
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
        }
    };
    let pushes = {
        let ledger = ledger.clone();
        async move {
            let mut rng = Rng(seed.rotate_left(17) | 1);
            for n in 0.. {
                let i = n % BRANCHES.len();
                let branch = BRANCHES[i];
                let commit = local_commit(&works[i], cycle * 1000 + n, rng.below(6) == 0);
                ledger.lock().unwrap().pushes.entry(branch.into()).or_default().push((commit.clone(), false));
                if push(&works[i], &url, branch).await.is_ok() {
                    let mut l = ledger.lock().unwrap();
                    l.pushes.get_mut(branch).unwrap().last_mut().unwrap().1 = true;
                }
            }
        }
    };
    tokio::join!(objects, events, pushes);
}

/// Where a branch may be: its last acknowledged push or any later push (landed, unanswered).
fn allowed_values(pushes: &[(String, bool)]) -> Vec<String> {
    let last_acked = pushes.iter().rposition(|(_, acked)| *acked);
    let mut allowed: Vec<String> = match last_acked {
        Some(i) => pushes[i..].iter().map(|(c, _)| c.clone()).collect(),
        None => pushes.iter().map(|(c, _)| c.clone()).collect(),
    };
    if last_acked.is_none() {
        allowed.push(ZERO.into());
    }
    allowed
}

async fn remote_refs(work: &Path, url: &str) -> HashMap<String, String> {
    let out = git_in(work).args(["ls-remote", url]).output().unwrap();
    assert!(out.status.success(), "ls-remote: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(oid, name)| name.strip_prefix("refs/heads/").map(|b| (b.to_string(), oid.to_string())))
        .collect()
}

async fn deliveries(port: u16, rule: &str) -> Vec<Value> {
    let (status, body) = http_get(port, &format!("/_codeyard/events/deliveries?rule={rule}&bus=default")).await.expect("deliveries answer");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["deliveries"].as_array().cloned().unwrap_or_default()
}

async fn wait_queues_drained(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, body)) = http_get(port, "/_codeyard/events/queues").await {
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if v["ingress"] == 0 && v["delivery"] == 0 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the event queues did not drain within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn server_repo_dir(data_dir: &Path) -> PathBuf {
    let region = data_dir.join("codecommit").join(ACCOUNT).join(REGION);
    std::fs::read_dir(&region).unwrap().flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "git")).expect("repository dir")
}

/// Ends the git clients an aborted write loop left behind. Dropping the `git push` child kills
/// `git` only; its `git-remote-http` helper lives on and, between its GET of the refs and its
/// POST of the pack, opens a new connection — to the next server on the same port — where it
/// races the test's own first push ("cannot lock ref ... is at X but expected Y", git refusing
/// a concurrent push, not a stuck branch). A user's client cut off by a crash just fails.
async fn kill_orphan_git_clients(port: u16) {
    let pattern = format!("localhost:{port}/v1/repos");
    for _ in 0..100 {
        let _ = std::process::Command::new("pkill").args(["-9", "-f", &pattern]).status();
        let alive = std::process::Command::new("pgrep").args(["-f", &pattern]).output().map(|o| !o.stdout.is_empty()).unwrap_or(false);
        if !alive {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("git clients of the killed server's port {port} did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    let kills: usize = std::env::var("CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    println!("crash test: {kills} kills, CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let log = tmp.path().join("server.log");
    let port = free_port();
    let endpoint = format!("http://localhost:{port}");
    let url = format!("http://test:x@localhost:{port}/v1/repos/crash");

    let mut server = Server::start(&data_dir, port, &log);
    wait_healthy(port).await;
    let (s3, eb, cc) = clients(&endpoint).await;
    cc.create_repository().repository_name("crash").send().await.unwrap();
    crate::common::make_bucket(&s3, "crash").await;
    eb.create_event_bus().name("sink").send().await.unwrap();
    let sink = format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/sink");
    for (rule, pattern) in [("crash-puts", json!({"source": ["crash.test"]})), ("crash-refs", json!({"source": ["aws.codecommit"]}))] {
        eb.put_rule().name(rule).event_pattern(pattern.to_string()).send().await.unwrap();
        eb.put_targets().rule(rule).targets(Target::builder().id("sink").arn(&sink).build().unwrap()).send().await.unwrap();
    }
    let works: Vec<PathBuf> = BRANCHES
        .iter()
        .map(|b| {
            let w = tmp.path().join(format!("work-{b}"));
            std::fs::create_dir_all(&w).unwrap();
            git_ok(&w, &["init", "-q"]);
            w
        })
        .collect();

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    // ref move (branch, old, new) -> the ids of the events that announced it
    let mut moves: HashMap<(String, String, String), HashSet<String>> = HashMap::new();
    let mut puts_delivered: HashSet<String> = HashSet::new();
    let started = Instant::now();
    for cycle in 0..=kills {
        // Every branch accepts the next push (and the first cycle creates them).
        for (i, branch) in BRANCHES.iter().enumerate() {
            let commit = local_commit(&works[i], cycle * 1000 + 999, false);
            ledger.lock().unwrap().pushes.entry(branch.to_string()).or_default().push((commit, false));
            if let Err(e) = push(&works[i], &url, branch).await {
                panic!("cycle {cycle}: branch {branch} refused the first push after the restart: {e}\nserver log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            ledger.lock().unwrap().pushes.get_mut(*branch).unwrap().last_mut().unwrap().1 = true;
        }
        if cycle == kills {
            break;
        }
        let writer = tokio::spawn(write_loop(endpoint.clone(), cycle, works.clone(), ledger.clone(), rng.next()));
        tokio::time::sleep(Duration::from_millis(150 + rng.below(1200))).await;
        server.kill9();
        writer.abort();
        let _ = writer.await;
        kill_orphan_git_clients(port).await;
        let restart = Instant::now();
        server = Server::start(&data_dir, port, &log);
        wait_healthy(port).await;
        let restarted_in = restart.elapsed();

        // Objects: acknowledged ones whole; cut-off ones absent or whole. This cycle's objects
        // are read back in full; earlier ones (read in full after an earlier restart, and
        // never written again) must still be there with their size.
        let objects: Vec<(String, usize, bool)> = ledger.lock().unwrap().objects.iter().map(|(k, (s, a))| (k.clone(), *s, *a)).collect();
        let this_cycle = format!("c{cycle:02}/");
        for (key, size, acked) in objects {
            if !key.starts_with(&this_cycle) {
                let head = s3.head_object().bucket("crash").key(&key).send().await;
                let found = head.as_ref().ok().and_then(|h| h.content_length());
                assert_eq!(found, Some(size as i64), "cycle {cycle}: object {key} of an earlier cycle: {head:?}");
                continue;
            }
            match s3.get_object().bucket("crash").key(&key).send().await {
                Ok(out) => {
                    let body = out.body.collect().await.unwrap().into_bytes();
                    assert!(body.len() == size && body[..] == object_bytes(&key, size)[..], "cycle {cycle}: {key} is partial or wrong ({} of {size} bytes)", body.len());
                }
                Err(e) => {
                    assert!(!acked, "cycle {cycle}: acknowledged object {key} is gone: {e:?}");
                    // Forget it: a later check must not accept it appearing.
                    ledger.lock().unwrap().objects.remove(&key);
                }
            }
        }
        // Branches: at an allowed value; the repository is consistent.
        let remote = remote_refs(&works[0], &url).await;
        for branch in BRANCHES {
            let now = remote.get(branch).cloned().unwrap_or_else(|| ZERO.into());
            let l = ledger.lock().unwrap();
            let allowed = allowed_values(&l.pushes[branch]);
            assert!(allowed.contains(&now), "cycle {cycle}: {branch} is at {now}, not at its last acknowledged push or a later one: {allowed:?}");
        }
        let repo = server_repo_dir(&data_dir);
        let fsck = std::process::Command::new("git").arg("--git-dir").arg(&repo).args(["fsck", "--no-progress", "--no-dangling"]).output().unwrap();
        assert!(fsck.status.success(), "cycle {cycle}: git fsck: {}{}", String::from_utf8_lossy(&fsck.stdout), String::from_utf8_lossy(&fsck.stderr));

        // Events: what was published so far is delivered (the delivery log keeps the newest
        // 100 per rule; a cycle makes far fewer).
        wait_queues_drained(port).await;
        collect_moves(&deliveries(port, "crash-refs").await, &mut moves);
        for d in deliveries(port, "crash-puts").await {
            puts_delivered.insert(d["event_id"].as_str().unwrap_or_default().to_string());
        }
        let l = ledger.lock().unwrap();
        for (c, id) in l.events_acked.iter().filter(|(c, _)| *c == cycle) {
            assert!(puts_delivered.contains(id), "cycle {c}: acknowledged event {id} was never delivered");
        }
        println!("cycle {cycle}: restarted in {restarted_in:?}, checked in {:?}", restart.elapsed() - restarted_in);
    }

    // Each ref move raised exactly one event, and the events chain from creation to where the
    // branch is now.
    wait_queues_drained(port).await;
    collect_moves(&deliveries(port, "crash-refs").await, &mut moves);
    let remote = remote_refs(&works[0], &url).await;
    for branch in BRANCHES {
        let mut at = ZERO.to_string();
        let mut steps = 0;
        let end = remote[branch].clone();
        while at != end {
            let next: Vec<_> = moves.iter().filter(|((b, old, _), _)| b == branch && *old == at).collect();
            assert_eq!(next.len(), 1, "{branch}: from {at} the events name {} moves: {next:?}", next.len());
            let ((_, _, new), ids) = next[0];
            assert_eq!(ids.len(), 1, "{branch}: the move {at} -> {new} raised {} events: {ids:?}", ids.len());
            at = new.clone();
            steps += 1;
        }
        let total = moves.keys().filter(|(b, _, _)| b == branch).count();
        assert_eq!(steps, total, "{branch}: events announce moves that are not in the branch's history");
        println!("{branch}: {steps} ref moves, one event each");
    }
    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
    println!(
        "server log: {} start-up repairs, {} ref changes published after a crash",
        server_log.matches("start-up repair").count(),
        server_log.matches("publishing an unpublished ref change").count()
    );
    for line in server_log.lines().filter(|l| l.contains("start-up repair")) {
        println!("  {line}");
    }
    let l = ledger.lock().unwrap();
    let acked_objects = l.objects.values().filter(|(_, a)| *a).count();
    println!(
        "crash test: {kills} kills in {:?}; {acked_objects} acknowledged objects, {} acknowledged events, {} pushes checked",
        started.elapsed(),
        l.events_acked.len(),
        l.pushes.values().map(Vec::len).sum::<usize>()
    );
    drop(server);
}

fn collect_moves(deliveries: &[Value], moves: &mut HashMap<(String, String, String), HashSet<String>>) {
    for d in deliveries {
        let input = &d["input"];
        let detail = if input.get("detail").is_some() { &input["detail"] } else { input };
        let Some(branch) = detail["referenceName"].as_str() else { continue };
        let old = detail["oldCommitId"].as_str().unwrap_or(ZERO).to_string();
        let new = detail["commitId"].as_str().unwrap_or(ZERO).to_string();
        let id = d["event_id"].as_str().unwrap_or_default().to_string();
        moves.entry((branch.to_string(), old, new)).or_default().insert(id);
    }
}

/// A second server on a data dir in use refuses to start, saying why; once the first is gone
/// (even by SIGKILL) the directory can be served again.
#[tokio::test]
async fn a_second_server_on_the_same_data_dir_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let log = tmp.path().join("server.log");
    let port = free_port();
    let mut first = Server::start(&data_dir, port, &log);
    wait_healthy(port).await;
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_codeyard"))
        .args(["serve", "--port", &free_port().to_string(), "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(!second.status.success(), "a second server started on a data dir in use");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("is in use by another codeyard server") && stderr.contains(&first.child.id().to_string()),
        "unclear refusal: {stderr}"
    );
    first.kill9();
    let port = free_port();
    let _again = Server::start(&data_dir, port, &log);
    wait_healthy(port).await;
}
