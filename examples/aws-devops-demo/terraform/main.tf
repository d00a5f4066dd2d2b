# The AWS DevOps demonstration topology, written as for AWS and applied to codeyard.
# Only the provider's `endpoints` block (and the base image variable) are codeyard-specific.
#
#   terraform init && terraform apply -var endpoint=http://localhost:4566 -var base_image=localhost:4566/base/busybox:1
#
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.100.0"
    }
  }
}

variable "endpoint" {
  description = "The local AWS-compatible endpoint."
  type        = string
  default     = "http://localhost:4566"
}

variable "prefix" {
  type    = string
  default = "cyexample"
}

variable "env" {
  type    = string
  default = "dev"
}

variable "base_image" {
  description = "Base image for the service image (a local one where nothing can be pulled)."
  type        = string
  default     = "eclipse-temurin:17-jre-alpine"
}

provider "aws" {
  region     = "eu-west-1"
  access_key = "test"
  secret_key = "test"

  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true

  endpoints {
    codecommit   = var.endpoint
    codepipeline = var.endpoint
    codebuild    = var.endpoint
    events       = var.endpoint
    s3           = var.endpoint
    ecr          = var.endpoint
    iam          = var.endpoint
    sts          = var.endpoint
    logs         = var.endpoint
  }
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  name       = "${var.prefix}-${var.env}"
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  tags = {
    Deployment  = local.name
    Environment = var.env
    Terraform   = "true"
  }
}

# ---------------------------------------------------------------- source
resource "aws_codecommit_repository" "repo" {
  repository_name = "${local.name}-codecommit-repo"
  description     = "AWS DevOps demonstration repository"
}

# ---------------------------------------------------------------- storage
resource "aws_s3_bucket" "artifacts" {
  bucket        = "${local.name}-codebuild-artifact-bucket"
  force_destroy = true
  tags          = local.tags
}

resource "aws_s3_bucket" "cache" {
  bucket        = "${local.name}-codebuild-cache-bucket"
  force_destroy = true
  tags          = local.tags
}

resource "aws_cloudwatch_log_group" "builds" {
  name              = "${local.name}-codebuild-logs"
  retention_in_days = 7
  tags              = local.tags
}

resource "aws_ecr_repository" "app" {
  name         = "${local.name}-ecr-java-crm-demo"
  force_delete = true
  tags         = local.tags
}

# ---------------------------------------------------------------- IAM
resource "aws_iam_role" "codebuild" {
  name = "${local.name}-codebuild-iam-role"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "codebuild.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "codebuild" {
  name = "${local.name}-codebuild-iam-role-policy"
  role = aws_iam_role.codebuild.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], Resource = ["*"] },
      {
        Effect = "Allow", Action = ["s3:*"],
        Resource = [
          aws_s3_bucket.artifacts.arn, "${aws_s3_bucket.artifacts.arn}/*",
          aws_s3_bucket.cache.arn, "${aws_s3_bucket.cache.arn}/*",
        ]
      },
      { Effect = "Allow", Action = ["ecr:GetAuthorizationToken"], Resource = ["*"] },
      {
        Effect = "Allow",
        Action = [
          "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", "ecr:BatchCheckLayerAvailability", "ecr:PutImage",
          "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload",
        ],
        Resource = [aws_ecr_repository.app.arn]
      },
      { Effect = "Allow", Action = ["codecommit:GitPull"], Resource = [aws_codecommit_repository.repo.arn] },
    ]
  })
}

resource "aws_iam_role" "codepipeline" {
  name = "${local.name}-codepipeline-iam-role"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "codepipeline.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "codepipeline" {
  name = "${local.name}-codepipeline-iam-role-policy"
  role = aws_iam_role.codepipeline.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = ["s3:*"], Resource = [aws_s3_bucket.artifacts.arn, "${aws_s3_bucket.artifacts.arn}/*"] },
      {
        Effect   = "Allow", Action = ["codebuild:BatchGetBuilds", "codebuild:StartBuild"],
        Resource = [aws_codebuild_project.build_and_test.arn, aws_codebuild_project.docker_image.arn]
      },
      {
        Effect = "Allow",
        Action = [
          "codecommit:GitPull", "codecommit:GetBranch", "codecommit:GetCommit", "codecommit:UploadArchive",
          "codecommit:GetUploadArchiveStatus", "codecommit:CancelUploadArchive",
        ],
        Resource = [aws_codecommit_repository.repo.arn]
      },
    ]
  })
}

resource "aws_iam_role" "events" {
  name = "${local.name}-codecommit-cloudwatch-iam-role"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "events.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "events" {
  name = "${local.name}-codecommit-cloudwatch-iam-role-policy"
  role = aws_iam_role.events.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["codepipeline:StartPipelineExecution"], Resource = [aws_codepipeline.pipeline.arn] }]
  })
}

# ---------------------------------------------------------------- builds
resource "aws_codebuild_project" "build_and_test" {
  name          = "${local.name}-codebuild-build-and-test-project"
  description   = "Builds the Java service and runs its unit tests"
  build_timeout = 5
  service_role  = aws_iam_role.codebuild.arn

  source {
    type            = "CODECOMMIT"
    location        = aws_codecommit_repository.repo.clone_url_http
    git_clone_depth = 1
    buildspec       = "codebuild/buildspec_build_and_test.yml"
  }

  artifacts {
    type = "NO_ARTIFACTS"
  }

  environment {
    type         = "LINUX_CONTAINER"
    image        = "aws/codebuild/standard:7.0"
    compute_type = "BUILD_GENERAL1_SMALL"
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.builds.name
    }
  }

  tags = local.tags
}

resource "aws_codebuild_project" "docker_image" {
  name          = "${local.name}-codebuild-build-docker-image-project"
  description   = "Bakes the jar into a Docker image and pushes it to ECR"
  build_timeout = 10
  service_role  = aws_iam_role.codebuild.arn

  source {
    type            = "CODECOMMIT"
    location        = aws_codecommit_repository.repo.clone_url_http
    git_clone_depth = 1
    buildspec       = "codebuild/buildspec_build_docker_image.yml"
  }

  artifacts {
    type = "NO_ARTIFACTS"
  }

  environment {
    type            = "LINUX_CONTAINER"
    image           = "aws/codebuild/standard:7.0"
    compute_type    = "BUILD_GENERAL1_SMALL"
    privileged_mode = true

    environment_variable {
      name  = "MY_IMAGE_NAME"
      value = "demo/java-devops-crm-demo"
    }
    environment_variable {
      name  = "MY_AWS_REGION"
      value = local.region
    }
    environment_variable {
      name  = "MY_ECR_REPO"
      value = aws_ecr_repository.app.name
    }
    environment_variable {
      name  = "MY_AWS_ACCOUNT_ID"
      value = local.account_id
    }
    environment_variable {
      name  = "MY_S3_APP_BUCKET"
      value = aws_s3_bucket.artifacts.bucket
    }
    environment_variable {
      name  = "BASE_IMAGE"
      value = var.base_image
    }
  }

  tags = local.tags
}

# ---------------------------------------------------------------- pipeline
resource "aws_codepipeline" "pipeline" {
  name     = "${local.name}-codepipeline-project"
  role_arn = aws_iam_role.codepipeline.arn

  artifact_store {
    type     = "S3"
    location = aws_s3_bucket.artifacts.bucket
  }

  stage {
    name = "Source"
    action {
      name             = "Source"
      category         = "Source"
      owner            = "AWS"
      provider         = "CodeCommit"
      version          = "1"
      output_artifacts = ["source-artifact"]
      configuration = {
        RepositoryName       = aws_codecommit_repository.repo.repository_name
        BranchName           = "master"
        PollForSourceChanges = "false"
      }
    }
  }

  stage {
    name = "BuildAndTest"
    action {
      name             = "BuildAndTest"
      category         = "Build"
      owner            = "AWS"
      provider         = "CodeBuild"
      version          = "1"
      run_order        = 1
      input_artifacts  = ["source-artifact"]
      output_artifacts = ["app-jar-artifact"]
      configuration = {
        ProjectName = aws_codebuild_project.build_and_test.name
      }
    }
    action {
      name            = "UploadJar"
      category        = "Deploy"
      owner           = "AWS"
      provider        = "S3"
      version         = "1"
      run_order       = 2
      input_artifacts = ["app-jar-artifact"]
      configuration = {
        BucketName = aws_s3_bucket.artifacts.bucket
        Extract    = "true"
        ObjectKey  = "app-jar"
      }
    }
  }

  stage {
    name = "BuildDockerImage"
    action {
      name            = "BuildDockerImage"
      category        = "Build"
      owner           = "AWS"
      provider        = "CodeBuild"
      version         = "1"
      input_artifacts = ["source-artifact"]
      configuration = {
        ProjectName = aws_codebuild_project.docker_image.name
      }
    }
  }
}

# ---------------------------------------------------------------- trigger
# The piece the console wizard creates by itself and IaC must spell out:
# without it a push to master never starts the pipeline.
resource "aws_cloudwatch_event_rule" "on_push" {
  name = "${local.name}-codecommit-cloudwatch-event-rule"
  event_pattern = jsonencode({
    source        = ["aws.codecommit"]
    "detail-type" = ["CodeCommit Repository State Change"]
    resources     = [aws_codecommit_repository.repo.arn]
    detail = {
      event         = ["referenceCreated", "referenceUpdated"]
      referenceType = ["branch"]
      referenceName = ["master"]
    }
  })
}

resource "aws_cloudwatch_event_target" "pipeline" {
  rule      = aws_cloudwatch_event_rule.on_push.name
  target_id = "CodePipeline"
  arn       = aws_codepipeline.pipeline.arn
  role_arn  = aws_iam_role.events.arn
}

# ---------------------------------------------------------------- outputs
output "clone_url_http" {
  value = aws_codecommit_repository.repo.clone_url_http
}

output "pipeline_name" {
  value = aws_codepipeline.pipeline.name
}

output "artifact_bucket" {
  value = aws_s3_bucket.artifacts.bucket
}

output "ecr_repository_url" {
  value = aws_ecr_repository.app.repository_url
}

output "ecr_repository_name" {
  value = aws_ecr_repository.app.name
}
