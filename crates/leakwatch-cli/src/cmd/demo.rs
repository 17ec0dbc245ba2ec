//! `leakwatch demo`: the two-minute tour on generated data.

use std::path::Path;

use anyhow::Result;

use crate::Outcome;

pub fn run(_dir: &Path, _seed: u64) -> Result<Outcome> {
    anyhow::bail!("demo is being written")
}
