//! Starts admitted at the pace the database takes them (issue 16, item 1). A synchronized
//! exam start sends a thousand starts at once; run all at once they take every pooled
//! connection and every other learner's request waits behind them. With `START_CONCURRENCY`
//! set, at most that many starts run at once; up to `START_QUEUE_DEPTH` more wait their turn,
//! in order; past that, a start is answered at once with 503 and `Retry-After`, never a
//! timeout. Without it (the default: in the learner benchmark, 50 learners starting together,
//! a limit moved the start's p99 from about 30 ms to 52-58 ms while the other routes' fell,
//! BENCHMARKS.md), starts wait for pooled connections as any request does, and
//! `START_QUEUE_DEPTH` bounds how many are in flight at once: past it, the same 503.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::AppError;

/// The admission of one kind of request.
#[derive(Debug)]
pub struct Admission {
    /// `None`: no limit of its own.
    running: Option<Arc<Semaphore>>,
    /// Waiting for a permit (with a limit), or in flight (without one).
    waiting: AtomicUsize,
    depth: usize,
}

/// Counts a request while it waits, or while it is in flight (also when it is dropped).
pub struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A start let in: held until the request ends.
pub enum Admitted<'a> {
    /// One of the `START_CONCURRENCY` places.
    Running(OwnedSemaphorePermit),
    /// No limit of its own: counted against `START_QUEUE_DEPTH` while in flight.
    InFlight(Counted<'a>),
}

impl Admission {
    /// `concurrency` at once (0: no limit), `depth` more waiting (without a limit: `depth` in
    /// flight at most).
    pub fn new(concurrency: usize, depth: usize) -> Self {
        Admission {
            running: (concurrency > 0).then(|| Arc::new(Semaphore::new(concurrency))),
            waiting: AtomicUsize::new(0),
            depth,
        }
    }

    /// A place to run, held until the value drops; waits its turn, or 503 when the queue is
    /// full.
    pub async fn admit(&self) -> Result<Admitted<'_>, AppError> {
        if let Some(permit) = self
            .running
            .as_ref()
            .and_then(|r| r.clone().try_acquire_owned().ok())
        {
            return Ok(Admitted::Running(permit));
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.depth {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!("admission_refused_total", "kind" => "start").increment(1);
            return Err(AppError::Busy {
                message: "Too many starts are waiting; try again shortly".into(),
                retry_after_secs: 1,
            });
        }
        let counted = Counted(&self.waiting);
        let Some(running) = &self.running else {
            return Ok(Admitted::InFlight(counted));
        };
        let permit = running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::Unavailable("The service is shutting down".into()))?;
        drop(counted);
        Ok(Admitted::Running(permit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admits_up_to_the_concurrency_queues_up_to_the_depth_and_refuses_the_rest() {
        let a = Admission::new(1, 1);
        let first = a.admit().await.unwrap();
        assert!(matches!(first, Admitted::Running(_)));
        // The second waits (the queue has room for one); a third is refused at once.
        let second = a.admit();
        tokio::pin!(second);
        assert!(futures::poll!(&mut second).is_pending());
        let third = a.admit().await;
        assert!(matches!(
            third,
            Err(AppError::Busy {
                retry_after_secs: 1,
                ..
            })
        ));
        drop(first);
        assert!(matches!(second.await.unwrap(), Admitted::Running(_)));
        // A waiter whose request was dropped leaves the queue.
        assert_eq!(a.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn without_a_limit_the_depth_bounds_the_starts_in_flight() {
        let a = Admission::new(0, 2);
        let (one, two) = (a.admit().await.unwrap(), a.admit().await.unwrap());
        assert!(matches!(one, Admitted::InFlight(_)));
        assert!(matches!(a.admit().await, Err(AppError::Busy { .. })));
        drop(two);
        let three = a.admit().await.unwrap();
        drop((one, three));
        assert_eq!(a.waiting.load(Ordering::SeqCst), 0);
    }
}
