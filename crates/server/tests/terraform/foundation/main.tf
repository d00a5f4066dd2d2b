# The Foundation's Terraform check: caller identity, roles with inline and managed policies,
# an attachment, and a log group with retention and tags. `tag_value` is changed by the test
# to prove that a tag change is an in-place update.
variable "tag_value" {
  type    = string
  default = "one"
}

data "aws_caller_identity" "current" {}

locals {
  tags = { Deployment = "foundation", Changing = var.tag_value }
}

module "build_role" {
  source      = "./modules/service_role"
  name        = "foundation-build-role"
  description = "role for builds"
  service     = "codebuild.amazonaws.com"
  tags        = local.tags
  policy_name = "foundation-build-logs"
  statements = [
    { Effect = "Allow", Action = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], Resource = ["*"] },
  ]
}

module "pipeline_role" {
  source  = "./modules/service_role"
  name    = "foundation-pipeline-role"
  path    = "/service/"
  service = "codepipeline.amazonaws.com"
}

resource "aws_iam_policy" "artifacts" {
  name        = "foundation-artifacts"
  description = "read and write pipeline artifacts"
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["s3:GetObject", "s3:PutObject"], Resource = ["arn:aws:s3:::artifacts/*"] }]
  })
}

resource "aws_iam_role_policy_attachment" "pipeline_artifacts" {
  role       = module.pipeline_role.name
  policy_arn = aws_iam_policy.artifacts.arn
}

resource "aws_cloudwatch_log_group" "builds" {
  name              = "/foundation/builds"
  retention_in_days = 7
  tags              = local.tags
}

output "account_id" { value = data.aws_caller_identity.current.account_id }
output "caller_arn" { value = data.aws_caller_identity.current.arn }
output "build_role_arn" { value = module.build_role.arn }
output "log_group_arn" { value = aws_cloudwatch_log_group.builds.arn }
