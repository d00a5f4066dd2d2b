//! ARNs as AWS builds them.

/// `arn:aws:<service>:<region>:<account>:<resource>`. Global services pass `""` as region.
pub fn arn(service: &str, region: &str, account: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{region}:{account}:{resource}")
}

/// The parts of an ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

impl Arn {
    pub fn parse(s: &str) -> Option<Arn> {
        let mut it = s.splitn(6, ':');
        if it.next()? != "arn" {
            return None;
        }
        let partition = it.next()?.to_string();
        let service = it.next()?.to_string();
        let region = it.next()?.to_string();
        let account = it.next()?.to_string();
        let resource = it.next()?.to_string();
        if partition.is_empty() || service.is_empty() {
            return None;
        }
        Some(Arn { partition, service, region, account, resource })
    }

    /// The resource with a `type/` or `type:` prefix removed, e.g. `project/x` -> `x`.
    pub fn resource_name(&self) -> &str {
        match self.resource.find(['/', ':']) {
            Some(i) => &self.resource[i + 1..],
            None => &self.resource,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses_and_names() {
        let a = Arn::parse("arn:aws:codebuild:eu-west-1:000000000000:project/p1").unwrap();
        assert_eq!(a.service, "codebuild");
        assert_eq!(a.resource_name(), "p1");
        let r = Arn::parse("arn:aws:codecommit:eu-west-1:000000000000:repo").unwrap();
        assert_eq!(r.resource_name(), "repo");
        assert!(Arn::parse("nope").is_none());
        assert_eq!(arn("iam", "", "1", "role/r"), "arn:aws:iam::1:role/r");
    }
}
