//! `autheona serve`, against the real binary on both stores: its answers, what it refuses,
//! revocation that is never late, its signals and sockets, and nginx and Caddy in front of it.

mod api;
mod clock;
pub(crate) mod harness;
mod hostile;
mod lease;
mod lifecycle;
mod outage;
mod proxies;
mod revocation;
mod systemd;
