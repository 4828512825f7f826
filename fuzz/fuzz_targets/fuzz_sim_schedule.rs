#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| raftkv::sim::fuzz_sim_schedule(data));
