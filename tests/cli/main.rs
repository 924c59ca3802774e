//! Integration tests: the real binary against a temporary database.

mod common;
mod completion;
mod generated;
mod help;
mod hostile;
mod interactive;
mod project;
mod reliability;
mod scan;
mod storage;
mod token;
mod verify;
