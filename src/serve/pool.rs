//! A fixed set of threads running blocking jobs handed to them from async tasks: the argon2
//! verifications, each most of a millisecond of one core's time, which would stall a runtime
//! thread's other requests. Room is bounded: a job is admitted only while fewer than the pool's
//! threads plus its queue are admitted, so that a flood is refused at once instead of waiting
//! in an unbounded line.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type Job = Box<dyn FnOnce() + Send>;

/// The pool is full (or has stopped): the job was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Room taken in a pool for one job, before the job is known: given back when the job has run
/// (or the ticket is dropped unused).
pub struct Ticket(#[allow(dead_code, reason = "held for its drop")] OwnedSemaphorePermit);

pub struct Pool {
    jobs: Option<Sender<Job>>,
    room: Arc<Semaphore>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `threads` threads, named `name-N`, at `nice` (0 as the process, more to yield
    /// the cores to other threads), with room for `queue` jobs waiting beside those running.
    pub fn start(name: &str, threads: usize, queue: usize, nice: i32) -> std::io::Result<Pool> {
        let (jobs, taken) = crossbeam_channel::unbounded::<Job>();
        let room = Arc::new(Semaphore::new(threads + queue));
        let threads = (0..threads)
            .map(|n| {
                let taken = taken.clone();
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
                            job();
                        }
                    })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
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
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Busy> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let result = job();
            drop(ticket);
            let _ = done.send(result);
        });
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => result.await.map_err(|_| Busy),
            _ => Err(Busy),
        }
    }
}

impl Drop for Pool {
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
    async fn jobs_run_on_the_pools_threads() {
        let pool = Pool::start("test", 2, 8, 0).unwrap();
        for _ in 0..4 {
            let ticket = pool.admit().unwrap();
            let thread = pool
                .run_admitted(ticket, || std::thread::current().name().map(str::to_owned))
                .await
                .unwrap();
            let thread = thread.expect("a named thread");
            assert!(thread == "test-0" || thread == "test-1", "{thread}");
        }
    }

    #[tokio::test]
    async fn room_is_threads_plus_queue_and_given_back_when_a_job_has_run() {
        let pool = Pool::start("test", 2, 1, 5).unwrap();
        let tickets: Vec<Ticket> = (0..3).map(|_| pool.admit().unwrap()).collect();
        assert!(pool.admit().is_err(), "two threads and one waiting");
        let mut tickets = tickets.into_iter();
        pool.run_admitted(tickets.next().unwrap(), || ())
            .await
            .unwrap();
        let ticket = pool.admit().expect("room again once the job ran");
        assert!(pool.admit().is_err(), "and only that room");
        drop(tickets);
        assert_eq!(pool.run_admitted(ticket, || 7).await, Ok(7));
    }
}
