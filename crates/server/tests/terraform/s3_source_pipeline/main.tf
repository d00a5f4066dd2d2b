# An S3-source pipeline started by S3's "Object Created" events (issue 18), wired as AWS's
# console does it: a versioned bucket sending its events to EventBridge, a rule on source
# aws.s3 / detail-type "Object Created" for the bucket and key, the pipeline as the rule's
# target through a role EventBridge may assume. PollForSourceChanges is off, so the events
# alone start executions.

module "uploads" {
  source      = "./modules/bucket"
  name        = "tf-uploads"
  versioning  = true
  eventbridge = true
}

module "artifacts" {
  source = "./modules/bucket"
  name   = "tf-s3src-artifacts"
}

module "site" {
  source = "./modules/bucket"
  name   = "tf-s3src-site"
}

module "pipeline_role" {
  source      = "./modules/service_role"
  name        = "s3src-pipeline"
  service     = "codepipeline.amazonaws.com"
  policy_name = "s3"
  statements = [{
    Effect   = "Allow"
    Action   = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetBucketVersioning", "s3:PutObject", "s3:ListBucket"]
    Resource = ["*"]
  }]
}

resource "aws_codepipeline" "uploads" {
  name          = "tf-s3-source"
  role_arn      = module.pipeline_role.arn
  pipeline_type = "V2"
  # The role's policy and the bucket's versioning are in place before the first execution.
  depends_on = [module.pipeline_role, module.uploads]

  artifact_store {
    type     = "S3"
    location = module.artifacts.bucket
  }

  stage {
    name = "Source"
    action {
      name             = "Upload"
      category         = "Source"
      owner            = "AWS"
      provider         = "S3"
      version          = "1"
      namespace        = "SourceVariables"
      output_artifacts = ["bundle"]
      configuration = {
        S3Bucket             = module.uploads.bucket
        S3ObjectKey          = "app/bundle.zip"
        PollForSourceChanges = "false"
      }
    }
  }

  stage {
    name = "Deploy"
    action {
      name            = "Publish"
      category        = "Deploy"
      owner           = "AWS"
      provider        = "S3"
      version         = "1"
      input_artifacts = ["bundle"]
      configuration = {
        BucketName = module.site.bucket
        Extract    = "true"
      }
    }
  }
}

module "events_role" {
  source      = "./modules/service_role"
  name        = "s3src-events"
  service     = "events.amazonaws.com"
  policy_name = "start"
  statements  = [{ Effect = "Allow", Action = ["codepipeline:StartPipelineExecution"], Resource = [aws_codepipeline.uploads.arn] }]
}

resource "aws_cloudwatch_event_rule" "uploaded" {
  name = "tf-bundle-uploaded"
  event_pattern = jsonencode({
    source      = ["aws.s3"]
    detail-type = ["Object Created"]
    detail = {
      bucket = { name = [module.uploads.bucket] }
      object = { key = ["app/bundle.zip"] }
    }
  })
}

resource "aws_cloudwatch_event_target" "pipeline" {
  rule       = aws_cloudwatch_event_rule.uploaded.name
  target_id  = "pipeline"
  arn        = aws_codepipeline.uploads.arn
  role_arn   = module.events_role.arn
  depends_on = [module.events_role]
}
