//! Console sessions: an HttpOnly, SameSite=Strict cookie naming a server-side session that
//! holds the caller (root in `--auth open`; the signed-in identity in `--auth enforce`), the
//! region being looked at, the per-session CSRF token every POST must carry and a one-shot
//! flash message.
//!
//! * Session ids are 256 random bits (hex). The state store keeps each session under the
//!   SHA-256 of its id (namespace [`SESSIONS_NS`]), so the database alone gives no usable
//!   cookie; a restart (or `kill -9`) signs nobody out. Memory keeps a write-through cache.
//! * No secret is kept at all: a session holds the identity a login proved (account, access
//!   key id, principal ARN). Under `--auth enforce` every request re-resolves that access key,
//!   so a deleted IAM key or an expired STS session ends the console session too.
//! * A session lasts 12 hours from sign-in (the cookie's Max-Age and the stored expiry); signing
//!   in issues a new session id (no fixation), signing out deletes the session.
//! * A fresh session is only written to the store once something is kept in it (a sign-in, a
//!   region, a flash message), so requests without a cookie cost no write.

use crate::{Console, PREFIX, host_of, html_response};
use axum::response::{IntoResponse, Redirect, Response};
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt};
use http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::Mutex;

pub const COOKIE: &str = "codeyard_console";
/// Where sessions are kept: key = hex SHA-256 of the session id.
pub const SESSIONS_NS: &str = "console/sessions";
/// How long a session lasts.
pub const LIFETIME_MS: i64 = 12 * 3600 * 1000;
/// Sessions kept in memory at most; the oldest are dropped from the cache beyond it (a
/// stored one is read again from the store when its cookie comes back).
const MAX_CACHED: usize = 10_000;
/// How often expired sessions are removed from the store.
const SWEEP_EVERY_MS: i64 = 10 * 60 * 1000;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Caller {
    pub account: String,
    pub access_key: String,
    pub arn: String,
}

/// A session as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredSession {
    pub csrf: String,
    pub caller: Option<Caller>,
    pub region: String,
    #[serde(default)]
    pub flash: Option<String>,
    /// Epoch milliseconds.
    pub created_ms: i64,
    pub expires_ms: i64,
}

struct Cached {
    session: StoredSession,
    /// Whether the store has it (fresh anonymous sessions are kept in memory only).
    persisted: bool,
}

pub struct Sessions {
    store: SharedStore,
    cache: Mutex<HashMap<String, Cached>>,
    /// Serializes writers, so the store never ends up with an older copy than the cache.
    writer: tokio::sync::Mutex<()>,
    last_sweep_ms: Mutex<i64>,
}

/// One request's view of its session.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub csrf: String,
    pub caller: Caller,
    pub region: String,
    /// `http://<Host>`: what URLs handed to this browser start with.
    pub endpoint: String,
    /// A `Set-Cookie` value when the session was created by this request.
    pub set_cookie: Option<String>,
    /// The flash message this page shows (taken from the session: shown once).
    pub flash: Option<String>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The store key of a session id.
fn key_of(id: &str) -> String {
    hex::encode(sha2::Sha256::digest(id.as_bytes()))
}

/// A new session id: 256 random bits from the thread's CSPRNG, as hex.
fn new_id() -> String {
    codeyard_core::ids::hex(64)
}

fn fresh(region: String) -> StoredSession {
    let now = now_ms();
    StoredSession { csrf: codeyard_core::ids::alnum(43), caller: None, region, flash: None, created_ms: now, expires_ms: now + LIFETIME_MS }
}

impl Sessions {
    pub fn new(store: SharedStore) -> Sessions {
        Sessions { store, cache: Mutex::default(), writer: tokio::sync::Mutex::new(()), last_sweep_ms: Mutex::new(now_ms()) }
    }

    /// A new anonymous session (memory only until something is kept in it).
    fn create(&self) -> (String, StoredSession) {
        let id = new_id();
        let s = fresh(codeyard_core::DEFAULT_REGION.to_string());
        self.cache_put(key_of(&id), s.clone(), false);
        self.maybe_sweep();
        (id, s)
    }

    fn cache_put(&self, key: String, session: StoredSession, persisted: bool) {
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= MAX_CACHED
            && !cache.contains_key(&key)
            && let Some(oldest) = cache.iter().min_by_key(|(_, c)| c.session.created_ms).map(|(k, _)| k.clone())
        {
            cache.remove(&oldest);
        }
        cache.insert(key, Cached { session, persisted });
    }

    /// The live session of an id: the cache, else the store; expired ones are removed.
    pub async fn get(&self, id: &str) -> Option<StoredSession> {
        let key = key_of(id);
        let cached = self.cache.lock().unwrap().get(&key).map(|c| c.session.clone());
        let session = match cached {
            Some(s) => s,
            None => match self.store.get_as::<StoredSession>(SESSIONS_NS, &key).await {
                Ok(Some((s, _))) => {
                    self.cache_put(key.clone(), s.clone(), true);
                    s
                }
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, "console: reading a session failed");
                    return None;
                }
            },
        };
        if session.expires_ms <= now_ms() {
            self.remove(id).await;
            return None;
        }
        Some(session)
    }

    /// Changes a session and writes it through to the store. `false` when there is no such
    /// session (or the store refused the write).
    async fn update(&self, id: &str, change: impl FnOnce(&mut StoredSession)) -> bool {
        let Some(mut session) = self.get(id).await else { return false };
        let key = key_of(id);
        let _w = self.writer.lock().await;
        // Re-read under the writer lock: another request may have changed it meanwhile.
        if let Some(c) = self.cache.lock().unwrap().get(&key) {
            session = c.session.clone();
        }
        change(&mut session);
        self.cache_put(key.clone(), session.clone(), true);
        match self.store.commit(Batch::new().put(SESSIONS_NS, &key, &session, Expect::Any)).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "console: storing a session failed");
                false
            }
        }
    }

    /// Takes the flash message (shown once); writes only when there was one.
    pub async fn take_flash(&self, id: &str) -> Option<String> {
        let has = self.cache.lock().unwrap().get(&key_of(id)).is_some_and(|c| c.session.flash.is_some());
        if !has {
            return None;
        }
        let mut taken = None;
        self.update(id, |s| taken = s.flash.take()).await;
        taken
    }

    pub async fn set_flash(&self, id: &str, message: impl Into<String>) {
        let message = message.into();
        self.update(id, |s| s.flash = Some(message)).await;
    }

    pub async fn set_region(&self, id: &str, region: &str) {
        self.update(id, |s| s.region = region.to_string()).await;
    }

    /// Signs `caller` in: a new session (new id, new CSRF token, 12 hours from now) with the
    /// old one's region; the old session is deleted. The new id.
    pub async fn sign_in(&self, old_id: &str, caller: Caller) -> Option<String> {
        let region = self.get(old_id).await.map(|s| s.region).unwrap_or_else(|| codeyard_core::DEFAULT_REGION.to_string());
        let id = new_id();
        let mut session = fresh(region);
        session.caller = Some(caller);
        let key = key_of(&id);
        let _w = self.writer.lock().await;
        let batch = Batch::new().put(SESSIONS_NS, &key, &session, Expect::Any).delete(SESSIONS_NS, key_of(old_id), Expect::Any);
        if let Err(e) = self.store.commit(batch).await {
            tracing::warn!(error = %e, "console: storing a session failed");
            return None;
        }
        let mut cache = self.cache.lock().unwrap();
        cache.remove(&key_of(old_id));
        drop(cache);
        self.cache_put(key, session, true);
        Some(id)
    }

    /// Deletes a session (sign-out, expiry, a caller whose key is gone).
    pub async fn remove(&self, id: &str) {
        let key = key_of(id);
        let _w = self.writer.lock().await;
        let persisted = self.cache.lock().unwrap().remove(&key).is_none_or(|c| c.persisted);
        if persisted && let Err(e) = self.store.commit(Batch::new().delete(SESSIONS_NS, &key, Expect::Any)).await {
            tracing::warn!(error = %e, "console: deleting a session failed");
        }
    }

    /// Now and then, removes expired sessions from the store (in the background).
    fn maybe_sweep(&self) {
        let now = now_ms();
        {
            let mut last = self.last_sweep_ms.lock().unwrap();
            if now - *last < SWEEP_EVERY_MS {
                return;
            }
            *last = now;
        }
        self.cache.lock().unwrap().retain(|_, c| c.session.expires_ms > now);
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = sweep(&store, now).await {
                tracing::warn!(error = %e, "console: removing expired sessions failed");
            }
        });
    }
}

/// Deletes the stored sessions that expired before `now`; how many.
pub async fn sweep(store: &SharedStore, now: i64) -> codeyard_store::StoreResult<usize> {
    let mut scan = store.scan(SESSIONS_NS, "");
    let mut expired = Vec::new();
    while let Some(page) = scan.next_page().await? {
        for doc in page {
            if doc.parse::<StoredSession>().map(|s| s.expires_ms <= now).unwrap_or(true) {
                expired.push(doc.key);
            }
        }
    }
    let n = expired.len();
    for chunk in expired.chunks(500) {
        let batch = chunk.iter().fold(Batch::new(), |b, k| b.delete(SESSIONS_NS, k, Expect::Any));
        store.commit(batch).await?;
    }
    Ok(n)
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// The session cookie: HttpOnly, SameSite=Strict, 12 hours.
pub(crate) fn set_cookie(id: &str) -> String {
    cookie::Cookie::build((COOKIE, id.to_string()))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::milliseconds(LIFETIME_MS))
        .build()
        .to_string()
}

/// The cookie that removes the session cookie (sign-out).
pub(crate) fn clear_cookie() -> String {
    cookie::Cookie::build((COOKIE, "")).path("/").http_only(true).same_site(cookie::SameSite::Strict).max_age(cookie::time::Duration::ZERO).build().to_string()
}

pub(crate) fn refused(message: &str) -> Response {
    let body = format!("<!doctype html><title>Refused</title><h1>403 Forbidden</h1><p>{}</p>", crate::views::escape(message));
    html_response(StatusCode::FORBIDDEN, body, None)
}

/// What a request does with its session's flash message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flash {
    /// A page: shows it (and so takes it).
    Take,
    /// A live stream, a download: leaves it for the next page.
    Leave,
}

impl Console {
    /// The session of a page request (GET), created when the browser has none. Under
    /// `--auth enforce` a session without a login is sent to the login form.
    pub(crate) async fn session(&self, headers: &HeaderMap) -> Result<Session, Response> {
        self.session_inner(headers, true, Flash::Take).await
    }

    /// [`Console::session`] for live streams and downloads: the flash stays for the next page.
    pub(crate) async fn quiet_session(&self, headers: &HeaderMap) -> Result<Session, Response> {
        self.session_inner(headers, true, Flash::Leave).await
    }

    pub(crate) async fn session_inner(&self, headers: &HeaderMap, require_login: bool, flash: Flash) -> Result<Session, Response> {
        let host = host_of(headers);
        if !self.app.hosts.allows(host) {
            return Err(refused(&format!("codeyard does not serve the host '{}'", host.unwrap_or(""))));
        }
        let existing = match cookie_value(headers) {
            Some(id) => self.sessions.get(&id).await.map(|s| (id, s)),
            None => None,
        };
        let (id, stored, new) = match existing {
            Some((id, s)) => (id, s, false),
            None => {
                let (id, s) = self.sessions.create();
                (id, s, true)
            }
        };
        let endpoint = match host {
            Some(h) if !h.is_empty() => format!("http://{h}"),
            _ => self.app.platform.config.public_endpoint.clone(),
        };
        let mut caller = stored.caller;
        if self.enforce()
            && let Some(c) = &caller
            && !self.still_valid(c).await
        {
            // The key was deleted or the temporary credentials expired: signed out.
            self.sessions.remove(&id).await;
            return Err(Redirect::to(&format!("{PREFIX}/login")).into_response());
        }
        let caller = match caller.take() {
            Some(c) => c,
            None if !self.enforce() => {
                let account = codeyard_core::DEFAULT_ACCOUNT.to_string();
                Caller { arn: format!("arn:aws:iam::{account}:root"), access_key: "console".into(), account }
            }
            None if require_login => {
                let mut r = Redirect::to(&format!("{PREFIX}/login")).into_response();
                if new {
                    r.headers_mut().insert(header::SET_COOKIE, set_cookie(&id).parse().expect("cookie header"));
                }
                return Err(r);
            }
            None => Caller { account: String::new(), access_key: String::new(), arn: String::new() },
        };
        let flash = match flash {
            Flash::Take if stored.flash.is_some() => self.sessions.take_flash(&id).await,
            _ => None,
        };
        Ok(Session { set_cookie: new.then(|| set_cookie(&id)), id, csrf: stored.csrf, caller, region: stored.region, endpoint, flash })
    }

    /// Whether the access key a session signed in with still resolves to the same principal.
    async fn still_valid(&self, caller: &Caller) -> bool {
        match self.app.platform.auth.lookup(&caller.access_key).await {
            Some((_, identity)) => identity.arn == caller.arn && identity.account == caller.account,
            None => false,
        }
    }

    /// The session of a state-changing POST: refused when the browser says it comes from
    /// another site, when its `Origin` is not this server as the browser addressed it, when it
    /// has no session, or when the form's CSRF token is not the session's.
    pub(crate) async fn post_session(&self, headers: &HeaderMap, csrf: Option<&str>, require_login: bool) -> Result<Session, Response> {
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
            && !matches!(site, "same-origin" | "none")
        {
            return Err(refused(&format!("a {site} request may not change anything here")));
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let host = host_of(headers).unwrap_or("");
            let same = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).is_some_and(|o| o.eq_ignore_ascii_case(host));
            if !same {
                return Err(refused(&format!("a request from the origin {origin} may not change anything here")));
            }
        }
        let known = match cookie_value(headers) {
            Some(id) => self.sessions.get(&id).await.is_some(),
            None => false,
        };
        if !known {
            return Err(refused("no console session: reload the page and try again"));
        }
        let s = self.session_inner(headers, require_login, Flash::Leave).await?;
        match csrf {
            Some(t) if constant_time_eq(t.as_bytes(), s.csrf.as_bytes()) => Ok(s),
            _ => Err(refused("the form's CSRF token is missing or stale: reload the page and try again")),
        }
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_http_only_strict_and_lasts_twelve_hours() {
        let c = set_cookie("abc");
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.starts_with("codeyard_console=abc"), "{c}");
        assert!(c.contains("Max-Age=43200"), "{c}");
        assert!(clear_cookie().contains("Max-Age=0"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; codeyard_console=xyz; b=2".parse().unwrap());
        assert_eq!(cookie_value(&h).as_deref(), Some("xyz"));
    }

    #[test]
    fn ids_are_256_random_bits_and_stored_by_their_hash() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(key_of(&a).len(), 64);
        assert_ne!(key_of(&a), a, "the store never sees the cookie's value");
    }

    #[test]
    fn tokens_compare_in_constant_time() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[tokio::test]
    async fn sessions_survive_a_new_process_and_expire() {
        let store: SharedStore = std::sync::Arc::new(codeyard_store::MemoryStore::new());
        let a = Sessions::new(store.clone());
        let (anon, _) = a.create();
        let caller = Caller { account: "000000000000".into(), access_key: "AKID".into(), arn: "arn:aws:iam::000000000000:root".into() };
        let id = a.sign_in(&anon, caller.clone()).await.unwrap();
        assert_ne!(id, anon, "signing in issues a new id");
        assert!(a.get(&anon).await.is_none());
        a.set_region(&id, "eu-west-1").await;
        a.set_flash(&id, "hello").await;
        // A second Sessions over the same store (a restarted server) knows it.
        let b = Sessions::new(store.clone());
        let s = b.get(&id).await.expect("the session survived");
        assert_eq!((s.caller.as_ref(), s.region.as_str()), (Some(&caller), "eu-west-1"));
        assert_eq!(b.take_flash(&id).await.as_deref(), Some("hello"));
        assert_eq!(b.take_flash(&id).await, None);
        // Not in plain sight: the store's key is the id's hash.
        assert!(store.get(SESSIONS_NS, &id).await.unwrap().is_none());
        // Expired: gone, and swept from the store.
        b.update(&id, |s| s.expires_ms = now_ms() - 1).await;
        let c = Sessions::new(store.clone());
        assert!(c.get(&id).await.is_none());
        assert!(store.get(SESSIONS_NS, &key_of(&id)).await.unwrap().is_none());
        b.remove(&id).await;
        let other = c.sign_in("none", caller).await.unwrap();
        c.update(&other, |s| s.expires_ms = 1).await;
        assert_eq!(sweep(&store, now_ms()).await.unwrap(), 1);
    }
}
