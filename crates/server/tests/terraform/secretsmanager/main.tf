variable "password" {
  type    = string
  default = "tf-first-password-7Qx"
}
resource "aws_kms_key" "secrets" {
  description             = "secrets key"
  deletion_window_in_days = 7
}

resource "aws_secretsmanager_secret" "db" {
  name                    = "tf/db"
  description             = "database credentials"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 0
  tags = {
    app = "demo"
  }
}

resource "aws_secretsmanager_secret_version" "db" {
  secret_id     = aws_secretsmanager_secret.db.id
  secret_string = jsonencode({ username = "admin", password = var.password })
}

resource "aws_secretsmanager_secret" "plain" {
  name = "tf/plain"
}

resource "aws_secretsmanager_secret_version" "plain" {
  secret_id     = aws_secretsmanager_secret.plain.id
  secret_string = "plain-value"
}

output "db_arn" { value = aws_secretsmanager_secret.db.arn }
