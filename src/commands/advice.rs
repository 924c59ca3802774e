//! What to do about an error, in the command line's words. `ops` and `store` say what went
//! wrong and tag it with a [`Topic`]; the advice that names flags and commands (`--db`,
//! `autheona project create`) is written here, once, as jj words its library's errors in
//! `From<...> for CommandError`.

use crate::error::{Error, Topic};
use crate::store::StoreErrorKind;

/// Where there is no database yet: the one way to make it.
pub const CREATE_A_PROJECT_FIRST: &str = "create a project first: autheona project create NAME";

/// `err` with the advice its topic calls for, unless it already carries a hint.
pub fn advise(err: Error) -> Error {
    if err.hint().is_some() {
        return err;
    }
    let hint = match err.topic() {
        Some(Topic::Store {
            kind,
            on_server: false,
        }) => file_advice(*kind).map(str::to_owned),
        Some(Topic::Store {
            kind,
            on_server: true,
        }) => server_advice(*kind).map(str::to_owned),
        Some(Topic::NoDatabase) => Some(CREATE_A_PROJECT_FIRST.to_owned()),
        Some(Topic::NoProject) => Some(
            "`autheona project list` shows the projects; `autheona project create NAME` adds one"
                .to_owned(),
        ),
        Some(Topic::ProjectNameTaken) => {
            Some("choose another name; `autheona project list` shows those taken".to_owned())
        }
        Some(Topic::NotATokenId) => Some("`autheona token list` shows the ids".to_owned()),
        Some(Topic::NoToken) => Some(
            "`autheona token list` shows the tokens; a revoked token is gone for good".to_owned(),
        ),
        Some(Topic::UnseenToken(id)) => {
            Some(format!("revoke it: autheona token revoke {id} --yes"))
        }
        Some(Topic::UnsyncedToken(id)) => Some(format!(
            "revoke it (autheona token revoke {id} --yes) and create another"
        )),
        Some(Topic::AlreadyRotated {
            id,
            project,
            replaced_by,
        }) => Some(format!(
            "rotate token {replaced_by} instead (if it was revoked: autheona token create -p \
             {project}); to stop {id} before its grace period ends: autheona token revoke {id}"
        )),
        Some(Topic::GraceForExpired) => Some("rotate it without --grace".to_owned()),
        Some(Topic::NotRetired(id)) => Some(format!(
            "use the new token, and revoke the old one: autheona token revoke {id} --yes"
        )),
        None => None,
    };
    match hint {
        Some(hint) => err.with_hint(hint),
        None => err,
    }
}

fn file_advice(kind: StoreErrorKind) -> Option<&'static str> {
    use StoreErrorKind as Kind;
    Some(match kind {
        Kind::NotOurs => "pass another path with --db or AUTHEONA_DB; the file was left unchanged",
        Kind::Tampered => "restore it from a backup; the file was left unchanged",
        Kind::Newer => "upgrade autheona; the file was left unchanged",
        Kind::Uninitialised => "`autheona project create NAME` initialises it",
        Kind::NotAFile => "pass the path of a database file with --db or AUTHEONA_DB",
        Kind::DanglingLink => "fix the link, or pass another path with --db or AUTHEONA_DB",
        Kind::Busy => "try again in a moment",
        Kind::Corrupt => "restore it from a backup",
        Kind::ReadOnly | Kind::Unreadable => "check the permissions of the file and its directory",
        Kind::Unreachable => {
            "check that the file and its directory exist and are readable and writable"
        }
        Kind::DiskFull | Kind::Io => "check that the disk has space and works",
        Kind::LoginRefused
        | Kind::NotAdmitted
        | Kind::NoSuchDatabase
        | Kind::ServerDown
        | Kind::ConnectionLost
        | Kind::Tls
        | Kind::Permission
        | Kind::Other => return None,
    })
}

/// For a database on a PostgreSQL server.
fn server_advice(kind: StoreErrorKind) -> Option<&'static str> {
    use StoreErrorKind as Kind;
    Some(match kind {
        Kind::NotOurs => {
            "name another database in the URL (--db or AUTHEONA_DB); it was left unchanged"
        }
        Kind::Tampered => "restore it from a backup; it was left unchanged",
        Kind::Newer => "upgrade autheona; the database was left unchanged",
        Kind::Uninitialised => {
            "`autheona project create NAME` initialises it (as a user that may create schemas)"
        }
        Kind::Busy => "try again in a moment; nothing was changed",
        Kind::ReadOnly => "connect to the primary server: autheona writes on every command",
        Kind::LoginRefused => {
            "check the user, and the password in PGPASSWORD, ~/.pgpass or AUTHEONA_DB's URL"
        }
        Kind::NotAdmitted => {
            "the server's pg_hba.conf admits no such connection: check the host, user, \
             database and sslmode, or ask its administrator"
        }
        Kind::NoSuchDatabase => "create it (createdb NAME) or name another in the URL",
        Kind::ServerDown => {
            "check that the server is running and reachable at that host and port (PGHOST, \
             PGPORT or the URL)"
        }
        Kind::ConnectionLost => {
            "nothing half-written is kept; check the server, then run the command again"
        }
        Kind::Tls => "check sslmode and sslrootcert (or PGSSLMODE and PGSSLROOTCERT)",
        Kind::Permission => {
            "grant the user the privileges in the README's least-privilege setup, or run it \
             as the schema's owner"
        }
        Kind::DiskFull => "free space on the database server",
        Kind::NotAFile
        | Kind::DanglingLink
        | Kind::Corrupt
        | Kind::Unreadable
        | Kind::Unreachable
        | Kind::Io
        | Kind::Other => return None,
    })
}
