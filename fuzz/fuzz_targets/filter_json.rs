#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bulkhead::fuzzing::filter_json(data));
