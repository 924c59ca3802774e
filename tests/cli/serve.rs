//! `autheona serve`, against the real binary on both stores: its answers, what it refuses,
//! revocation that is never late, its signals and sockets.

mod api;
mod clock;
mod harness;
mod hostile;
mod lifecycle;
mod revocation;
