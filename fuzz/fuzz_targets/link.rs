#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatbox_fuzz::link::check(data));
