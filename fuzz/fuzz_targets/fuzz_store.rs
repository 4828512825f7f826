#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| raftkv::store::fuzz_store(data));
