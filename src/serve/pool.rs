//! A fixed set of threads, each with its own state, running blocking jobs handed to them from
//! async tasks: the store's connections on a server (its calls wait on the network), and the
//! argon2 verifications (each most of a millisecond of one core's time). Room is bounded: a job
//! is admitted only while fewer than the pool's threads plus its queue are admitted, so that
//! a flood is refused at once instead of waiting in an unbounded line.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// The pool is full (or has stopped): the job was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Room taken in a pool for one job, before the job is known: given back when the job has run
/// (or the ticket is dropped unused).
pub struct Ticket(#[allow(dead_code, reason = "held for its drop")] OwnedSemaphorePermit);

pub struct Pool<S> {
    jobs: Option<Sender<Job<S>>>,
    room: Arc<Semaphore>,
    threads: Vec<JoinHandle<()>>,
}

impl<S: Send + 'static> Pool<S> {
    /// Starts one thread per state, named `name-N`, at `nice` (0 as the process, more to
    /// yield the cores to other threads), with room for `queue` jobs waiting beside those
    /// running.
    pub fn start(name: &str, states: Vec<S>, queue: usize, nice: i32) -> std::io::Result<Pool<S>> {
        let (jobs, taken) = crossbeam_channel::unbounded::<Job<S>>();
        let room = Arc::new(Semaphore::new(states.len() + queue));
        let mut threads = Vec::with_capacity(states.len());
        for (n, mut state) in states.into_iter().enumerate() {
            let taken = taken.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("{name}-{n}"))
                    .spawn(move || {
                        if nice != 0 {
                            // SAFETY: setpriority(2) on this thread (Linux: a thread id is a
                            // PRIO_PROCESS id); failure leaves the priority as it was.
                            unsafe {
                                libc::setpriority(
                                    libc::PRIO_PROCESS,
                                    libc::gettid() as libc::id_t,
                                    nice,
                                )
                            };
                        }
                        for job in taken {
                            job(&mut state);
                        }
                    })?,
            );
        }
        Ok(Pool {
            jobs: Some(jobs),
            room,
            threads,
        })
    }

    /// Takes room for one job, or `Busy` at once when there is none.
    pub fn admit(&self) -> Result<Ticket, Busy> {
        self.room
            .clone()
            .try_acquire_owned()
            .map(Ticket)
            .map_err(|_| Busy)
    }

    /// Runs `job` on one of the threads, in the room `ticket` holds, and waits for its result
    /// without blocking the task's thread.
    pub async fn run_admitted<R: Send + 'static>(
        &self,
        ticket: Ticket,
        job: impl FnOnce(&mut S) -> R + Send + 'static,
    ) -> Result<R, Busy> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job<S> = Box::new(move |state| {
            let result = job(state);
            drop(ticket);
            let _ = done.send(result);
        });
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => result.await.map_err(|_| Busy),
            _ => Err(Busy),
        }
    }

    /// [`Pool::admit`], then [`Pool::run_admitted`].
    pub async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut S) -> R + Send + 'static,
    ) -> Result<R, Busy> {
        let ticket = self.admit()?;
        self.run_admitted(ticket, job).await
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
        let pool = Pool::start("test", vec![10, 20], 8, 0).unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(pool.run(|n: &mut i32| *n).await.unwrap());
        }
        assert!(seen.iter().all(|n| *n == 10 || *n == 20), "{seen:?}");
    }

    #[tokio::test]
    async fn room_is_threads_plus_queue_and_given_back_when_a_job_has_run() {
        let pool = Pool::start("test", vec![(), ()], 1, 5).unwrap();
        let tickets: Vec<Ticket> = (0..3).map(|_| pool.admit().unwrap()).collect();
        assert!(pool.admit().is_err(), "two threads and one waiting");
        assert_eq!(pool.run(|_| ()).await, Err(Busy));
        let mut tickets = tickets.into_iter();
        pool.run_admitted(tickets.next().unwrap(), |_| ())
            .await
            .unwrap();
        assert!(pool.admit().is_ok(), "room again once the job ran");
        drop(tickets);
        assert_eq!(pool.run(|_| 7).await, Ok(7));
    }
}
