#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| raftkv::transport::frame::fuzz_peer_frames(data));
