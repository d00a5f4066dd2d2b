//! CloudWatch Logs end to end through aws-sdk-rust: groups (ARNs, retention, tags by name and
//! by ARN), streams, PutLogEvents / GetLogEvents paging in both directions, FilterLogEvents,
//! and the hub's log sink that builds stream through.

use crate::common::error_code as code;
use crate::common::*;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn event(ts: i64, m: &str) -> aws_sdk_cloudwatchlogs::types::InputLogEvent {
    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(ts).message(m).build().unwrap()
}


#[tokio::test(flavor = "multi_thread")]
async fn groups_retention_and_tags() {
    let (_t, logs) = TestServer::with(aws_sdk_cloudwatchlogs::Client::new).await;
    logs.create_log_group().log_group_name("/codebuild/app").tags("env", "dev").send().await.unwrap();
    logs.create_log_group().log_group_name("/codebuild/other").send().await.unwrap();
    logs.create_log_group().log_group_name("unrelated").send().await.unwrap();
    let e = logs.create_log_group().log_group_name("unrelated").send().await.unwrap_err().into_service_error();
    assert!(e.is_resource_already_exists_exception(), "{e:?}");

    let d = logs.describe_log_groups().log_group_name_prefix("/codebuild/").send().await.unwrap();
    let groups = d.log_groups();
    assert_eq!(groups.len(), 2);
    let g = &groups[0];
    assert_eq!(g.log_group_name(), Some("/codebuild/app"));
    assert_eq!(g.arn(), Some("arn:aws:logs:eu-west-1:000000000000:log-group:/codebuild/app:*"));
    assert_eq!(g.log_group_arn(), Some("arn:aws:logs:eu-west-1:000000000000:log-group:/codebuild/app"));
    assert!((now_ms() - g.creation_time().unwrap()).abs() < 60_000, "creationTime is epoch milliseconds");
    assert_eq!(g.retention_in_days(), None);
    assert_eq!(g.stored_bytes(), Some(0));

    logs.put_retention_policy().log_group_name("/codebuild/app").retention_in_days(7).send().await.unwrap();
    let e = logs.put_retention_policy().log_group_name("/codebuild/app").retention_in_days(2).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "InvalidParameterException");
    let e = logs.put_retention_policy().log_group_name("/nope").retention_in_days(7).send().await.unwrap_err().into_service_error();
    assert!(e.is_resource_not_found_exception());
    let d = logs.describe_log_groups().log_group_name_prefix("/codebuild/app").send().await.unwrap();
    assert_eq!(d.log_groups()[0].retention_in_days(), Some(7), "the refused value changed nothing");
    logs.delete_retention_policy().log_group_name("/codebuild/app").send().await.unwrap();
    let d = logs.describe_log_groups().log_group_name_prefix("/codebuild/app").send().await.unwrap();
    assert_eq!(d.log_groups()[0].retention_in_days(), None);

    // Paging.
    let p1 = logs.describe_log_groups().limit(2).send().await.unwrap();
    assert_eq!(p1.log_groups().len(), 2);
    let p2 = logs.describe_log_groups().limit(2).next_token(p1.next_token().unwrap()).send().await.unwrap();
    assert_eq!(p2.log_groups().len(), 1);
    assert!(p2.next_token().is_none());

    // Tags by ARN and by name.
    let arn = "arn:aws:logs:eu-west-1:000000000000:log-group:/codebuild/app";
    logs.tag_resource().resource_arn(arn).tags("team", "x").send().await.unwrap();
    // The ARN DescribeLogGroups gives as `arn` ends in ":*", which the model's pattern for
    // resourceArn refuses (Terraform strips it); `logGroupArn` is the one to pass.
    let e = logs.tag_resource().resource_arn(format!("{arn}:*")).tags("env", "bad").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidParameterException");
    logs.tag_resource().resource_arn(arn).tags("env", "prod").send().await.unwrap();
    let tags = logs.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
    let tags = tags.tags().unwrap();
    assert_eq!((tags.get("env").map(String::as_str), tags.get("team").map(String::as_str)), (Some("prod"), Some("x")));
    logs.untag_resource().resource_arn(arn).tag_keys("team").send().await.unwrap();
    #[allow(deprecated)]
    {
        let old = logs.list_tags_log_group().log_group_name("/codebuild/app").send().await.unwrap();
        assert_eq!(old.tags().unwrap().len(), 1);
        logs.tag_log_group().log_group_name("/codebuild/app").tags("k", "v").send().await.unwrap();
        logs.untag_log_group().log_group_name("/codebuild/app").tags("env").send().await.unwrap();
        let old = logs.list_tags_log_group().log_group_name("/codebuild/app").send().await.unwrap();
        assert_eq!(old.tags().unwrap().keys().collect::<Vec<_>>(), ["k"]);
    }
    let e = logs.list_tags_for_resource().resource_arn("arn:aws:logs:eu-west-1:000000000000:log-group:ghost").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "ResourceNotFoundException");

    logs.delete_log_group().log_group_name("/codebuild/app").send().await.unwrap();
    let e = logs.delete_log_group().log_group_name("/codebuild/app").send().await.unwrap_err().into_service_error();
    assert!(e.is_resource_not_found_exception());
    // Too long a name, a name outside the pattern: refused, nothing created.
    let e = logs.create_log_group().log_group_name("g".repeat(513)).send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "InvalidParameterException");
    let e = logs.create_log_group().log_group_name("bad:name").send().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "InvalidParameterException");
    assert_eq!(logs.describe_log_groups().send().await.unwrap().log_groups().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_page_both_ways_and_filter() {
    let (_t, logs) = TestServer::with(aws_sdk_cloudwatchlogs::Client::new).await;
    logs.create_log_group().log_group_name("g").send().await.unwrap();
    logs.create_log_stream().log_group_name("g").log_stream_name("a").send().await.unwrap();
    logs.create_log_stream().log_group_name("g").log_stream_name("b").send().await.unwrap();
    let e = logs.create_log_stream().log_group_name("g").log_stream_name("a").send().await.unwrap_err().into_service_error();
    assert!(e.is_resource_already_exists_exception());
    let e = logs.put_log_events().log_group_name("g").log_stream_name("zz").log_events(event(now_ms(), "x")).send().await.unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());

    let base = now_ms() - 60_000;
    let mut put = logs.put_log_events().log_group_name("g").log_stream_name("a");
    for i in 0..25 {
        let level = if i % 5 == 0 { "ERROR" } else { "INFO" };
        put = put.log_events(event(base + i, &format!("{level} step {i} disk full")));
    }
    let out = put.send().await.unwrap();
    assert!(out.rejected_log_events_info().is_none());
    logs.put_log_events().log_group_name("g").log_stream_name("b").log_events(event(base + 3, "WARN from b")).send().await.unwrap();
    // Out of order is refused; too new is reported.
    let e = logs.put_log_events().log_group_name("g").log_stream_name("b").log_events(event(base + 10, "x")).log_events(event(base + 9, "y")).send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidParameterException");
    let out = logs
        .put_log_events()
        .log_group_name("g")
        .log_stream_name("b")
        .log_events(event(now_ms(), "ok"))
        .log_events(event(now_ms() + 3 * 3600 * 1000, "future"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.rejected_log_events_info().unwrap().too_new_log_event_start_index(), Some(1));

    // Forward from the head in pages of 10, to the end (the token repeats at the end).
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = logs.get_log_events().log_group_name("g").log_stream_name("a").start_from_head(true).limit(10).set_next_token(token.clone()).send().await.unwrap();
        seen.extend(page.events().iter().map(|e| e.timestamp().unwrap() - base));
        let next = page.next_forward_token().unwrap().to_string();
        if token.as_deref() == Some(next.as_str()) {
            break;
        }
        token = Some(next);
    }
    assert_eq!(seen, (0..25).collect::<Vec<_>>());
    // Default (latest first page), then backward.
    let tail = logs.get_log_events().log_group_name("g").log_stream_name("a").limit(10).send().await.unwrap();
    let ts: Vec<i64> = tail.events().iter().map(|e| e.timestamp().unwrap() - base).collect();
    assert_eq!(ts, (15..25).collect::<Vec<_>>());
    assert!(tail.events()[0].ingestion_time().unwrap() >= base);
    let back = logs.get_log_events().log_group_name("g").log_stream_name("a").limit(10).next_token(tail.next_backward_token().unwrap()).send().await.unwrap();
    let ts: Vec<i64> = back.events().iter().map(|e| e.timestamp().unwrap() - base).collect();
    assert_eq!(ts, (5..15).collect::<Vec<_>>());
    // A time window.
    let window = logs.get_log_events().log_group_name("g").log_stream_name("a").start_time(base + 3).end_time(base + 6).start_from_head(true).send().await.unwrap();
    assert_eq!(window.events().len(), 3);

    // Filters: a term, a phrase, any-of, across streams, paged.
    let f = logs.filter_log_events().log_group_name("g").filter_pattern("ERROR").send().await.unwrap();
    assert_eq!(f.events().len(), 5);
    assert!(f.events().iter().all(|e| e.log_stream_name() == Some("a") && e.event_id().is_some()));
    let f = logs.filter_log_events().log_group_name("g").filter_pattern("\"step 2 disk\"").send().await.unwrap();
    assert_eq!(f.events().len(), 1);
    let f = logs.filter_log_events().log_group_name("g").filter_pattern("?WARN ?ERROR").send().await.unwrap();
    assert_eq!(f.events().len(), 6);
    assert_eq!(f.events()[1].log_stream_name(), Some("b"), "merged by time: base+3 from b comes after base+0");
    let f = logs.filter_log_events().log_group_name("g").log_stream_names("b").send().await.unwrap();
    assert_eq!(f.events().len(), 2);
    let p1 = logs.filter_log_events().log_group_name("g").limit(20).send().await.unwrap();
    assert_eq!(p1.events().len(), 20);
    let p2 = logs.filter_log_events().log_group_name("g").limit(20).next_token(p1.next_token().unwrap()).send().await.unwrap();
    assert_eq!(p2.events().len(), 7);
    assert!(p2.next_token().is_none());

    // Streams ordered by last event, descending.
    let s = logs.describe_log_streams().log_group_name("g").order_by(aws_sdk_cloudwatchlogs::types::OrderBy::LastEventTime).descending(true).send().await.unwrap();
    let names: Vec<&str> = s.log_streams().iter().filter_map(|s| s.log_stream_name()).collect();
    assert_eq!(names, ["b", "a"]);
    let a = &s.log_streams()[1];
    assert_eq!(a.first_event_timestamp(), Some(base));
    assert_eq!(a.last_event_timestamp(), Some(base + 24));
    assert_eq!(a.arn(), Some("arn:aws:logs:eu-west-1:000000000000:log-group:g:log-stream:a"));
    let s = logs.describe_log_streams().log_group_name("g").log_stream_name_prefix("a").send().await.unwrap();
    assert_eq!(s.log_streams().len(), 1);
    let stored = logs.describe_log_groups().log_group_name_prefix("g").send().await.unwrap().log_groups()[0].stored_bytes();
    assert!(stored.unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hub_sink_streams_build_lines() {
    let t = TestServer::start().await;
    let sink = t.server.as_ref().unwrap().platform.hub.logs().unwrap();
    let ctx = codeyard_core::RequestContext::internal(ACCOUNT, REGION, &t.endpoint);
    sink.ensure_stream(&ctx, "/aws/codebuild/p", "build-1").await.unwrap();
    sink.ensure_stream(&ctx, "/aws/codebuild/p", "build-1").await.unwrap();
    let base = now_ms();
    let started = std::time::Instant::now();
    for i in 0..300 {
        sink.append(&ctx, "/aws/codebuild/p", "build-1", vec![(base + i, format!("line {i}"))]).await.unwrap();
    }
    let per_line = started.elapsed() / 300;
    assert!(per_line < std::time::Duration::from_millis(50), "append is cheap: {per_line:?} per line");
    let logs = aws_sdk_cloudwatchlogs::Client::new(&t.sdk_config().await);
    let got = logs.get_log_events().log_group_name("/aws/codebuild/p").log_stream_name("build-1").start_from_head(true).send().await.unwrap();
    assert_eq!(got.events().len(), 300);
    assert_eq!(got.events()[299].message(), Some("line 299"));
    t.assert_no_model_violations();
}
