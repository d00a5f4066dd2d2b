//! Bucket notification configuration: EventBridge delivery (see `engine::notify`). SQS, SNS and
//! Lambda destinations are refused as AWS refuses a destination it cannot validate: codeyard
//! has none of those services.

use super::*;

pub(super) async fn put_bucket_notification_configuration(api: &Api, req: S3Request<PutBucketNotificationConfigurationInput>) -> R<PutBucketNotificationConfigurationOutput> {
    let i = req.input;
    let c = i.notification_configuration;
    let others = c
        .queue_configurations
        .as_ref()
        .is_some_and(|v| !v.is_empty())
        || c.topic_configurations
            .as_ref()
            .is_some_and(|v| !v.is_empty())
        || c.lambda_function_configurations
            .as_ref()
            .is_some_and(|v| !v.is_empty());
    if others {
        return Err(s3err(
            "InvalidArgument",
            400,
            "Unable to validate the following destination configurations: codeyard delivers bucket notifications to EventBridge only (EventBridgeConfiguration)",
        ));
    }
    let on = c.event_bridge_configuration.is_some();
    api.engine
        .update_bucket(&i.bucket, |b| {
            b.eventbridge = on;
            Ok(())
        })
        .await?;
    ok(PutBucketNotificationConfigurationOutput {})
}

pub(super) async fn get_bucket_notification_configuration(api: &Api, req: S3Request<GetBucketNotificationConfigurationInput>) -> R<GetBucketNotificationConfigurationOutput> {
    let b = api.engine.bucket(&req.input.bucket).await?;
    ok(GetBucketNotificationConfigurationOutput {
        event_bridge_configuration: b.eventbridge.then(EventBridgeConfiguration::default),
        ..Default::default()
    })
}
