//! Lays out the binary's code for its everyday commands: the functions they run (listed in
//! src/link/symbol-order.txt by `benches/symbol-order`) are placed together at the start of
//! the code. Otherwise they lie scattered over all 3 MB of it, and every process pays a page
//! fault for most of its 64 KiB stretches: see benches/README.md, finding 9.
//!
//! Only LLD (rustc's default linker on x86_64 Linux) takes such a list. Whether this build's
//! linker does is tried on an empty program first; if not, the binary is linked as usual.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const ORDER: &str = "src/link/symbol-order.txt";

fn main() {
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-changed=src/build.rs");
    let order = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join(ORDER);
    let args = [
        "-Xlinker".to_owned(),
        format!("--symbol-ordering-file={}", order.display()),
        "-Xlinker".to_owned(),
        // Names of another toolchain's or dependency's build are skipped without a word.
        "--no-warn-symbol-ordering".to_owned(),
    ];
    if linker_takes(&args) {
        for arg in args {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}

/// Whether an empty program links with `args` added, built as this build builds (target,
/// linker, flags).
fn linker_takes(args: &[String]) -> bool {
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let source = out.join("probe.rs");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let mut rustc = Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()));
    rustc
        .arg(&source)
        .arg("-o")
        .arg(out.join("probe"))
        .args(["--crate-type", "bin", "--target"])
        .arg(env::var("TARGET").expect("set by cargo"));
    if let Ok(linker) = env::var("RUSTC_LINKER") {
        rustc.arg("-C").arg(format!("linker={linker}"));
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    rustc.args(flags.split('\x1f').filter(|flag| !flag.is_empty()));
    for arg in args {
        rustc.arg("-C").arg(format!("link-arg={arg}"));
    }
    rustc.output().is_ok_and(|output| output.status.success())
}
