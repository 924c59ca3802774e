//! The README's systemd unit ("On systemd") and its PostgreSQL drop-in, as written but for
//! the binary's path: systemd's own checker accepts them without a word, and under
//! `ProtectSystem=strict` the database's directory is the one left writable.

use std::path::Path;

use crate::common::*;

const UNIT: &str = "`/etc/systemd/system/autheona.service`:";
const DROP_IN: &str = "(`/etc/systemd/system/autheona.service.d/postgres.conf`)";
/// Where the README installs the binary.
const INSTALLED: &str = "/usr/local/bin/autheona";

/// The value of `key=` in `unit`, which must have it once.
fn setting<'a>(unit: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    let mut values = unit.lines().filter_map(|line| line.strip_prefix(&prefix));
    let value = values
        .next()
        .unwrap_or_else(|| panic!("no {key}= in {unit}"));
    assert!(values.next().is_none(), "{key}= twice in {unit}");
    value
}

#[test]
fn the_readme_unit_and_drop_in_pass_systemd_analyze_verify() {
    let env = TestEnv::new();
    let units = env.dir().join("units");
    let drop_ins = units.join("autheona.service.d");
    std::fs::create_dir_all(&drop_ins).unwrap();
    let unit = readme_block(UNIT);
    assert!(unit.contains(&format!("ExecStart={INSTALLED} ")), "{unit}");
    assert_eq!(setting(&unit, "ProtectSystem"), "strict");
    assert_eq!(setting(&unit, "NoNewPrivileges"), "true");
    let database = setting(&unit, "Environment")
        .strip_prefix("AUTHEONA_DB=")
        .expect("the unit names the database");
    assert_eq!(
        Path::new(database).parent(),
        Some(Path::new(setting(&unit, "ReadWritePaths"))),
        "SQLite writes the -wal and -shm files beside the database"
    );
    std::fs::write(units.join("autheona.service"), unit.replace(INSTALLED, BIN)).unwrap();
    std::fs::write(drop_ins.join("postgres.conf"), readme_block(DROP_IN)).unwrap();
    let mut cmd = std::process::Command::new("systemd-analyze");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        // The test's directory first, then systemd's own (the trailing colon).
        .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()))
        .args(["verify", "autheona.service"]);
    let run = output(cmd);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{said}");
    assert_eq!(
        said, "",
        "systemd-analyze has something to say of the README's unit"
    );
}
