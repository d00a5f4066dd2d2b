//! Background sweeps: a job a service runs every so often until the server shuts down
//! (KMS deleting keys past their deletion date, Secrets Manager secrets past their recovery
//! window).

use crate::SharedClock;
use crate::time::Timestamp;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

/// Spawns a task that runs `job(state, clock.now())` at once and then every `period` until
/// `stop` completes. `job` answers how many things it did; `log` is (what a run that did
/// something logs at info, what a failed run logs at warn).
pub fn spawn_sweep<T, S, J, F, E>(period: Duration, stop: S, clock: SharedClock, state: T, job: J, log: (&'static str, &'static str))
where
    T: Clone + Send + 'static,
    S: Future<Output = ()> + Send + 'static,
    J: Fn(T, Timestamp) -> F + Send + 'static,
    F: Future<Output = Result<usize, E>> + Send,
    E: Debug,
{
    let (done, failed) = log;
    tokio::spawn(async move {
        tokio::pin!(stop);
        loop {
            match job(state.clone(), clock.now()).await {
                Ok(n) if n > 0 => tracing::info!(count = n, "{done}"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = ?e, "{failed}"),
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    });
}
