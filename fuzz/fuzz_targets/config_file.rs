//! An operator's configuration: a `cau.toml`, a site directory or a `CAU_*` variable.
//! The input's layout and the checks are those of `cau_signaling::fuzzing::config_input`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cau_signaling::fuzzing::config_input(data);
});
