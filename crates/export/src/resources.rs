//! One Terraform resource (hashicorp/aws 5.x) per thing the snapshot holds. Only what differs
//! from the provider's defaults (or what the provider needs) is written, so applying the export
//! and exporting again gives the same text, and a plan after the apply is empty.

use crate::fetch::{Snapshot, Tags};
use codeyard_api::{codebuild, events};
use crate::hcl::{Block, Body, Expr, sanitize};
use crate::refs::{Index, Key, Kind, Resolver};
use std::collections::{BTreeMap, BTreeSet};

/// A resource of the export.
pub(crate) struct Resource {
    pub key: Key,
    /// The resource this one belongs to (a role's inline policy, a bucket's versioning):
    /// exported whenever its owner is.
    pub owner: Option<Key>,
    pub block: Block,
    pub refs: BTreeSet<Key>,
}

/// Unique resource names per type, in a stable order.
#[derive(Default)]
struct Names {
    used: BTreeSet<(&'static str, String)>,
}

impl Names {
    fn key(&mut self, kind: &'static str, name: &str) -> Key {
        let base = sanitize(name);
        let mut candidate = base.clone();
        let mut n = 2;
        while !self.used.insert((kind, candidate.clone())) {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        (kind, candidate)
    }
}

fn tags(body: &mut Body, tags: &Tags) {
    if !tags.is_empty() {
        body.attr("tags", Expr::Object(tags.iter().map(|(k, v)| (k.clone(), Expr::str(v))).collect()));
    }
}

fn block(kind: &str, build: impl FnOnce(&mut Body)) -> Block {
    let mut b = Block::new(kind, &[]);
    build(&mut b.body);
    b
}

/// Every resource, resolved against each other, and the key of each pipeline by name.
pub(crate) fn build(s: &Snapshot, account: &str, region: &str) -> (Vec<Resource>, BTreeMap<String, Key>) {
    let mut names = Names::default();
    let mut index = Index::new(account, region);

    // Pass 1: every resource's key and what it answers to.
    let roles: Vec<Key> = s.roles.iter().map(|r| names.key("aws_iam_role", &r.role.role_name)).collect();
    for (r, key) in s.roles.iter().zip(&roles) {
        index.value(Some(&r.role.arn), key, "arn");
        index.name(Kind::Role, Some(&r.role.role_name), key, "name");
    }
    let policies: Vec<Key> = s.policies.iter().map(|p| names.key("aws_iam_policy", p.policy.policy_name.as_deref().unwrap_or("policy"))).collect();
    for (p, key) in s.policies.iter().zip(&policies) {
        index.value(p.policy.arn.as_deref(), key, "arn");
    }
    let repos: Vec<Key> = s.repositories.iter().map(|(r, _)| names.key("aws_codecommit_repository", r.repository_name.as_deref().unwrap_or("repository"))).collect();
    for ((r, _), key) in s.repositories.iter().zip(&repos) {
        index.value(r.arn.as_deref(), key, "arn");
        index.value(r.clone_url_http.as_deref(), key, "clone_url_http");
        index.value(r.clone_url_ssh.as_deref(), key, "clone_url_ssh");
        index.name(Kind::CodeCommit, r.repository_name.as_deref(), key, "repository_name");
    }
    let projects: Vec<Key> = s.projects.iter().map(|p| names.key("aws_codebuild_project", p.name.as_deref().unwrap_or("project"))).collect();
    for (p, key) in s.projects.iter().zip(&projects) {
        index.value(p.arn.as_deref(), key, "arn");
        index.name(Kind::Project, p.name.as_deref(), key, "name");
    }
    let pipelines: Vec<Key> = s.pipelines.iter().map(|p| names.key("aws_codepipeline", &p.pipeline.name)).collect();
    for (p, key) in s.pipelines.iter().zip(&pipelines) {
        index.value(Some(&p.arn), key, "arn");
    }
    let images: Vec<Key> = s.images.iter().map(|i| names.key("aws_ecr_repository", i.repository.repository_name.as_deref().unwrap_or("repository"))).collect();
    for (i, key) in s.images.iter().zip(&images) {
        index.value(i.repository.repository_arn.as_deref(), key, "arn");
        index.value(i.repository.repository_uri.as_deref(), key, "repository_url");
        index.name(Kind::ImageRepository, i.repository.repository_name.as_deref(), key, "name");
    }
    let buckets: Vec<Key> = s.buckets.iter().map(|(b, _)| names.key("aws_s3_bucket", &b.name)).collect();
    for ((b, _), key) in s.buckets.iter().zip(&buckets) {
        index.value(Some(&format!("arn:aws:s3:::{}", b.name)), key, "arn");
        index.name(Kind::Bucket, Some(&b.name), key, "bucket");
    }
    let buses: Vec<Key> = s.buses.iter().map(|(b, _)| names.key("aws_cloudwatch_event_bus", b.name.as_deref().unwrap_or("bus"))).collect();
    for ((b, _), key) in s.buses.iter().zip(&buses) {
        index.value(b.arn.as_deref(), key, "arn");
        index.name(Kind::EventBus, b.name.as_deref(), key, "name");
    }
    let rules: Vec<Key> = s.rules.iter().map(|r| names.key("aws_cloudwatch_event_rule", &rule_label(&r.rule))).collect();
    for (r, key) in s.rules.iter().zip(&rules) {
        index.value(r.rule.arn.as_deref(), key, "arn");
        index.name(Kind::Rule, Some(&rule_label(&r.rule)), key, "name");
    }
    let groups: Vec<Key> = s.log_groups.iter().map(|(g, _)| names.key("aws_cloudwatch_log_group", g.log_group_name.as_deref().unwrap_or("group"))).collect();
    for ((g, _), key) in s.log_groups.iter().zip(&groups) {
        let arn = g.log_group_arn.clone().or_else(|| g.arn.as_deref().map(|a| a.trim_end_matches(":*").to_string()));
        index.value(arn.as_deref(), key, "arn");
        index.name(Kind::LogGroup, g.log_group_name.as_deref(), key, "name");
    }

    // Pass 2: the blocks.
    let mut out = Vec::new();
    let mut emit = |key: Key, owner: Option<Key>, r: Resolver, body: Body| {
        let mut block = Block::new("resource", &[key.0, &key.1]);
        block.body = body;
        out.push(Resource { key, owner, block, refs: r.refs });
    };

    for (rec, key) in s.roles.iter().zip(&roles) {
        let role = &rec.role;
        let mut r = Resolver::new(&index, key.clone());
        let mut b = Body::default();
        b.attr("name", Expr::str(&role.role_name));
        if role.path != "/" {
            b.attr("path", Expr::str(&role.path));
        }
        b.opt("description", role.description.as_deref().filter(|d| !d.is_empty()).map(Expr::str));
        b.opt("max_session_duration", role.max_session_duration.filter(|d| *d != 3600).map(|d| Expr::int(d.into())));
        b.attr("assume_role_policy", r.json(role.assume_role_policy_document.as_deref().unwrap_or("{}")));
        b.opt("permissions_boundary", role.permissions_boundary.as_ref().and_then(|p| p.permissions_boundary_arn.as_deref()).map(|a| r.string(a)));
        tags(&mut b, &role.tags.iter().flatten().map(|t| (t.key.clone(), t.value.clone())).collect());
        emit(key.clone(), None, r, b);

        for (policy_name, document) in &rec.inline {
            let pkey = names.key("aws_iam_role_policy", &format!("{}_{policy_name}", role.role_name));
            let mut r = Resolver::new(&index, pkey.clone());
            let mut b = Body::default();
            b.attr("name", Expr::str(policy_name));
            b.attr("role", r.name(Kind::Role, &role.role_name));
            b.attr("policy", r.json(document));
            emit(pkey, Some(key.clone()), r, b);
        }
        for arn in &rec.attached {
            let short = arn.rsplit('/').next().unwrap_or(arn);
            let akey = names.key("aws_iam_role_policy_attachment", &format!("{}_{short}", role.role_name));
            let mut r = Resolver::new(&index, akey.clone());
            let mut b = Body::default();
            b.attr("role", r.name(Kind::Role, &role.role_name));
            b.attr("policy_arn", r.string(arn));
            emit(akey, Some(key.clone()), r, b);
        }
    }

    for (p, key) in s.policies.iter().zip(&policies) {
        let mut r = Resolver::new(&index, key.clone());
        let mut b = Body::default();
        b.attr("name", Expr::str(p.policy.policy_name.as_deref().unwrap_or_default()));
        b.opt("path", p.policy.path.as_deref().filter(|p| *p != "/").map(Expr::str));
        b.opt("description", p.policy.description.as_deref().filter(|d| !d.is_empty()).map(Expr::str));
        b.attr("policy", r.json(&p.document));
        tags(&mut b, &p.policy.tags.iter().flatten().map(|t| (t.key.clone(), t.value.clone())).collect());
        emit(key.clone(), None, r, b);
    }

    for ((repo, t), key) in s.repositories.iter().zip(&repos) {
        let r = Resolver::new(&index, key.clone());
        let mut b = Body::default();
        b.attr("repository_name", Expr::str(repo.repository_name.as_deref().unwrap_or_default()));
        b.opt("description", repo.repository_description.as_deref().filter(|d| !d.is_empty()).map(Expr::str));
        // default_branch is left out: it can only be set once a push made the branch.
        tags(&mut b, t);
        emit(key.clone(), None, r, b);
    }

    for (p, key) in s.projects.iter().zip(&projects) {
        let mut r = Resolver::new(&index, key.clone());
        let b = project(p, &mut r);
        emit(key.clone(), None, r, b);
    }

    for (p, key) in s.pipelines.iter().zip(&pipelines) {
        let mut r = Resolver::new(&index, key.clone());
        let b = pipeline(p, &mut r);
        emit(key.clone(), None, r, b);
    }

    for (i, key) in s.images.iter().zip(&images) {
        let repo = &i.repository;
        let name = repo.repository_name.clone().unwrap_or_default();
        let mut r = Resolver::new(&index, key.clone());
        let mut b = Body::default();
        b.attr("name", Expr::str(&name));
        if let Some(m) = repo.image_tag_mutability.as_ref().filter(|m| m.as_str() != "MUTABLE") {
            b.attr("image_tag_mutability", Expr::str(m.as_str()));
        }
        tags(&mut b, &i.tags);
        if let Some(e) = repo.encryption_configuration.as_ref().filter(|e| e.encryption_type.as_str() != "AES256") {
            b.block(block("encryption_configuration", |eb| {
                eb.attr("encryption_type", Expr::str(e.encryption_type.as_str()));
                eb.opt("kms_key", e.kms_key.as_deref().map(|k| r.string(k)));
            }));
        }
        if repo.image_scanning_configuration.as_ref().and_then(|c| c.scan_on_push) == Some(true) {
            b.block(block("image_scanning_configuration", |sb| {
                sb.attr("scan_on_push", Expr::Bool(true));
            }));
        }
        emit(key.clone(), None, r, b);

        for (kind, text) in [("aws_ecr_lifecycle_policy", &i.lifecycle_policy), ("aws_ecr_repository_policy", &i.repository_policy)] {
            let Some(text) = text else { continue };
            let k = names.key(kind, &name);
            let mut r = Resolver::new(&index, k.clone());
            let mut b = Body::default();
            b.attr("repository", r.name(Kind::ImageRepository, &name));
            b.attr("policy", r.json(text));
            emit(k, Some(key.clone()), r, b);
        }
    }

    for ((bucket, settings), key) in s.buckets.iter().zip(&buckets) {
        let r = Resolver::new(&index, key.clone());
        let mut b = Body::default();
        b.attr("bucket", Expr::str(&bucket.name));
        tags(&mut b, &settings.tags.iter().cloned().collect());
        emit(key.clone(), None, r, b);
        let name = &bucket.name;
        if let Some(status) = &settings.versioning {
            let k = names.key("aws_s3_bucket_versioning", name);
            let mut r = Resolver::new(&index, k.clone());
            let mut b = Body::default();
            b.attr("bucket", r.name(Kind::Bucket, name));
            b.block(block("versioning_configuration", |vb| {
                vb.attr("status", Expr::str(status.as_str()));
            }));
            emit(k, Some(key.clone()), r, b);
        }
        if let Some(policy) = &settings.policy {
            let k = names.key("aws_s3_bucket_policy", name);
            let mut r = Resolver::new(&index, k.clone());
            let mut b = Body::default();
            b.attr("bucket", r.name(Kind::Bucket, name));
            b.attr("policy", r.json(policy));
            emit(k, Some(key.clone()), r, b);
        }
        if settings.eventbridge_notifications {
            let k = names.key("aws_s3_bucket_notification", name);
            let mut r = Resolver::new(&index, k.clone());
            let mut b = Body::default();
            b.attr("bucket", r.name(Kind::Bucket, name));
            b.attr("eventbridge", Expr::Bool(true));
            emit(k, Some(key.clone()), r, b);
        }
    }

    for ((bus, t), key) in s.buses.iter().zip(&buses) {
        let r = Resolver::new(&index, key.clone());
        let mut b = Body::default();
        b.attr("name", Expr::str(bus.name.as_deref().unwrap_or_default()));
        tags(&mut b, t);
        emit(key.clone(), None, r, b);
    }

    for (rec, key) in s.rules.iter().zip(&rules) {
        let rule = &rec.rule;
        let rule_name = rule.name.clone().unwrap_or_default();
        let bus = rule.event_bus_name.clone().filter(|b| b != "default");
        let mut r = Resolver::new(&index, key.clone());
        let mut b = Body::default();
        b.attr("name", Expr::str(&rule_name));
        b.opt("description", rule.description.as_deref().filter(|d| !d.is_empty()).map(Expr::str));
        b.opt("event_bus_name", bus.as_deref().map(|n| r.name(Kind::EventBus, n)));
        b.opt("schedule_expression", rule.schedule_expression.as_deref().map(Expr::str));
        b.opt("event_pattern", rule.event_pattern.as_deref().map(|p| r.json(p)));
        b.opt("role_arn", rule.role_arn.as_deref().map(|a| r.string(a)));
        if let Some(state) = rule.state.as_ref().filter(|s| **s != events::RuleState::Enabled) {
            b.attr("state", Expr::str(state.as_str()));
        }
        tags(&mut b, &rec.tags);
        emit(key.clone(), None, r, b);

        for target in &rec.targets {
            let k = names.key("aws_cloudwatch_event_target", &format!("{}_{}", rule_label(rule), target.id));
            let mut r = Resolver::new(&index, k.clone());
            let mut b = Body::default();
            b.attr("rule", r.name(Kind::Rule, &rule_label(rule)));
            b.opt("event_bus_name", bus.as_deref().map(|n| r.name(Kind::EventBus, n)));
            b.attr("target_id", Expr::str(&target.id));
            b.attr("arn", r.string(&target.arn));
            b.opt("role_arn", target.role_arn.as_deref().map(|a| r.string(a)));
            b.opt("input", target.input.as_deref().map(Expr::str));
            b.opt("input_path", target.input_path.as_deref().map(Expr::str));
            if let Some(t) = &target.input_transformer {
                b.block(block("input_transformer", |tb| {
                    if let Some(paths) = t.input_paths_map.as_ref().filter(|p| !p.is_empty()) {
                        tb.attr("input_paths", Expr::Object(paths.iter().map(|(k, v)| (k.clone(), Expr::str(v))).collect()));
                    }
                    tb.attr("input_template", Expr::str(&t.input_template));
                }));
            }
            emit(k, Some(key.clone()), r, b);
        }
    }

    for ((g, t), key) in s.log_groups.iter().zip(&groups) {
        let mut r = Resolver::new(&index, key.clone());
        let mut b = Body::default();
        b.attr("name", Expr::str(g.log_group_name.as_deref().unwrap_or_default()));
        b.opt("retention_in_days", g.retention_in_days.map(|d| Expr::int(d.into())));
        b.opt("kms_key_id", g.kms_key_id.as_deref().map(|k| r.string(k)));
        if let Some(class) = g.log_group_class.as_ref().filter(|c| c.as_str() != "STANDARD") {
            b.attr("log_group_class", Expr::str(class.as_str()));
        }
        tags(&mut b, t);
        emit(key.clone(), None, r, b);
    }
    let by_name = s.pipelines.iter().zip(pipelines).map(|(p, k)| (p.pipeline.name.clone(), k)).collect();
    (out, by_name)
}

/// Rules on a custom bus may share a name with rules on another bus.
fn rule_label(rule: &codeyard_api::events::Rule) -> String {
    let name = rule.name.clone().unwrap_or_default();
    match rule.event_bus_name.as_deref() {
        Some(bus) if bus != "default" => format!("{bus}_{name}"),
        _ => name,
    }
}

fn project(p: &codeyard_api::codebuild::Project, r: &mut Resolver) -> Body {
    let mut b = Body::default();
    b.attr("name", Expr::str(p.name.as_deref().unwrap_or_default()));
    b.opt("description", p.description.as_deref().filter(|d| !d.is_empty()).map(Expr::str));
    b.opt("build_timeout", p.timeout_in_minutes.filter(|t| *t != 60).map(|t| Expr::int(t.into())));
    b.opt("queued_timeout", p.queued_timeout_in_minutes.filter(|t| *t != 480).map(|t| Expr::int(t.into())));
    b.opt("concurrent_build_limit", p.concurrent_build_limit.map(|t| Expr::int(t.into())));
    b.opt("service_role", p.service_role.as_deref().map(|a| r.string(a)));
    // The default key is what CodeBuild answers when none was given.
    b.opt("encryption_key", p.encryption_key.as_deref().filter(|k| !k.ends_with(":alias/aws/s3")).map(|k| r.string(k)));
    b.opt("source_version", p.source_version.as_deref().filter(|v| !v.is_empty()).map(Expr::str));
    tags(&mut b, &p.tags.iter().flatten().filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default()))).collect());

    if let Some(a) = &p.artifacts {
        b.block(artifacts("artifacts", a, r));
    }
    for a in p.secondary_artifacts.iter().flatten() {
        b.block(artifacts("secondary_artifacts", a, r));
    }
    if let Some(c) = p.cache.as_ref().filter(|c| c.r#type.as_str() != "NO_CACHE") {
        b.block(block("cache", |cb| {
            cb.attr("type", Expr::str(c.r#type.as_str()));
            cb.opt("location", c.location.as_deref().map(|l| cache_location(l, r)));
            if let Some(modes) = c.modes.as_ref().filter(|m| !m.is_empty()) {
                cb.attr("modes", Expr::List(modes.iter().map(|m| Expr::str(m.as_str())).collect()));
            }
        }));
    }
    if let Some(e) = &p.environment {
        b.block(block("environment", |eb| {
            eb.attr("type", Expr::str(e.r#type.as_str()));
            eb.attr("image", r.string(&e.image));
            eb.attr("compute_type", Expr::str(e.compute_type.as_str()));
            if e.privileged_mode == Some(true) {
                eb.attr("privileged_mode", Expr::Bool(true));
            }
            if let Some(t) = e.image_pull_credentials_type.as_ref().filter(|t| t.as_str() != "CODEBUILD") {
                eb.attr("image_pull_credentials_type", Expr::str(t.as_str()));
            }
            eb.opt("certificate", e.certificate.as_deref().map(Expr::str));
            for v in e.environment_variables.iter().flatten() {
                eb.block(block("environment_variable", |vb| {
                    vb.attr("name", Expr::str(&v.name));
                    vb.attr("value", r.setting(&v.value));
                    if let Some(t) = v.r#type.as_ref().filter(|t| t.as_str() != "PLAINTEXT") {
                        vb.attr("type", Expr::str(t.as_str()));
                    }
                }));
            }
        }));
    }
    if let Some(l) = &p.logs_config {
        let cw = l.cloud_watch_logs.as_ref().filter(|c| c.status != codebuild::LogsConfigStatusType::Enabled || c.group_name.is_some() || c.stream_name.is_some());
        let s3 = l.s3_logs.as_ref().filter(|s| s.status != codebuild::LogsConfigStatusType::Disabled);
        if cw.is_some() || s3.is_some() {
            b.block(block("logs_config", |lb| {
                if let Some(c) = cw {
                    lb.block(block("cloudwatch_logs", |cb| {
                        if c.status != codebuild::LogsConfigStatusType::Enabled {
                            cb.attr("status", Expr::str(c.status.as_str()));
                        }
                        cb.opt("group_name", c.group_name.as_deref().map(|g| r.name(Kind::LogGroup, g)));
                        cb.opt("stream_name", c.stream_name.as_deref().map(Expr::str));
                    }));
                }
                if let Some(s) = s3 {
                    lb.block(block("s3_logs", |sb| {
                        sb.attr("status", Expr::str(s.status.as_str()));
                        sb.opt("location", s.location.as_deref().map(|l| cache_location(l, r)));
                    }));
                }
            }));
        }
    }
    if let Some(src) = &p.source {
        b.block(source("source", src, r));
    }
    for src in p.secondary_sources.iter().flatten() {
        b.block(source("secondary_sources", src, r));
    }
    b
}

/// `bucket/prefix` locations: the bucket part by reference.
fn cache_location(l: &str, r: &mut Resolver) -> Expr {
    let (bucket, rest) = match l.split_once('/') {
        Some((b, rest)) => (b, Some(rest)),
        None => (l, None),
    };
    match (r.name(Kind::Bucket, bucket), rest) {
        (Expr::Ref(reference), Some(rest)) => Expr::template(vec![crate::hcl::Part::Ref(reference), crate::hcl::Part::Lit(format!("/{rest}"))]),
        (Expr::Ref(reference), None) => Expr::Ref(reference),
        _ => Expr::str(l),
    }
}

fn artifacts(kind: &str, a: &codeyard_api::codebuild::ProjectArtifacts, r: &mut Resolver) -> Block {
    block(kind, |ab| {
        ab.attr("type", Expr::str(a.r#type.as_str()));
        ab.opt("artifact_identifier", a.artifact_identifier.as_deref().map(Expr::str));
        ab.opt("location", a.location.as_deref().filter(|l| !l.is_empty()).map(|l| r.name(Kind::Bucket, l)));
        ab.opt("path", a.path.as_deref().filter(|p| !p.is_empty()).map(Expr::str));
        ab.opt("name", a.name.as_deref().filter(|n| !n.is_empty()).map(Expr::str));
        ab.opt("namespace_type", a.namespace_type.as_ref().filter(|n| n.as_str() != "NONE").map(|n| Expr::str(n.as_str())));
        ab.opt("packaging", a.packaging.as_ref().filter(|n| n.as_str() != "NONE").map(|n| Expr::str(n.as_str())));
        if a.encryption_disabled == Some(true) {
            ab.attr("encryption_disabled", Expr::Bool(true));
        }
        if a.override_artifact_name == Some(true) {
            ab.attr("override_artifact_name", Expr::Bool(true));
        }
    })
}

fn source(kind: &str, s: &codeyard_api::codebuild::ProjectSource, r: &mut Resolver) -> Block {
    block(kind, |sb| {
        sb.attr("type", Expr::str(s.r#type.as_str()));
        sb.opt("source_identifier", s.source_identifier.as_deref().map(Expr::str));
        sb.opt("location", s.location.as_deref().filter(|l| !l.is_empty()).map(|l| r.string(l)));
        sb.opt("git_clone_depth", s.git_clone_depth.filter(|d| *d != 0).map(|d| Expr::int(d.into())));
        sb.opt("buildspec", s.buildspec.as_deref().filter(|b| !b.is_empty()).map(Expr::str));
        if s.insecure_ssl == Some(true) {
            sb.attr("insecure_ssl", Expr::Bool(true));
        }
        if s.report_build_status == Some(true) {
            sb.attr("report_build_status", Expr::Bool(true));
        }
        if let Some(g) = s.git_submodules_config.as_ref().filter(|g| g.fetch_submodules) {
            let _ = g;
            sb.block(block("git_submodules_config", |gb| {
                gb.attr("fetch_submodules", Expr::Bool(true));
            }));
        }
    })
}

fn pipeline(p: &crate::fetch::PipelineRecord, r: &mut Resolver) -> Body {
    let d = &p.pipeline;
    let mut b = Body::default();
    b.attr("name", Expr::str(&d.name));
    b.attr("role_arn", r.string(&d.role_arn));
    if let Some(t) = d.pipeline_type.as_ref().filter(|t| t.as_str() != "V1") {
        b.attr("pipeline_type", Expr::str(t.as_str()));
    }
    if let Some(m) = d.execution_mode.as_ref().filter(|m| m.as_str() != "SUPERSEDED") {
        b.attr("execution_mode", Expr::str(m.as_str()));
    }
    tags(&mut b, &p.tags);
    let stores: Vec<(Option<&str>, &codeyard_api::codepipeline::ArtifactStore)> = match (&d.artifact_store, &d.artifact_stores) {
        (Some(s), _) => vec![(None, s)],
        (None, Some(map)) => map.iter().map(|(region, s)| (Some(region.as_str()), s)).collect(),
        (None, None) => Vec::new(),
    };
    for (region, store) in stores {
        b.block(block("artifact_store", |sb| {
            sb.attr("location", r.name(Kind::Bucket, &store.location));
            sb.attr("type", Expr::str(store.r#type.as_str()));
            sb.opt("region", region.map(Expr::str));
            if let Some(k) = &store.encryption_key {
                sb.block(block("encryption_key", |kb| {
                    kb.attr("id", r.string(&k.id));
                    kb.attr("type", Expr::str(k.r#type.as_str()));
                }));
            }
        }));
    }
    for v in d.variables.iter().flatten() {
        b.block(block("variable", |vb| {
            vb.attr("name", Expr::str(&v.name));
            vb.opt("default_value", v.default_value.as_deref().map(Expr::str));
            vb.opt("description", v.description.as_deref().map(Expr::str));
        }));
    }
    for stage in &d.stages {
        b.block(block("stage", |stb| {
            stb.attr("name", Expr::str(&stage.name));
            for a in &stage.actions {
                stb.block(block("action", |ab| {
                    let id = &a.action_type_id;
                    ab.attr("name", Expr::str(&a.name));
                    ab.attr("category", Expr::str(id.category.as_str()));
                    ab.attr("owner", Expr::str(id.owner.as_str()));
                    ab.attr("provider", Expr::str(&id.provider));
                    ab.attr("version", Expr::str(&id.version));
                    ab.opt("run_order", a.run_order.filter(|o| *o != 1).map(|o| Expr::int(o.into())));
                    ab.opt("role_arn", a.role_arn.as_deref().map(|x| r.string(x)));
                    ab.opt("region", a.region.as_deref().map(Expr::str));
                    ab.opt("namespace", a.namespace.as_deref().map(Expr::str));
                    ab.opt("timeout_in_minutes", a.timeout_in_minutes.map(|t| Expr::int(t.into())));
                    let inputs: Vec<Expr> = a.input_artifacts.iter().flatten().map(|i| Expr::str(&i.name)).collect();
                    if !inputs.is_empty() {
                        ab.attr("input_artifacts", Expr::List(inputs));
                    }
                    let outputs: Vec<Expr> = a.output_artifacts.iter().flatten().map(|o| Expr::str(&o.name)).collect();
                    if !outputs.is_empty() {
                        ab.attr("output_artifacts", Expr::List(outputs));
                    }
                    if let Some(config) = a.configuration.as_ref().filter(|c| !c.is_empty()) {
                        ab.attr("configuration", Expr::Object(configuration(&id.provider, config, r)));
                    }
                }));
            }
        }));
    }
    b
}

/// An action's configuration, with the names of exported resources as references.
fn configuration(provider: &str, config: &BTreeMap<String, String>, r: &mut Resolver) -> Vec<(String, Expr)> {
    config
        .iter()
        .map(|(k, v)| {
            let kind = match (provider, k.as_str()) {
                ("CodeCommit", "RepositoryName") => Some(Kind::CodeCommit),
                ("ECR", "RepositoryName") => Some(Kind::ImageRepository),
                (_, "ProjectName") => Some(Kind::Project),
                (_, "BucketName" | "S3Bucket") => Some(Kind::Bucket),
                _ => None,
            };
            let value = match kind {
                Some(kind) => r.name(kind, v),
                None => r.string(v),
            };
            (k.clone(), value)
        })
        .collect()
}
