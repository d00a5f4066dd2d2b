# An S3-source pipeline started by S3's "Object Created" events (issue 18), wired as AWS's
# console does it: a versioned bucket sending its events to EventBridge, a rule on source
# aws.s3 / detail-type "Object Created" for the bucket and key, the pipeline as the rule's
# target through a role EventBridge may assume. PollForSourceChanges is off, so the events
# alone start executions.

resource "aws_s3_bucket" "uploads" {
  bucket        = "tf-uploads"
  force_destroy = true
}

resource "aws_s3_bucket_versioning" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_notification" "uploads" {
  bucket      = aws_s3_bucket.uploads.id
  eventbridge = true
}

resource "aws_s3_bucket" "artifacts" {
  bucket        = "tf-s3src-artifacts"
  force_destroy = true
}

resource "aws_s3_bucket" "site" {
  bucket        = "tf-s3src-site"
  force_destroy = true
}

module "pipeline_role" {
  source  = "./modules/service_role"
  name    = "s3src-pipeline"
  service = "codepipeline.amazonaws.com"
}

resource "aws_iam_role_policy" "pipeline" {
  name = "s3"
  role = module.pipeline_role.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetBucketVersioning", "s3:PutObject", "s3:ListBucket"]
      Resource = ["*"]
    }]
  })
}

resource "aws_codepipeline" "uploads" {
  name          = "tf-s3-source"
  role_arn      = module.pipeline_role.arn
  pipeline_type = "V2"
  depends_on    = [aws_iam_role_policy.pipeline, aws_s3_bucket_versioning.uploads]

  artifact_store {
    type     = "S3"
    location = aws_s3_bucket.artifacts.bucket
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
        S3Bucket             = aws_s3_bucket.uploads.bucket
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
        BucketName = aws_s3_bucket.site.bucket
        Extract    = "true"
      }
    }
  }
}

module "events_role" {
  source  = "./modules/service_role"
  name    = "s3src-events"
  service = "events.amazonaws.com"
}

resource "aws_iam_role_policy" "events" {
  name = "start"
  role = module.events_role.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["codepipeline:StartPipelineExecution"], Resource = [aws_codepipeline.uploads.arn] }]
  })
}

resource "aws_cloudwatch_event_rule" "uploaded" {
  name = "tf-bundle-uploaded"
  event_pattern = jsonencode({
    source      = ["aws.s3"]
    detail-type = ["Object Created"]
    detail = {
      bucket = { name = [aws_s3_bucket.uploads.bucket] }
      object = { key = ["app/bundle.zip"] }
    }
  })
}

resource "aws_cloudwatch_event_target" "pipeline" {
  rule       = aws_cloudwatch_event_rule.uploaded.name
  target_id  = "pipeline"
  arn        = aws_codepipeline.uploads.arn
  role_arn   = module.events_role.arn
  depends_on = [aws_iam_role_policy.events]
}
