//! Where a regional resource lives: an account and a region, and the names built from them,
//! store namespaces (`<service>/<account>/<region>/<kind>`, as docs/services.md lays them
//! out) and ARNs. A service's own names (a log group's streams, a parameter's ARN) are
//! written once on top of these, in the service's crate.

use crate::RequestContext;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scope<'a> {
    pub account: &'a str,
    pub region: &'a str,
}

impl<'a> Scope<'a> {
    /// The request's account and region.
    pub fn of(ctx: &'a RequestContext) -> Scope<'a> {
        Scope { account: &ctx.account, region: &ctx.region }
    }

    /// The store namespace `<service>/<account>/<region>/<kind>`.
    pub fn namespace(&self, service: &str, kind: &str) -> String {
        format!("{service}/{}/{}/{kind}", self.account, self.region)
    }

    /// `arn:aws:<service>:<region>:<account>:<resource>`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        crate::arn::arn(service, self.region, self.account, resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let s = Scope { account: "123456789012", region: "eu-west-1" };
        assert_eq!(s.namespace("logs", "groups"), "logs/123456789012/eu-west-1/groups");
        assert_eq!(s.arn("logs", "log-group:g"), "arn:aws:logs:eu-west-1:123456789012:log-group:g");
    }
}
