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
        &["store"],
        &["store", "copy"],
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
    assert!(!env.store_exists());
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

/// Runs autheona with `args` and no database, and asserts a usage error with exactly
/// `expected` on stderr: one `error:` line and its hint, as people and scripts see them.
fn usage_error(args: &[&str], expected: &str) {
    let env = TestEnv::new();
    let assert = env.run(args).code(2).stdout("");
    assert_eq!(stderr(&assert), expected, "{args:?}");
    assert!(!env.store_exists());
}

#[test]
fn a_missing_command_names_the_commands() {
    usage_error(
        &[],
        "error: a command is needed: project, token, verify, scan, log, store, serve, completions\n\
         hint: usage: autheona [OPTIONS] <COMMAND>\n",
    );
}

#[test]
fn a_missing_subcommand_names_the_subcommands() {
    usage_error(
        &["token"],
        "error: a command is needed: create, list, revoke, rotate, prune\n\
         hint: usage: autheona token [OPTIONS] <COMMAND>\n",
    );
}

#[test]
fn an_unknown_command_without_a_near_one_shows_the_usage() {
    usage_error(
        &["frobnicate"],
        "error: unrecognized subcommand 'frobnicate'\n\
         hint: usage: autheona [OPTIONS] <COMMAND>\n",
    );
}

#[test]
fn an_unknown_command_suggests_a_similar_one() {
    usage_error(
        &["tokn"],
        "error: unrecognized subcommand 'tokn'\n\
         hint: a similar subcommand exists: 'token'\n",
    );
}

#[test]
fn an_unknown_subcommand_suggests_every_similar_one() {
    usage_error(
        &["token", "crate"],
        "error: unrecognized subcommand 'crate'\n\
         hint: some similar subcommands exist: 'rotate', 'create'\n",
    );
}

#[test]
fn an_unknown_option_suggests_a_similar_one() {
    usage_error(
        &["token", "list", "--jsn"],
        "error: unexpected argument '--jsn' found\n\
         hint: a similar argument exists: '--json'\n",
    );
}

#[test]
fn an_unknown_option_without_a_near_one_shows_the_usage() {
    usage_error(
        &["token", "list", "--bogus"],
        "error: unexpected argument '--bogus' found\n\
         hint: usage: autheona token list [OPTIONS]\n",
    );
}

#[test]
fn a_dashed_name_is_told_how_to_pass_it() {
    usage_error(
        &["project", "create", "-x"],
        "error: unexpected argument '-x' found\n\
         hint: to pass '-x' as a value, use '-- -x'\n",
    );
}

#[test]
fn an_invalid_choice_lists_the_possible_values() {
    usage_error(
        &["token", "create", "-e", "7"],
        "error: invalid value '7' for '--expires <DAYS>' [possible values: 30, 90, 365, never]\n",
    );
}

#[test]
fn an_invalid_choice_suggests_a_similar_value() {
    usage_error(
        &["token", "create", "--expires=neve"],
        "error: invalid value 'neve' for '--expires <DAYS>' [possible values: 30, 90, 365, never]\n\
         hint: a similar value exists: 'never'\n",
    );
}

#[test]
fn an_invalid_number_says_why() {
    usage_error(
        &["token", "list", "--expiring-within", "0"],
        "error: invalid value '0' for '--expiring-within <DAYS>': 0 is not in 1..=36500\n",
    );
}

#[test]
fn a_missing_value_is_named() {
    usage_error(
        &["token", "create", "-p"],
        "error: a value is required for '--project <NAME>' but none was supplied\n\
         hint: give --project a value; one that begins with '-' is written --project=-VALUE\n",
    );
}

#[test]
fn a_value_that_begins_with_a_hyphen_is_shown_how_to_give() {
    // clap's own tip, `-- -prod`, would make it an argument of the command instead.
    usage_error(
        &["token", "create", "-p", "demo", "-e", "30", "-d", "-prod"],
        "error: a value is required for '--description <TEXT>' but none was supplied\n\
         hint: give --description a value; one that begins with '-' is written \
         --description=-VALUE\n",
    );
    // A grace period never begins with '-': the value is taken, and told why it is wrong.
    usage_error(
        &["token", "rotate", "AAAAAAAAAAAA", "--grace", "-1h"],
        "error: invalid value '-1h' for '--grace <DURATION>': '-1h' is not a grace period: use \
         a number of minutes, hours or days, as 30m, 1h, 24h or 7d, or 0 for none\n",
    );
}

#[test]
fn a_missing_argument_is_named_with_the_usage() {
    usage_error(
        &["token", "revoke"],
        "error: the following required arguments were not provided: <TOKEN_ID>\n\
         hint: usage: autheona token revoke <TOKEN_ID>\n",
    );
}

#[test]
fn a_missing_choice_of_options_is_named_with_the_usage() {
    usage_error(
        &["token", "prune", "--yes"],
        "error: the following required arguments were not provided: <--expired|--unused-for <DAYS>>\n\
         hint: usage: autheona token prune --yes <--expired|--unused-for <DAYS>>\n",
    );
}

#[test]
fn options_that_exclude_each_other_are_named() {
    usage_error(
        &["token", "list", "--expired", "--expiring-within", "3"],
        "error: the argument '--expired' cannot be used with '--expiring-within <DAYS>'\n\
         hint: usage: autheona token list --expired\n",
    );
}

#[test]
fn an_option_given_twice_is_refused() {
    usage_error(
        &["token", "create", "--json", "--json"],
        "error: the argument '--json' cannot be used multiple times\n\
         hint: usage: autheona token create [OPTIONS]\n",
    );
}

#[test]
fn a_value_for_a_flag_is_refused() {
    usage_error(
        &["project", "list", "--json=1"],
        "error: unexpected value '1' for '--json' found; no more were expected\n\
         hint: usage: autheona project list --json\n",
    );
}

const A_TOKEN: &str = "aut_3kTMd9aPq0Zx_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS";

#[test]
fn a_token_typed_as_a_command_is_redacted() {
    usage_error(
        &[A_TOKEN],
        "error: unrecognized subcommand 'aut_<redacted>'\n\
         hint: usage: autheona [OPTIONS] <COMMAND>\n",
    );
}

#[test]
fn a_token_typed_as_a_value_is_redacted() {
    usage_error(
        &["token", "create", "-e", A_TOKEN],
        "error: invalid value 'aut_<redacted>' for '--expires <DAYS>' [possible values: 30, 90, 365, never]\n",
    );
}
