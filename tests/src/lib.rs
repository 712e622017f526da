//! Shared harness of Cầu's end-to-end tests.
pub mod api;
pub mod browser;
pub mod client;
pub mod raw;
pub mod server;
