//! Shared support for the integration tests.
#![allow(dead_code)]

mod project;

pub use project::*;
