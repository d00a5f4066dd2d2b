variable "db_host" {
  type    = string
  default = "db.internal"
}

variable "team" {
  type    = string
  default = "platform"
}
resource "aws_ssm_parameter" "host" {
  name        = "/app/config/db-host"
  type        = "String"
  value       = var.db_host
  description = "database host"
  tags = {
    team = var.team
  }
}

resource "aws_ssm_parameter" "zones" {
  name  = "/app/config/zones"
  type  = "StringList"
  value = "eu-west-1a,eu-west-1b"
}

resource "aws_ssm_parameter" "password" {
  name  = "/app/secret/db-password"
  type  = "SecureString"
  value = "tf-Sup3r-Secret-Value"
}

output "host_arn" { value = aws_ssm_parameter.host.arn }
output "host_version" { value = aws_ssm_parameter.host.version }
