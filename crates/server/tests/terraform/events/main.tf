resource "aws_cloudwatch_event_bus" "audit" {
  name = "tf-audit"
  tags = { purpose = "audit" }
}

# The rule the console wizard creates for a CodeCommit source, spelled out.
resource "aws_cloudwatch_event_rule" "on_push" {
  name        = "tf-on-push"
  description = "push to master"
  event_pattern = jsonencode({
    source        = ["aws.codecommit"]
    "detail-type" = ["CodeCommit Repository State Change"]
    resources     = ["arn:aws:codecommit:eu-west-1:000000000000:demo-repo"]
    detail = {
      event         = ["referenceCreated", "referenceUpdated"]
      referenceType = ["branch"]
      referenceName = ["master"]
    }
  })
  tags = { team = "ci" }
}

resource "aws_cloudwatch_event_target" "to_bus" {
  rule      = aws_cloudwatch_event_rule.on_push.name
  target_id = "ToAudit"
  arn       = aws_cloudwatch_event_bus.audit.arn
  role_arn  = "arn:aws:iam::000000000000:role/events-forwarder"
  input_transformer {
    input_paths = {
      repo   = "$.detail.repositoryName"
      commit = "$.detail.commitId"
    }
    input_template = "{\"repo\": <repo>, \"commit\": <commit>}"
  }
}

resource "aws_cloudwatch_event_rule" "nightly" {
  name                = "tf-nightly"
  schedule_expression = "cron(0 3 * * ? *)"
  tags                = { team = "ci", kind = "schedule" }
}

resource "aws_cloudwatch_event_target" "nightly_build" {
  rule      = aws_cloudwatch_event_rule.nightly.name
  target_id = "NightlyBuild"
  arn       = "arn:aws:codebuild:eu-west-1:000000000000:project/nightly"
  role_arn  = "arn:aws:iam::000000000000:role/events-build"
  input     = jsonencode({ sourceVersion = "master" })
}

resource "aws_cloudwatch_event_rule" "on_bus" {
  name           = "tf-on-audit"
  event_bus_name = aws_cloudwatch_event_bus.audit.name
  event_pattern  = jsonencode({ source = [{ prefix = "aws." }] })
  state          = "DISABLED"
}
