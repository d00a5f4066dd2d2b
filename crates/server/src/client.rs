//! A small AWS client for codeyard's own commands (`codeyard demo`, `logs`, `doctor`): it
//! speaks awsJson1.1 and awsQuery to a codeyard endpoint over plain HTTP, SigV4-signed with the
//! given keys (so it works under `--auth enforce` too). Answers come back as JSON values in
//! the awsJson shape; AWS errors as [`AwsError`].

use codeyard_core::AwsError;
use codeyard_wire::sigv4;
use serde_json::Value;

#[derive(Clone)]
pub struct AwsClient {
    http: reqwest::Client,
    pub endpoint: String,
    pub region: String,
    access_key: String,
    secret_key: String,
}

impl AwsClient {
    pub fn new(endpoint: &str, region: &str, access_key: &str, secret_key: &str) -> Self {
        AwsClient {
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region: region.to_string(),
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
        }
    }

    fn host(&self) -> &str {
        self.endpoint.split("://").nth(1).unwrap_or(&self.endpoint)
    }

    /// Signs a request to `path?query` with the given body; returns the headers to add (all
    /// but `host`, which the HTTP client sets). Tests sign their raw requests with it: codeyard
    /// refuses unsigned ones, as AWS does.
    pub fn sign(&self, method: &str, path: &str, query: &str, service: &str, body: &[u8], extra: &[(&str, String)]) -> Vec<(String, String)> {
        let now = chrono::Utc::now();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let date = now.format("%Y%m%d").to_string();
        let payload_hash = sigv4::sha256_hex(body);
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.host().to_string()),
            ("x-amz-content-sha256".into(), payload_hash.clone()),
            ("x-amz-date".into(), amz_date.clone()),
        ];
        for (k, v) in extra {
            headers.push((k.to_ascii_lowercase(), v.clone()));
        }
        headers.sort();
        let mut map = http::HeaderMap::new();
        for (k, v) in &headers {
            map.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        let signed_headers: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
        let sig = sigv4::SigV4 {
            access_key: self.access_key.clone(),
            date: date.clone(),
            region: self.region.clone(),
            service: service.to_string(),
            signed_headers: signed_headers.clone(),
            signature: String::new(),
            amz_date: amz_date.clone(),
            presigned: false,
        };
        let signature = sigv4::compute_signature(&sig, &self.secret_key, method, path, query, &map, &payload_hash);
        headers.push((
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{date}/{}/{service}/aws4_request, SignedHeaders={}, Signature={signature}",
                self.access_key,
                self.region,
                signed_headers.join(";")
            ),
        ));
        headers.retain(|(k, _)| k != "host");
        headers
    }

    /// POSTs `body` to `/`, signed for `service` with the `extra` headers: (status, body).
    async fn post_signed(&self, service: &str, body: Vec<u8>, extra: &[(&str, String)]) -> Result<(u16, Vec<u8>), AwsError> {
        let headers = self.sign("POST", "/", "", service, &body, extra);
        let mut req = self.http.post(format!("{}/", self.endpoint)).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| AwsError::internal(format!("cannot reach {}: {e}", self.endpoint)))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| AwsError::internal(e.to_string()))?;
        Ok((status, bytes.to_vec()))
    }

    /// An awsJson1.1 call: `target` is e.g. `CodePipeline_20150709.GetPipelineState`.
    pub async fn json(&self, service: &str, target: &str, input: Value) -> Result<Value, AwsError> {
        let body = serde_json::to_vec(&input).expect("json");
        let extra = [
            ("content-type", "application/x-amz-json-1.1".to_string()),
            ("x-amz-target", target.to_string()),
        ];
        let (status, bytes) = self.post_signed(service, body, &extra).await?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status >= 300 {
            let code = v["__type"].as_str().unwrap_or("Unknown").rsplit('#').next().unwrap_or("Unknown").to_string();
            let msg = v["message"].as_str().or(v["Message"].as_str()).unwrap_or("").to_string();
            return Err(AwsError::new(status, code, msg));
        }
        Ok(v)
    }

    /// An awsQuery call (IAM, STS): params are sent form-encoded; the XML answer is returned
    /// as text (callers only need success or the error code).
    pub async fn query(&self, service: &str, action: &str, version: &str, params: &[(&str, &str)]) -> Result<String, AwsError> {
        let mut form: Vec<(&str, &str)> = vec![("Action", action), ("Version", version)];
        form.extend_from_slice(params);
        let body = serde_urlencoded::to_string(&form).expect("form").into_bytes();
        let extra = [("content-type", "application/x-www-form-urlencoded; charset=utf-8".to_string())];
        let (status, bytes) = self.post_signed(service, body, &extra).await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status >= 300 {
            let code = between(&text, "<Code>", "</Code>").unwrap_or("Unknown").to_string();
            let msg = between(&text, "<Message>", "</Message>").unwrap_or("").to_string();
            return Err(AwsError::new(status, code, msg));
        }
        Ok(text)
    }

    /// A rest-xml (S3) call with an optional body; returns (status, body text).
    pub async fn s3(&self, method: &str, path: &str, body: Vec<u8>) -> Result<(u16, String), AwsError> {
        let headers = self.sign(method, path, "", "s3", &body, &[]);
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, format!("{}{path}", self.endpoint)).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| AwsError::internal(format!("cannot reach {}: {e}", self.endpoint)))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status >= 300 {
            let code = between(&text, "<Code>", "</Code>").unwrap_or("Unknown").to_string();
            let msg = between(&text, "<Message>", "</Message>").unwrap_or("").to_string();
            return Err(AwsError::new(status, code, msg));
        }
        Ok((status, text))
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}
