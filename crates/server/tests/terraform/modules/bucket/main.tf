# A bucket as the configurations use one: emptied on destroy, optionally versioned and sending
# its object events to EventBridge (what an S3-source pipeline needs). `terraform_workspace`
# (tests/e2e/common) copies it to ./modules/bucket beside each configuration.
variable "name" {
  type = string
}

variable "versioning" {
  type    = bool
  default = false
}

variable "eventbridge" {
  description = "send the bucket's events to EventBridge's default bus"
  type        = bool
  default     = false
}

variable "tags" {
  type    = map(string)
  default = null
}

resource "aws_s3_bucket" "this" {
  bucket        = var.name
  force_destroy = true
  tags          = var.tags
}

resource "aws_s3_bucket_versioning" "this" {
  count  = var.versioning ? 1 : 0
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_notification" "this" {
  count       = var.eventbridge ? 1 : 0
  bucket      = aws_s3_bucket.this.id
  eventbridge = true
}

output "id" { value = aws_s3_bucket.this.id }
output "bucket" { value = aws_s3_bucket.this.bucket }
output "arn" { value = aws_s3_bucket.this.arn }
