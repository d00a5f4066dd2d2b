# aws_codebuild_project in the two shapes of the acceptance topology, plus one with a
# CODEPIPELINE source, an S3 cache and logs_config (CloudWatch and S3 logs).
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.100.0"
    }
  }
}

# CodeBuild refuses a service role it may not assume, so the role is declared with its trust.
module "codebuild_role" {
  source  = "./modules/service_role"
  name    = "tf-codebuild"
  service = "codebuild.amazonaws.com"
}

locals {
  role = module.codebuild_role.arn
  tags = {
    Deployment = "tf-codebuild"
    Terraform  = "true"
  }
}

resource "aws_codebuild_project" "build_and_test" {
  name          = "tf-build-and-test"
  description   = "Builds the Java service and runs its unit tests"
  build_timeout = 5
  service_role  = local.role

  source {
    type            = "CODECOMMIT"
    location        = "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/tf-repo"
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
      group_name = "tf-codebuild-logs"
    }
  }

  tags = local.tags
}

resource "aws_codebuild_project" "docker_image" {
  name          = "tf-docker-image"
  description   = "Bakes the jar into a Docker image and pushes it to ECR"
  build_timeout = 10
  service_role  = local.role

  source {
    type            = "CODECOMMIT"
    location        = "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/tf-repo"
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
      value = "eu-west-1"
    }
  }

  tags = local.tags
}

resource "aws_codebuild_project" "pipeline" {
  name           = "tf-pipeline"
  service_role   = local.role
  queued_timeout = 60

  source {
    type      = "CODEPIPELINE"
    buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n"
  }

  artifacts {
    type = "CODEPIPELINE"
  }

  cache {
    type     = "S3"
    location = "tf-cache-bucket/cache"
  }

  environment {
    type         = "LINUX_CONTAINER"
    image        = "aws/codebuild/standard:7.0"
    compute_type = "BUILD_GENERAL1_MEDIUM"
    environment_variable {
      name  = "STAGE"
      value = "test"
      type  = "PLAINTEXT"
    }
  }

  logs_config {
    cloudwatch_logs {
      status      = "ENABLED"
      group_name  = "tf-pipeline-logs"
      stream_name = "builds"
    }
    s3_logs {
      status   = "ENABLED"
      location = "tf-cache-bucket/logs"
    }
  }
}
