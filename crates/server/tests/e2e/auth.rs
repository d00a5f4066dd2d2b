//! Authentication at the edge (issue 15): requests without AWS authentication are refused as
//! AWS refuses them, in `open` and `enforce` mode alike, and change nothing; a foreign `Host`
//! is refused (DNS rebinding); public S3 reads and CORS preflights follow the bucket's policy,
//! ACL and CORS configuration; git and the registry keep their own challenge.

use crate::common::*;
use aws_sdk_s3::primitives::ByteStream;
use codeyard_server::AuthMode;

const KEY: &str = "AKIDAUTHTEST";
const SECRET: &str = "auth-secret";

async fn server(mode: AuthMode) -> (TestServer, aws_config::SdkConfig) {
    let t = TestServer::start_with(auth_with_key(mode, KEY, SECRET)).await;
    let conf = t.sdk_config_with(KEY, SECRET).await;
    (t, conf)
}

/// Two tests, `$open` and `$enforce`: `$check` in `open` and in `enforce` mode.
macro_rules! in_both_modes {
    ($check:ident: $open:ident, $enforce:ident) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $open() {
            $check(AuthMode::Open).await;
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn $enforce() {
            $check(AuthMode::Enforce).await;
        }
    };
}

async fn status_and_text(r: reqwest::Response) -> (u16, String) {
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

async fn unsigned_requests_change_nothing(mode: AuthMode) {
    let (t, conf) = server(mode).await;
    let http = reqwest::Client::new();
    let iam = aws_sdk_iam::Client::new(&conf);
    let s3 = s3_client_for(&conf);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    s3.create_bucket().bucket("private-bucket").send().await.unwrap();

    // The form a web page can POST without a preflight.
    let form = serde_urlencoded::to_string([("Action", "CreateRole"), ("Version", "2010-05-08"), ("RoleName", "csrf-role"), ("AssumeRolePolicyDocument", TRUST)]).unwrap();
    let (status, body) = status_and_text(http.post(&t.endpoint).header("content-type", "application/x-www-form-urlencoded").body(form.clone()).send().await.unwrap()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<ErrorResponse") && body.contains("<Code>MissingAuthenticationToken</Code>"), "{body}");
    assert!(body.contains("<Message>Request is missing Authentication Token</Message>"), "{body}");
    let e = iam.get_role().role_name("csrf-role").send().await.unwrap_err().into_service_error();
    assert!(e.is_no_such_entity_exception(), "the unsigned CreateRole created nothing: {e:?}");

    // The same form with a forged presigned query, sent by a page on another site.
    let forged = format!("{}/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=test%2F20260101%2Feu-west-1%2Fiam%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00", t.endpoint);
    let r = http.post(forged).header("content-type", "application/x-www-form-urlencoded").header("origin", "https://evil.example").body(form).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(iam.get_role().role_name("csrf-role").send().await.is_err());

    // An unsigned awsJson call.
    let (status, body) = status_and_text(
        http.post(&t.endpoint)
            .header("x-amz-target", "Logs_20140328.CreateLogGroup")
            .header("content-type", "application/x-amz-json-1.1")
            .body(r#"{"logGroupName":"csrf-group"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["__type"], "MissingAuthenticationTokenException");
    assert_eq!(v["message"], "Missing Authentication Token");
    let groups = logs.describe_log_groups().send().await.unwrap();
    assert!(groups.log_groups().is_empty(), "the unsigned CreateLogGroup created nothing");

    // Unsigned S3: PUT bucket and GET / (ListBuckets).
    let (status, body) = status_and_text(http.put(format!("{}/csrf-bucket", t.endpoint)).send().await.unwrap()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    // A form POST with a forged presigned query (open mode cannot verify it) from another site.
    let forged_s3 = format!("{}/private-bucket?uploads&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=test%2F20260101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00", t.endpoint);
    let r = http.post(forged_s3).header("origin", "https://evil.example").header("content-type", "text/plain").body("x").send().await.unwrap();
    // Open mode refuses it at the gate; enforce mode's signature check refuses it (400: s3s
    // finds the presigned query incomplete).
    assert!(if mode == AuthMode::Open { r.status() == 403 } else { r.status().is_client_error() }, "{}", r.status());
    assert!(s3.list_multipart_uploads().bucket("private-bucket").send().await.unwrap().uploads().is_empty());
    let (status, body) = status_and_text(http.get(format!("{}/", t.endpoint)).send().await.unwrap()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Code>AccessDenied</Code>") && !body.contains("private-bucket"), "{body}");
    let (status, _) = status_and_text(http.get(format!("{}/private-bucket", t.endpoint)).send().await.unwrap()).await;
    assert_eq!(status, 403);
    let names: Vec<String> = s3.list_buckets().send().await.unwrap().buckets().iter().filter_map(|b| b.name().map(str::to_string)).collect();
    assert_eq!(names, vec!["private-bucket".to_string()], "the unsigned PUT created no bucket");

    // Signed requests work as before.
    iam.create_role().role_name("signed-role").assume_role_policy_document(TRUST).send().await.unwrap();
    t.assert_no_model_violations();
}

in_both_modes!(unsigned_requests_change_nothing: unsigned_requests_are_refused_in_open_mode, unsigned_requests_are_refused_in_enforce_mode);

#[tokio::test(flavor = "multi_thread")]
async fn foreign_host_is_refused() {
    let (t, conf) = server(AuthMode::Open).await;
    let port = t.endpoint.rsplit(':').next().unwrap().to_string();
    let http = reqwest::Client::new();
    let health = format!("{}/_codeyard/health", t.endpoint);
    for host in ["evil.example", "localhost.evil.example:80", "rebind.attacker.test:4566"] {
        let (status, body) = status_and_text(http.get(&health).header("host", host).send().await.unwrap()).await;
        assert_eq!(status, 403, "{host}: {body}");
        assert!(body.contains("<Code>AccessDenied</Code>") && body.contains("does not serve the host"), "{body}");
    }
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}"), format!("app.localhost:{port}")] {
        let r = http.get(&health).header("host", &host).send().await.unwrap();
        assert_eq!(r.status(), 200, "{host}");
    }
    // A signed API call under a foreign Host is refused too, in the protocol's shape.
    let signer = codeyard_server::client::AwsClient::new(&t.endpoint, REGION, "test", "test");
    let extra = [("content-type", "application/x-amz-json-1.1".to_string()), ("x-amz-target", "Logs_20140328.DescribeLogGroups".to_string())];
    let mut req = http.post(&t.endpoint).header("host", "evil.example").body("{}");
    for (k, v) in signer.sign("POST", "/", "", "logs", b"{}", &extra) {
        req = req.header(k, v);
    }
    let (status, body) = status_and_text(req.send().await.unwrap()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("AccessDeniedException"), "{body}");
    // Nothing changed by any of it; the SDK (Host: localhost) works.
    aws_sdk_cloudwatchlogs::Client::new(&conf).describe_log_groups().send().await.unwrap();
}

async fn public_reads(mode: AuthMode) {
    let (t, conf) = server(mode).await;
    let s3 = s3_client_for(&conf);
    let http = reqwest::Client::new();
    s3.create_bucket().bucket("acl-bucket").send().await.unwrap();
    s3.put_object()
        .bucket("acl-bucket")
        .key("public.txt")
        .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"for everyone"))
        .send()
        .await
        .unwrap();
    s3.put_object().bucket("acl-bucket").key("private.txt").body(ByteStream::from_static(b"secret")).send().await.unwrap();
    let (status, body) = status_and_text(http.get(format!("{}/acl-bucket/public.txt", t.endpoint)).send().await.unwrap()).await;
    assert_eq!((status, body.as_str()), (200, "for everyone"));
    let r = http.head(format!("{}/acl-bucket/public.txt", t.endpoint)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = status_and_text(http.get(format!("{}/acl-bucket/private.txt", t.endpoint)).send().await.unwrap()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Code>AccessDenied</Code>"));
    // The aws CLI without credentials, as a user of a public bucket runs it.
    let out = std::env::temp_dir().join(format!("codeyard-public-{}", std::process::id()));
    let out_s = out.to_str().unwrap();
    let (ok, _, err) = aws_cli(&t.endpoint, &["s3api", "get-object", "--no-sign-request", "--bucket", "acl-bucket", "--key", "public.txt", out_s]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "for everyone");
    let (ok, _, err) = aws_cli(&t.endpoint, &["s3api", "get-object", "--no-sign-request", "--bucket", "acl-bucket", "--key", "private.txt", out_s]);
    assert!(!ok && err.contains("AccessDenied"), "{err}");
    let (ok, _, err) = aws_cli(&t.endpoint, &["iam", "list-roles", "--no-sign-request"]);
    assert!(!ok && err.contains("MissingAuthenticationToken"), "{err}");
    let _ = std::fs::remove_file(&out);
    // The object's ACL is readable only with credentials.
    assert_eq!(http.get(format!("{}/acl-bucket/public.txt?acl", t.endpoint)).send().await.unwrap().status(), 403);
    // The bucket is not listable: only the object is public.
    assert_eq!(http.get(format!("{}/acl-bucket", t.endpoint)).send().await.unwrap().status(), 403);

    // A bucket policy for everyone on site/*.
    s3.create_bucket().bucket("site").send().await.unwrap();
    s3.put_object().bucket("site").key("index.html").body(ByteStream::from_static(b"<h1>hi</h1>")).send().await.unwrap();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"}]}"#;
    s3.put_bucket_policy().bucket("site").policy(policy).send().await.unwrap();
    let (status, body) = status_and_text(http.get(format!("{}/site/index.html", t.endpoint)).send().await.unwrap()).await;
    assert_eq!((status, body.as_str()), (200, "<h1>hi</h1>"));
    let r = http.put(format!("{}/site/index.html", t.endpoint)).body("defaced").send().await.unwrap();
    assert_eq!(r.status(), 403, "a public read grants no write");
    assert_eq!(http.delete(format!("{}/site/index.html", t.endpoint)).send().await.unwrap().status(), 403);
    let got = s3.get_object().bucket("site").key("index.html").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"<h1>hi</h1>");

    // Policy conditions see the caller's address as aws:SourceIp.
    s3.create_bucket().bucket("lan").send().await.unwrap();
    s3.put_object().bucket("lan").key("k").body(ByteStream::from_static(b"near")).send().await.unwrap();
    for (range, want) in [("10.0.0.0/8", 403), ("127.0.0.0/8", 200)] {
        let p = format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::lan/*","Condition":{{"IpAddress":{{"aws:SourceIp":"{range}"}}}}}}]}}"#);
        s3.put_bucket_policy().bucket("lan").policy(p).send().await.unwrap();
        let r = http.get(format!("{}/lan/k", t.endpoint)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), want, "from 127.0.0.1 with {range}");
    }

    // A public-read bucket ACL makes the listing public.
    s3.put_bucket_acl().bucket("site").acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead).send().await.unwrap();
    let (status, body) = status_and_text(http.get(format!("{}/site?list-type=2", t.endpoint)).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<Key>index.html</Key>"), "{body}");
    t.assert_no_model_violations();
}

in_both_modes!(public_reads: public_reads_are_served_anonymously_in_open_mode, public_reads_are_served_anonymously_in_enforce_mode);

#[tokio::test(flavor = "multi_thread")]
async fn cors_preflights_follow_the_bucket_configuration() {
    use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
    let (t, conf) = server(AuthMode::Open).await;
    let s3 = s3_client_for(&conf);
    let http = reqwest::Client::new();
    s3.create_bucket().bucket("uploads").send().await.unwrap();
    let preflight = |origin: &'static str, method: &'static str, headers: &'static str| {
        let http = http.clone();
        let url = format!("{}/uploads/file.bin", t.endpoint);
        async move {
            let r = http
                .request(reqwest::Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", method)
                .header("access-control-request-headers", headers)
                .send()
                .await
                .unwrap();
            let h = r.headers().clone();
            let (s, b) = status_and_text(r).await;
            (s, b, h)
        }
    };
    let (status, body, _) = preflight("https://app.example", "PUT", "content-type").await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>AccessForbidden</Code>") && body.contains("CORSResponse: CORS is not enabled for this bucket."), "{body}");

    let rule = CorsRule::builder()
        .allowed_origins("https://app.example")
        .allowed_methods("PUT")
        .allowed_methods("GET")
        .allowed_headers("content-*")
        .expose_headers("ETag")
        .max_age_seconds(600)
        .build()
        .unwrap();
    s3.put_bucket_cors().bucket("uploads").cors_configuration(CorsConfiguration::builder().cors_rules(rule).build().unwrap()).send().await.unwrap();

    let (status, body, h) = preflight("https://app.example", "PUT", "content-type").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-methods"], "PUT, GET");
    assert_eq!(h["access-control-allow-headers"], "content-type");
    assert_eq!(h["access-control-expose-headers"], "ETag");
    assert_eq!(h["access-control-max-age"], "600");
    for (origin, method, headers) in [("https://evil.example", "PUT", "content-type"), ("https://app.example", "DELETE", "content-type"), ("https://app.example", "PUT", "x-amz-acl")] {
        let (status, body, _) = preflight(origin, method, headers).await;
        assert_eq!(status, 403, "{origin} {method} {headers}");
        assert!(body.contains("CORSResponse: This CORS request is not allowed."), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn git_and_registry_keep_their_challenge() {
    for mode in [AuthMode::Open, AuthMode::Enforce] {
        let (t, conf) = server(mode).await;
        aws_sdk_codecommit::Client::new(&conf).create_repository().repository_name("r").send().await.unwrap();
        let http = reqwest::Client::new();
        let r = http.get(format!("{}/v1/repos/r/info/refs?service=git-upload-pack", t.endpoint)).send().await.unwrap();
        assert_eq!(r.status(), 401, "git challenges for credentials ({mode:?})");
        assert!(r.headers().contains_key("www-authenticate"));
        // The version check challenges in both modes, so clients holding credentials send them
        // (and IAM decides as the token's principal).
        let r = http.get(format!("{}/v2/", t.endpoint)).send().await.unwrap();
        assert_eq!(r.status(), 401, "the registry's version check challenges ({mode:?})");
        assert!(r.headers().contains_key("www-authenticate"));
        let r = http.get(format!("{}/v2/_catalog", t.endpoint)).send().await.unwrap();
        match mode {
            // A local registry serves local tools that send no credentials.
            AuthMode::Open => assert_eq!(r.status(), 200),
            AuthMode::Enforce => assert_eq!(r.status(), 401),
        }
    }
}
