//! Synthetic leaks with exact expected answers, for tests, the demo and the
//! benchmarks. Nothing here comes from a real leak: people, addresses and
//! passwords are drawn from built-in vocabularies by a seeded generator of our
//! own, so a seed gives the same bytes on every machine and every version.
//!
//! - [`Scenario`]: a population and several breaches in every supported format
//!   (combo, CSV/TSV, NDJSON; plain, gzip, zstd), with switchable [`Noise`], and
//!   [`Scenario::expected`] answers computed from what was written, following
//!   `docs/ingest-rules.md` to the letter.
//! - [`bench`]: a fast, streaming combo writer and the matching lookup lists.
//! - [`pwned`]: Pwned Passwords-shaped files (sorted hashes, heavy-tailed counts).
//! - [`sqldump`]: SQL dumps of the forum and site packages with the records
//!   each must give, and a streaming mysqldump writer for the benchmark.
//! - [`stealer`]: infostealer log folders (`Passwords.txt` of each family) and
//!   ULP files, with the records each must give.
//!
//! **Architecture Invariant:** expected answers are never obtained by parsing the
//! generated files: each writer records the outcome of every line it writes.

pub mod bench;
mod combo;
mod csv;
mod expected;
mod file;
mod names;
mod ndjson;
mod noise;
mod passwords;
mod population;
pub mod pwned;
mod rng;
mod rules;
mod scenario;
pub mod sqldump;
pub mod stealer;

pub use expected::{ExpBreach, ExpFile, ExpRejections, Expected, SAMPLE_LINES};
pub use file::{Compression, RenderedFile};
pub use noise::{Noise, NoiseKind};
pub use population::{Address, Domain, Person, Population};
pub use rng::Rng;
pub use rules::Format;
pub use scenario::{Breach, BreachFiles, Scenario, ScenarioConfig};
