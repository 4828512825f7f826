#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| raftkv::raft::codec::fuzz_raft_codec(data));
