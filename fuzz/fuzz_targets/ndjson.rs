//! Arbitrary bytes read as a forced ndjson input: never a panic, and the same
//! result whatever the chunk size.
#![no_main]

use leakwatch_ingest::{fuzzing, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::check(data, Some(Format::Ndjson)));
