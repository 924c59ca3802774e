//! Integration tests: the real binary against a temporary database.

mod audit;
mod clock;
#[macro_use]
mod common;
mod completion;
mod filters;
mod generated;
mod grace;
mod help;
mod hermetic;
mod hostile;
mod interactive;
mod pg;
mod postgres;
mod project;
mod prune;
mod reliability;
mod rotate;
mod scan;
mod serve;
mod storage;
mod store_copy;
mod test_script;
mod token;
mod verify;
