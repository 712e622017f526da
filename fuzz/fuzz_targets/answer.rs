//! What a subscriber sends back for the SFU's offer of another site's tracks. The
//! input's placeholders and the checks are those of `cau_sfu::fuzzing::answer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cau_sfu::fuzzing::answer(data);
});
