//! A text frame on the signaling WebSocket, or the first one on the line-monitoring
//! dashboard's: parsed, checked and, for a meeting action, carried out on a meeting.
//! The input's layout and the checks are those of `cau_signaling::fuzzing::signaling_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cau_signaling::fuzzing::signaling_message(data);
});
