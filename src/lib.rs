//! autheona: projects and their access tokens in a local SQLite file.
//!
//! Layering: `main -> commands -> ops -> store`. `cli` (the clap surface) and `complete` (its
//! live candidates) sit beside `commands`, which uses them; neither uses `commands`.
//! `environment` reads what the process is given, for both. `token`, `secret` and `text` are
//! plain and usable from `ops`; `ui` is for `commands` and `complete` only.

pub mod cli;
pub mod commands;
pub mod complete;
pub mod environment;
pub mod error;
pub mod ops;
pub mod secret;
pub mod store;
pub mod text;
pub mod token;
pub mod ui;
