//! Templates and embedded assets. Every template and asset is compiled into the binary
//! (`include_str!`): the console works offline.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use minijinja::{Environment, Value, context};
use serde::Serialize;

/// What every page template gets as `c`.
#[derive(Serialize)]
pub struct Common {
    pub prefix: &'static str,
    pub title: String,
    pub caller: String,
    pub mode: &'static str,
    pub region: String,
    pub csrf: String,
    pub flash: Option<String>,
    pub endpoint: String,
}

pub struct Templates {
    env: Environment<'static>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("pipelines.html", include_str!("../templates/pipelines.html")),
    ("pipeline.html", include_str!("../templates/pipeline.html")),
    ("pipeline_live.html", include_str!("../templates/pipeline_live.html")),
    ("projects.html", include_str!("../templates/projects.html")),
    ("project.html", include_str!("../templates/project.html")),
    ("build.html", include_str!("../templates/build.html")),
    ("build_live.html", include_str!("../templates/build_live.html")),
    ("repos.html", include_str!("../templates/repos.html")),
    ("repo.html", include_str!("../templates/repo.html")),
    ("images.html", include_str!("../templates/images.html")),
    ("image.html", include_str!("../templates/image.html")),
    ("events.html", include_str!("../templates/events.html")),
    ("roles.html", include_str!("../templates/roles.html")),
    ("activity.html", include_str!("../templates/activity.html")),
    ("activity_live.html", include_str!("../templates/activity_live.html")),
    ("buckets.html", include_str!("../templates/buckets.html")),
    ("bucket.html", include_str!("../templates/bucket.html")),
    ("bucket_settings.html", include_str!("../templates/bucket_settings.html")),
    ("terraform.html", include_str!("../templates/terraform.html")),
];

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).unwrap_or_else(|e| panic!("console template {name}: {e:#}"));
        }
        env.add_filter("time", |v: Value| fmt_epoch(v.as_i64().map(|s| s as f64).or_else(|| f64::try_from(v).ok())));
        env.add_filter("ms_time", |v: Value| fmt_epoch(v.as_i64().map(|ms| ms as f64 / 1000.0)));
        env.add_filter("dur", |start: Value, end: Option<Value>| {
            let s = f64::try_from(start).ok();
            let e = end.and_then(|e| f64::try_from(e).ok());
            match (s, e) {
                (Some(s), Some(e)) => fmt_secs((e - s).max(0.0)),
                (Some(s), None) => format!("running since {}", fmt_clock(s)),
                _ => String::new(),
            }
        });
        env.add_filter("secs", |v: Value| v.as_i64().map(|s| fmt_secs(s as f64)).unwrap_or_default());
        env.add_filter("short", |v: String, n: Option<usize>| v.chars().take(n.unwrap_or(8)).collect::<String>());
        env.add_filter("bytes", |v: Value| v.as_i64().map(fmt_bytes).unwrap_or_default());
        env.add_filter("pretty_json", |v: String| match serde_json::from_str::<serde_json::Value>(&v) {
            Ok(j) => serde_json::to_string_pretty(&j).unwrap_or(v),
            Err(_) => v,
        });
        env.add_filter("urldecode", |v: String| {
            if v.starts_with('%') { url::form_urlencoded::parse(format!("x={}", v.replace('+', "%2B")).as_bytes()).next().map(|(_, d)| d.into_owned()).unwrap_or(v) } else { v }
        });
        Templates { env }
    }

    pub fn render<T: Serialize>(&self, name: &str, common: &Common, data: &T) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(context! { c => common, d => Value::from_serialize(data) })
    }
}

impl Default for Templates {
    fn default() -> Self {
        Templates::new()
    }
}

fn fmt_clock(secs: f64) -> String {
    chrono::DateTime::from_timestamp_millis((secs * 1000.0) as i64).map(|t| t.format("%H:%M:%S").to_string()).unwrap_or_default()
}

fn fmt_epoch(secs: Option<f64>) -> String {
    let Some(secs) = secs else { return String::new() };
    match chrono::DateTime::from_timestamp_millis((secs * 1000.0) as i64) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => String::new(),
    }
}

fn fmt_secs(s: f64) -> String {
    let s = s.round() as i64;
    if s < 60 { format!("{s}s") } else if s < 3600 { format!("{}m {}s", s / 60, s % 60) } else { format!("{}h {}m", s / 3600, (s % 3600) / 60) }
}

fn fmt_bytes(n: i64) -> String {
    const UNITS: &[&str] = &["B", "KB", "MB", "GB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, ty) = match file.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, ty), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common() -> Common {
        Common {
            prefix: crate::PREFIX,
            title: "t".into(),
            caller: "arn:aws:iam::000000000000:root".into(),
            mode: "open",
            region: "eu-west-1".into(),
            csrf: "tok".into(),
            flash: Some("<b>hi</b>".into()),
            endpoint: "http://localhost:4566".into(),
        }
    }

    #[test]
    fn every_template_parses_and_pages_escape_what_they_show() {
        let t = Templates::new();
        let html = t.render("error.html", &common(), &serde_json::json!({"code": "X", "message": "<script>alert(1)</script>"})).unwrap();
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;b&gt;hi"), "the flash is escaped");
        assert!(html.contains("name=\"csrf\" value=\"tok\""));
    }

    #[test]
    fn filters_format_times_durations_and_sizes() {
        assert_eq!(fmt_epoch(Some(0.0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_secs(75.0), "1m 15s");
        assert_eq!(fmt_bytes(2048), "2.0 KB");
        let t = Templates::new();
        let mut env = t.env.clone();
        env.add_template("x", "{{ 1.5|time }} {{ 1|dur(4) }} {{ 'a/b c'|urlencode }} {{ 'abcdefghij'|short }}").unwrap();
        assert_eq!(env.get_template("x").unwrap().render(()).unwrap(), "1970-01-01 00:00:01 UTC 3s a/b%20c abcdefgh");
    }
}
