variable "description" {
  type    = string
  default = "codeyard app key"
}
resource "aws_kms_key" "app" {
  description             = var.description
  deletion_window_in_days = 7
  enable_key_rotation     = true
  tags = {
    team = "platform"
  }
}

resource "aws_kms_alias" "app" {
  name          = "alias/tf-app"
  target_key_id = aws_kms_key.app.key_id
}

output "key_arn" { value = aws_kms_key.app.arn }
output "key_id" { value = aws_kms_key.app.key_id }
