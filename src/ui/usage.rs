//! Command-line parsing errors from clap, worded as autheona words its own: one line saying
//! what is wrong, and a hint (clap's suggestion, else the usage line).
//!
//! Everything comes from the error's kind and context (what was typed, what would have been
//! accepted, clap's suggestions, the usage), never from parsing the text clap renders, so a
//! rewording of clap's messages cannot break it. The wording follows clap's own (its
//! `RichFormatter`), so the lines are the ones users and scripts already know. Two pieces are
//! clap's text, shown whole rather than parsed: a `Suggested` tip (such as `to pass '-x' as a
//! value, use '-- -x'`) and the usage line, taken from the command's name on.

use clap::error::{ContextKind, ContextValue, ErrorKind as Clap};

use crate::error::Error;

/// The usage error for a clap error other than help or version. Anything the user typed is
/// quoted as it was: `ui::report` redacts tokens and escapes unsafe text.
pub(super) fn from_clap(err: &clap::Error) -> Error {
    let error = Error::usage(message(err).unwrap_or_else(|| fallback(err)));
    let hint = hyphen_value(err)
        .or_else(|| suggestion(err))
        .or_else(|| usage(err).map(|usage| format!("usage: {usage}")));
    match hint {
        Some(hint) => error.with_hint(hint),
        None => error,
    }
}

/// What is wrong, from the context clap gives for each kind; `None` when it gave none.
fn message(err: &clap::Error) -> Option<String> {
    let arg = || string(err, ContextKind::InvalidArg);
    let value = || string(err, ContextKind::InvalidValue);
    Some(match err.kind() {
        Clap::InvalidSubcommand => {
            let typed = string(err, ContextKind::InvalidSubcommand)?;
            format!("unrecognized subcommand '{typed}'")
        }
        Clap::UnknownArgument => format!("unexpected argument '{}' found", arg()?),
        Clap::InvalidValue => {
            let (arg, value) = (arg()?, value()?);
            let mut message = if value.is_empty() {
                format!("a value is required for '{arg}' but none was supplied")
            } else {
                format!("invalid value '{value}' for '{arg}'")
            };
            let accepted = strings(err, ContextKind::ValidValue);
            if !accepted.is_empty() {
                let accepted: Vec<String> = accepted.iter().map(|v| quoted_if_spaced(v)).collect();
                message.push_str(&format!(" [possible values: {}]", accepted.join(", ")));
            }
            message
        }
        Clap::ValueValidation => {
            let mut message = format!("invalid value '{}' for '{}'", value()?, arg()?);
            if let Some(reason) = std::error::Error::source(err) {
                message.push_str(&format!(": {reason}"));
            }
            message
        }
        Clap::ArgumentConflict => conflict(err)?,
        Clap::NoEquals => format!("equal sign is needed when assigning values to '{}'", arg()?),
        Clap::MissingRequiredArgument => {
            let missing = strings(err, ContextKind::InvalidArg);
            if missing.is_empty() {
                return None;
            }
            format!(
                "the following required arguments were not provided: {}",
                missing.join(", ")
            )
        }
        Clap::MissingSubcommand => {
            // clap adds a `help` command of its own; the commands are what autheona offers.
            let commands: Vec<&str> = strings(err, ContextKind::ValidSubcommand)
                .iter()
                .map(String::as_str)
                .filter(|name| *name != "help")
                .collect();
            format!("a command is needed: {}", commands.join(", "))
        }
        Clap::TooManyValues => {
            format!(
                "unexpected value '{}' for '{}' found; no more were expected",
                value()?,
                arg()?
            )
        }
        Clap::TooFewValues => format!(
            "{} values required by '{}'; only {}",
            number(err, ContextKind::MinValues)?,
            arg()?,
            provided(number(err, ContextKind::ActualNumValues)?)
        ),
        Clap::WrongNumberOfValues => format!(
            "{} values required for '{}' but {}",
            number(err, ContextKind::ExpectedNumValues)?,
            arg()?,
            provided(number(err, ContextKind::ActualNumValues)?)
        ),
        _ => return None,
    })
}

/// Two arguments that exclude each other, or one given twice.
fn conflict(err: &clap::Error) -> Option<String> {
    let (what, name) = match string(err, ContextKind::InvalidArg) {
        Some(arg) => ("argument", arg),
        None => ("subcommand", string(err, ContextKind::InvalidSubcommand)?),
    };
    let others = match err.get(ContextKind::PriorArg) {
        Some(ContextValue::String(prior)) if prior == name => {
            return Some(format!("the {what} '{name}' cannot be used multiple times"));
        }
        Some(ContextValue::String(prior)) => format!("'{prior}'"),
        Some(ContextValue::Strings(priors)) if !priors.is_empty() => priors
            .iter()
            .map(|prior| format!("'{prior}'"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "one or more of the other specified arguments".to_owned(),
    };
    Some(format!("the {what} '{name}' cannot be used with {others}"))
}

/// An error whose context is missing (one made with `clap::Error::raw`, say): what kind of
/// error it is, and its cause when it has one.
fn fallback(err: &clap::Error) -> String {
    let kind = err
        .kind()
        .as_str()
        .unwrap_or("the command line is not valid");
    match std::error::Error::source(err) {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_owned(),
    }
}

/// clap's first suggestion, as its tip would say it: a similar command, flag or value, or
/// another way to write what was typed (`-- -x` to pass `-x` as a value).
/// For an option given no value, how to give one that begins with `-` (`-d -prod` reads
/// `-prod` as flags): clap's own tip, `-- -prod`, would make it an argument instead.
fn hyphen_value(err: &clap::Error) -> Option<String> {
    // Not where the values are listed: none of them begins with '-'.
    if err.kind() != clap::error::ErrorKind::InvalidValue
        || !string(err, ContextKind::InvalidValue)?.is_empty()
        || !strings(err, ContextKind::ValidValue).is_empty()
    {
        return None;
    }
    let arg = string(err, ContextKind::InvalidArg)?;
    let long = arg.split([' ', ',']).find(|part| part.starts_with("--"))?;
    Some(format!(
        "give {long} a value; one that begins with '-' is written {long}=-VALUE"
    ))
}

fn suggestion(err: &clap::Error) -> Option<String> {
    let similar = [
        (ContextKind::SuggestedSubcommand, "subcommand"),
        (ContextKind::SuggestedArg, "argument"),
        (ContextKind::SuggestedValue, "value"),
    ];
    for (kind, what) in similar {
        let names = strings(err, kind);
        let quoted: Vec<String> = names.iter().map(|name| format!("'{name}'")).collect();
        match quoted.len() {
            0 => {}
            1 => return Some(format!("a similar {what} exists: {}", quoted[0])),
            _ => return Some(format!("some similar {what}s exist: {}", quoted.join(", "))),
        }
    }
    match err.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(tips)) => tips.first().map(ToString::to_string),
        _ => None,
    }
}

/// The usage line clap gives with the error, without its title: `autheona token list
/// [OPTIONS]`. It starts at the command's name, whatever clap puts before it.
fn usage(err: &clap::Error) -> Option<String> {
    let Some(ContextValue::StyledStr(usage)) = err.get(ContextKind::Usage) else {
        return None;
    };
    let usage = usage.to_string();
    let name = <crate::cli::Cli as clap::CommandFactory>::command();
    let start = usage.find(name.get_name())?;
    usage[start..]
        .lines()
        .next()
        .map(|line| line.trim_end().to_owned())
}

fn string(err: &clap::Error, kind: ContextKind) -> Option<&str> {
    match err.get(kind) {
        Some(ContextValue::String(value)) => Some(value),
        _ => None,
    }
}

/// A list from the context; a single value counts as a list of one.
fn strings(err: &clap::Error, kind: ContextKind) -> &[String] {
    match err.get(kind) {
        Some(ContextValue::Strings(values)) => values,
        Some(ContextValue::String(value)) => std::slice::from_ref(value),
        _ => &[],
    }
}

fn number(err: &clap::Error, kind: ContextKind) -> Option<isize> {
    match err.get(kind) {
        Some(ContextValue::Number(n)) => Some(*n),
        _ => None,
    }
}

fn provided(count: isize) -> String {
    let verb = if count > 1 { "were" } else { "was" };
    format!("{count} {verb} provided")
}

/// A possible value as clap lists it: in quotes only when it holds a space.
fn quoted_if_spaced(value: &str) -> String {
    if value.contains(char::is_whitespace) {
        format!("{value:?}")
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use clap::error::{ContextKind, ContextValue, ErrorKind as Clap};

    use super::*;
    use crate::cli::Cli;

    /// The error and hint lines autheona would print for this command line.
    fn lines(args: &[&str]) -> (String, Option<String>) {
        let err = Cli::try_parse_from(std::iter::once("autheona").chain(args.iter().copied()))
            .expect_err("a usage error");
        let error = from_clap(&err);
        (error.message().to_owned(), error.hint().map(str::to_owned))
    }

    #[test]
    fn each_kind_the_cli_produces_reads_as_before() {
        for (args, message, hint) in [
            (
                &[][..],
                "a command is needed: project, token, verify, scan, log, store, serve, completions",
                Some("usage: autheona [OPTIONS] <COMMAND>"),
            ),
            (
                &["token", "crate"],
                "unrecognized subcommand 'crate'",
                Some("some similar subcommands exist: 'rotate', 'create'"),
            ),
            (
                &["project", "create", "-x"],
                "unexpected argument '-x' found",
                Some("to pass '-x' as a value, use '-- -x'"),
            ),
            (
                &["token", "list", "--expiring-within", "0"],
                "invalid value '0' for '--expiring-within <DAYS>': 0 is not in 1..=36500",
                None,
            ),
            (
                &["token", "create", "-e"],
                "a value is required for '--expires <DAYS>' but none was supplied \
                 [possible values: 30, 90, 365, never]",
                None,
            ),
            (
                &["token", "create", "--json", "--json"],
                "the argument '--json' cannot be used multiple times",
                Some("usage: autheona token create [OPTIONS]"),
            ),
            (
                &["project", "list", "--json=1"],
                "unexpected value '1' for '--json' found; no more were expected",
                Some("usage: autheona project list --json"),
            ),
        ] {
            assert_eq!(
                lines(args),
                (message.to_owned(), hint.map(str::to_owned)),
                "{args:?}"
            );
        }
    }

    #[test]
    fn a_missing_command_is_an_error_not_the_whole_help() {
        // With arg_required_else_help clap would print the help, and its error would carry
        // no list of commands to name.
        let mut cli = <Cli as clap::CommandFactory>::command();
        cli.build();
        fn check(cmd: &clap::Command) {
            assert!(
                !cmd.is_arg_required_else_help_set(),
                "{} prints its help when a command is missing",
                cmd.get_name()
            );
            cmd.get_subcommands().for_each(check);
        }
        check(&cli);
    }

    #[test]
    fn conflicts_with_several_name_them_all() {
        let mut err = clap::Error::new(Clap::ArgumentConflict);
        err.insert(ContextKind::InvalidArg, ContextValue::String("--a".into()));
        err.insert(
            ContextKind::PriorArg,
            ContextValue::Strings(vec!["--b".into(), "--c <N>".into()]),
        );
        let error = from_clap(&err);
        assert_eq!(
            error.message(),
            "the argument '--a' cannot be used with '--b', '--c <N>'"
        );
        assert_eq!(error.hint(), None);
    }

    #[test]
    fn an_error_without_context_still_says_what_kind_it_is() {
        let error = from_clap(&clap::Error::raw(Clap::UnknownArgument, "reworded by clap"));
        assert_eq!(error.message(), "unexpected argument found");
        assert_eq!(error.hint(), None);
    }

    #[test]
    fn the_usage_starts_at_the_command_whatever_clap_titles_it() {
        let mut err = clap::Error::new(Clap::MissingRequiredArgument);
        err.insert(
            ContextKind::InvalidArg,
            ContextValue::Strings(vec!["<NAME>".into()]),
        );
        err.insert(
            ContextKind::Usage,
            ContextValue::StyledStr("USAGE:\n    autheona project create <NAME>\n".into()),
        );
        let error = from_clap(&err);
        assert_eq!(
            error.message(),
            "the following required arguments were not provided: <NAME>"
        );
        assert_eq!(error.hint(), Some("usage: autheona project create <NAME>"));
    }
}
