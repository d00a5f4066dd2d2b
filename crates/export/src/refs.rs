//! Reference resolution: a value some exported resource answers to (its ARN, clone URL,
//! repository URI, or its name where a field names that kind of resource) is written as a
//! Terraform reference to that resource, so the export applies in any account and on any
//! endpoint and Terraform orders the creates. ARNs of this account that name nothing exported
//! get the account from `data.aws_caller_identity`.

use crate::hcl::{Expr, Part};
use codeyard_core::arn::Arn;
use std::collections::{BTreeMap, BTreeSet};

/// A resource of the export: (Terraform type, resource name).
pub(crate) type Key = (&'static str, String);

pub(crate) const CALLER: (&str, &str) = ("data.aws_caller_identity", "current");
pub(crate) const REGION: (&str, &str) = ("data.aws_region", "current");

/// The kinds of resource a field can name by plain name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Bucket,
    CodeCommit,
    Project,
    ImageRepository,
    LogGroup,
    EventBus,
    Rule,
    Role,
}

/// Everything exported resources answer to.
#[derive(Default)]
pub(crate) struct Index {
    /// value -> (resource, attribute)
    values: BTreeMap<String, (Key, &'static str)>,
    names: BTreeMap<(Kind, String), (Key, &'static str)>,
    pub account: String,
    pub region: String,
}

impl Index {
    pub fn new(account: &str, region: &str) -> Index {
        Index { account: account.into(), region: region.into(), ..Index::default() }
    }
    /// `key`'s attribute `attr` has this value (an ARN, a URL): other resources refer to it.
    pub fn value(&mut self, value: Option<&str>, key: &Key, attr: &'static str) {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.values.entry(v.to_string()).or_insert((key.clone(), attr));
        }
    }
    /// `key` is the `kind` named `name`, and `attr` is the attribute holding the name.
    pub fn name(&mut self, kind: Kind, name: Option<&str>, key: &Key, attr: &'static str) {
        if let Some(n) = name.filter(|n| !n.is_empty()) {
            self.names.entry((kind, n.to_string())).or_insert((key.clone(), attr));
        }
    }
}

/// Resolves the values of one resource, remembering what it refers to.
pub(crate) struct Resolver<'a> {
    index: &'a Index,
    this: Key,
    pub refs: BTreeSet<Key>,
}

fn reference(key: &Key, attr: &str) -> String {
    format!("{}.{}.{attr}", key.0, key.1)
}

impl<'a> Resolver<'a> {
    pub fn new(index: &'a Index, this: Key) -> Resolver<'a> {
        Resolver { index, this, refs: BTreeSet::new() }
    }

    fn to(&mut self, key: &Key, attr: &str) -> Option<String> {
        // A resource cannot refer to itself (Terraform calls that a cycle).
        if *key == self.this {
            return None;
        }
        self.refs.insert(key.clone());
        Some(reference(key, attr))
    }

    fn data(&mut self, (kind, name): (&'static str, &str), attr: &str) -> String {
        self.refs.insert((kind, name.to_string()));
        format!("{kind}.{name}.{attr}")
    }

    /// Any string: an exported resource's ARN or URL (or one with a `/...` or `:...` tail)
    /// becomes a reference; an ARN of this account gets its account from the caller identity.
    pub fn string(&mut self, s: &str) -> Expr {
        if let Some((key, attr)) = self.index.values.get(s).cloned()
            && let Some(r) = self.to(&key, attr)
        {
            return Expr::Ref(r);
        }
        // The longest exported value that is a prefix ending at a separator.
        let prefix = self
            .index
            .values
            .range(..=s.to_string())
            .rev()
            .take_while(|(v, _)| s.as_bytes().first() == v.as_bytes().first())
            .find(|(v, _)| s.len() > v.len() && s.starts_with(v.as_str()) && matches!(s.as_bytes()[v.len()], b'/' | b':'))
            .map(|(v, target)| (v.len(), target.clone()));
        if let Some((len, (key, attr))) = prefix
            && let Some(r) = self.to(&key, attr)
        {
            return Expr::template(vec![Part::Ref(r), Part::Lit(s[len..].to_string())]);
        }
        if let Some(arn) = Arn::parse(s)
            && !self.index.account.is_empty()
            && arn.account == self.index.account
        {
            let account = self.data(CALLER, "account_id");
            let head = format!("arn:{}:{}:{}:", arn.partition, arn.service, arn.region);
            return Expr::template(vec![Part::Lit(head), Part::Ref(account), Part::Lit(format!(":{}", arn.resource))]);
        }
        Expr::str(s)
    }

    /// A field that names a `kind` of resource: the exported one of that name, else as [`Self::string`].
    pub fn name(&mut self, kind: Kind, s: &str) -> Expr {
        if let Some((key, attr)) = self.index.names.get(&(kind, s.to_string())).cloned()
            && let Some(r) = self.to(&key, attr)
        {
            return Expr::Ref(r);
        }
        self.string(s)
    }

    /// A free-form value (a build's environment variable): the account id and region come
    /// from the provider, names of exported buckets and image repositories become references.
    pub fn setting(&mut self, s: &str) -> Expr {
        if s == self.index.account && !s.is_empty() {
            return Expr::Ref(self.data(CALLER, "account_id"));
        }
        if s == self.index.region && !s.is_empty() {
            return Expr::Ref(self.data(REGION, "name"));
        }
        for kind in [Kind::Bucket, Kind::ImageRepository] {
            if self.index.names.contains_key(&(kind, s.to_string())) {
                return self.name(kind, s);
            }
        }
        self.string(s)
    }

    /// A JSON document (a policy, an event pattern) as `jsonencode({...})` with its strings
    /// resolved; text that is not JSON stays a string.
    pub fn json(&mut self, text: &str) -> Expr {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(doc @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                Expr::Call("jsonencode".into(), vec![Expr::from_json(&doc, &mut |s| self.string(s))])
            }
            _ => Expr::str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        let mut i = Index::new("000000000000", "eu-west-1");
        let bucket: Key = ("aws_s3_bucket", "artifacts".into());
        i.value(Some("arn:aws:s3:::artifacts"), &bucket, "arn");
        i.name(Kind::Bucket, Some("artifacts"), &bucket, "bucket");
        let role: Key = ("aws_iam_role", "build".into());
        i.value(Some("arn:aws:iam::000000000000:role/build"), &role, "arn");
        let group: Key = ("aws_cloudwatch_log_group", "logs".into());
        i.value(Some("arn:aws:logs:eu-west-1:000000000000:log-group:logs"), &group, "arn");
        i
    }

    #[test]
    fn exact_values_become_references() {
        let i = index();
        let mut r = Resolver::new(&i, ("aws_codebuild_project", "p".into()));
        assert_eq!(r.string("arn:aws:iam::000000000000:role/build"), Expr::Ref("aws_iam_role.build.arn".into()));
        assert_eq!(r.name(Kind::Bucket, "artifacts"), Expr::Ref("aws_s3_bucket.artifacts.bucket".into()));
        assert!(r.refs.contains(&("aws_iam_role", "build".to_string())));
    }

    #[test]
    fn prefixes_at_a_separator_become_templates() {
        let i = index();
        let mut r = Resolver::new(&i, ("aws_iam_role_policy", "p".into()));
        assert_eq!(r.string("arn:aws:s3:::artifacts/*"), Expr::Template(vec![Part::Ref("aws_s3_bucket.artifacts.arn".into()), Part::Lit("/*".into())]));
        assert_eq!(
            r.string("arn:aws:logs:eu-west-1:000000000000:log-group:logs:*"),
            Expr::Template(vec![Part::Ref("aws_cloudwatch_log_group.logs.arn".into()), Part::Lit(":*".into())])
        );
        // Another bucket whose name starts the same is not this one.
        assert_eq!(r.string("arn:aws:s3:::artifacts-old"), Expr::str("arn:aws:s3:::artifacts-old"));
    }

    #[test]
    fn account_arns_take_the_caller_account() {
        let i = index();
        let mut r = Resolver::new(&i, ("aws_iam_role", "x".into()));
        assert_eq!(
            r.string("arn:aws:iam::000000000000:root"),
            Expr::Template(vec![Part::Lit("arn:aws:iam::".into()), Part::Ref("data.aws_caller_identity.current.account_id".into()), Part::Lit(":root".into())])
        );
        assert!(r.refs.contains(&(CALLER.0, CALLER.1.to_string())));
        assert_eq!(r.string("arn:aws:iam::aws:policy/ReadOnlyAccess"), Expr::str("arn:aws:iam::aws:policy/ReadOnlyAccess"));
        assert_eq!(r.setting("eu-west-1"), Expr::Ref("data.aws_region.current.name".into()));
        assert_eq!(r.setting("000000000000"), Expr::Ref("data.aws_caller_identity.current.account_id".into()));
        assert_eq!(r.setting("artifacts"), Expr::Ref("aws_s3_bucket.artifacts.bucket".into()));
        assert_eq!(r.setting("something"), Expr::str("something"));
    }

    #[test]
    fn a_resource_never_refers_to_itself() {
        let i = index();
        let mut r = Resolver::new(&i, ("aws_iam_role", "build".into()));
        let e = r.string("arn:aws:iam::000000000000:role/build");
        assert!(matches!(e, Expr::Template(_)), "{e:?}");
        assert!(!r.refs.contains(&("aws_iam_role", "build".to_string())));
    }

    #[test]
    fn documents_resolve_inside_jsonencode() {
        let i = index();
        let mut r = Resolver::new(&i, ("aws_iam_role_policy", "p".into()));
        let e = r.json(r#"{"Statement":[{"Resource":["arn:aws:s3:::artifacts","arn:aws:s3:::artifacts/*"]}]}"#);
        let Expr::Call(name, args) = e else { panic!() };
        assert_eq!(name, "jsonencode");
        let Expr::Object(top) = &args[0] else { panic!() };
        let Expr::List(stmts) = &top[0].1 else { panic!() };
        let Expr::Object(st) = &stmts[0] else { panic!() };
        assert_eq!(
            st[0].1,
            Expr::List(vec![
                Expr::Ref("aws_s3_bucket.artifacts.arn".into()),
                Expr::Template(vec![Part::Ref("aws_s3_bucket.artifacts.arn".into()), Part::Lit("/*".into())])
            ])
        );
        assert_eq!(r.json("not json"), Expr::str("not json"));
    }
}
