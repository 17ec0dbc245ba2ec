//! Arbitrary bytes through format detection and then whichever parser it
//! picks: never a panic, and the same result whatever the chunk size.
#![no_main]

use leakwatch_ingest::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::check(data, None));
