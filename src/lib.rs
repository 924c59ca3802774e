//! autheona: projects and their access tokens in a local SQLite file.
//!
//! Layering: `main -> commands -> ops -> store`. `cli` (the clap surface) and `complete` (its
//! live candidates) sit beside `commands`, which uses them; neither uses `commands`.
//! `environment` reads what the process is given, for both. `token`, `secret` and `text` are
//! plain and usable from `ops`; `ui` is for `commands` only.

pub mod cli;
pub mod commands;
pub mod complete;
pub mod environment;
pub mod error;
pub mod ops;
pub mod process;
pub mod secret;
pub mod serve;
pub mod store;
pub mod text;
pub mod token;
pub mod ui;

/// The layering, checked in the source: no arrow runs back up, and nothing below `commands`
/// names the command line or reads the process's environment or clock.
#[cfg(test)]
mod layering {
    use std::path::{Path, PathBuf};

    fn sources(under: &str) -> Vec<(PathBuf, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src")
            .join(under);
        let mut found = Vec::new();
        let mut pending = vec![root];
        while let Some(path) = pending.pop() {
            if path.is_dir() {
                pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                // Tests may arrange anything; the code they test may not.
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name != "tests.rs" {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let code = text
                        .split("#[cfg(test)]\nmod tests")
                        .next()
                        .unwrap()
                        .to_owned();
                    found.push((path, code));
                }
            }
        }
        assert!(!found.is_empty(), "no sources under src/{under}");
        found
    }

    fn refuse(under: &str, forbidden: &[&str]) {
        for (path, code) in sources(under) {
            for word in forbidden {
                assert!(
                    !code.contains(word),
                    "{} uses {word}: see the layering in src/lib.rs",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn ops_knows_no_engine_terminal_environment_clock_or_command_line() {
        refuse(
            "ops",
            &[
                "rusqlite",
                "crate::ui",
                "crate::commands",
                "crate::cli",
                "clap",
                "dialoguer",
                "comfy_table",
                "std::env::var",
                "Utc::now",
                "SystemTime::now",
                "--db",
                "AUTHEONA_DB",
                "autheona project",
                "autheona token",
            ],
        );
    }

    #[test]
    fn store_knows_nothing_above_it_nor_the_command_line() {
        refuse(
            "store",
            &[
                "crate::ops",
                "crate::commands",
                "crate::ui",
                "crate::cli",
                "clap",
                "std::env::var",
                "Utc::now",
                "println!",
                "--db",
                "AUTHEONA_DB",
                "autheona project",
                "autheona token",
            ],
        );
    }

    #[test]
    fn the_command_surface_and_completion_do_not_use_commands() {
        refuse("cli", &["crate::commands"]);
        let complete =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/complete.rs"))
                .unwrap();
        assert!(
            !complete.contains("crate::commands"),
            "src/complete.rs uses commands"
        );
    }

    #[test]
    fn serve_is_an_adapter_over_ops_that_knows_no_engine() {
        // Secrets are checked and rules judged by ops::verify alone, as for `autheona verify`.
        refuse(
            "serve",
            &[
                "rusqlite",
                "pragma",
                "postgres::",
                "secret::verify",
                "Status::at",
            ],
        );
    }

    #[test]
    fn only_the_store_names_its_engine() {
        for under in ["commands", "ops", "ui", "cli", "environment"] {
            refuse(
                under,
                &["rusqlite", "pragma", "postgres::", "tokio", "rustls"],
            );
        }
    }
}
