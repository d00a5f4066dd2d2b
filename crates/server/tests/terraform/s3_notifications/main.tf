# S3 -> EventBridge: a bucket whose object changes go to the default event bus.
resource "aws_s3_bucket" "notified" {
  bucket        = "tf-notify-bucket"
  force_destroy = true
}

resource "aws_s3_bucket_notification" "to_eventbridge" {
  bucket      = aws_s3_bucket.notified.id
  eventbridge = true
}
