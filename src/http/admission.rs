//! Starts admitted at the pace the database takes them (issue 16, item 1, in part). A
//! synchronized exam start sends a thousand starts at once; run all at once they take every
//! pooled connection and every other learner's request waits behind them. With
//! `START_CONCURRENCY` set, at most that many starts run at once; up to `START_QUEUE_DEPTH`
//! more wait their turn, in order; past that, a start is answered at once with 503 and
//! `Retry-After`, never a timeout. Off by default: in the learner benchmark (50 learners
//! starting together) it moved the start's p99 from about 30 ms to 52-58 ms while the other
//! routes' fell (BENCHMARKS.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::AppError;

/// The admission of one kind of request.
#[derive(Debug)]
pub struct Admission {
    /// `None`: no limit.
    running: Option<Arc<Semaphore>>,
    waiting: AtomicUsize,
    depth: usize,
}

/// Counts a waiter while it waits (also when its request is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Admission {
    /// `concurrency` at once (0: no limit), `depth` more waiting.
    pub fn new(concurrency: usize, depth: usize) -> Self {
        Admission {
            running: (concurrency > 0).then(|| Arc::new(Semaphore::new(concurrency))),
            waiting: AtomicUsize::new(0),
            depth,
        }
    }

    /// A place to run, held until the permit drops; waits its turn, or 503 when the queue
    /// is full.
    pub async fn admit(&self) -> Result<Option<OwnedSemaphorePermit>, AppError> {
        let Some(running) = &self.running else {
            return Ok(None);
        };
        if let Ok(permit) = running.clone().try_acquire_owned() {
            return Ok(Some(permit));
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.depth {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!("admission_refused_total", "kind" => "start").increment(1);
            return Err(AppError::Busy {
                message: "Too many starts are waiting; try again shortly".into(),
                retry_after_secs: 1,
            });
        }
        let _waiting = Waiting(&self.waiting);
        let permit = running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::Unavailable("The service is shutting down".into()))?;
        Ok(Some(permit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admits_up_to_the_concurrency_queues_up_to_the_depth_and_refuses_the_rest() {
        let a = Admission::new(1, 1);
        let first = a.admit().await.unwrap();
        assert!(first.is_some());
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
        assert!(second.await.unwrap().is_some());
        // A waiter whose request was dropped leaves the queue.
        assert_eq!(a.waiting.load(Ordering::SeqCst), 0);
        assert!(Admission::new(0, 0).admit().await.unwrap().is_none());
    }
}
