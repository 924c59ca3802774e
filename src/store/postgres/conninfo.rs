//! Where a PostgreSQL store is and how to log in to it, worked out as libpq (and so `psql`)
//! does: what a `postgres://` URL gives, then the `PG*` variables for what it leaves out, then
//! libpq's defaults.
//!
//! tokio-postgres parses URLs too, but not as libpq does: it reads no variable, puts port 5432
//! on any host the URL names (where libpq would take `PGPORT`) and knows only the sslmodes
//! `disable`, `prefer` and `require`. So the URL is read here, with `percent-encoding` for its
//! escapes, and the connection configured field by field.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::percent_decode_str;
use zeroize::Zeroizing;

/// How long connecting may take when neither the URL nor `PGCONNECT_TIMEOUT` says.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where libpq looks for a server's socket when no host is named (Debian's build, as the
/// `postgresql` package's `psql` does), then upstream's default.
const SOCKET_DIRECTORIES: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// libpq's sslmodes, with their meanings: whether TLS is tried, required, and what of the
/// server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it, checking nothing; else in clear.
    Prefer,
    /// TLS, checking nothing (but as `VerifyCa` when a root certificate file exists).
    Require,
    /// TLS, with a certificate signed by the root certificate.
    VerifyCa,
    /// TLS, with a certificate signed by the root certificate and made for the host name.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            // libpq's `allow` tries without TLS first; autheona never prefers clear text.
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(format!(
                    "sslmode {value:?} is not one of disable, prefer, require, verify-ca, \
                     verify-full"
                ));
            }
        })
    }
}

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Tcp(String),
    /// The directory holding the server's socket (`.s.PGSQL.PORT`).
    Socket(PathBuf),
}

impl Host {
    fn parse(value: &str) -> Host {
        if value.starts_with('/') {
            Host::Socket(PathBuf::from(value))
        } else {
            Host::Tcp(value.to_owned())
        }
    }
}

/// A password, wiped from memory when dropped and never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Everything needed to connect to a PostgreSQL store. Its `Display` names the host, port,
/// database and user, never the password.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: Host,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    /// From the URL, else `PGPASSWORD`, else the password file.
    pub password: Option<Password>,
    /// `PGPASSFILE`, else `~/.pgpass`.
    pub passfile: Option<PathBuf>,
    /// Why the password file was not read (others may read it), as libpq warns.
    pub warning: Option<String>,
    pub sslmode: SslMode,
    /// `sslrootcert`, else `PGSSLROOTCERT`, else `~/.postgresql/root.crt`; `given` when one of
    /// the first two named it (then it must exist).
    pub root_cert: Option<PathBuf>,
    pub root_cert_given: bool,
    /// `None`: wait as long as the system does (libpq's `connect_timeout=0`).
    pub connect_timeout: Option<Duration>,
    pub application_name: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Target {
            host,
            port,
            user,
            dbname,
            ..
        } = self;
        match host {
            Host::Tcp(name) if name.contains(':') => write!(f, "[{name}]:{port}")?,
            Host::Tcp(name) => write!(f, "{name}:{port}")?,
            Host::Socket(dir) => write!(f, "{}/.s.PGSQL.{port}", dir.display())?,
        }
        write!(f, " (database {dbname}, user {user})")
    }
}

/// What the process knows that libpq would look at: its variables, home and user name.
pub struct Surroundings<'a> {
    /// A `PG*` variable, `None` when unset or empty.
    pub var: &'a dyn Fn(&str) -> Option<String>,
    pub home: Option<&'a Path>,
    /// The operating-system user name (libpq's default user), asked for only when neither the
    /// URL nor `PGUSER` names one: looking it up is an NSS lookup (`/etc/nsswitch.conf`,
    /// `/etc/passwd`, perhaps a directory server).
    pub os_user: &'a dyn Fn() -> Option<String>,
}

/// Whether `location` names a PostgreSQL store rather than a file.
pub fn names_postgres(location: &std::ffi::OsStr) -> bool {
    location.to_str().is_some_and(is_url)
}

/// Whether `location` names a PostgreSQL store rather than a file.
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// Whether the URL carries a password (in its user part or as a parameter). Answered even for
/// a URL that is otherwise malformed, so a password on the command line is always refused.
pub fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or("");
    let in_userinfo = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    let in_query = query.split('&').any(|pair| {
        let key = pair.split('=').next().unwrap_or("");
        percent_decode_str(key).decode_utf8_lossy() == "password"
    });
    in_userinfo || in_query || password_unescaped(rest)
}

/// Whether a URL's part after `://` seems to hold a password with a `/` or `?` left
/// unescaped (`user:abc/def==@host`): a `:` before an `@` that is not in a parameter's value.
/// Read as the URL is written, part of the password would be the port, the database or a
/// parameter, and be shown in errors.
fn password_unescaped(rest: &str) -> bool {
    let Some((before, _)) = rest.split_once('@') else {
        return false;
    };
    let Some((_, after_colon)) = before.split_once(':') else {
        return false;
    };
    // `host:5432/db?application_name=me@there`: a port, then the '@' in a parameter's value.
    let port = after_colon
        .split(['/', '?'])
        .next()
        .is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    let in_a_value = before
        .split_once('?')
        .is_some_and(|(_, query)| query.contains('='));
    !(port && in_a_value)
}

/// The URL's parts, each `None` when it leaves it out.
#[derive(Default)]
struct Given {
    host: Option<String>,
    port: Option<String>,
    user: Option<String>,
    password: Option<Zeroizing<String>>,
    dbname: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    connect_timeout: Option<String>,
    application_name: Option<String>,
}

fn decode(part: &str, what: &str) -> Result<String, String> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| format!("the {what} in the database URL is not UTF-8 once decoded"))
}

/// Reads a `postgres://[user[:password]@][host][:port][/dbname][?param=value&...]` URL.
/// Errors never quote the URL, which may hold a password.
fn parse_url(url: &str) -> Result<Given, String> {
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or("a database URL starts with postgres:// or postgresql://")?;
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    if password_unescaped(rest)
        && !before_query
            .split('/')
            .next()
            .is_some_and(|authority| authority.contains('@'))
    {
        return Err(
            "the database URL has an '@' after its host: percent-encode a '/', '?' or \
                    '@' in the user name or password (%2F, %3F, %40)"
                .into(),
        );
    }
    let (authority, path) = match before_query.split_once('/') {
        Some((authority, path)) => (authority, Some(path)),
        None => (before_query, None),
    };
    let mut given = Given::default();
    let host_port = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            given.user = Some(decode(user, "user name")?).filter(|user| !user.is_empty());
            if let Some(password) = password {
                given.password = Some(Zeroizing::new(decode(password, "password")?));
            }
            host_port
        }
        None => authority,
    };
    if host_port.contains(',') {
        return Err("the database URL names several hosts; autheona connects to one".into());
    }
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("the database URL has an unclosed [ in its host")?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err("the database URL has text after its host's ]".into()),
            },
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    given.host = Some(decode(host, "host")?).filter(|host| !host.is_empty());
    given.port = port.map(str::to_owned).filter(|port| !port.is_empty());
    if let Some(path) = path {
        given.dbname = Some(decode(path, "database name")?).filter(|name| !name.is_empty());
    }
    for pair in query.into_iter().flat_map(|query| query.split('&')) {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair
            .split_once('=')
            .ok_or("a parameter in the database URL has no `=value`")?;
        let key = decode(key, "parameter name")?;
        let slot = match key.as_str() {
            "host" => &mut given.host,
            "port" => &mut given.port,
            "user" => &mut given.user,
            "dbname" => &mut given.dbname,
            "sslmode" => &mut given.sslmode,
            "sslrootcert" => &mut given.sslrootcert,
            "connect_timeout" => &mut given.connect_timeout,
            "application_name" => &mut given.application_name,
            "password" => {
                given.password = Some(Zeroizing::new(decode(value, "password")?));
                continue;
            }
            _ => {
                return Err(format!(
                    "the database URL has a parameter autheona does not know: {key:?} (it \
                     knows host, port, user, dbname, sslmode, sslrootcert, connect_timeout, \
                     application_name)"
                ));
            }
        };
        *slot = Some(decode(value, &format!("{key} parameter"))?);
    }
    Ok(given)
}

/// Where to connect for `url`, with `around` filling what it leaves out. The error is one line
/// about what is wrong; it never holds the password.
pub fn resolve(url: &str, around: &Surroundings<'_>) -> Result<Target, String> {
    let given = parse_url(url)?;
    let var = |name: &str| (around.var)(name).filter(|value| !value.is_empty());
    let pick = |from_url: Option<String>, name: &str| from_url.or_else(|| var(name));

    let host = match pick(given.host, "PGHOST") {
        Some(host) if host.contains(',') => {
            return Err("PGHOST names several hosts; autheona connects to one".into());
        }
        Some(host) => Host::parse(&host),
        None => Host::Socket(PathBuf::from(
            SOCKET_DIRECTORIES
                .into_iter()
                .find(|dir| Path::new(dir).is_dir())
                .unwrap_or(SOCKET_DIRECTORIES[1]),
        )),
    };
    let port = match pick(given.port, "PGPORT") {
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| format!("port {port:?} is not a port number (1 to 65535)"))?,
        None => 5432,
    };
    let user = pick(given.user, "PGUSER")
        .or_else(around.os_user)
        .ok_or("no user name: set PGUSER or name the user in the database URL")?;
    let dbname = pick(given.dbname, "PGDATABASE").unwrap_or_else(|| user.clone());
    let password = given
        .password
        .map(Password)
        .or_else(|| var("PGPASSWORD").map(|password| Password(Zeroizing::new(password))));
    let passfile = var("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| around.home.map(|home| home.join(".pgpass")));
    let sslmode = match pick(given.sslmode, "PGSSLMODE") {
        Some(mode) => SslMode::parse(&mode)?,
        None => SslMode::Prefer,
    };
    let given_root = pick(given.sslrootcert, "PGSSLROOTCERT");
    if given_root.as_deref() == Some("system") {
        return Err(
            "sslrootcert=system is not supported: name the file of the root certificate".into(),
        );
    }
    let root_cert_given = given_root.is_some();
    let root_cert = given_root
        .map(PathBuf::from)
        .or_else(|| around.home.map(|home| home.join(".postgresql/root.crt")));
    let connect_timeout = match pick(given.connect_timeout, "PGCONNECT_TIMEOUT") {
        // As libpq: 0 (or less) waits indefinitely, and less than 2 s counts as 2 s.
        Some(seconds) => match seconds.trim().parse::<i64>() {
            Ok(seconds) if seconds <= 0 => None,
            Ok(seconds) => Some(Duration::from_secs(seconds.max(2).unsigned_abs())),
            Err(_) => return Err(format!("connect_timeout {seconds:?} is not whole seconds")),
        },
        None => Some(CONNECT_TIMEOUT),
    };
    let application_name =
        pick(given.application_name, "PGAPPNAME").unwrap_or_else(|| "autheona".to_owned());
    let mut target = Target {
        host,
        port,
        user,
        dbname,
        password,
        passfile,
        warning: None,
        sslmode,
        root_cert,
        root_cert_given,
        connect_timeout,
        application_name,
    };
    if target.password.is_none()
        && let Some(file) = &target.passfile
    {
        (target.password, target.warning) = password_from_file(&target, file);
    }
    Ok(target)
}

/// The password for `target` in a libpq password file (`host:port:database:user:password`
/// lines, `*` matching anything, `\` escaping `:` and `\`), as libpq reads it: `None` when the
/// file is missing, has no matching line, or may be read by others (then libpq warns and
/// ignores it: `warning` says so).
pub fn password_from_file(target: &Target, file: &Path) -> (Option<Password>, Option<String>) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(file) else {
        return (None, None);
    };
    if !meta.is_file() {
        return (None, None);
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return (
            None,
            Some(format!(
                "password file {} has group or world access and is ignored; run: chmod 0600 {}",
                file.display(),
                file.display()
            )),
        );
    }
    let Ok(text) = std::fs::read_to_string(file).map(Zeroizing::new) else {
        return (None, None);
    };
    let host = match &target.host {
        // libpq matches a socket connection against "localhost" as well as the directory.
        Host::Socket(dir) => vec!["localhost".to_owned(), dir.display().to_string()],
        Host::Tcp(name) => vec![name.clone()],
    };
    let port = target.port.to_string();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let fields = split_passfile_line(line);
        let [h, p, d, u, password] = &fields[..] else {
            continue;
        };
        let matches = |field: &str, value: &str| field == "*" || field == value;
        if (h.as_str() == "*" || host.iter().any(|name| name == h.as_str()))
            && matches(p, &port)
            && matches(d, &target.dbname)
            && matches(u, &target.user)
        {
            return (Some(Password(Zeroizing::new(password.to_string()))), None);
        }
    }
    (None, None)
}

/// A password file line's five fields, unescaped; the last one takes the rest of the line.
fn split_passfile_line(line: &str) -> Vec<Zeroizing<String>> {
    let mut fields = vec![Zeroizing::new(String::new())];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == ':' && fields.len() < 5 {
            fields.push(Zeroizing::new(String::new()));
            continue;
        }
        let last = fields.last_mut().expect("one field at least");
        match c {
            '\\' => last.extend(chars.next()),
            _ => last.push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests;
