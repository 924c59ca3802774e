use crate::common::*;

#[test]
fn every_command_explains_itself_with_an_example() {
    let env = TestEnv::new();
    for command in [
        &[][..],
        &["project"],
        &["project", "create"],
        &["project", "list"],
        &["project", "delete"],
        &["token"],
        &["token", "create"],
        &["token", "list"],
        &["token", "revoke"],
        &["verify"],
        &["scan"],
    ] {
        let assert = env
            .bare_cmd()
            .args(command)
            .arg("--help")
            .assert()
            .success();
        let help = stdout(&assert);
        assert!(help.contains("Usage: autheona"), "{command:?}: {help}");
        if command.len() != 1 {
            assert!(
                help.contains("Example"),
                "{command:?} has no example:\n{help}"
            );
        }
    }
}

#[test]
fn version_is_the_package_version() {
    let env = TestEnv::new();
    env.bare_cmd()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("autheona {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2_without_touching_anything() {
    let env = TestEnv::new();
    for args in [
        &["frobnicate"][..],
        &["token"],
        &["project", "create"],
        &["token", "list", "--bogus"],
    ] {
        let assert = env.run(args).code(2).stdout("");
        assert!(
            stderr(&assert).starts_with("error: "),
            "{args:?}: {}",
            stderr(&assert)
        );
    }
    assert!(!env.db().exists());
}

#[test]
fn a_token_typed_as_an_argument_is_never_echoed() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    for args in [
        vec!["token", "create", token.as_str()],
        vec!["token", "create", "-e", "30", "-p", token.as_str()],
        vec!["token", "list", "-p", token.as_str()],
        vec!["project", "delete", token.as_str(), "--yes"],
        vec!["project", "create", token.as_str()],
        vec!["token", "revoke", token.as_str(), "--yes"],
        vec!["verify", token.as_str()],
    ] {
        let assert = env.run(&args).code(2);
        let out = stdout(&assert) + &stderr(&assert);
        assert!(
            !out.contains(&token[17..60]),
            "{args:?} echoed the token: {out}"
        );
    }
}
