//! autheona: projects and their access tokens in a local SQLite file.
//!
//! Layering: `main -> commands -> ops -> store`. `token`, `secret` and `text` are plain and
//! usable from `ops`; `ui` is for `commands` only.

pub mod cli;
pub mod commands;
pub mod error;
pub mod ops;
pub mod secret;
pub mod store;
pub mod text;
pub mod token;
pub mod ui;
