//! The "As Terraform" views: HCL for hashicorp/aws that recreates a pipeline and what it
//! depends on (or everything of the account and region), from `codeyard_export::terraform` as
//! the session's caller, shown in a `<pre>` with a copy button and a download link
//! (`?download=1`, a `.tf` file).

use super::*;
use codeyard_export::Selection;

#[derive(Deserialize)]
pub struct TerraformQuery {
    download: Option<String>,
}

pub async fn pipeline_terraform(State(c): State<Shared>, Path(name): Path<String>, Query(q): Query<TerraformQuery>, headers: HeaderMap) -> Response {
    let back = format!("{PREFIX}/pipelines/{}", seg(&name));
    terraform(&c, &headers, Selection::Pipeline(name.clone()), &format!("pipeline {name}"), &name, Some(back), q).await
}

pub async fn account_terraform(State(c): State<Shared>, Query(q): Query<TerraformQuery>, headers: HeaderMap) -> Response {
    terraform(&c, &headers, Selection::All, "the account and region", "codeyard", None, q).await
}

async fn terraform(c: &Console, headers: &HeaderMap, selection: Selection, what: &str, file: &str, back: Option<String>, q: TerraformQuery) -> Response {
    let download = q.download.is_some();
    let s = if download { c.quiet_session(headers).await } else { c.session(headers).await };
    let s = match s {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ctx = c.context(&s);
    let hcl = codeyard_export::terraform(&c.app, &ctx, selection, &s.endpoint).await;
    let file = format!("{}.tf", file.chars().map(|ch| if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' { ch } else { '_' }).collect::<String>());
    match (hcl, download) {
        (Ok(hcl), true) => (
            [
                (http::header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
                (http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
                (http::header::CACHE_CONTROL, "no-store".to_string()),
            ],
            hcl,
        )
            .into_response(),
        (Err(e), true) => c.error_page(&s, &e),
        (hcl, false) => {
            let (hcl, error) = match hcl {
                Ok(h) => (Some(h), None),
                Err(e) => (None, Some(format!("{}: {}", e.code, e.message))),
            };
            let data = json!({"what": what, "hcl": hcl, "error": error, "file": file, "back": back, "region": s.region, "endpoint": s.endpoint});
            c.page(&s, "terraform.html", &format!("{what} as Terraform"), data)
        }
    }
}
