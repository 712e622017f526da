//! A join token as a browser presents it, or the claims of one signed with the
//! target's key.
//! The input's layout and the checks are those of `cau_signaling::fuzzing::join_token_input`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cau_signaling::fuzzing::join_token_input(data);
});
