//! An input of the REST API: a request body, a path segment or a query time.
//! The input's layout and the checks are those of `cau_signaling::fuzzing::api_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cau_signaling::fuzzing::api_body(data);
});
