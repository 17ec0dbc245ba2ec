//! Archives (zip, tar, tar.gz, 7z, nested): any bytes expand to members or to
//! an error within the limits, and reading every member never panics.
#![no_main]

use leakwatch_ingest::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::expand_bytes(data));
