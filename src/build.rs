//! Lays out the binary's code for its everyday commands: the functions they run (listed in
//! src/link/symbol-order.txt by `benches/symbol-order`) are placed together at the start of
//! the code. Otherwise they lie scattered over all 3 MB of it, and every process pays a page
//! fault for most of its 64 KiB stretches: see benches/README.md, finding 9.

use std::env;
use std::path::Path;

const ORDER: &str = "src/link/symbol-order.txt";

fn main() {
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-changed=src/build.rs");
    // LLD, which rustc links with on this target unless told otherwise, takes the list; other
    // linkers (GNU ld) do not know the option, and their builds go without it.
    let lld = env::var("TARGET").is_ok_and(|target| target == "x86_64-unknown-linux-gnu")
        && !env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|flags| flags.contains("-lld"));
    if lld {
        let order = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join(ORDER);
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        // Names of another toolchain's or dependency's build are skipped.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
