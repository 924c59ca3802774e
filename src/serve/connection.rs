//! One client connection: its requests served by hyper, and its two clocks kept here. A
//! request's head must arrive within the read timeout of its first byte (a fresh connection's
//! first head, within the read timeout of the connection); a connection with no request in
//! flight and nothing sent since its last answer is closed after the idle timeout. hyper's own
//! header timer cannot tell the two apart (it starts when an answer is sent), so it is off.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError, watch};

use super::{App, Limits, MAX_HEAD, http, lock};

/// The accept loop's requests for room at the connection limit, each made for a client it has
/// accepted and has no permit for. Every connection's permit that comes back answers one
/// still wanted: an idle connection that a request is told to (the one idle longest, as
/// [`Notify`] wakes its waiters in turn; else the next to become idle) takes it and closes,
/// and one that closes by itself takes one as it gives its permit back, so that no idle
/// connection closes for that room too. Taking a permit or asking, and giving one back with
/// what it answers, are one step each under the lock: a connection closing between a failed
/// try for a permit and the request would otherwise leave the request to close another.
#[derive(Default)]
pub struct Reclaim {
    wanted: Mutex<Wanted>,
    /// Told once for each request, and again by a connection that took one while more are
    /// wanted (one stored notification stands for any number of requests).
    told: Notify,
}

/// The requests for room not yet taken.
#[derive(Default, Clone, Copy)]
struct Wanted {
    /// One for each client accepted and waiting for a permit.
    clients: usize,
    /// An accept that failed for want of files, until a connection closes or an accept works.
    files: bool,
}

impl Wanted {
    /// Takes one request, if one is still wanted: a client's first.
    fn take(&mut self) -> bool {
        if self.clients > 0 {
            self.clients -= 1;
            true
        } else {
            std::mem::take(&mut self.files)
        }
    }

    fn any(self) -> bool {
        self.clients > 0 || self.files
    }
}

impl Reclaim {
    /// A connection permit for a client the accept loop has accepted; with none free, a
    /// request for room is made for it (`NoPermits`: then wait for one). A permit given back
    /// between the failed try and that wait stays for this client: the accept loops all run on
    /// one thread, so none other takes it meanwhile.
    pub fn permit_or_ask(
        &self,
        permits: &Arc<Semaphore>,
    ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        let mut wanted = lock(&self.wanted);
        let permit = permits.clone().try_acquire_owned();
        if let Err(TryAcquireError::NoPermits) = permit {
            wanted.clients += 1;
            self.told.notify_one();
        }
        permit
    }

    /// Asks for one idle connection to close for want of files, unless a request is still
    /// wanted: asked for again and again until room is made, not once per try.
    pub fn ask_for_files(&self) {
        let mut wanted = lock(&self.wanted);
        if !wanted.any() {
            wanted.files = true;
            self.told.notify_one();
        }
    }

    /// An accept worked: files were found without a connection closing for them.
    pub fn accepted(&self) {
        lock(&self.wanted).files = false;
    }

    /// Holds a connection's permit until the connection ends, then gives it back with
    /// [`Reclaim::release`] (also when serving it panicked).
    pub fn hold(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Held {
        Held {
            reclaim: self.clone(),
            permit: Some(permit),
            made_room: false,
        }
    }

    /// Gives back the permit of a connection that ended: one that closed by itself (its
    /// client, a clock, a stop, a socket its worker could not watch) answers a request still
    /// wanted with it; one that closed for a request took that already. (Should one close by
    /// itself while another that took a request is still closing, this one answers it and the
    /// other's permit comes back unasked for: a moment's spare room.)
    fn release(&self, permit: OwnedSemaphorePermit, made_room: bool) {
        let mut wanted = lock(&self.wanted);
        if !made_room {
            wanted.take();
        }
        drop(permit);
    }

    /// Takes one request, if one is still wanted.
    fn take(&self) -> bool {
        lock(&self.wanted).take()
    }

    /// Tells the next idle connection, if a request is still wanted.
    fn pass_on(&self) {
        if lock(&self.wanted).any() {
            self.told.notify_one();
        }
    }
}

/// A connection's permit, given back when this is dropped.
pub struct Held {
    reclaim: Arc<Reclaim>,
    permit: Option<OwnedSemaphorePermit>,
    /// Whether the connection closed for a request for room it took.
    pub made_room: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.reclaim.release(permit, self.made_room);
        }
    }
}

/// What a connection is waiting for.
#[derive(Clone, Copy)]
enum Phase {
    /// The rest of a head, since this instant (its first byte, or the connection's opening).
    Reading(Instant),
    /// Answering this many requests.
    Busy(usize),
    /// A next request, since the last answer at this instant.
    Idle(Instant),
}

impl Phase {
    /// Bytes came from the client.
    fn read(&mut self) {
        if let Phase::Idle(_) = self {
            *self = Phase::Reading(Instant::now());
        }
    }

    fn begin(&mut self) {
        *self = match *self {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        };
    }

    fn end(&mut self) {
        *self = match *self {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        };
    }

    /// When the connection is to be dropped if nothing changes; `None` while busy.
    fn deadline(self, limits: &Limits) -> Option<Instant> {
        match self {
            Phase::Reading(since) => Some(since + limits.read_timeout),
            Phase::Idle(since) => Some(since + limits.idle_timeout),
            Phase::Busy(_) => None,
        }
    }
}

/// The client's stream, noting in the connection's [`Phase`] when bytes come.
struct Watched<S> {
    stream: S,
    phase: Arc<Mutex<Phase>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            lock(&self.phase).read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves the connection's requests until the client closes it, a clock runs out, a stop is
/// asked for (then a connection with a request in flight, or an answer still to write, finishes
/// it and closes; any other closes at once), or, while it is idle, the accept loop wants room
/// for another. Whether it closed for such a request, which it took (for [`Held::made_room`]).
pub async fn serve<S>(
    stream: S,
    app: &Arc<App>,
    limits: &Limits,
    mut stopping: watch::Receiver<bool>,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let phase = Arc::new(Mutex::new(Phase::Reading(Instant::now())));
    // Told when a request's answer is ready, so that the loop below sees the connection idle.
    let answered = Arc::new(Notify::new());
    let service = {
        let (app, phase, answered) = (app.clone(), phase.clone(), answered.clone());
        service_fn(move |request| {
            let (app, phase, answered) = (app.clone(), phase.clone(), answered.clone());
            async move {
                lock(&phase).begin();
                app.requests.fetch_add(1, Ordering::Relaxed);
                let response = http::handle(&app, request).await;
                lock(&phase).end();
                answered.notify_one();
                Ok::<_, Infallible>(response)
            }
        })
    };
    let watched = Watched {
        stream,
        phase: phase.clone(),
    };
    let mut builder = http1::Builder::new();
    builder.header_read_timeout(None).max_buf_size(MAX_HEAD);
    let served = builder.serve_connection(TokioIo::new(watched), service);
    tokio::pin!(served);
    // Once a stop is asked for, or room is wanted for another connection: hyper closes the
    // connection at once if nothing is under way, or once the answer under way is written (the
    // phase is idle as soon as the answer is ready, before hyper has written it).
    let mut closing = false;
    // Whether it closes for a request for room it took.
    let mut made_room = false;
    loop {
        let now = *lock(&phase);
        let deadline = now.deadline(limits);
        let idle = matches!(now, Phase::Idle(_));
        let sleep = tokio::time::sleep_until(
            deadline
                .unwrap_or_else(|| Instant::now() + limits.idle_timeout)
                .into(),
        );
        tokio::select! {
            _ = served.as_mut() => break,
            _ = stopping.wait_for(|stop| *stop), if !closing => {
                // A head still coming is no request in flight: not waited for.
                if matches!(*lock(&phase), Phase::Reading(_)) {
                    break;
                }
                closing = true;
                served.as_mut().graceful_shutdown();
            }
            _ = limits.reclaim.told.notified(), if idle && !closing => {
                if !matches!(*lock(&phase), Phase::Idle(_)) {
                    // A request began meanwhile: the next idle connection makes the room.
                    limits.reclaim.pass_on();
                } else if limits.reclaim.take() {
                    made_room = true;
                    closing = true;
                    served.as_mut().graceful_shutdown();
                    limits.reclaim.pass_on();
                }
            }
            _ = answered.notified() => {}
            _ = sleep => {
                if lock(&phase).deadline(limits).is_some_and(|at| at <= Instant::now()) {
                    break;
                }
            }
        }
    }
    made_room
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(reclaim: &Reclaim) -> usize {
        let wanted = lock(&reclaim.wanted);
        wanted.clients + usize::from(wanted.files)
    }

    #[test]
    fn a_permit_given_back_by_itself_answers_the_request_for_it() {
        let (reclaim, permits) = (Reclaim::default(), Arc::new(Semaphore::new(1)));
        let held = reclaim.permit_or_ask(&permits).expect("one free");
        assert!(matches!(
            reclaim.permit_or_ask(&permits),
            Err(TryAcquireError::NoPermits)
        ));
        assert_eq!(wanted(&reclaim), 1);
        reclaim.release(held, false);
        assert_eq!(
            wanted(&reclaim),
            0,
            "no idle connection is to close for it too"
        );
        assert!(permits.clone().try_acquire_owned().is_ok());
    }

    #[test]
    fn a_permit_given_back_before_the_request_leaves_none_behind() {
        let (reclaim, permits) = (Reclaim::default(), Arc::new(Semaphore::new(1)));
        let held = reclaim.permit_or_ask(&permits).expect("one free");
        reclaim.release(held, false);
        let _next = reclaim.permit_or_ask(&permits).expect("the one given back");
        assert_eq!(wanted(&reclaim), 0);
    }

    #[test]
    fn a_connection_that_closed_for_a_request_answers_no_other() {
        let (reclaim, permits) = (Reclaim::default(), Arc::new(Semaphore::new(1)));
        let held = reclaim.permit_or_ask(&permits).expect("one free");
        let _ = reclaim.permit_or_ask(&permits);
        let _ = reclaim.permit_or_ask(&permits);
        assert_eq!(wanted(&reclaim), 2);
        assert!(reclaim.take());
        reclaim.release(held, true);
        assert_eq!(wanted(&reclaim), 1, "the second request still wants room");
        reclaim.ask_for_files();
        assert_eq!(wanted(&reclaim), 1, "asked already");
    }

    #[test]
    fn room_wanted_for_files_lasts_until_a_connection_closes_or_an_accept_works() {
        let (reclaim, permits) = (Reclaim::default(), Arc::new(Semaphore::new(2)));
        let reclaim = Arc::new(reclaim);
        reclaim.ask_for_files();
        reclaim.ask_for_files();
        assert_eq!(wanted(&reclaim), 1, "once, however often accept fails");
        reclaim.accepted();
        assert_eq!(wanted(&reclaim), 0, "files were found otherwise");
        reclaim.ask_for_files();
        drop(reclaim.hold(reclaim.permit_or_ask(&permits).unwrap()));
        assert_eq!(wanted(&reclaim), 0, "a connection that ended made the room");
    }
}
