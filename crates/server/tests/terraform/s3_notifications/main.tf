# S3 -> EventBridge: a bucket whose object changes go to the default event bus.
module "notified" {
  source      = "./modules/bucket"
  name        = "tf-notify-bucket"
  eventbridge = true
}
