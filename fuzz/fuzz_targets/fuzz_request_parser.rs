#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| raftkv::api::fuzz::fuzz_request_parser(data));
