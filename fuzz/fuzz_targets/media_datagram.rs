//! Datagrams on the media socket while a client is connected, from its address and
//! from strangers', raw or as ICE checks with and without the right password.
//! The input's layout and the checks are those of `cau_sfu::fuzzing::media_datagram`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cau_sfu::fuzzing::media_datagram(data);
});
