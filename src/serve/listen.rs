//! Where the server listens: TCP addresses and unix sockets, bound before the server starts
//! so that a wrong address is one error line and nothing else.

use std::fmt;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An address to listen on, as `--listen` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Address {
    /// `HOST:PORT` with an IP address (or `localhost`) as the host, or `unix:/path`.
    pub fn parse(text: &str) -> Result<Address> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(Error::usage(
                    "--listen unix: needs a path: unix:/run/autheona/autheona.sock",
                ));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if let Ok(addr) = text.parse() {
            return Ok(Address::Tcp(addr));
        }
        if let Some(port) = text.strip_prefix("localhost:")
            && let Ok(port) = port.parse::<u16>()
        {
            return Ok(Address::Tcp(SocketAddr::from(([127, 0, 0, 1], port))));
        }
        Err(Error::usage(format!(
            "--listen '{}' is not an address to listen on",
            crate::ui::safe(text)
        ))
        .with_hint("give IP:PORT (127.0.0.1:8740, [::1]:8740, 0.0.0.0:8740) or unix:/path/to.sock"))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(addr) => write!(f, "{addr}"),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A listening socket, bound.
pub enum Bound {
    Tcp(std::net::TcpListener),
    Unix(UnixListener, SocketFile),
}

/// A unix socket's file, removed when the server stops if it is still the one it made.
#[derive(Clone)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    pub fn remove(&self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && meta.dev() == self.dev
            && meta.ino() == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds every address, or none: when one cannot be bound, the socket files made for those
/// before it are removed.
pub fn bind_all(addresses: &[Address], mode: u32) -> Result<Vec<Bound>> {
    let mut bound = Vec::with_capacity(addresses.len());
    for address in addresses {
        match bind(address, mode) {
            Ok(one) => bound.push(one),
            Err(err) => {
                for file in socket_files(&bound) {
                    file.remove();
                }
                return Err(err);
            }
        }
    }
    Ok(bound)
}

/// The files of the unix sockets among `bound`.
pub fn socket_files(bound: &[Bound]) -> Vec<SocketFile> {
    bound
        .iter()
        .filter_map(|bound| match bound {
            Bound::Unix(_, file) => Some(file.clone()),
            Bound::Tcp(_) => None,
        })
        .collect()
}

/// Binds `address`; a unix socket is made with `mode` (never looser, not even for a moment).
pub fn bind(address: &Address, mode: u32) -> Result<Bound> {
    let failed =
        |err: std::io::Error| Error::environment(format!("cannot listen on {address}: {err}"));
    match address {
        Address::Tcp(addr) => {
            let listener = std::net::TcpListener::bind(addr).map_err(|err| {
                let hint = match err.kind() {
                    std::io::ErrorKind::AddrInUse => {
                        "another process listens there: choose another port with --listen"
                    }
                    std::io::ErrorKind::PermissionDenied => {
                        "ports below 1024 need privileges: choose another with --listen"
                    }
                    _ => "check the address given to --listen",
                };
                failed(err).with_hint(hint)
            })?;
            listener.set_nonblocking(true).map_err(failed)?;
            Ok(Bound::Tcp(listener))
        }
        Address::Unix(path) => {
            clear_stale_socket(path)?;
            // Made 0600 (the umask takes the rest), then given its mode: no moment with more.
            // SAFETY: umask only swaps the process's file creation mask. The other threads
            // make no file meanwhile (they wait for requests), and a mask that only takes
            // bits away could but make one stricter.
            let before = unsafe { libc::umask(0o177) };
            let listener = UnixListener::bind(path);
            unsafe { libc::umask(before) };
            let listener = listener.map_err(|err| {
                failed(err).with_hint("the socket's directory must exist and be writable")
            })?;
            let ready = || {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
                listener.set_nonblocking(true)?;
                std::fs::symlink_metadata(path)
            };
            match ready() {
                Ok(meta) => Ok(Bound::Unix(
                    listener,
                    SocketFile {
                        path: path.clone(),
                        dev: meta.dev(),
                        ino: meta.ino(),
                    },
                )),
                // The socket just made is no use to anyone: it goes, as it would on exit.
                Err(err) => {
                    let _ = std::fs::remove_file(path);
                    Err(failed(err))
                }
            }
        }
    }
}

/// Removes a socket file left by a server that is gone; anything else at `path` (a live
/// server's socket, a file) is left alone, and is an error.
fn clear_stale_socket(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(Error::environment(format!(
                "cannot listen on unix:{}: {err}",
                path.display()
            )));
        }
    };
    if !meta.file_type().is_socket() {
        return Err(Error::environment(format!(
            "cannot listen on unix:{}: it exists and is not a socket, and is left alone",
            path.display()
        ))
        .with_hint("choose another path with --listen, or remove what is there"));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(Error::environment(format!(
            "cannot listen on unix:{}: a server is listening there",
            path.display()
        ))
        .with_hint("stop it first, or choose another path with --listen")),
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).map_err(|err| {
                Error::environment(format!(
                    "cannot replace the stale socket unix:{}: {err}",
                    path.display()
                ))
            })
        }
        Err(err) => Err(Error::environment(format!(
            "cannot listen on unix:{}: {err}",
            path.display()
        ))),
    }
}

/// The warning for an address beyond this host, if it is one.
pub fn exposure(address: &Address) -> Option<String> {
    match address {
        Address::Tcp(addr) if !addr.ip().is_loopback() => Some(format!(
            "listening on {addr}, reachable from other hosts: tokens cross the network in clear \
             text unless a TLS proxy in front of autheona terminates their connections"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            Address::parse("127.0.0.1:8740").unwrap(),
            Address::Tcp("127.0.0.1:8740".parse().unwrap())
        );
        assert_eq!(
            Address::parse("[::1]:9").unwrap(),
            Address::Tcp("[::1]:9".parse().unwrap())
        );
        assert_eq!(
            Address::parse("localhost:80").unwrap(),
            Address::Tcp("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            Address::parse("unix:/run/a.sock").unwrap(),
            Address::Unix("/run/a.sock".into())
        );
        for wrong in [
            "",
            "8740",
            "example.com:80",
            "unix:",
            "127.0.0.1",
            "1.2.3.4:99999",
        ] {
            assert!(Address::parse(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn only_addresses_beyond_this_host_are_warned_of() {
        assert!(exposure(&Address::parse("127.0.0.1:1").unwrap()).is_none());
        assert!(exposure(&Address::parse("[::1]:1").unwrap()).is_none());
        assert!(exposure(&Address::parse("unix:/x").unwrap()).is_none());
        assert!(exposure(&Address::parse("0.0.0.0:1").unwrap()).is_some());
        assert!(exposure(&Address::parse("[::]:1").unwrap()).is_some());
    }
}
