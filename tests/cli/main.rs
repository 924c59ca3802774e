//! Integration tests: the real binary against a temporary database.

mod clock;
mod common;
mod completion;
mod filters;
mod generated;
mod help;
mod hermetic;
mod hostile;
mod interactive;
mod project;
mod prune;
mod reliability;
mod rotate;
mod scan;
mod storage;
mod token;
mod verify;
