//! Parsing chunks on all cores while delivering their results in input order.
//!
//! The calling thread reads chunks and hands each to a rayon task that parses it
//! and applies the caller's `map`; finished chunks come back over a channel and
//! are passed to the `sink` strictly in sequence. At most a few chunks per
//! thread are in flight (parsed but not yet delivered included), so memory stays
//! bounded however fast the reader is and however slow the sink.
//!
//! The large buffers are recycled, not freed: chunk buffers come back with
//! their results and are reused for later reads, and the records arenas that
//! chunks are parsed into are lent to `map` and kept for later chunks, one per
//! chunk being parsed at a time. Freed, each would be megabytes that malloc
//! hands back to the kernel and the next chunk faults in again, page by page.
//!
//! A panic in a task (in `map`, say) is carried back and resumed on the calling
//! thread once every other task has finished, instead of leaving the reader
//! waiting for a result that never comes.

use std::any::Any;
use std::collections::BTreeMap;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{mpsc, Mutex, PoisonError};

use leakwatch_types::Records;

use crate::chunk::Chunk;
use crate::report::Tallies;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the pipeline stopped early.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Reading failed; everything read before was delivered.
    Read(io::Error),
    /// The sink refused a batch.
    Sink(BoxError),
}

/// A unit of work for the pipeline: a [`Chunk`] of lines or CSV records, or
/// a chunk of SQL rows.
pub(crate) trait Piece: Send {
    /// Its size in bytes, to size the record vector.
    fn byte_len(&self) -> usize;
    /// Its buffer, for reuse by a later piece.
    fn into_buffer(self) -> Vec<u8>;
}

impl Piece for Chunk {
    fn byte_len(&self) -> usize {
        self.bytes().len()
    }

    fn into_buffer(self) -> Vec<u8> {
        Chunk::into_buffer(self)
    }
}

/// A parsed chunk on its way to the sink.
struct Parsed<T> {
    value: T,
    tallies: Tallies,
    buffer: Vec<u8>,
}

type TaskResult<T> = Result<Parsed<T>, Box<dyn Any + Send>>;

/// Chunks in flight per pool thread: enough to keep every core busy while the
/// reader and the sink take their turns, few enough to bound memory.
const IN_FLIGHT_PER_THREAD: usize = 4;

/// Runs every chunk `next` yields through `parse` and `map` and delivers the
/// results to `sink` in order, adding each chunk's tallies (whose line numbers
/// count from 1) to `tallies`. `map` borrows the chunk's records: their arena
/// is reused for a later chunk.
pub(crate) fn run<T, C, N, P, M, S>(
    mut next: N,
    parse: P,
    map: M,
    mut sink: S,
    tallies: &mut Tallies,
) -> Result<(), Stop>
where
    T: Send,
    C: Piece,
    N: FnMut(Vec<u8>) -> io::Result<Option<C>>,
    P: Fn(&C, &mut Records, &mut Tallies) + Sync,
    M: Fn(&Records) -> T + Sync,
    S: FnMut(T) -> Result<(), BoxError>,
{
    let work = |chunk: C, records: &mut Records| -> Parsed<T> {
        records.clear();
        // A record takes at least a few dozen bytes of input, about half of
        // them its account.
        records.reserve(chunk.byte_len() / 32 + 1, chunk.byte_len() / 2);
        let mut chunk_tallies = Tallies::default();
        parse(&chunk, records, &mut chunk_tallies);
        Parsed { value: map(records), tallies: chunk_tallies, buffer: chunk.into_buffer() }
    };

    // Inside a pool thread, blocking on the channel could starve the pool of the
    // very thread a task needs: parse on this thread instead.
    if rayon::current_thread_index().is_some() || rayon::current_num_threads() <= 1 {
        let mut spare = Vec::new();
        let mut records = Records::default();
        while let Some(chunk) = next(std::mem::take(&mut spare)).map_err(Stop::Read)? {
            let parsed = work(chunk, &mut records);
            tallies.extend(&parsed.tallies, tallies.lines);
            spare = parsed.buffer;
            sink(parsed.value).map_err(Stop::Sink)?;
        }
        return Ok(());
    }

    let max_in_flight = IN_FLIGHT_PER_THREAD * rayon::current_num_threads();
    let (tx, rx) = mpsc::channel::<(u64, TaskResult<T>)>();
    let mut outcome = Ok(());
    let mut panicked: Option<Box<dyn Any + Send>> = None;
    // Arenas not in use: a task takes one (or starts a new one) and puts it
    // back when `map` is done with it, so there are never more than the
    // chunks parsed at once, whatever the number in flight.
    let arenas: Mutex<Vec<Records>> = Mutex::new(Vec::new());

    rayon::in_place_scope(|scope| {
        let (work, arenas) = (&work, &arenas);
        let mut spares: Vec<Vec<u8>> = Vec::new();
        let mut pending: BTreeMap<u64, TaskResult<T>> = BTreeMap::new();
        let (mut started, mut delivered) = (0u64, 0u64);
        let mut reading = true;
        loop {
            while reading && started - delivered < max_in_flight as u64 {
                match next(spares.pop().unwrap_or_default()) {
                    Ok(Some(chunk)) => {
                        let tx = tx.clone();
                        let seq = started;
                        scope.spawn(move |_| {
                            let kept = arenas.lock().unwrap_or_else(PoisonError::into_inner).pop();
                            let mut records = kept.unwrap_or_default();
                            let result = panic::catch_unwind(AssertUnwindSafe(|| work(chunk, &mut records)));
                            arenas.lock().unwrap_or_else(PoisonError::into_inner).push(records);
                            // The receiver outlives the scope, so this cannot fail.
                            let _ = tx.send((seq, result));
                        });
                        started += 1;
                    }
                    Ok(None) => reading = false,
                    Err(e) => {
                        outcome = Err(Stop::Read(e));
                        reading = false;
                    }
                }
            }
            if delivered == started {
                break;
            }
            // Every task sends exactly once and `tx` is still held here, so a
            // result always arrives.
            let Ok((seq, result)) = rx.recv() else { break };
            pending.insert(seq, result);
            while let Some(result) = pending.remove(&delivered) {
                delivered += 1;
                match result {
                    Ok(parsed) => {
                        spares.push(parsed.buffer);
                        if panicked.is_some() || matches!(outcome, Err(Stop::Sink(_))) {
                            continue;
                        }
                        tallies.extend(&parsed.tallies, tallies.lines);
                        if let Err(e) = sink(parsed.value) {
                            outcome = Err(Stop::Sink(e));
                            reading = false;
                        }
                    }
                    Err(payload) => {
                        panicked.get_or_insert(payload);
                        reading = false;
                    }
                }
            }
        }
    });
    if let Some(payload) = panicked {
        panic::resume_unwind(payload);
    }
    outcome
}
