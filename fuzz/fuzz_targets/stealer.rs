//! Stealer logs (ULP lines and `Passwords.txt` blocks) forced as `stealer`: any
//! bytes give the same report and records at every chunk size, and never panic.
#![no_main]

use leakwatch_ingest::{fuzzing, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::check(data, Some(Format::Stealer)));
