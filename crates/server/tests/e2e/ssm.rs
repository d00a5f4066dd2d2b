//! SSM Parameter Store: String, StringList and SecureString parameters (KMS-encrypted at rest,
//! never in plain text in the data dir), versions, selectors, labels, hierarchies with
//! GetParametersByPath, DescribeParameters' filters and paging, history, tags, AWS's errors;
//! the hub's ParameterReader as a build's role; the aws CLI; Terraform's `aws_ssm_parameter`.

use crate::common::*;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{ParameterStringFilter, ParameterTier, ParameterType, ParametersFilter, ParametersFilterKey, ResourceTypeForTagging, Tag};

async fn ssm(t: &TestServer) -> Client {
    Client::new(&t.sdk_config().await)
}

/// The message of an SDK error (modeled or not).
fn message<E: aws_sdk_ssm::error::ProvideErrorMetadata>(err: &E) -> String {
    err.message().unwrap_or_default().to_string()
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

fn filter(key: &str, option: Option<&str>, values: &[&str]) -> ParameterStringFilter {
    let mut b = ParameterStringFilter::builder().key(key).set_option(option.map(str::to_string));
    for v in values {
        b = b.values(*v);
    }
    b.build().unwrap()
}

async fn put(c: &Client, name: &str, value: &str, ty: ParameterType) -> i64 {
    c.put_parameter().name(name).value(value).r#type(ty).send().await.unwrap_or_else(|e| panic!("PutParameter {name}: {e:?}")).version()
}

async fn overwrite(c: &Client, name: &str, value: &str) -> i64 {
    c.put_parameter().name(name).value(value).overwrite(true).send().await.unwrap_or_else(|e| panic!("PutParameter {name}: {e:?}")).version()
}

async fn value_of(c: &Client, name: &str) -> String {
    let out = c.get_parameter().name(name).with_decryption(true).send().await.unwrap_or_else(|e| panic!("GetParameter {name}: {e:?}"));
    out.parameter().unwrap().value().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn string_parameters_versions_selectors_and_history() {
    let (_t, c) = TestServer::with(Client::new).await;
    let out = c.put_parameter().name("/app/db/host").value("db1").r#type(ParameterType::String).description("the host").send().await.unwrap();
    assert_eq!(out.version(), 1);
    assert_eq!(out.tier(), Some(&ParameterTier::Standard));
    // Without Overwrite, a second put is refused and changes nothing.
    let err = c.put_parameter().name("/app/db/host").value("db2").r#type(ParameterType::String).send().await.unwrap_err();
    assert_eq!(error_code(&err), "ParameterAlreadyExists");
    assert!(message(&err).contains("set the overwrite option in the request to true"));
    assert_eq!(value_of(&c, "/app/db/host").await, "db1");
    assert_eq!(overwrite(&c, "/app/db/host", "db2").await, 2);
    assert_eq!(overwrite(&c, "/app/db/host", "db3").await, 3);

    let p = c.get_parameter().name("/app/db/host").send().await.unwrap();
    let p = p.parameter().unwrap();
    assert_eq!(p.name(), Some("/app/db/host"));
    assert_eq!(p.value(), Some("db3"));
    assert_eq!(p.version(), 3);
    assert_eq!(p.r#type(), Some(&ParameterType::String));
    assert_eq!(p.data_type(), Some("text"));
    let arn = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/db/host");
    assert_eq!(p.arn(), Some(arn.as_str()));
    let modified = p.last_modified_date().unwrap().secs();
    assert!((modified - chrono_now()).abs() < 60, "LastModifiedDate in epoch seconds: {modified}");

    // Selectors: a version, and the ARN form.
    let v1 = c.get_parameter().name("/app/db/host:1").send().await.unwrap();
    assert_eq!(v1.parameter().unwrap().value(), Some("db1"));
    assert_eq!(v1.parameter().unwrap().selector(), Some(":1"));
    assert_eq!(value_of(&c, &arn).await, "db3");
    assert_eq!(value_of(&c, &format!("{arn}:2")).await, "db2");
    let err = c.get_parameter().name("/app/db/host:9").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ParameterVersionNotFound");
    let err = c.get_parameter().name("/app/db/nope").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ParameterNotFound");

    // `/name` and `name` are one parameter.
    put(&c, "plain", "p", ParameterType::String).await;
    assert_eq!(value_of(&c, "/plain").await, "p");
    let err = c.put_parameter().name("/plain").value("q").r#type(ParameterType::String).send().await.unwrap_err();
    assert_eq!(error_code(&err), "ParameterAlreadyExists");

    // GetParameters: found ones and InvalidParameters.
    let many = c.get_parameters().names("/app/db/host").names("plain").names("/missing").names("/app/db/host:7").send().await.unwrap();
    let mut found: Vec<&str> = many.parameters().iter().filter_map(|p| p.value()).collect();
    found.sort();
    assert_eq!(found, ["db3", "p"]);
    assert_eq!(many.invalid_parameters(), ["/missing", "/app/db/host:7"]);

    // StringList keeps its comma-separated value.
    put(&c, "/app/zones", "a,b,c", ParameterType::StringList).await;
    let z = c.get_parameter().name("/app/zones").send().await.unwrap();
    assert_eq!(z.parameter().unwrap().r#type(), Some(&ParameterType::StringList));
    assert_eq!(z.parameter().unwrap().value(), Some("a,b,c"));

    // History, oldest first, paged; descriptions carry over.
    let h = c.get_parameter_history().name("/app/db/host").max_results(2).send().await.unwrap();
    let values: Vec<&str> = h.parameters().iter().filter_map(|p| p.value()).collect();
    assert_eq!(values, ["db1", "db2"]);
    assert_eq!(h.parameters()[1].description(), Some("the host"));
    assert_eq!(h.parameters()[0].last_modified_user(), Some(format!("arn:aws:iam::{ACCOUNT}:root").as_str()));
    let token = h.next_token().expect("more history").to_string();
    let h2 = c.get_parameter_history().name("/app/db/host").max_results(2).next_token(token).send().await.unwrap();
    assert_eq!(h2.parameters().len(), 1);
    assert_eq!(h2.parameters()[0].version(), 3);
    assert!(h2.next_token().is_none());
    let err = c.get_parameter_history().name("/nope").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ParameterNotFound");

    // Type is required on create; an unknown one is refused by the model.
    let err = c.put_parameter().name("/typeless").value("v").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    assert!(message(&err).contains("A parameter type is required"));
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn names_tiers_data_types_and_patterns_follow_aws() {
    let (_t, c) = TestServer::with(Client::new).await;
    let try_put = |name: &str, value: &str| c.put_parameter().name(name).value(value).r#type(ParameterType::String).send();
    for (name, code, expected) in [
        ("awsThing", "ValidationException", "can't be prefixed with \"aws\" or \"ssm\""),
        ("SSM-param", "ValidationException", "can't be prefixed with \"aws\" or \"ssm\""),
        ("/ssm/x/y", "ValidationException", "can't be prefixed with \"ssm\""),
        ("/aws/service/x", "AccessDeniedException", "No access to reserved parameter name: /aws/service/x."),
        ("a/b", "ValidationException", "fully qualified"),
        ("/has space", "ValidationException", "letters, numbers and the following 3 symbols .-_"),
    ] {
        let err = try_put(name, "v").await.unwrap_err();
        assert_eq!(error_code(&err), code, "{name}");
        let text = message(&err);
        assert!(text.contains(expected), "{name}: {text}");
    }
    let fifteen: String = (1..=15).map(|i| format!("/l{i}")).collect();
    try_put(&fifteen, "deep").await.unwrap();
    let err = try_put(&format!("{fifteen}/l16"), "v").await.unwrap_err();
    assert_eq!(error_code(&err), "HierarchyLevelLimitExceededException");

    // Tags and Overwrite do not go together.
    try_put("/t/one", "v").await.unwrap();
    let err = c.put_parameter().name("/t/one").value("w").overwrite(true).tags(tag("a", "b")).send().await.unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    assert!(message(&err).contains("tags and overwrite can't be used together"));
    assert_eq!(value_of(&c, "/t/one").await, "v");

    // Tiers: 4 KB standard, 8 KB advanced, Intelligent-Tiering picks; no downgrade.
    let big = "x".repeat(5000);
    let err = try_put("/tier/big", &big).await.unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    assert!(message(&err).contains("maximum parameter value of 4096 characters"));
    let out = c.put_parameter().name("/tier/big").value(&big).r#type(ParameterType::String).tier(ParameterTier::IntelligentTiering).send().await.unwrap();
    assert_eq!(out.tier(), Some(&ParameterTier::Advanced));
    let out = c.put_parameter().name("/tier/small").value("s").r#type(ParameterType::String).tier(ParameterTier::IntelligentTiering).send().await.unwrap();
    assert_eq!(out.tier(), Some(&ParameterTier::Standard));
    let err = c.put_parameter().name("/tier/huge").value("x".repeat(8193)).r#type(ParameterType::String).tier(ParameterTier::Advanced).send().await.unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    let err = c.put_parameter().name("/tier/big").value("small").overwrite(true).tier(ParameterTier::Standard).send().await.unwrap_err();
    assert!(message(&err).contains("can't downgrade"));
    let out = c.put_parameter().name("/tier/big").value("small").overwrite(true).send().await.unwrap();
    assert_eq!(out.tier(), Some(&ParameterTier::Advanced), "an advanced parameter stays advanced");

    // Data types.
    let ami = c.put_parameter().name("/img/golden").value("ami-0123456789abcdef0").r#type(ParameterType::String).data_type("aws:ec2:image").send().await.unwrap();
    assert_eq!(ami.version(), 1);
    let got = c.get_parameter().name("/img/golden").send().await.unwrap();
    assert_eq!(got.parameter().unwrap().data_type(), Some("aws:ec2:image"));
    let err = c.put_parameter().name("/img/bad").value("not-an-ami").r#type(ParameterType::String).data_type("aws:ec2:image").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    let err = c.put_parameter().name("/img/bad").value("v").r#type(ParameterType::String).data_type("Text").send().await.unwrap_err();
    assert!(message(&err).contains("The following data type is not supported: Text"));

    // AllowedPattern holds for later versions too.
    c.put_parameter().name("/num").value("42").r#type(ParameterType::String).allowed_pattern("^\\d+$").send().await.unwrap();
    let err = overwrite_err(&c, "/num", "forty-two").await;
    assert_eq!(error_code(&err), "ParameterPatternMismatchException");
    assert!(message(&err).contains("Parameter value, cannot be validated against allowedPattern: ^\\d+$"));
    assert_eq!(overwrite(&c, "/num", "43").await, 2);
    let err = c.put_parameter().name("/bad-pattern").value("v").r#type(ParameterType::String).allowed_pattern("(").send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidAllowedPatternException");
    // Nothing the refusals named was created.
    let d = c.describe_parameters().parameter_filters(filter("Name", Some("BeginsWith"), &["/img/bad", "/bad-pattern", "/tier/huge"])).send().await.unwrap();
    assert!(d.parameters().is_empty());
}

async fn overwrite_err(c: &Client, name: &str, value: &str) -> aws_sdk_ssm::error::SdkError<aws_sdk_ssm::operation::put_parameter::PutParameterError> {
    c.put_parameter().name(name).value(value).overwrite(true).send().await.unwrap_err()
}

#[tokio::test(flavor = "multi_thread")]
async fn labels_move_between_versions_within_their_limits() {
    let (_t, c) = TestServer::with(Client::new).await;
    put(&c, "/lab/p", "one", ParameterType::String).await;
    overwrite(&c, "/lab/p", "two").await;
    overwrite(&c, "/lab/p", "three").await;
    let out = c.label_parameter_version().name("/lab/p").parameter_version(1).labels("prod").labels("1bad").labels("awsx").labels("ok.v-1_x").send().await.unwrap();
    assert_eq!(out.parameter_version(), 1);
    assert_eq!(out.invalid_labels(), ["1bad", "awsx"]);
    assert_eq!(value_of(&c, "/lab/p:prod").await, "one");
    let sel = c.get_parameter().name("/lab/p:prod").send().await.unwrap();
    assert_eq!(sel.parameter().unwrap().selector(), Some(":prod"));
    // Without a version: the latest. The label moves.
    let out = c.label_parameter_version().name("/lab/p").labels("prod").send().await.unwrap();
    assert_eq!(out.parameter_version(), 3);
    assert_eq!(value_of(&c, "/lab/p:prod").await, "three");
    let h = c.get_parameter_history().name("/lab/p").send().await.unwrap();
    let labels: Vec<Vec<String>> = h.parameters().iter().map(|p| p.labels().to_vec()).collect();
    assert_eq!(labels, vec![vec!["ok.v-1_x".to_string()], vec![], vec!["prod".to_string()]]);
    let err = c.label_parameter_version().name("/lab/p").parameter_version(9).labels("x").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ParameterVersionNotFound");
    let err = c.label_parameter_version().name("/lab/none").labels("x").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ParameterNotFound");
    // Ten labels a version at most.
    let mut req = c.label_parameter_version().name("/lab/p").parameter_version(2);
    for i in 0..10 {
        req = req.labels(format!("l{i}"));
    }
    req.send().await.unwrap();
    let err = c.label_parameter_version().name("/lab/p").parameter_version(2).labels("eleventh").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ParameterVersionLabelLimitExceeded");
    let err = c.get_parameter().name("/lab/p:eleventh").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ParameterVersionNotFound", "the refused label was not applied");
    // Unlabel: removed and invalid ones.
    let out = c.unlabel_parameter_version().name("/lab/p").parameter_version(3).labels("prod").labels("l0").send().await.unwrap();
    assert_eq!(out.removed_labels(), ["prod"]);
    assert_eq!(out.invalid_labels(), ["l0"]);
    let err = c.get_parameter().name("/lab/p:prod").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ParameterVersionNotFound");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_versions_at_most_and_a_labelled_oldest_stays() {
    let (_t, c) = TestServer::with(Client::new).await;
    put(&c, "/many", "v1", ParameterType::String).await;
    c.label_parameter_version().name("/many").parameter_version(1).labels("first").send().await.unwrap();
    for i in 2..=100 {
        assert_eq!(overwrite(&c, "/many", &format!("v{i}")).await, i);
    }
    let err = overwrite_err(&c, "/many", "v101").await;
    assert_eq!(error_code(&err), "ParameterMaxVersionLimitExceeded");
    assert!(message(&err).contains("Version 1, the oldest version, can't be deleted because it has a label"));
    // Move the label away: the 101st version drops version 1.
    c.label_parameter_version().name("/many").parameter_version(50).labels("first").send().await.unwrap();
    assert_eq!(overwrite(&c, "/many", "v101").await, 101);
    let err = c.get_parameter().name("/many:1").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ParameterVersionNotFound");
    assert_eq!(value_of(&c, "/many:2").await, "v2");
    let mut versions = 0;
    let mut pages = c.get_parameter_history().name("/many").into_paginator().send();
    while let Some(page) = pages.next().await {
        versions += page.unwrap().parameters().len();
    }
    assert_eq!(versions, 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn by_path_and_describe_filter_and_page() {
    let (_t, c) = TestServer::with(Client::new).await;
    for (name, ty) in [
        ("/svc/a", ParameterType::String),
        ("/svc/b", ParameterType::StringList),
        ("/svc/deep/c", ParameterType::String),
        ("/svc/deep/er/d", ParameterType::String),
        ("/svcx/e", ParameterType::String),
        ("top", ParameterType::String),
    ] {
        put(&c, name, "v", ty).await;
    }
    c.put_parameter().name("/svc/tagged").value("v").r#type(ParameterType::String).tags(tag("env", "prod")).send().await.unwrap();
    let names = |ps: &[aws_sdk_ssm::types::Parameter]| ps.iter().filter_map(|p| p.name().map(str::to_string)).collect::<Vec<_>>();

    let one = c.get_parameters_by_path().path("/svc").send().await.unwrap();
    assert_eq!(names(one.parameters()), ["/svc/a", "/svc/b", "/svc/tagged"]);
    let all = c.get_parameters_by_path().path("/svc/").recursive(true).send().await.unwrap();
    assert_eq!(names(all.parameters()), ["/svc/a", "/svc/b", "/svc/deep/c", "/svc/deep/er/d", "/svc/tagged"]);
    let strings = c.get_parameters_by_path().path("/svc").recursive(true).parameter_filters(filter("Type", None, &["StringList"])).send().await.unwrap();
    assert_eq!(names(strings.parameters()), ["/svc/b"]);
    let root = c.get_parameters_by_path().path("/").send().await.unwrap();
    assert_eq!(names(root.parameters()), ["top"]);
    // Paging: MaxResults and NextToken through every page.
    let mut seen = Vec::new();
    let mut pages = c.get_parameters_by_path().path("/svc").recursive(true).max_results(2).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        assert!(page.parameters().len() <= 2);
        seen.extend(names(page.parameters()));
    }
    assert_eq!(seen.len(), 5);
    // Label filter: the labelled version.
    overwrite(&c, "/svc/a", "v2").await;
    c.label_parameter_version().name("/svc/a").parameter_version(1).labels("stable").send().await.unwrap();
    let labelled = c.get_parameters_by_path().path("/svc").parameter_filters(filter("Label", None, &["stable"])).send().await.unwrap();
    assert_eq!(names(labelled.parameters()), ["/svc/a"]);
    assert_eq!(labelled.parameters()[0].version(), 1);
    // Errors.
    let err = c.get_parameters_by_path().path("/svc").parameter_filters(filter("Name", None, &["/svc/a"])).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidFilterKey");
    let err = c.get_parameters_by_path().path("svc").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    let err = c.get_parameters_by_path().path("/svc").max_results(11).send().await.unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    let err = c.get_parameters_by_path().path("/svc").next_token("%%%").send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidNextToken");

    // DescribeParameters.
    let meta_names = |ps: &[aws_sdk_ssm::types::ParameterMetadata]| ps.iter().filter_map(|p| p.name().map(str::to_string)).collect::<Vec<_>>();
    let d = c.describe_parameters().parameter_filters(filter("Name", Some("Equals"), &["/svc/a"])).send().await.unwrap();
    assert_eq!(meta_names(d.parameters()), ["/svc/a"]);
    let m = &d.parameters()[0];
    assert_eq!(m.version(), 2);
    assert_eq!(m.tier(), Some(&ParameterTier::Standard));
    assert_eq!(m.arn(), Some(format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/svc/a").as_str()));
    assert!(m.last_modified_date().is_some());
    let d = c.describe_parameters().parameter_filters(filter("Name", Some("BeginsWith"), &["/svc/deep"])).send().await.unwrap();
    assert_eq!(meta_names(d.parameters()), ["/svc/deep/c", "/svc/deep/er/d"]);
    let d = c.describe_parameters().parameter_filters(filter("Path", Some("Recursive"), &["/svc/deep"])).send().await.unwrap();
    assert_eq!(meta_names(d.parameters()), ["/svc/deep/c", "/svc/deep/er/d"]);
    let d = c.describe_parameters().parameter_filters(filter("Path", None, &["/svc/deep"])).send().await.unwrap();
    assert_eq!(meta_names(d.parameters()), ["/svc/deep/c"]);
    let d = c.describe_parameters().parameter_filters(filter("Type", None, &["StringList"])).send().await.unwrap();
    assert_eq!(meta_names(d.parameters()), ["/svc/b"]);
    let d = c.describe_parameters().parameter_filters(filter("tag:env", None, &["prod"])).send().await.unwrap();
    assert_eq!(meta_names(d.parameters()), ["/svc/tagged"]);
    let d = c.describe_parameters().parameter_filters(filter("tag:env", None, &[])).send().await.unwrap();
    assert_eq!(meta_names(d.parameters()), ["/svc/tagged"]);
    let d = c.describe_parameters().parameter_filters(filter("Tier", None, &["Standard"])).parameter_filters(filter("Name", Some("Contains"), &["op"])).send().await.unwrap();
    assert_eq!(meta_names(d.parameters()), ["top"]);
    let d = c.describe_parameters().filters(ParametersFilter::builder().key(ParametersFilterKey::Name).values("/svcx").build().unwrap()).send().await.unwrap();
    assert_eq!(meta_names(d.parameters()), ["/svcx/e"]);
    let err = c
        .describe_parameters()
        .filters(ParametersFilter::builder().key(ParametersFilterKey::Name).values("/svcx").build().unwrap())
        .parameter_filters(filter("Type", None, &["String"]))
        .send()
        .await
        .unwrap_err();
    assert!(message(&err).contains("either Filters or ParameterFilters"));
    let err = c.describe_parameters().parameter_filters(filter("Label", None, &["x"])).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidFilterKey");
    let err = c.describe_parameters().parameter_filters(filter("Type", Some("Contains"), &["String"])).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidFilterOption");
    let err = c.describe_parameters().parameter_filters(filter("Type", None, &["Str"])).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidFilterValue");
    let mut total = 0;
    let mut pages = c.describe_parameters().max_results(3).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        assert!(page.parameters().len() <= 3);
        total += page.parameters().len();
    }
    assert_eq!(total, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_and_tags() {
    let (_t, c) = TestServer::with(Client::new).await;
    c.put_parameter().name("/d/a").value("v").r#type(ParameterType::String).tags(tag("team", "a")).tags(tag("cost", "1")).send().await.unwrap();
    put(&c, "/d/b", "v", ParameterType::String).await;
    let list = |id: &str| c.list_tags_for_resource().resource_type(ResourceTypeForTagging::Parameter).resource_id(id).send();
    let tags = list("/d/a").await.unwrap();
    let kv: Vec<(&str, &str)> = tags.tag_list().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(kv, [("cost", "1"), ("team", "a")]);
    c.add_tags_to_resource().resource_type(ResourceTypeForTagging::Parameter).resource_id("/d/a").tags(tag("team", "b")).tags(tag("env", "dev")).send().await.unwrap();
    c.remove_tags_from_resource().resource_type(ResourceTypeForTagging::Parameter).resource_id("/d/a").tag_keys("cost").send().await.unwrap();
    let kv: Vec<(String, String)> = list("/d/a").await.unwrap().tag_list().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
    assert_eq!(kv, [("env".to_string(), "dev".to_string()), ("team".to_string(), "b".to_string())]);
    let err = list("/d/none").await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidResourceId");
    let err = c.list_tags_for_resource().resource_type(ResourceTypeForTagging::Document).resource_id("doc").send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidResourceType");
    let mut add = c.add_tags_to_resource().resource_type(ResourceTypeForTagging::Parameter).resource_id("/d/b");
    for i in 0..51 {
        add = add.tags(tag(&format!("k{i}"), "v"));
    }
    let err = add.send().await.unwrap_err();
    assert_eq!(error_code(&err), "TooManyTagsError");
    assert!(list("/d/b").await.unwrap().tag_list().is_empty(), "nothing was tagged");

    c.delete_parameter().name("/d/a").send().await.unwrap();
    let err = c.delete_parameter().name("/d/a").send().await.unwrap_err();
    assert_eq!(error_code(&err), "ParameterNotFound");
    put(&c, "/d/c", "v", ParameterType::String).await;
    let out = c.delete_parameters().names("/d/b").names("/d/none").names("/d/c").send().await.unwrap();
    assert_eq!(out.deleted_parameters(), ["/d/b", "/d/c"]);
    assert_eq!(out.invalid_parameters(), ["/d/none"]);
    assert!(c.describe_parameters().send().await.unwrap().parameters().is_empty());
    // A deleted name starts again at version 1, without the old tags.
    assert_eq!(put(&c, "/d/a", "again", ParameterType::String).await, 1);
    assert!(list("/d/a").await.unwrap().tag_list().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn secure_strings_are_encrypted_through_kms_and_never_stored_in_plain_text() {
    let (t, c) = TestServer::with(Client::new).await;
    let secret = "Pa55w0rd-plaintext-marker-7f3a";
    put(&c, "/sec/db-password", secret, ParameterType::SecureString).await;
    let raw = c.get_parameter().name("/sec/db-password").send().await.unwrap();
    let raw = raw.parameter().unwrap();
    assert_eq!(raw.r#type(), Some(&ParameterType::SecureString));
    let ciphertext = raw.value().unwrap().to_string();
    assert_ne!(ciphertext, secret, "without WithDecryption: the ciphertext");
    assert!(ciphertext.len() > secret.len());
    assert_eq!(value_of(&c, "/sec/db-password").await, secret);
    // An AWS managed key is used only through its service: its policy lets nobody, root
    // included, decrypt with it directly.
    let kms = aws_sdk_kms::Client::new(&t.sdk_config().await);
    let arn = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/sec/db-password");
    let blob = aws_sdk_kms::primitives::Blob::new(base64_bytes(&ciphertext));
    let err = kms.decrypt().ciphertext_blob(blob).encryption_context("PARAMETER_ARN", &arn).send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDeniedException");
    // The default key is aws/ssm; a customer key by alias is kept as named.
    let d = c.describe_parameters().parameter_filters(filter("Name", None, &["/sec/db-password"])).send().await.unwrap();
    assert_eq!(d.parameters()[0].key_id(), Some("alias/aws/ssm"));
    let key = kms.create_key().description("app").send().await.unwrap().key_metadata().unwrap().key_id().to_string();
    kms.create_alias().alias_name("alias/app-params").target_key_id(&key).send().await.unwrap();
    let second = "second-secret-marker-91c2";
    c.put_parameter().name("/sec/api-key").value(second).r#type(ParameterType::SecureString).key_id("alias/app-params").send().await.unwrap();
    assert_eq!(value_of(&c, "/sec/api-key").await, second);
    // The ciphertext is bound to the parameter's ARN: KMS refuses it with another context.
    let raw = c.get_parameter().name("/sec/api-key").send().await.unwrap().parameter.unwrap();
    let blob = aws_sdk_kms::primitives::Blob::new(base64_bytes(raw.value().unwrap()));
    let arn = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/sec/api-key");
    let dec = kms.decrypt().ciphertext_blob(blob.clone()).encryption_context("PARAMETER_ARN", &arn).send().await.unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), second.as_bytes());
    assert!(kms.decrypt().ciphertext_blob(blob).send().await.is_err());
    let d = c.describe_parameters().parameter_filters(filter("KeyId", None, &["alias/app-params"])).send().await.unwrap();
    assert_eq!(d.parameters().len(), 1);
    let err = c.put_parameter().name("/sec/nokey").value("x").r#type(ParameterType::SecureString).key_id("alias/none").send().await.unwrap_err();
    assert_eq!(error_code(&err), "NotFoundException", "KMS's own error");
    // History and by-path decrypt when asked.
    overwrite(&c, "/sec/db-password", "rotated-marker-55ab").await;
    let h = c.get_parameter_history().name("/sec/db-password").with_decryption(true).send().await.unwrap();
    let values: Vec<&str> = h.parameters().iter().filter_map(|p| p.value()).collect();
    assert_eq!(values, [secret, "rotated-marker-55ab"]);
    let by_path = c.get_parameters_by_path().path("/sec").with_decryption(true).send().await.unwrap();
    assert_eq!(by_path.parameters().len(), 2);
    let plain = c.get_parameters().names("/sec/api-key").send().await.unwrap();
    assert_ne!(plain.parameters()[0].value(), Some(second));

    // No plain text anywhere under the data dir, while running and after a clean stop.
    for needle in [secret, second, "rotated-marker-55ab"] {
        assert_eq!(files_containing(&t.data_dir, needle.as_bytes()), Vec::<std::path::PathBuf>::new(), "{needle}");
    }
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let c = ssm(&t).await;
    put(&c, "/sec/x", secret, ParameterType::SecureString).await;
    let data_dir = t.stop().await;
    assert!(files_containing(&data_dir, secret.as_bytes()).is_empty());
    // And it survives the restart, still decryptable.
    let t = TestServer::start_in(data_dir, |_| {}).await;
    assert_eq!(value_of(&ssm(&t).await, "/sec/x").await, secret);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_parameter_reader_reads_as_the_role_it_is_given() {
    let (t, c) = TestServer::with(Client::new).await;
    put(&c, "/build/config", "from-parameter-store", ParameterType::String).await;
    put(&c, "/build/other", "not-yours", ParameterType::String).await;
    put(&c, "/build/secret", "secure-from-store", ParameterType::SecureString).await;
    overwrite(&c, "/build/config", "second").await;
    let iam = aws_sdk_iam::Client::new(&t.sdk_config().await);
    let allowed = allow_policy(&[(&["ssm:GetParameters"], &[&format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/build/config"), &format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/build/secret")])]);
    let reader_role = create_service_role(&iam, "param-reader", "codebuild.amazonaws.com", &allowed).await;
    let nobody_role = create_service_role(&iam, "param-nobody", "codebuild.amazonaws.com", "").await;
    let server = t.server.as_ref().unwrap();
    let reader = server.platform.hub.parameters().unwrap();
    let base = server.platform.internal_context(ACCOUNT, REGION);
    let as_reader = base.acting_as_role(&reader_role, "build-1");
    assert_eq!(reader.parameter_value(&as_reader, "/build/config").await.unwrap(), "second");
    assert_eq!(reader.parameter_value(&as_reader, "/build/config:1").await.unwrap(), "from-parameter-store");
    let arn = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/build/config");
    assert_eq!(reader.parameter_value(&as_reader, &arn).await.unwrap(), "second");
    assert_eq!(reader.parameter_value(&as_reader, "/build/secret").await.unwrap(), "secure-from-store", "aws/ssm decrypts through SSM");
    let err = reader.parameter_value(&as_reader, "/build/other").await.unwrap_err();
    assert_eq!(err.code, "AccessDeniedException");
    assert!(err.message.contains("ssm:GetParameters on resource: arn:aws:ssm:eu-west-1:000000000000:parameter/build/other"), "{}", err.message);
    let as_nobody = base.acting_as_role(&nobody_role, "build-2");
    let err = reader.parameter_value(&as_nobody, "/build/config").await.unwrap_err();
    assert_eq!(err.code, "AccessDeniedException");
    let allowed_all = allow_policy(&[(&["ssm:GetParameters"], &["*"])]);
    let all_role = create_service_role(&iam, "param-all", "codebuild.amazonaws.com", &allowed_all).await;
    let err = reader.parameter_value(&base.acting_as_role(&all_role, "b"), "/build/missing").await.unwrap_err();
    assert_eq!(err.code, "ParameterNotFound");

    // Through the API the same role policy holds: GetParameters asks once per name.
    let session = RoleSession::start(&t, "api-reader", &allowed).await;
    let as_session = Client::new(&session.conf);
    let ok = as_session.get_parameters().names("/build/config").send().await.unwrap();
    assert_eq!(ok.parameters()[0].value(), Some("second"));
    let err = as_session.get_parameters().names("/build/config").names("/build/other").send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDeniedException");
    let err = as_session.put_parameter().name("/build/config").value("x").overwrite(true).send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDeniedException");
    assert_eq!(value_of(&c, "/build/config").await, "second");
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_cli_puts_and_reads_by_path() {
    let t = TestServer::start().await;
    let v = aws_cli_json(&t.endpoint, &["ssm", "put-parameter", "--name", "/cli/one", "--value", "1", "--type", "String"]);
    assert_eq!(v["Version"], 1);
    assert_eq!(v["Tier"], "Standard");
    let (ok, _, err) = aws_cli(&t.endpoint, &["ssm", "put-parameter", "--name", "/cli/sub/two", "--value", "a,b", "--type", "StringList", "--tags", "Key=team,Value=x"]);
    assert!(ok, "{err}");
    let err = aws_cli_error(&t.endpoint, &["ssm", "put-parameter", "--name", "/cli/one", "--value", "2", "--type", "String"]);
    assert!(err.contains("ParameterAlreadyExists"), "{err}");
    let v = aws_cli_json(&t.endpoint, &["ssm", "get-parameters-by-path", "--path", "/cli", "--recursive"]);
    let names: Vec<&str> = v["Parameters"].as_array().unwrap().iter().map(|p| p["Name"].as_str().unwrap()).collect();
    assert_eq!(names, ["/cli/one", "/cli/sub/two"]);
    assert!(v["Parameters"][0]["LastModifiedDate"].is_string() || v["Parameters"][0]["LastModifiedDate"].is_number());
    let (ok, out, err) = aws_cli(&t.endpoint, &["ssm", "get-parameter", "--name", "/cli/sub/two", "--query", "Parameter.Value"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "\"a,b\"");
    let err = aws_cli_error(&t.endpoint, &["ssm", "get-parameter", "--name", "/cli/nope"]);
    assert!(err.contains("ParameterNotFound"), "{err}");
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_parameters_apply_plan_update_destroy() {
    let (t, ws, c) = terraform_applied("ssm", Client::new).await;
    assert_eq!(value_of(&c, "/app/config/db-host").await, "db.internal");
    assert_eq!(value_of(&c, "/app/config/zones").await, "eu-west-1a,eu-west-1b");
    assert_eq!(value_of(&c, "/app/secret/db-password").await, "tf-Sup3r-Secret-Value");
    let update = ["-var=db_host=db2.internal", "-var=team=apps"];
    terraform_apply_clean(ws.path(), &t.endpoint, &update);
    let p = c.get_parameter().name("/app/config/db-host").send().await.unwrap();
    assert_eq!(p.parameter().unwrap().value(), Some("db2.internal"));
    assert_eq!(p.parameter().unwrap().version(), 2);
    let tags = c.list_tags_for_resource().resource_type(ResourceTypeForTagging::Parameter).resource_id("/app/config/db-host").send().await.unwrap();
    assert_eq!(tags.tag_list().iter().map(|t| (t.key(), t.value())).collect::<Vec<_>>(), [("team", "apps")]);
    assert!(files_containing(&t.data_dir, b"tf-Sup3r-Secret-Value").is_empty(), "the SecureString is not in the data dir in plain text");
    terraform_destroy(ws.path(), &t.endpoint, &update);
    assert!(c.describe_parameters().send().await.unwrap().parameters().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn parameters_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(dir.path(), &[]);
    let c = Client::new(&sdk(&server.endpoint).await);
    put(&c, "/crash/plain", "kept", ParameterType::String).await;
    overwrite(&c, "/crash/plain", "kept-2").await;
    c.label_parameter_version().name("/crash/plain").parameter_version(1).labels("first").send().await.unwrap();
    put(&c, "/crash/secure", "kept-secure-marker-e41d", ParameterType::SecureString).await;
    server.kill9();
    let server = ServerProcess::spawn(dir.path(), &[]);
    let c = Client::new(&sdk(&server.endpoint).await);
    assert_eq!(value_of(&c, "/crash/plain").await, "kept-2");
    assert_eq!(value_of(&c, "/crash/plain:first").await, "kept");
    assert_eq!(value_of(&c, "/crash/secure").await, "kept-secure-marker-e41d");
    server.kill9();
    assert!(files_containing(dir.path(), b"kept-secure-marker-e41d").is_empty());
}
