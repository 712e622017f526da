//! Shared harness of Cầu's end-to-end tests.
pub mod api;
pub mod browser;
pub mod client;
pub mod garbage;
pub mod http;
pub mod line_test;
pub mod netns;
pub mod process;
pub mod raw;
pub mod rest;
pub mod server;
pub mod shaping;
