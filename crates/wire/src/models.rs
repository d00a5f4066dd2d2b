//! AWS's own service models (botocore's `service-2.json`, embedded gzipped from `models/`).
//!
//! They give every service its protocol, `X-Amz-Target` prefix, operations, shapes, required
//! members, constraints and error names. The wire layer validates inputs against them and,
//! in strict mode, checks outputs too.

use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

macro_rules! embedded {
    ($($name:literal),*) => {
        fn embedded_bytes(name: &str) -> Option<&'static [u8]> {
            match name {
                $($name => Some(include_bytes!(concat!("../../../models/", $name, ".json.gz"))),)*
                _ => None,
            }
        }
        /// Every embedded model name.
        pub const MODEL_NAMES: &[&str] = &[$($name),*];
    };
}
embedded!("iam", "sts", "logs", "codecommit", "codebuild", "codepipeline", "events", "ecr", "s3", "kms", "ssm", "secretsmanager", "ecs");

/// One parsed service model.
pub struct ServiceModel {
    pub name: &'static str,
    pub json: Value,
    /// Operation names in the model.
    pub operations: Vec<String>,
}

impl ServiceModel {
    pub fn metadata(&self, field: &str) -> Option<&str> {
        self.json["metadata"][field].as_str()
    }
    /// `json`, `query` or `rest-xml`.
    pub fn protocol(&self) -> &str {
        self.metadata("protocol").unwrap_or("json")
    }
    /// The `X-Amz-Target` prefix for awsJson services (`Logs_20140328`).
    pub fn target_prefix(&self) -> Option<&str> {
        self.metadata("targetPrefix")
    }
    pub fn api_version(&self) -> &str {
        self.metadata("apiVersion").unwrap_or("")
    }
    pub fn signing_name(&self) -> &str {
        self.metadata("signingName").or(self.metadata("endpointPrefix")).unwrap_or(self.name)
    }
    pub fn xml_namespace(&self) -> String {
        self.json["metadata"]["xmlNamespace"].as_str().map(str::to_string).unwrap_or_else(|| {
            format!("https://{}.amazonaws.com/doc/{}/", self.signing_name(), self.api_version())
        })
    }
    pub fn operation(&self, name: &str) -> Option<&Value> {
        self.json["operations"].get(name)
    }
    pub fn shape(&self, name: &str) -> Option<&Value> {
        self.json["shapes"].get(name)
    }
    pub fn input_shape(&self, op: &str) -> Option<&str> {
        self.operation(op)?["input"]["shape"].as_str()
    }
    pub fn output_shape(&self, op: &str) -> Option<&str> {
        self.operation(op)?["output"]["shape"].as_str()
    }
    /// The `resultWrapper` element of an awsQuery output (`CreateRoleResult`).
    pub fn result_wrapper(&self, op: &str) -> Option<&str> {
        self.operation(op)?["output"]["resultWrapper"].as_str()
    }
    /// Error shape names an operation declares.
    pub fn errors(&self, op: &str) -> Vec<String> {
        self.operation(op)
            .and_then(|o| o["errors"].as_array())
            .map(|a| a.iter().filter_map(|e| e["shape"].as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }
    /// The error code an error shape is sent as (awsQuery models rename some, e.g.
    /// `NoSuchEntityException` is sent as `NoSuchEntity`).
    pub fn error_code(&self, shape: &str) -> String {
        self.shape(shape)
            .and_then(|s| s["error"]["code"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| shape.to_string())
    }
}

static MODELS: OnceLock<HashMap<&'static str, ServiceModel>> = OnceLock::new();

fn load(name: &'static str) -> ServiceModel {
    let gz = embedded_bytes(name).expect("model embedded");
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz).read_to_string(&mut text).expect("model decompresses");
    let json: Value = serde_json::from_str(&text).expect("model parses");
    let operations = json["operations"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    ServiceModel { name, json, operations }
}

/// The model of a service by its file name (`iam`, `logs`, `codecommit`, ...).
pub fn model(name: &str) -> Option<&'static ServiceModel> {
    MODELS.get_or_init(|| MODEL_NAMES.iter().map(|n| (*n, load(n))).collect()).get(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn models_load_with_protocols() {
        assert_eq!(model("iam").unwrap().protocol(), "query");
        assert_eq!(model("sts").unwrap().protocol(), "query");
        assert_eq!(model("logs").unwrap().target_prefix(), Some("Logs_20140328"));
        assert_eq!(model("events").unwrap().target_prefix(), Some("AWSEvents"));
        assert_eq!(model("s3").unwrap().protocol(), "rest-xml");
        assert_eq!(model("iam").unwrap().error_code("NoSuchEntityException"), "NoSuchEntity");
        assert_eq!(model("iam").unwrap().result_wrapper("GetRole"), Some("GetRoleResult"));
    }
}
