//! Console sessions: an HttpOnly, SameSite=Strict cookie naming a server-side session that
//! holds the caller (root in `--auth open`; the logged-in access key in `--auth enforce`), the
//! region being looked at and the per-session CSRF token every POST must carry.
//!
//! Sessions live in memory: a restart signs everyone out (and voids old CSRF tokens), which is
//! what a console session should do; no AWS state is kept here.

use crate::{Console, PREFIX, host_of, html_response};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode, header};
use std::collections::HashMap;
use std::sync::Mutex;

pub const COOKIE: &str = "codeyard_console";
/// Sessions kept at most; the oldest are dropped beyond it.
const MAX_SESSIONS: usize = 10_000;

#[derive(Clone, Debug)]
pub struct Caller {
    pub account: String,
    pub access_key: String,
    pub arn: String,
}

#[derive(Clone, Debug)]
struct Stored {
    csrf: String,
    caller: Option<Caller>,
    region: String,
    flash: Option<String>,
    created: std::time::Instant,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Stored>>,
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
}

impl Sessions {
    fn create(&self) -> (String, Stored) {
        let id = codeyard_core::ids::alnum(40);
        let stored = Stored {
            csrf: codeyard_core::ids::alnum(40),
            caller: None,
            region: codeyard_core::DEFAULT_REGION.to_string(),
            flash: None,
            created: std::time::Instant::now(),
        };
        let mut map = self.map.lock().unwrap();
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), stored.clone());
        (id, stored)
    }

    fn get(&self, id: &str) -> Option<Stored> {
        self.map.lock().unwrap().get(id).cloned()
    }

    pub fn take_flash(&self, id: &str) -> Option<String> {
        self.map.lock().unwrap().get_mut(id).and_then(|s| s.flash.take())
    }

    pub fn set_flash(&self, id: &str, message: impl Into<String>) {
        if let Some(s) = self.map.lock().unwrap().get_mut(id) {
            s.flash = Some(message.into());
        }
    }

    pub fn set_caller(&self, id: &str, caller: Option<Caller>) {
        if let Some(s) = self.map.lock().unwrap().get_mut(id) {
            s.caller = caller;
            // A new identity gets a new token.
            s.csrf = codeyard_core::ids::alnum(40);
        }
    }

    pub fn set_region(&self, id: &str, region: &str) {
        if let Some(s) = self.map.lock().unwrap().get_mut(id) {
            s.region = region.to_string();
        }
    }
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

fn set_cookie(id: &str) -> String {
    cookie::Cookie::build((COOKIE, id.to_string())).path("/").http_only(true).same_site(cookie::SameSite::Strict).build().to_string()
}

pub(crate) fn refused(message: &str) -> Response {
    let body = format!("<!doctype html><title>Refused</title><h1>403 Forbidden</h1><p>{}</p>", crate::views::escape(message));
    html_response(StatusCode::FORBIDDEN, body, None)
}

impl Console {
    /// The session of a page request (GET), created when the browser has none. Under
    /// `--auth enforce` a session without a login is sent to the login form.
    pub(crate) fn session(&self, headers: &HeaderMap) -> Result<Session, Response> {
        self.session_inner(headers, true)
    }

    pub(crate) fn session_inner(&self, headers: &HeaderMap, require_login: bool) -> Result<Session, Response> {
        let host = host_of(headers);
        if !self.app.hosts.allows(host) {
            return Err(refused(&format!("codeyard does not serve the host '{}'", host.unwrap_or(""))));
        }
        let (id, stored, new) = match cookie_value(headers).and_then(|id| self.sessions.get(&id).map(|s| (id, s))) {
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
        let caller = match stored.caller {
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
        Ok(Session { set_cookie: new.then(|| set_cookie(&id)), id, csrf: stored.csrf, caller, region: stored.region, endpoint })
    }

    /// The session of a state-changing POST: refused when the browser says it comes from
    /// another site, when its `Origin` is not this server as the browser addressed it, when it
    /// has no session, or when the form's CSRF token is not the session's.
    pub(crate) fn post_session(&self, headers: &HeaderMap, csrf: Option<&str>, require_login: bool) -> Result<Session, Response> {
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
        if cookie_value(headers).and_then(|id| self.sessions.get(&id)).is_none() {
            return Err(refused("no console session: reload the page and try again"));
        }
        let s = self.session_inner(headers, require_login)?;
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
    fn cookie_is_http_only_and_strict() {
        let c = set_cookie("abc");
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.starts_with("codeyard_console=abc"), "{c}");
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; codeyard_console=xyz; b=2".parse().unwrap());
        assert_eq!(cookie_value(&h).as_deref(), Some("xyz"));
    }

    #[test]
    fn tokens_compare_in_constant_time() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
