//! A fixed set of threads, each with its own state, running blocking jobs handed to them from
//! async tasks through a bounded queue: the store's connections (its calls block), and the
//! argon2 verifications (each a millisecond of one core's time).

use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError};

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// The queue is full (or the pool has stopped): the job was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

pub struct Pool<S> {
    jobs: Option<Sender<Job<S>>>,
    threads: Vec<JoinHandle<()>>,
}

impl<S: Send + 'static> Pool<S> {
    /// Starts one thread per state, named `name-N`, with room for `queue` jobs waiting.
    pub fn start(name: &str, states: Vec<S>, queue: usize) -> std::io::Result<Pool<S>> {
        let (jobs, taken) = crossbeam_channel::bounded::<Job<S>>(queue);
        let mut threads = Vec::with_capacity(states.len());
        for (n, mut state) in states.into_iter().enumerate() {
            let taken = taken.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("{name}-{n}"))
                    .spawn(move || {
                        for job in taken {
                            job(&mut state);
                        }
                    })?,
            );
        }
        Ok(Pool {
            jobs: Some(jobs),
            threads,
        })
    }

    /// Runs `job` on one of the threads and waits for its result without blocking the task's
    /// thread; `Busy` at once, without waiting, when the queue is full.
    pub async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut S) -> R + Send + 'static,
    ) -> Result<R, Busy> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job<S> = Box::new(move |state| {
            let _ = done.send(job(state));
        });
        match self.jobs.as_ref().map(|jobs| jobs.try_send(job)) {
            Some(Ok(())) => {}
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => {
                return Err(Busy);
            }
        }
        result.await.map_err(|_| Busy)
    }

    /// How many jobs wait for a thread.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.jobs.as_ref().map_or(0, Sender::len)
    }
}

impl<S> Drop for Pool<S> {
    /// Lets the threads finish the jobs already queued, then waits for them.
    fn drop(&mut self) {
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_pools_threads_with_their_state() {
        let pool = Pool::start("test", vec![10, 20], 8).unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(pool.run(|n: &mut i32| *n).await.unwrap());
        }
        assert!(seen.iter().all(|n| *n == 10 || *n == 20), "{seen:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once() {
        let pool = std::sync::Arc::new(Pool::start("test", vec![()], 1).unwrap());
        let (hold, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move |_| {
                    started.send(()).unwrap();
                    held.recv().unwrap();
                })
                .await
            }
        });
        // Not yet: the future runs only when polled, so wait for the thread to take it.
        running.recv().unwrap();
        let queued = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|_| ()).await }
        });
        // The one slot is taken by `queued` once its task has run; wait for it.
        while pool.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.run(|_| ()).await, Err(Busy));
        hold.send(()).unwrap();
        first.await.unwrap().unwrap();
        queued.await.unwrap().unwrap();
    }
}
