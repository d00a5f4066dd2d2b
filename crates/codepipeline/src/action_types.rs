//! The action types codeyard runs: their artifact counts and configuration properties, for
//! validation (CreatePipeline refuses what codeyard would not run) and for ListActionTypes /
//! GetActionType.

use crate::model::ActionTypeId;

pub struct Property {
    pub name: &'static str,
    pub required: bool,
    pub key: bool,
    pub description: &'static str,
}

pub struct ActionTypeSpec {
    pub category: &'static str,
    pub provider: &'static str,
    pub inputs: (u32, u32),
    pub outputs: (u32, u32),
    pub properties: &'static [Property],
}

impl ActionTypeSpec {
    pub fn id(&self) -> ActionTypeId {
        ActionTypeId {
            category: self.category.into(),
            owner: "AWS".into(),
            provider: self.provider.into(),
            version: "1".into(),
        }
    }
}

const fn p(name: &'static str, required: bool, key: bool, description: &'static str) -> Property {
    Property {
        name,
        required,
        key,
        description,
    }
}

#[rustfmt::skip]
mod tables {
    use super::{ActionTypeSpec, Property, p};

    pub const CODECOMMIT: &[Property] = &[
        p("RepositoryName", true, true, "The name of the CodeCommit repository"),
        p("BranchName", true, true, "The branch to take changes from"),
        p("PollForSourceChanges", false, false, "Whether CodePipeline polls the branch for changes"),
        p("OutputArtifactFormat", false, false, "CODE_ZIP or CODEBUILD_CLONE_REF"),
    ];
    pub const S3_SOURCE: &[Property] = &[
        p("S3Bucket", true, true, "The versioned bucket holding the source object"),
        p("S3ObjectKey", true, true, "The key of the source object (a zip)"),
        p("PollForSourceChanges", false, false, "Whether CodePipeline polls the object for changes"),
        p("AllowOverrideForS3ObjectKey", false, false, "Whether StartPipelineExecution may override the key"),
    ];
    pub const ECR_SOURCE: &[Property] = &[
        p("RepositoryName", true, true, "The ECR repository"),
        p("ImageTag", false, false, "The image tag (latest by default)"),
    ];
    pub const CODEBUILD: &[Property] = &[
        p("ProjectName", true, true, "The CodeBuild project"),
        p("PrimarySource", false, false, "The input artifact used as the primary source"),
        p("EnvironmentVariables", false, false, "JSON list of {name, value, type}"),
        p("BatchEnabled", false, false, "Whether to run a batch build"),
        p("CombineArtifacts", false, false, "Whether to combine batch artifacts"),
        p("BuildspecOverride", false, false, "A buildspec to use instead of the project's"),
    ];
    pub const S3_DEPLOY: &[Property] = &[
        p("BucketName", true, true, "The bucket to deploy to"),
        p("Extract", true, false, "Whether to unzip the artifact before deploying"),
        p("ObjectKey", false, false, "The object key (or the key prefix when extracting)"),
        p("KMSEncryptionKeyARN", false, false, "The KMS key for the deployed objects"),
        p("CannedACL", false, false, "The canned ACL of the deployed objects"),
        p("CacheControl", false, false, "The Cache-Control of the deployed objects"),
    ];
    pub const ECS_DEPLOY: &[Property] = &[
        p("ClusterName", true, true, "The ECS cluster"),
        p("ServiceName", true, true, "The ECS service to deploy to"),
        p("FileName", false, false, "The image definitions file in the input artifact (imagedefinitions.json by default)"),
        p("DeploymentTimeout", false, false, "Minutes to wait for the deployment (60 by default)"),
    ];
    pub const MANUAL: &[Property] = &[
        p("NotificationArn", false, false, "The SNS topic to notify"),
        p("CustomData", false, false, "Text shown to the approver"),
        p("ExternalEntityLink", false, false, "A URL shown to the approver"),
    ];

    /// (category, provider, input artifacts (min, max), output artifacts (min, max), properties)
    pub static CATALOG: &[ActionTypeSpec] = &[
        ActionTypeSpec { category: "Source", provider: "CodeCommit", inputs: (0, 0), outputs: (1, 1), properties: CODECOMMIT },
        ActionTypeSpec { category: "Source", provider: "S3", inputs: (0, 0), outputs: (1, 1), properties: S3_SOURCE },
        ActionTypeSpec { category: "Source", provider: "ECR", inputs: (0, 0), outputs: (1, 1), properties: ECR_SOURCE },
        ActionTypeSpec { category: "Build", provider: "CodeBuild", inputs: (1, 5), outputs: (0, 5), properties: CODEBUILD },
        ActionTypeSpec { category: "Test", provider: "CodeBuild", inputs: (1, 5), outputs: (0, 5), properties: CODEBUILD },
        ActionTypeSpec { category: "Deploy", provider: "S3", inputs: (1, 1), outputs: (0, 0), properties: S3_DEPLOY },
        ActionTypeSpec { category: "Deploy", provider: "ECS", inputs: (1, 1), outputs: (0, 0), properties: ECS_DEPLOY },
        ActionTypeSpec { category: "Approval", provider: "Manual", inputs: (0, 0), outputs: (0, 0), properties: MANUAL },
    ];
}

pub use tables::CATALOG;

/// Action types AWS knows but codeyard does not run yet (refused with a clear message): none
/// of the catalog's now.
pub fn not_yet_run(_id: &ActionTypeId) -> bool {
    false
}

pub fn find(id: &ActionTypeId) -> Option<&'static ActionTypeSpec> {
    CATALOG.iter().find(|s| {
        s.category == id.category
            && s.provider == id.provider
            && id.owner == "AWS"
            && id.version == "1"
    })
}
