//! `Lazy`: a command's definition deferred until that command is on the line.
//!
//! clap's builder API defers a definition with `Command::defer` (clap-rs/clap#4792); doing
//! the same from the derive API is clap-rs/clap#4959, "Automatically defer subcommand
//! initialization for derives". The derive's `#[command(defer = true)]`, which clap 4.6.9 (the
//! version in Cargo.lock) has, defers the arguments of an enum's variants but not a variant
//! that is itself a group of subcommands: `project` and `token` would still define all their
//! subcommands, with their help texts, on every run. `Lazy` defers both kinds: its `Args` and
//! `Subcommand` impls hand the derived definitions to `Command::defer`.
//!
//! What it buys is in benches/README.md's rows "start-up: --version / hello world" and
//! "verify (10 tokens) / floor" (finding 7: `--version` went from 1.8 x hello world to about
//! 1.45 x).

use clap::{ArgMatches, Args, FromArgMatches, Subcommand};

/// A command's arguments (or subcommands), defined only when that command is on the line.
///
/// clap otherwise builds the whole tree of commands, arguments and help texts before parsing,
/// and every `verify` in a script's loop would pay for `token prune`'s help: about 0.3 ms of a
/// 4 ms process (`benches/README.md`). Anything that needs the whole tree (help, man pages,
/// completion) builds it: `Command::build` runs the deferred definitions.
#[derive(Debug)]
pub struct Lazy<T>(pub T);

impl<T> std::ops::Deref for Lazy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Lazy)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Lazy)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

impl<T: Args> Args for Lazy<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args_for_update)
    }

    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

impl<T: Subcommand> Subcommand for Lazy<T> {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_subcommands)
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_subcommands_for_update)
    }

    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}
