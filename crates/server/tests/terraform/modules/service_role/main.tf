# A role one AWS service may assume: CodeBuild, CodePipeline and EventBridge refuse a role
# whose trust policy does not name them ("CodeBuild is not authorized to perform:
# sts:AssumeRole", "CodePipeline is not authorized to perform AssumeRole on role ..."), so
# every configuration declares its service roles through this module, trust included, and
# with it the role's inline policy when `statements` is given.
# `terraform_workspace` (tests/e2e/common) copies it to ./modules/service_role beside each
# configuration.
variable "name" {
  type = string
}

variable "service" {
  description = "the service principal, codebuild.amazonaws.com"
  type        = string
}

variable "path" {
  type    = string
  default = "/"
}

variable "description" {
  type    = string
  default = null
}

variable "tags" {
  type    = map(string)
  default = null
}

variable "statements" {
  description = "the statements of the role's inline policy (none when null)"
  type        = any
  default     = null
}

variable "policy_name" {
  type    = string
  default = "permissions"
}

resource "aws_iam_role" "this" {
  name        = var.name
  path        = var.path
  description = var.description
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = var.service }, Action = "sts:AssumeRole" }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "this" {
  count  = var.statements == null ? 0 : 1
  name   = var.policy_name
  role   = aws_iam_role.this.id
  policy = jsonencode({ Version = "2012-10-17", Statement = var.statements })
}

output "arn" { value = aws_iam_role.this.arn }
output "name" { value = aws_iam_role.this.name }
output "id" { value = aws_iam_role.this.id }
