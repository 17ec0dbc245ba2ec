//! External sort for fixed-width records whose keys are (mostly) uniform hashes.
//!
//! Records are kept in 256 buckets by their first byte. Callers bucket each batch
//! on the parallel side of the pipeline ([`Bucketed::new`]), so the serial sink only
//! appends slices; sorting is then 256 small, cache-friendly sorts run on all cores
//! instead of one large memcmp-bound sort. When the buckets outgrow their share of
//! the memory budget they are sorted and spilled as one run; the runs are streamed
//! back in order with a k-way merge.
//!
//! Order and equality look only at the first `cmp_len` bytes (the key); the rest
//! of a record rides along. With `dedupe`, records with equal keys collapse into
//! one (set semantics); without, all survive.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use rayon::prelude::*;

use crate::error::{Result, StoreError};

/// Buckets longer than this are sorted in parallel.
const PARALLEL_SORT: usize = 1 << 16;

/// A batch of records grouped by first byte (a counting sort, O(n)).
pub struct Bucketed<const N: usize> {
    records: Vec<[u8; N]>,
    starts: Box<[u32; 257]>,
}

impl<const N: usize> Bucketed<N> {
    pub fn new(records: Vec<[u8; N]>) -> Self {
        let mut starts = Box::new([0u32; 257]);
        for r in &records {
            starts[usize::from(r[0]) + 1] += 1;
        }
        for b in 1..257 {
            starts[b] += starts[b - 1];
        }
        let mut next: Vec<u32> = starts[..256].to_vec();
        let mut out = vec![[0u8; N]; records.len()];
        for r in records {
            let slot = &mut next[usize::from(r[0])];
            out[*slot as usize] = r;
            *slot += 1;
        }
        Bucketed { records: out, starts }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    fn bucket(&self, b: usize) -> &[[u8; N]] {
        &self.records[self.starts[b] as usize..self.starts[b + 1] as usize]
    }
}

pub struct Runs<const N: usize> {
    dir: PathBuf,
    name: &'static str,
    cmp_len: usize,
    dedupe: bool,
    buckets: Vec<Vec<[u8; N]>>,
    /// Whether every bucket is sorted (and deduplicated) as it stands.
    sorted: bool,
    held: usize,
    files: Vec<PathBuf>,
    /// Records written to runs, after deduplication within each run.
    spilled: u64,
    pushed: u64,
}

impl<const N: usize> Runs<N> {
    pub fn new(dir: PathBuf, name: &'static str, cmp_len: usize, dedupe: bool) -> Self {
        assert!(cmp_len <= N && cmp_len > 0);
        Runs {
            dir,
            name,
            cmp_len,
            dedupe,
            buckets: vec![Vec::new(); 256],
            sorted: true,
            held: 0,
            files: Vec::new(),
            spilled: 0,
            pushed: 0,
        }
    }

    pub fn push(&mut self, batch: &Bucketed<N>) {
        for (b, bucket) in self.buckets.iter_mut().enumerate() {
            bucket.extend_from_slice(batch.bucket(b));
        }
        self.held += batch.len();
        self.pushed += batch.len() as u64;
        self.sorted = batch.len() == 0 && self.sorted;
    }

    /// Records pushed so far, duplicates included: an upper bound on the output.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Bytes of records held in memory (what the budget is charged).
    pub fn mem_bytes(&self) -> usize {
        self.held * N
    }

    /// An upper bound on the distinct `len`-byte prefixes of the output (exact
    /// when nothing was spilled): what a writer needs to size its prefix table.
    pub fn distinct_prefixes(&mut self, len: usize) -> u64 {
        self.sort_buckets();
        let in_memory: u64 = self
            .buckets
            .par_iter()
            .map(|b| {
                b.windows(2).filter(|w| w[0][..len] != w[1][..len]).count() as u64 + u64::from(!b.is_empty())
            })
            .sum();
        in_memory + self.spilled
    }

    fn sort_buckets(&mut self) {
        if self.sorted {
            return;
        }
        self.sorted = true;
        let (cmp_len, dedupe) = (self.cmp_len, self.dedupe);
        self.buckets.par_iter_mut().for_each(|bucket| {
            // Keys are not always uniform: a domain's records share their first
            // bytes, and one domain may be a third of a dump. A bucket that big
            // is sorted on every core rather than holding up the others.
            if bucket.len() > PARALLEL_SORT {
                bucket.par_sort_unstable_by(|a, b| cmp_key(a, b, cmp_len));
            } else {
                bucket.sort_unstable_by(|a, b| cmp_key(a, b, cmp_len));
            }
            if dedupe {
                bucket.dedup_by(|a, b| cmp_key(a, b, cmp_len) == Ordering::Equal);
            }
        });
    }

    /// Sorts what is held and writes it out as one run, freeing its memory.
    pub fn spill(&mut self) -> Result<()> {
        if self.held == 0 {
            return Ok(());
        }
        self.sort_buckets();
        let path = self.dir.join(format!("{}-{:04}.run", self.name, self.files.len()));
        let file = File::create(&path).map_err(|e| StoreError::io(&path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        for bucket in &mut self.buckets {
            out.write_all(bucket.as_flattened()).map_err(|e| StoreError::io(&path, e))?;
            self.spilled += bucket.len() as u64;
            *bucket = Vec::new();
        }
        out.flush().map_err(|e| StoreError::io(&path, e))?;
        self.files.push(path);
        self.held = 0;
        Ok(())
    }

    /// Everything pushed, in key order (deduplicated if asked).
    pub fn finish(mut self) -> Result<Sorted<N>> {
        let (cmp_len, dedupe) = (self.cmp_len, self.dedupe);
        if self.files.is_empty() {
            self.sort_buckets();
            let mut buckets = std::mem::take(&mut self.buckets).into_iter();
            let current = buckets.next().unwrap_or_default().into_iter();
            return Ok(Sorted { inner: Inner::Memory { buckets, current }, cmp_len, dedupe, last: None });
        }
        self.spill()?;
        let mut readers = Vec::with_capacity(self.files.len());
        let mut heap = BinaryHeap::with_capacity(self.files.len());
        for (i, path) in self.files.iter().enumerate() {
            let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
            let mut reader = RunReader { path: path.clone(), inner: BufReader::with_capacity(1 << 16, file) };
            if let Some(rec) = reader.next_record()? {
                heap.push(Reverse(Head { rec, run: i, cmp_len }));
            }
            readers.push(reader);
        }
        Ok(Sorted { inner: Inner::Merge { heap, readers }, cmp_len, dedupe, last: None })
    }
}

/// Key order, compared 16 bytes at a time as integers: far cheaper than memcmp
/// for keys that are hashes, and domain records tie on their first 16 bytes.
fn cmp_key<const N: usize>(a: &[u8; N], b: &[u8; N], cmp_len: usize) -> Ordering {
    let mut at = 0;
    while at + 16 <= cmp_len {
        let x = u128::from_be_bytes(a[at..at + 16].try_into().expect("16 bytes"));
        let y = u128::from_be_bytes(b[at..at + 16].try_into().expect("16 bytes"));
        match x.cmp(&y) {
            Ordering::Equal => at += 16,
            other => return other,
        }
    }
    if at == cmp_len {
        return Ordering::Equal;
    }
    if at >= 16 {
        // The bytes before `at` are equal: the last 16 bytes of the key, read
        // as one integer, order the tail (no memcmp call for a 4..15-byte rest).
        let x = u128::from_be_bytes(a[cmp_len - 16..cmp_len].try_into().expect("16 bytes"));
        let y = u128::from_be_bytes(b[cmp_len - 16..cmp_len].try_into().expect("16 bytes"));
        return x.cmp(&y);
    }
    a[at..cmp_len].cmp(&b[at..cmp_len])
}

struct Head<const N: usize> {
    rec: [u8; N],
    run: usize,
    cmp_len: usize,
}

impl<const N: usize> PartialEq for Head<N> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<const N: usize> Eq for Head<N> {}
impl<const N: usize> PartialOrd for Head<N> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<const N: usize> Ord for Head<N> {
    // Ties broken by run number, so that merging is deterministic.
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_key(&self.rec, &other.rec, self.cmp_len).then(self.run.cmp(&other.run))
    }
}

struct RunReader {
    path: PathBuf,
    inner: BufReader<File>,
}

impl RunReader {
    fn next_record<const N: usize>(&mut self) -> Result<Option<[u8; N]>> {
        let mut rec = [0u8; N];
        match self.inner.read_exact(&mut rec) {
            Ok(()) => Ok(Some(rec)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(StoreError::io(&self.path, e)),
        }
    }
}

enum Inner<const N: usize> {
    Memory { buckets: std::vec::IntoIter<Vec<[u8; N]>>, current: std::vec::IntoIter<[u8; N]> },
    Merge { heap: BinaryHeap<Reverse<Head<N>>>, readers: Vec<RunReader> },
}

/// The sorted output of [`Runs`].
pub struct Sorted<const N: usize> {
    inner: Inner<N>,
    cmp_len: usize,
    dedupe: bool,
    last: Option<[u8; N]>,
}

impl<const N: usize> Sorted<N> {
    fn next_raw(&mut self) -> Result<Option<[u8; N]>> {
        match &mut self.inner {
            Inner::Memory { buckets, current } => loop {
                if let Some(rec) = current.next() {
                    return Ok(Some(rec));
                }
                match buckets.next() {
                    Some(b) => *current = b.into_iter(),
                    None => return Ok(None),
                }
            },
            Inner::Merge { heap, readers } => {
                let Some(Reverse(head)) = heap.pop() else { return Ok(None) };
                if let Some(next) = readers[head.run].next_record()? {
                    heap.push(Reverse(Head { rec: next, run: head.run, cmp_len: head.cmp_len }));
                }
                Ok(Some(head.rec))
            }
        }
    }
}

impl<const N: usize> Iterator for Sorted<N> {
    type Item = Result<[u8; N]>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_raw() {
                Ok(Some(rec)) => {
                    if self.dedupe
                        && self.last.is_some_and(|l| cmp_key(&l, &rec, self.cmp_len) == Ordering::Equal)
                    {
                        continue;
                    }
                    self.last = Some(rec);
                    return Some(Ok(rec));
                }
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Vec<[u8; 20]> {
        (0..20_000u32)
            .map(|i| {
                let v = i.wrapping_mul(2_654_435_761) % 3000;
                let mut r = [0u8; 20];
                r[..4].copy_from_slice(&(v.wrapping_mul(0x9E37_79B9)).to_be_bytes());
                r[16..].copy_from_slice(&i.to_be_bytes());
                r
            })
            .collect()
    }

    #[test]
    fn spilled_and_in_memory_runs_agree() {
        let dir = tempfile::tempdir().unwrap();
        let input = input();
        let mut want: Vec<[u8; 4]> = input.iter().map(|r| r[..4].try_into().unwrap()).collect();
        want.sort();
        want.dedup();
        let keys =
            |s: Sorted<20>| -> Vec<[u8; 4]> { s.map(|r| r.unwrap()[..4].try_into().unwrap()).collect() };

        let mut memory = Runs::<20>::new(dir.path().to_owned(), "m", 4, true);
        memory.push(&Bucketed::new(input.clone()));
        assert_eq!(keys(memory.finish().unwrap()), want);

        let mut spilled = Runs::<20>::new(dir.path().to_owned(), "s", 4, true);
        for chunk in input.chunks(777) {
            spilled.push(&Bucketed::new(chunk.to_vec()));
            spilled.spill().unwrap();
        }
        assert_eq!(keys(spilled.finish().unwrap()), want);

        let mut all = Runs::<20>::new(dir.path().to_owned(), "a", 4, false);
        for chunk in input.chunks(999) {
            all.push(&Bucketed::new(chunk.to_vec()));
            all.spill().unwrap();
        }
        let out: Vec<_> = all.finish().unwrap().map(Result::unwrap).collect();
        assert_eq!(out.len(), input.len());
        assert!(out.windows(2).all(|w| w[0][..4] <= w[1][..4]));
    }
}
