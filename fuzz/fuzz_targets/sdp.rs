//! What a browser sends the SFU through signaling: an offer or a trickled candidate.
//! The input's layout and the checks are those of `cau_sfu::fuzzing::sdp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cau_sfu::fuzzing::sdp(data);
});
