//! Where "now" comes from, for the parts of the server that act on time by themselves
//! (this round: EventBridge's scheduler). The server runs on [`SystemClock`]; a test gives it
//! a [`TestClock`] and moves it forward, so a rule that fires once a minute is checked
//! without waiting a minute.

use crate::time::Timestamp;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

pub type SharedClock = Arc<dyn Clock>;

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        crate::time::now()
    }
}

/// The system clock plus an offset the test advances: time keeps flowing (timeouts, leases
/// and everything else on the system clock stay consistent) and jumps forward on
/// [`TestClock::advance`].
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: AtomicI64,
}

impl TestClock {
    pub fn new() -> Arc<TestClock> {
        Arc::new(TestClock::default())
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.offset_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        crate::time::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_jumps_when_advanced() {
        let clock = TestClock::new();
        let before = clock.now();
        clock.advance(std::time::Duration::from_secs(61));
        let jumped = clock.now() - before;
        assert!(jumped >= chrono::Duration::seconds(61), "{jumped}");
        assert!((SystemClock.now() - before) < chrono::Duration::seconds(61));
    }
}
