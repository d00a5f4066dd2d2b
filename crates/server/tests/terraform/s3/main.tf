# A versioned, tagged bucket with a policy, a lifecycle, default encryption and a public
# access block, an object in it, and one under a KMS key (SSE-KMS).
module "artifacts" {
  source     = "./modules/bucket"
  name       = "codeyard-tf-artifacts"
  versioning = true
  tags = {
    team = "platform"
    env  = "test"
  }
}

resource "aws_s3_bucket_policy" "artifacts" {
  bucket = module.artifacts.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecure"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = ["arn:aws:s3:::codeyard-tf-artifacts", "arn:aws:s3:::codeyard-tf-artifacts/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

# The provider waits at least 55 s after creating this, whatever the server: 10 s, then ten
# equal GetBucketLifecycleConfiguration answers 5 s apart (waitLifecycleConfigEquals, 5.100.0).
resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = module.artifacts.id
  rule {
    id     = "expire-old"
    status = "Enabled"
    filter {
      prefix = "tmp/"
    }
    expiration {
      days = 30
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = module.artifacts.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = module.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_object" "readme" {
  bucket       = module.artifacts.id
  key          = "docs/readme.txt"
  content      = "hello from terraform"
  content_type = "text/plain"
  tags = {
    kind = "doc"
  }
  depends_on = [module.artifacts]
}

resource "aws_kms_key" "objects" {
  description             = "objects key"
  deletion_window_in_days = 7
}

resource "aws_s3_object" "sealed" {
  bucket                 = module.artifacts.id
  key                    = "docs/sealed.txt"
  content                = "under a kms key"
  server_side_encryption = "aws:kms"
  kms_key_id             = aws_kms_key.objects.arn
  depends_on             = [module.artifacts]
}

output "kms_key_arn" {
  value = aws_kms_key.objects.arn
}

output "etag" {
  value = aws_s3_object.readme.etag
}

output "version_id" {
  value = aws_s3_object.readme.version_id
}
