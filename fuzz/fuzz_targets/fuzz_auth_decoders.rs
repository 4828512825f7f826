#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| raftkv::api::auth::fuzz_auth_decoders(data));
