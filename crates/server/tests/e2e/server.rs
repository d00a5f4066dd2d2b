//! The server itself: health, protocol dispatch, AWS-shaped errors for what is unknown.

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn health_names_version_and_services() {
    let t = TestServer::start().await;
    let body: serde_json::Value = reqwest::get(format!("{}/_codeyard/health", t.endpoint)).await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], codeyard_server::VERSION);
    assert!(body["services"].is_object());
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_json_target_is_a_4xx_naming_it() {
    let t = TestServer::start().await;
    let extra = [("content-type", "application/x-amz-json-1.1".to_string()), ("x-amz-target", "NoSuchService_2020.DoThing".to_string())];
    let signer = codeyard_server::client::AwsClient::new(&t.endpoint, REGION, "test", "test");
    let mut req = reqwest::Client::new().post(&t.endpoint).body("{}");
    for (k, v) in signer.sign("POST", "/", "", "nosuchservice", b"{}", &extra) {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().contains_key("x-amzn-requestid"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["__type"], "UnknownOperationException");
    assert!(body["message"].as_str().unwrap().contains("DoThing"));
}

/// The README's operations table is generated (`scripts/update-readme-ops.sh`), never hand-kept.
#[tokio::test(flavor = "multi_thread")]
async fn readme_operations_table_matches_the_code() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let begin = readme.find("<!-- ops:begin -->\n").expect("ops:begin marker") + "<!-- ops:begin -->\n".len();
    let end = readme.find("<!-- ops:end -->").expect("ops:end marker");
    let generated = codeyard_server::coverage_markdown().await.unwrap();
    assert_eq!(&readme[begin..end], generated, "README's operations table is stale: run scripts/update-readme-ops.sh");
}
