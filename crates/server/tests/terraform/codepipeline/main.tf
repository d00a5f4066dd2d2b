# aws_codepipeline as the devops demo declares it (V1, SUPERSEDED, PollForSourceChanges=false)
# and a V2 pipeline with QUEUED mode, pipeline variables and an action namespace.
variable "build_project" {
  type    = string
  default = "demo-build"
}

# CodePipeline refuses a role it may not assume, so the role is declared with its trust.
module "codepipeline_role" {
  source  = "./modules/service_role"
  name    = "codepipeline-role"
  service = "codepipeline.amazonaws.com"
}

resource "aws_codepipeline" "seed" {
  name     = "tf-seed-pipeline"
  role_arn = module.codepipeline_role.arn

  artifact_store {
    type     = "S3"
    location = "tf-artifacts"
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
        RepositoryName       = "tf-repo"
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
        ProjectName = var.build_project
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
        BucketName = "tf-artifacts"
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
        ProjectName = "demo-docker"
      }
    }
  }

  tags = {
    project = "codeyard"
    build   = var.build_project
  }
}

resource "aws_codepipeline" "v2" {
  name           = "tf-v2-pipeline"
  role_arn       = module.codepipeline_role.arn
  pipeline_type  = "V2"
  execution_mode = "QUEUED"

  artifact_store {
    type     = "S3"
    location = "tf-artifacts"
  }

  variable {
    name          = "env"
    default_value = "dev"
    description   = "target environment"
  }

  stage {
    name = "Source"
    action {
      name             = "Source"
      category         = "Source"
      owner            = "AWS"
      provider         = "CodeCommit"
      version          = "1"
      namespace        = "SourceVariables"
      output_artifacts = ["src"]
      configuration = {
        RepositoryName       = "tf-repo"
        BranchName           = "main"
        PollForSourceChanges = "false"
        OutputArtifactFormat = "CODEBUILD_CLONE_REF"
      }
    }
  }

  stage {
    name = "Build"
    action {
      name             = "Build"
      category         = "Build"
      owner            = "AWS"
      provider         = "CodeBuild"
      version          = "1"
      namespace        = "BuildVariables"
      input_artifacts  = ["src"]
      output_artifacts = ["built"]
      configuration = {
        ProjectName          = var.build_project
        EnvironmentVariables = jsonencode([{ name = "ENV", value = "#{variables.env}", type = "PLAINTEXT" }, { name = "COMMIT", value = "#{SourceVariables.CommitId}", type = "PLAINTEXT" }])
      }
    }
  }

  stage {
    name = "Approve"
    action {
      name     = "Approve"
      category = "Approval"
      owner    = "AWS"
      provider = "Manual"
      version  = "1"
      configuration = {
        CustomData = "Deploy #{BuildVariables.IMAGE_TAG}?"
      }
    }
  }
}
