//! Shared harness of Cầu's end-to-end tests.
pub mod client;
pub mod raw;
pub mod server;
