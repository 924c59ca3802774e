//! The committed completion scripts and man pages are generated from the CLI definition; these
//! tests fail when they drift from it. To regenerate both:
//!
//!     AUTHEONA_REGENERATE=1 cargo test --test cli generated
//!
//! That is safe beside the other tests, the whole suite too: each file is replaced in one step,
//! and the checks of the man pages' content read freshly generated pages, not these files.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use autheona::cli::{Cli, ENVIRONMENT, EXIT_CODES, FILES};
use clap::{Command, CommandFactory};
use roff::{Roff, bold, italic, roman};

use crate::common::*;

/// Stamped into every man page; bump it with the version.
const MAN_DATE: &str = "2026-11-27";

/// Each shell and the file its script is committed as.
const SHELL_FILES: [(&str, &str); 5] = [
    ("bash", "autheona.bash"),
    ("zsh", "_autheona"),
    ("fish", "autheona.fish"),
    ("elvish", "autheona.elv"),
    ("powershell", "_autheona.ps1"),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every generated file, by path relative to the repository, with its content.
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let env = TestEnv::new();
    let mut files = Vec::new();
    for (shell, file) in SHELL_FILES {
        // Through the shipped subcommand, so it is what `autheona completions SHELL` prints.
        let script = env
            .bare_cmd()
            .args(["completions", shell])
            .assert()
            .success();
        files.push((
            Path::new("completions").join(file),
            script.get_output().stdout.clone(),
        ));
    }
    for (name, page) in fresh_man_pages() {
        files.push((Path::new("man").join(name), page.into_bytes()));
    }
    files
}

/// The man pages the current CLI generates, as (file name, roff).
///
/// The tests of the pages' content check these, not the committed files: regeneration
/// rewrites those while the other tests run, and `generated_files_are_fresh` checks that the
/// committed files are these.
fn fresh_man_pages() -> Vec<(String, String)> {
    let mut root = Cli::command();
    root.build();
    man_pages(&root, &[])
}

/// A new temporary directory with the fresh man pages in its `man/`, for the tools that read
/// files (mandoc, man, install).
fn fresh_man_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("man")).unwrap();
    for (name, page) in fresh_man_pages() {
        std::fs::write(dir.path().join("man").join(name), page).unwrap();
    }
    dir
}

/// The man page of `cmd` and of each of its subcommands, as (file name, roff).
fn man_pages(cmd: &Command, parents: &[&str]) -> Vec<(String, String)> {
    let mut path: Vec<&str> = parents.to_vec();
    path.push(cmd.get_name());
    let name = path.join("-");
    let children: Vec<&Command> = cmd
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        .collect();
    let mut pages = vec![(format!("{name}.1"), man_page(cmd, &path, &children))];
    for child in &children {
        pages.extend(man_pages(child, &path));
    }
    pages
}

fn man_page(cmd: &Command, path: &[&str], children: &[&Command]) -> String {
    let name = path.join("-");
    let man = clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .section("1")
        .date(MAN_DATE)
        .source(format!("autheona {}", env!("CARGO_PKG_VERSION")))
        .manual("autheona manual");
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();

    let after = cmd
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let (prose, examples) = split_after_help(&after);
    let mut roff = Roff::new();
    for paragraph in prose {
        roff.control("PP", []).text([roman(paragraph)]);
    }
    out.extend(roff.to_roff().into_bytes());

    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out).unwrap();
    }
    let mut roff = Roff::new();
    if !children.is_empty() {
        roff.control("SH", ["COMMANDS"]);
        for child in children {
            let page = format!("{name}-{}", child.get_name());
            roff.control("TP", [])
                .text([bold(page), roman("(1)")])
                .text([roman(
                    child.get_about().map(|a| a.to_string()).unwrap_or_default(),
                )]);
        }
    }
    if !examples.is_empty() {
        roff.control("SH", ["EXAMPLES"]).control("nf", []);
        for example in examples {
            roff.text([roman(example)]);
        }
        roff.control("fi", []);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT_CODES {
        roff.control("TP", [])
            .text([bold(code.to_string())])
            .text([roman(meaning)]);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    for (variable, meaning) in ENVIRONMENT {
        roff.control("TP", [])
            .text([bold(variable)])
            .text([roman(meaning)]);
    }
    roff.control("SH", ["FILES"]);
    roff.text([roman(FILES)]);
    roff.control("SH", ["SEE ALSO"]);
    let mut see_also: Vec<String> = Vec::new();
    if path.len() > 1 {
        see_also.push(path[..path.len() - 1].join("-"));
    }
    see_also.extend(children.iter().map(|c| format!("{name}-{}", c.get_name())));
    if see_also.is_empty() {
        see_also.push("autheona".to_owned());
    }
    let mut refs = Vec::new();
    for (i, page) in see_also.iter().enumerate() {
        if i > 0 {
            refs.push(roman(", "));
        }
        refs.push(bold(page.clone()));
        refs.push(roman("(1)"));
    }
    roff.text(refs);
    roff.control("SH", ["VERSION"]);
    roff.text([italic(format!("v{}", env!("CARGO_PKG_VERSION")))]);
    out.extend(roff.to_roff().into_bytes());
    // clap_mangen separates an option's help from its possible values with a break, a blank
    // line and another break, which mandoc warns about; one break looks the same.
    tidy(
        &String::from_utf8(out)
            .unwrap()
            .replace("\n.br\n\n.br\n", "\n.br\n"),
    )
}

/// What mandoc's style checks ask of the source: no trailing whitespace, and filled text lines
/// of at most 80 bytes (roff joins them again when it fills the paragraph).
fn tidy(roff: &str) -> String {
    let mut out = String::new();
    let mut filling = true;
    for line in roff.lines().map(str::trim_end) {
        match line {
            ".nf" => filling = false,
            ".fi" => filling = true,
            _ => {}
        }
        let is_text = !line.starts_with('.') && !line.starts_with('\'');
        if !(filling && is_text && line.len() > 80) {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut current = String::new();
        for word in line.split(' ') {
            if !current.is_empty() && current.len() + 1 + word.len() > 80 {
                out.push_str(&current);
                out.push('\n');
                current.clear();
            }
            if !current.is_empty() {
                current.push(' ');
            } else if word.starts_with('.') || word.starts_with('\'') {
                // A line starting with these would be read as a request.
                current.push_str("\\&");
            }
            current.push_str(word);
        }
        out.push_str(&current);
        out.push('\n');
    }
    out
}

/// Splits help's closing text into prose paragraphs and example command lines. Blocks that the
/// man page has its own sections for (exit codes, environment) are left out.
fn split_after_help(text: &str) -> (Vec<String>, Vec<String>) {
    let mut prose = Vec::new();
    let mut examples = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut lines = block.lines();
        let first = lines.next().unwrap_or_default();
        match first {
            "Example:" | "Examples:" => examples.extend(lines.map(|l| l.trim().to_owned())),
            "Exit codes:" | "Environment:" => {}
            _ => prose.push(block.split_whitespace().collect::<Vec<_>>().join(" ")),
        }
    }
    (prose, examples)
}

/// The files in `completions/` and `man/` that are not among `expected`.
fn not_generated(expected: &[(PathBuf, Vec<u8>)]) -> Vec<PathBuf> {
    let mut extra = Vec::new();
    for dir in ["completions", "man"] {
        let Ok(entries) = std::fs::read_dir(repo().join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = Path::new(dir).join(entry.unwrap().file_name());
            if !expected.iter().any(|(p, _)| *p == path) {
                extra.push(path);
            }
        }
    }
    extra
}

/// Replaces `path` with `content` in one step (a write beside it, then a rename), so that a
/// test reading it meanwhile, such as the completion tests sourcing the scripts, finds either
/// the old file or the new one, whole.
fn write_atomically(path: &Path, content: &[u8]) {
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let mut partial = std::ffi::OsString::from(".");
    partial.push(path.file_name().unwrap());
    partial.push(".partial");
    let partial = dir.join(partial);
    std::fs::write(&partial, content).unwrap();
    std::fs::rename(&partial, path).unwrap();
}

#[test]
fn generated_files_are_fresh() {
    let expected = generated();
    if std::env::var_os("AUTHEONA_REGENERATE").is_some() {
        for (path, content) in &expected {
            write_atomically(&repo().join(path), content);
        }
        for path in not_generated(&expected) {
            std::fs::remove_file(repo().join(path)).unwrap();
        }
        return;
    }
    let hint = "regenerate with: AUTHEONA_REGENERATE=1 cargo test --test cli generated";
    for (path, content) in &expected {
        let committed = std::fs::read(repo().join(path))
            .unwrap_or_else(|_| panic!("{} is missing; {hint}", path.display()));
        assert!(committed == *content, "{} is stale; {hint}", path.display());
    }
    if let Some(path) = not_generated(&expected).first() {
        panic!("{} is not generated any more; {hint}", path.display());
    }
}

#[test]
fn a_man_page_for_every_command() {
    let names: Vec<String> = fresh_man_pages()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for page in [
        "autheona.1",
        "autheona-project-create.1",
        "autheona-project-list.1",
        "autheona-project-delete.1",
        "autheona-token-create.1",
        "autheona-token-list.1",
        "autheona-token-revoke.1",
        "autheona-verify.1",
        "autheona-scan.1",
        "autheona-store-copy.1",
        "autheona-completions.1",
    ] {
        assert!(names.iter().any(|n| n == page), "no {page} in {names:?}");
    }
}

#[test]
fn man_pages_lint_clean() {
    let dir = fresh_man_dir();
    for (name, _) in fresh_man_pages() {
        let page = dir.path().join("man").join(name);
        let out = Process::new("mandoc")
            .arg("-Tlint")
            .arg(&page)
            .output()
            .expect("mandoc is needed: apt-get install mandoc");
        let report = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && report.trim().is_empty(),
            "{}:\n{report}",
            page.display()
        );
    }
}

#[test]
fn man_pages_have_the_sections_a_reader_expects() {
    let pages = fresh_man_pages();
    for (page, text) in &pages {
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "EXIT STATUS",
            "ENVIRONMENT",
            "FILES",
            "SEE ALSO",
        ] {
            assert!(
                text.contains(&format!(".SH {section}"))
                    || text.contains(&format!(".SH \"{section}\"")),
                "{page}: no {section}"
            );
        }
        for variable in [
            "AUTHEONA_DB",
            "AUTHEONA_PROJECT",
            "AUTHEONA_TOKEN",
            "NO_COLOR",
        ] {
            assert!(text.contains(variable), "{page}: no {variable}");
        }
    }
    let (_, create) = pages
        .iter()
        .find(|(name, _)| name == "autheona-token-create.1")
        .unwrap();
    assert!(create.contains(".SH EXAMPLES"), "{create}");
    assert!(create.contains("\\-\\-expires"), "{create}");
}

#[test]
fn man_renders_the_main_page() {
    let dir = fresh_man_dir();
    let out = Process::new("man")
        .arg("-l")
        .arg(dir.path().join("man/autheona.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .expect("man is needed: apt-get install man-db");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("EXIT STATUS") && text.contains("autheona-verify(1)"),
        "{text}"
    );
}

/// The README's line that installs the man pages, run as written but without sudo, on a copy of
/// the fresh pages and into a temporary prefix instead of /usr/local, installs every page where
/// `man` then finds it.
#[test]
fn the_readme_installs_the_man_pages() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("sudo install ") && l.contains("man/*.1"))
        .expect("README installs the man pages with a `sudo install ... man/*.1` line");
    let pages = fresh_man_dir();
    let prefix = tempfile::tempdir().unwrap();
    let command = line
        .strip_prefix("sudo ")
        .unwrap()
        .replace("/usr/local", &prefix.path().display().to_string());
    let out = Process::new("sh")
        .args(["-c", &command])
        .current_dir(pages.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let man1 = prefix.path().join("share/man/man1");
    for (name, page) in fresh_man_pages() {
        let installed = man1.join(name);
        assert_eq!(
            std::fs::read_to_string(&installed).ok(),
            Some(page),
            "{} is not installed as generated",
            installed.display()
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&installed).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o644, "{}", installed.display());
    }
    let out = Process::new("man")
        .arg("autheona")
        .env("MANPATH", prefix.path().join("share/man"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .expect("man is needed: apt-get install man-db");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("EXIT STATUS"),
        "man autheona after installing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
