//! S3 -> EventBridge: buckets whose notification configuration has `EventBridgeConfiguration`
//! (`aws_s3_bucket_notification { eventbridge = true }`) send "Object Created" and "Object
//! Deleted" events, in AWS's shape, to the bucket owner's default bus in the bucket's region.
//! Each event is queued on the store's events outbox in the same commit as the object change it
//! reports, so an acknowledged write has its event and a write that did not happen has none.

use super::*;
use codeyard_core::hub::BusEvent;
use serde_json::json;

/// Who changed an object and through which operation: the `reason`, `requester`,
/// `request-id` and `source-ip-address` of the event.
#[derive(Clone, Debug)]
pub struct Notice {
    /// `PutObject`, `CopyObject`, `CompleteMultipartUpload`, `DeleteObject`, `DeleteObjects`.
    pub reason: &'static str,
    /// The requester's account id.
    pub requester: String,
    pub request_id: String,
    pub source_ip: Option<String>,
}

impl Notice {
    pub fn new(reason: &'static str, ctx: &codeyard_core::RequestContext) -> Notice {
        Notice {
            reason,
            requester: ctx.account.clone(),
            request_id: ctx.request_id.clone(),
            source_ip: ctx.source_ip.map(|ip| ip.to_string()),
        }
    }
}

/// What happened to the object.
pub(super) enum Happened {
    Created,
    /// `deletion-type`: "Permanently Deleted" or "Delete Marker Created".
    Deleted(&'static str),
}

/// Adds the event of `o`'s change to `batch` when the bucket sends events to EventBridge and
/// the change has a [`Notice`] (engine-internal rewrites have none).
pub(super) fn notify(
    batch: Batch,
    b: &BucketDoc,
    notice: Option<&Notice>,
    o: &ObjectDoc,
    happened: Happened,
) -> Batch {
    match notice {
        Some(n) if b.eventbridge => batch.publish_event(object_event(b, n, o, happened)),
        _ => batch,
    }
}

fn object_event(b: &BucketDoc, n: &Notice, o: &ObjectDoc, happened: Happened) -> BusEvent {
    let mut object = json!({ "key": o.key });
    if let Happened::Created = happened {
        object["size"] = json!(o.size);
        object["etag"] = json!(o.etag);
    }
    if o.version_id != "null" && !o.version_id.is_empty() {
        object["version-id"] = json!(o.version_id);
    }
    object["sequencer"] = json!(format!("{:016X}", o.seq));
    let mut detail = json!({
        "version": "0",
        "bucket": { "name": b.name },
        "object": object,
        "request-id": n.request_id,
        "requester": n.requester,
        "reason": n.reason,
    });
    if let Some(ip) = &n.source_ip {
        detail["source-ip-address"] = json!(ip);
    }
    let detail_type = match happened {
        Happened::Created => "Object Created",
        Happened::Deleted(kind) => {
            detail["deletion-type"] = json!(kind);
            "Object Deleted"
        }
    };
    BusEvent::aws_service_event(
        &b.account,
        &b.region,
        "aws.s3",
        detail_type,
        vec![crate::meta::bucket_arn(&b.name)],
        detail,
    )
}
