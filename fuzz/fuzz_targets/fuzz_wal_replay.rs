#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| raftkv::wal::fuzz_wal_replay(data));
