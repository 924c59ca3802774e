//! The threads that serve connections: each runs a runtime of its own, with its own reactor and
//! timers, and a connection handed to one stays there, every request of it read, answered and
//! woken on that one thread. One runtime whose threads share the connections (tokio's
//! multi-thread scheduler) moved tasks and wake-ups between cores, and on PostgreSQL a
//! request's lookup to a connection another thread kept: on 2 cores that cost SQLite about a
//! tenth of its answers, PostgreSQL about a third (benches/README.md, finding 29).

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    /// Which worker this thread is, for [`here`]; 0 on any other thread.
    static HERE: Cell<usize> = const { Cell::new(0) };
}

/// The worker this code runs on (0 on a thread that is none).
pub fn here() -> usize {
    HERE.with(Cell::get)
}

pub struct Workers {
    hands: Hands,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// The workers' runtimes, to hand them work.
#[derive(Clone)]
pub struct Hands {
    handles: Arc<[Handle]>,
    next: Arc<AtomicUsize>,
}

impl Hands {
    /// Each worker's runtime, in order: a task spawned on one stays on its thread.
    pub fn all(&self) -> &[Handle] {
        &self.handles
    }

    /// The next worker's runtime, in turn.
    pub fn next(&self) -> &Handle {
        &self.handles[self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len()]
    }
}

impl Workers {
    /// `count` workers, named `name`, each running until [`Workers::stop`].
    pub fn start(name: &str, count: usize) -> std::io::Result<Workers> {
        let (mut handles, mut stops, mut threads) = (Vec::new(), Vec::new(), Vec::new());
        for index in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            handles.push(runtime.handle().clone());
            stops.push(stop);
            threads.push(
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || {
                        HERE.with(|here| here.set(index));
                        let _ = runtime.block_on(stopped);
                        // What is left (a connection past the drain) is dropped.
                        runtime.shutdown_timeout(std::time::Duration::from_secs(1));
                    })?,
            );
        }
        Ok(Workers {
            hands: Hands {
                handles: handles.into(),
                next: Arc::new(AtomicUsize::new(0)),
            },
            stops,
            threads,
        })
    }

    pub fn hands(&self) -> &Hands {
        &self.hands
    }

    /// Stops every worker, dropping what still runs on it, and waits for their threads.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Workers {
    /// Stops the workers also when the server gives up before it serves (an address taken).
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
