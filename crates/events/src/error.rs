//! What goes wrong in EventBridge's domain. The domain ([`crate::rules`], [`crate::cache`])
//! names no wire code; the API edge turns an [`EventsError`] into AWS's error once
//! (`From<EventsError> for AwsError`), and domain callers (delivery, the scheduler) match
//! variants.

use codeyard_core::AwsError;
use codeyard_store::StoreError;

#[derive(Debug)]
pub enum EventsError {
    RuleNotFound { rule: String, bus: String },
    BusNotFound(String),
    /// A tagging ARN that names no rule or bus of this account.
    ResourceNotFound(String),
    BusExists(String),
    /// An event pattern that does not parse, with the pattern compiler's message.
    InvalidPattern(String),
    /// A request EventBridge refuses (ValidationException), with its message.
    Invalid(String),
    /// More targets on one rule than the quota allows.
    TooManyTargets,
    /// Another write changed the rule between read and commit.
    Contended,
    Store(StoreError),
}

pub type EventsResult<T> = Result<T, EventsError>;

impl From<StoreError> for EventsError {
    fn from(e: StoreError) -> Self {
        EventsError::Store(e)
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> EventsError {
    EventsError::Invalid(message.into())
}

impl From<EventsError> for AwsError {
    fn from(e: EventsError) -> Self {
        let not_found = |m: String| AwsError::client("ResourceNotFoundException", m);
        match e {
            EventsError::RuleNotFound { rule, bus } => not_found(format!("Rule {rule} does not exist on EventBus {bus}.")),
            EventsError::BusNotFound(bus) => not_found(format!("Event bus {bus} does not exist.")),
            EventsError::ResourceNotFound(arn) => not_found(format!("Resource {arn} does not exist.")),
            EventsError::BusExists(bus) => AwsError::client("ResourceAlreadyExistsException", format!("Event bus {bus} already exists.")),
            EventsError::InvalidPattern(m) => AwsError::client("InvalidEventPatternException", m),
            EventsError::Invalid(m) => AwsError::validation(m),
            EventsError::TooManyTargets => {
                AwsError::client("LimitExceededException", "The requested resource exceeds the maximum number allowed.")
            }
            EventsError::Contended => {
                AwsError::client("ConcurrentModificationException", "Another request changed the rule at the same time; retry.")
            }
            EventsError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_get_eventbridges_codes_and_messages() {
        let e = AwsError::from(EventsError::RuleNotFound { rule: "r".into(), bus: "b".into() });
        assert_eq!((e.status, e.code.as_str(), e.message.as_str()), (400, "ResourceNotFoundException", "Rule r does not exist on EventBus b."));
        assert_eq!(AwsError::from(EventsError::BusExists("b".into())).code, "ResourceAlreadyExistsException");
        assert_eq!(AwsError::from(EventsError::InvalidPattern("x".into())).code, "InvalidEventPatternException");
        assert_eq!(AwsError::from(invalid("x")).code, "ValidationException");
        assert_eq!(AwsError::from(EventsError::TooManyTargets).code, "LimitExceededException");
        assert_eq!(AwsError::from(EventsError::Contended).code, "ConcurrentModificationException");
    }
}
