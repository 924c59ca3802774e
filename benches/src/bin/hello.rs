//! The start-up baseline: a hello world built with the same profile as autheona.
fn main() {
    println!("hello");
}
