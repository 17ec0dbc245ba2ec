//! External sort for fixed-width records whose keys are (mostly) uniform hashes.
//!
//! Records are kept in 256 buckets by their first byte. Callers bucket each batch
//! on the parallel side of the pipeline ([`Bucketed::new`]), so the serial sink only
//! appends slices; sorting is then 256 small, cache-friendly sorts run on all cores
//! instead of one large memcmp-bound sort, each sorting integers (key bytes over
//! record indices) rather than the wide records, which then move once. When the
//! buckets outgrow their share of the memory budget they are sorted and spilled as
//! one run; the runs are streamed back in order with a k-way merge.
//!
//! Order and equality look only at the first `cmp_len` bytes (the key); the rest
//! of a record rides along. With `dedupe`, records with equal keys collapse into
//! one (set semantics); without, all survive.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use rayon::prelude::*;

use crate::error::{Result, StoreError};

/// Sort passes over more records than this run in parallel.
const PARALLEL_SORT: usize = 1 << 16;

/// A batch of records grouped by first byte (a counting sort, O(n)).
pub struct Bucketed<const N: usize> {
    records: Vec<[u8; N]>,
    starts: Box<[u32; 257]>,
}

impl<const N: usize> Bucketed<N> {
    pub fn new(records: Vec<[u8; N]>) -> Self {
        Self::with_spare(records, &mut Vec::new())
    }

    /// [`Bucketed::new`] through a caller's buffer, which gets `records`'
    /// memory back: grouping many vectors in turn allocates once, where a new
    /// vector for each would be fresh pages, faulted in, when the vectors were
    /// allocated by another thread.
    pub(crate) fn with_spare(mut records: Vec<[u8; N]>, spare: &mut Vec<[u8; N]>) -> Self {
        let starts = scatter_by_first_byte(&records, spare);
        std::mem::swap(&mut records, spare);
        Bucketed { records, starts }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The records' vector, for a later batch to be made in.
    pub(crate) fn into_records(self) -> Vec<[u8; N]> {
        self.records
    }

    pub(crate) fn bucket(&self, b: usize) -> &[[u8; N]] {
        &self.records[self.starts[b] as usize..self.starts[b + 1] as usize]
    }
}

/// Copies `records` into `out` grouped by first byte, each group in input
/// order (a counting sort); returns each group's start, then the end.
fn scatter_by_first_byte<const N: usize>(records: &[[u8; N]], out: &mut Vec<[u8; N]>) -> Box<[u32; 257]> {
    let mut starts = Box::new([0u32; 257]);
    for r in records {
        starts[usize::from(r[0]) + 1] += 1;
    }
    for b in 1..257 {
        starts[b] += starts[b - 1];
    }
    let mut next: Vec<u32> = starts[..256].to_vec();
    out.clear();
    out.resize(records.len(), [0u8; N]);
    for r in records {
        let slot = &mut next[usize::from(r[0])];
        out[*slot as usize] = *r;
        *slot += 1;
    }
    starts
}

/// Groups `records` by first byte where they are, through `spare`; returns
/// each group's start, then the end.
pub(crate) fn group_by_first_byte<const N: usize>(
    records: &mut [[u8; N]],
    spare: &mut Vec<[u8; N]>,
) -> Box<[u32; 257]> {
    let starts = scatter_by_first_byte(records, spare);
    records.copy_from_slice(spare);
    starts
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

    /// Adds one record: for a caller that makes records one at a time, without
    /// a [`Bucketed`] batch's extra copy.
    pub fn push_record(&mut self, rec: [u8; N]) {
        self.buckets[usize::from(rec[0])].push(rec);
        self.held += 1;
        self.pushed += 1;
        self.sorted = false;
    }

    /// Makes room for `growth` times the records held, spread as they are.
    /// Buckets that double as they fill copy themselves into fresh memory at
    /// every step, and those pages are faulted in again: a quarter of an
    /// ingest's page faults without this.
    pub fn reserve(&mut self, growth: f64) {
        for bucket in &mut self.buckets {
            bucket.reserve((bucket.len() as f64 * (growth - 1.0)) as usize);
        }
    }

    /// Makes room for `records` more, for keys spread evenly over the buckets
    /// (hashes): see [`Runs::reserve`].
    pub fn reserve_spread(&mut self, records: usize) {
        let each = records / 256 + records / 2048 + 64;
        for bucket in &mut self.buckets {
            bucket.reserve(each);
        }
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
                b.windows(2).filter(|w| !same_key(&w[0], &w[1], len)).count() as u64
                    + u64::from(!b.is_empty())
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
        // Runs of 16 buckets: one set of scratch buffers for each, not each bucket.
        self.buckets.par_iter_mut().with_min_len(16).for_each_init(Scratch::default, |scratch, bucket| {
            sort_bucket(bucket, cmp_len, scratch);
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

    /// Writes records that the caller sorted by key as one more run, for a
    /// caller that keeps its records in memory its own way and spills them here
    /// to share the merge. Nothing is written for no records.
    pub(crate) fn spill_sorted(&mut self, records: impl IntoIterator<Item = [u8; N]>) -> Result<()> {
        let mut records = records.into_iter().peekable();
        if records.peek().is_none() {
            return Ok(());
        }
        let path = self.dir.join(format!("{}-{:04}.run", self.name, self.files.len()));
        let file = File::create(&path).map_err(|e| StoreError::io(&path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        for rec in records {
            out.write_all(&rec).map_err(|e| StoreError::io(&path, e))?;
            self.spilled += 1;
            self.pushed += 1;
        }
        out.flush().map_err(|e| StoreError::io(&path, e))?;
        self.files.push(path);
        Ok(())
    }

    /// Whether any run was written to disk.
    pub(crate) fn has_runs(&self) -> bool {
        !self.files.is_empty()
    }

    /// The buckets, each sorted (and deduplicated if asked), when nothing was
    /// spilled: a caller may then work on them in parallel. `None`, and the runs
    /// left as they are for [`Runs::finish`], otherwise.
    pub(crate) fn take_memory(&mut self) -> Option<Vec<Vec<[u8; N]>>> {
        if !self.files.is_empty() {
            return None;
        }
        self.sort_buckets();
        self.held = 0;
        Some(std::mem::replace(&mut self.buckets, vec![Vec::new(); 256]))
    }

    /// Everything pushed, in key order (deduplicated if asked).
    pub fn finish(mut self) -> Result<Sorted<N>> {
        let (cmp_len, dedupe) = (self.cmp_len, self.dedupe);
        if self.files.is_empty() {
            self.sort_buckets();
            let mut buckets = std::mem::take(&mut self.buckets).into_iter();
            let current = buckets.next().unwrap_or_default().into_iter();
            // Each bucket is deduplicated by its sort, and buckets share no key:
            // nothing is left for the iterator to skip.
            let dedupe = false;
            return Ok(Sorted { inner: Inner::Memory { buckets, current }, cmp_len, dedupe, last: None });
        }
        self.spill()?;
        let mut merge = Merge {
            heads: Vec::new(),
            heap: Vec::new(),
            readers: Vec::with_capacity(self.files.len()),
            cmp_len,
        };
        for path in &self.files {
            let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
            let mut reader = RunReader { path: path.clone(), inner: BufReader::with_capacity(1 << 16, file) };
            let mut head = [0u8; N];
            if reader.next_record(&mut head)? {
                merge.heap.push((merge.prefix(&head), merge.heads.len() as u32));
                merge.heads.push(head);
                merge.readers.push(reader);
            }
        }
        for i in (0..merge.heap.len() / 2).rev() {
            merge.sift_down(i);
        }
        Ok(Sorted { inner: Inner::Merge(merge), cmp_len, dedupe, last: None })
    }
}

/// Key bytes per sort pass: a pass sorts `u128`s of 12 key bytes over the
/// record's 32-bit index.
const PASS: usize = 12;

/// Groups of keys at most this long are sorted by insertion (in registers and
/// L1); longer ones by a counting pass.
const INSERTION_MAX: usize = 24;

/// Sorts one bucket by key. The first byte is the bucket's own: the keys
/// start at the second.
fn sort_bucket<const N: usize>(bucket: &mut Vec<[u8; N]>, cmp_len: usize, scratch: &mut Scratch<N>) {
    sort_records(bucket, 1, cmp_len, scratch);
}

/// Sorts records by bytes `from..cmp_len` (the bytes before `from` are the
/// same in every record).
///
/// Keys that are hashes go through [`sort_spread`]. Otherwise, moving 16- to
/// 272-byte records through a comparison sort costs more than the
/// comparisons: instead 12 key bytes over each record's index are sorted as
/// integers (see [`radix_sort`]), and the records are then gathered once, in
/// order. Records tied on those bytes (a domain's, a common password's,
/// repeats) are ordered by the next 12, and so on to the key's end.
pub(crate) fn sort_records<const N: usize>(
    records: &mut Vec<[u8; N]>,
    from: usize,
    cmp_len: usize,
    scratch: &mut Scratch<N>,
) {
    if records.len() < 2 || cmp_len <= from {
        return;
    }
    if (SPREAD_MIN..=SPREAD_MAX).contains(&records.len()) && cmp_len - from >= 4 {
        sort_spread(records, from, cmp_len, scratch);
        return;
    }
    if u32::try_from(records.len()).is_err() {
        // Beyond what an index can address: sort the records themselves.
        records.par_sort_unstable_by(|a, b| cmp_key(a, b, cmp_len));
        return;
    }
    order_by_key(records, from, cmp_len, scratch);
    // Gathered rather than permuted in place: the loads are independent, so
    // their cache misses overlap instead of forming a chain. The old vector
    // becomes the next sort's gather buffer.
    let sorted = &mut scratch.records;
    sorted.clear();
    sorted.extend(scratch.order.iter().map(|&k| records[k as u32 as usize]));
    std::mem::swap(records, sorted);
}

/// Inputs from this many records up to [`SPREAD_MAX`] are sorted by
/// [`sort_spread`]...
const SPREAD_MIN: usize = 64;
const SPREAD_MAX: usize = 1 << 20;
/// ...which sorts its groups of at most this many records by insertion.
const SPREAD_INSERTION: usize = 64;

/// For keys that are hashes: one counting pass places each record by the top
/// bits of its key straight into the output, a handful to a group, and
/// insertion sorts finish the groups in place. The records move once, with no
/// integer keys to build, sort and gather by. A group that is not small (a
/// common password's records, repeats) is sorted the general way.
fn sort_spread<const N: usize>(
    records: &mut Vec<[u8; N]>,
    from: usize,
    cmp_len: usize,
    scratch: &mut Scratch<N>,
) {
    let bits = (records.len().ilog2() - 1).min(16);
    let shift = 32 - bits;
    let digit =
        |r: &[u8; N]| (u32::from_be_bytes(r[from..from + 4].try_into().expect("4 bytes")) >> shift) as usize;
    let mut starts = std::mem::take(&mut scratch.starts);
    starts.clear();
    starts.resize((1 << bits) + 1, 0);
    for r in records.iter() {
        starts[digit(r) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let next = &mut scratch.next;
    next.clear();
    next.extend_from_slice(&starts[..1 << bits]);
    let out = &mut scratch.records;
    out.clear();
    out.resize(records.len(), [0u8; N]);
    for r in records.iter() {
        let slot = &mut next[digit(r)];
        out[*slot as usize] = *r;
        *slot += 1;
    }
    std::mem::swap(records, out);
    for w in starts.windows(2) {
        let group = &mut records[w[0] as usize..w[1] as usize];
        if group.len() <= SPREAD_INSERTION {
            insertion_sort_records(group, cmp_len);
        } else {
            order_by_key(group, from, cmp_len, scratch);
            let sorted = &mut scratch.records;
            sorted.clear();
            sorted.extend(scratch.order.iter().map(|&k| group[k as u32 as usize]));
            group.copy_from_slice(sorted);
        }
    }
    scratch.starts = starts;
}

fn insertion_sort_records<const N: usize>(v: &mut [[u8; N]], cmp_len: usize) {
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && cmp_key(&v[j - 1], &x, cmp_len) == Ordering::Greater {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}

/// Leaves in `scratch.order` the records' indices (in its low 32 bits) in key
/// order.
fn order_by_key<const N: usize>(records: &[[u8; N]], from: usize, cmp_len: usize, scratch: &mut Scratch<N>) {
    let order = &mut scratch.order;
    order.clear();
    order.extend(records.iter().enumerate().map(|(i, rec)| key_bytes(rec, from, cmp_len) | i as u128));
    sort_pass(records, order, &mut scratch.spare, from, cmp_len);
}

/// Bytes `at..at + 12` of a record's key (zero past the key's end), in the top
/// 96 bits: integer order is their byte order.
fn key_bytes<const N: usize>(rec: &[u8; N], at: usize, cmp_len: usize) -> u128 {
    let end = cmp_len.min(at + PASS);
    let mask = u128::MAX << (8 * (16 - (end - at)));
    let word = if at + 16 <= N {
        u128::from_be_bytes(rec[at..at + 16].try_into().expect("16 bytes"))
    } else if N >= 16 {
        // Near the record's end: its last 16 bytes, shifted up to start at
        // `at` (a variable-length copy here was a memcpy call per key).
        u128::from_be_bytes(rec[N - 16..].try_into().expect("16 bytes")) << (8 * (at + 16 - N))
    } else {
        let mut buf = [0u8; 16];
        buf[..end - at].copy_from_slice(&rec[at..end]);
        u128::from_be_bytes(buf)
    };
    word & mask
}

/// Sorts `order` (key bytes from `at` over record indices), then each run tied on
/// those bytes by the bytes after them.
fn sort_pass<const N: usize>(
    records: &[[u8; N]],
    order: &mut [u128],
    spare: &mut Vec<u128>,
    at: usize,
    cmp_len: usize,
) {
    radix_sort(order, spare);
    let next = at + PASS;
    if next >= cmp_len {
        return;
    }
    let mut start = 0;
    while start < order.len() {
        let head = order[start] >> 32;
        let end = start + order[start..].iter().take_while(|&&k| k >> 32 == head).count();
        if end - start > 1 {
            let run = &mut order[start..end];
            let refill = |k: &mut u128| {
                let i = *k as u32 as usize;
                *k = key_bytes(&records[i], next, cmp_len) | i as u128;
            };
            // A domain's records are one run: a third of a dump, perhaps.
            if run.len() > PARALLEL_SORT {
                run.par_iter_mut().for_each(refill);
            } else {
                run.iter_mut().for_each(refill);
            }
            sort_pass(records, run, spare, next, cmp_len);
        }
        start = end;
    }
}

/// Orders keys over indices by their key bits (the top 96): a counting pass on
/// the bits below the highest one in which they differ, as many bits as leave a
/// few keys per group, then the same within each group, down to groups small
/// enough for an insertion sort. Keys that are hashes are settled by one pass;
/// a common prefix (a domain's key) costs a scan to find.
fn radix_sort(order: &mut [u128], spare: &mut Vec<u128>) {
    if order.len() <= INSERTION_MAX {
        insertion_sort(order);
        return;
    }
    let first = order[0] >> 32;
    let differ = order.iter().fold(0, |d, &k| d | ((k >> 32) ^ first));
    if differ == 0 {
        return;
    }
    let top = 128 - differ.leading_zeros();
    let bits = (order.len().ilog2() - 1).clamp(4, 12).min(top);
    let shift = 32 + top - bits;
    let mask = (1usize << bits) - 1;
    let digit = |k: u128| (k >> shift) as usize & mask;
    let mut starts = vec![0u32; mask + 2];
    for &k in order.iter() {
        starts[digit(k) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut next = starts.clone();
    spare.clear();
    spare.resize(order.len(), 0);
    for &k in order.iter() {
        let slot = &mut next[digit(k)];
        spare[*slot as usize] = k;
        *slot += 1;
    }
    order.copy_from_slice(spare);
    if order.len() > PARALLEL_SORT {
        let mut groups = Vec::with_capacity(mask + 1);
        let mut rest = order;
        for w in starts.windows(2) {
            let (group, tail) = rest.split_at_mut((w[1] - w[0]) as usize);
            groups.push(group);
            rest = tail;
        }
        groups.into_par_iter().for_each_init(Vec::new, |spare, group| radix_sort(group, spare));
    } else {
        for w in starts.windows(2) {
            let group = &mut order[w[0] as usize..w[1] as usize];
            if group.len() <= INSERTION_MAX {
                insertion_sort(group);
            } else {
                radix_sort(group, spare);
            }
        }
    }
}

fn insertion_sort(v: &mut [u128]) {
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && v[j - 1] > x {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}

/// A sorting thread's buffers, reused from bucket to bucket so that sorting
/// allocates (and faults in) them once, not once per bucket.
pub(crate) struct Scratch<const N: usize> {
    order: Vec<u128>,
    spare: Vec<u128>,
    records: Vec<[u8; N]>,
    starts: Vec<u32>,
    next: Vec<u32>,
}

impl<const N: usize> Default for Scratch<N> {
    fn default() -> Self {
        Scratch {
            order: Vec::new(),
            spare: Vec::new(),
            records: Vec::new(),
            starts: Vec::new(),
            next: Vec::new(),
        }
    }
}

/// Key order, compared 16 bytes at a time as integers: far cheaper than memcmp
/// for keys that are hashes, and domain records tie on their first 16 bytes.
pub(crate) fn cmp_key<const N: usize>(a: &[u8; N], b: &[u8; N], cmp_len: usize) -> Ordering {
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

/// Whether two records agree in their first `len` bytes: [`cmp_key`]'s integer
/// compares, not a memcmp call per record.
pub(crate) fn same_key<const N: usize>(a: &[u8; N], b: &[u8; N], len: usize) -> bool {
    cmp_key(a, b, len) == Ordering::Equal
}

/// A k-way merge of sorted runs: a binary heap of run numbers, each with
/// the first 8 key bytes of its current record, so that a sift moves 16
/// bytes and mostly compares integers in the heap itself (a heap of records,
/// up to 272 bytes, spent its time in memmove), and each record out costs
/// one sift, not a pop and a push.
struct Merge<const N: usize> {
    /// The current record of each run.
    heads: Vec<[u8; N]>,
    /// The runs that have a current record, smallest first (a binary heap),
    /// each with its record's key prefix.
    heap: Vec<(u64, u32)>,
    readers: Vec<RunReader>,
    cmp_len: usize,
}

impl<const N: usize> Merge<N> {
    /// The first 8 key bytes of `rec` (zero past the key's end), as an
    /// integer that orders as they do.
    fn prefix(&self, rec: &[u8; N]) -> u64 {
        let mut bytes = [0u8; 8];
        let n = self.cmp_len.min(8);
        bytes[..n].copy_from_slice(&rec[..n]);
        u64::from_be_bytes(bytes)
    }

    /// Whether heap entry `a`'s record comes before `b`'s; ties go to the
    /// earlier run, so that merging is deterministic.
    fn before(&self, a: (u64, u32), b: (u64, u32)) -> bool {
        match a.0.cmp(&b.0) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal if self.cmp_len <= 8 => a.1 < b.1,
            Ordering::Equal => {
                match cmp_key(&self.heads[a.1 as usize], &self.heads[b.1 as usize], self.cmp_len) {
                    Ordering::Less => true,
                    Ordering::Greater => false,
                    Ordering::Equal => a.1 < b.1,
                }
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let len = self.heap.len();
        loop {
            let left = 2 * i + 1;
            if left >= len {
                return;
            }
            let right = left + 1;
            let child =
                if right < len && self.before(self.heap[right], self.heap[left]) { right } else { left };
            if !self.before(self.heap[child], self.heap[i]) {
                return;
            }
            self.heap.swap(i, child);
            i = child;
        }
    }

    fn next(&mut self) -> Result<Option<[u8; N]>> {
        let Some(&(_, run)) = self.heap.first() else { return Ok(None) };
        let r = run as usize;
        let rec = self.heads[r];
        if self.readers[r].next_record(&mut self.heads[r])? {
            self.heap[0].0 = self.prefix(&self.heads[r]);
        } else {
            let last = self.heap.pop().expect("the heap holds `run`");
            if self.heap.is_empty() {
                return Ok(Some(rec));
            }
            self.heap[0] = last;
        }
        self.sift_down(0);
        Ok(Some(rec))
    }
}

struct RunReader {
    path: PathBuf,
    inner: BufReader<File>,
}

impl RunReader {
    /// Reads the next record into `rec`; false at the run's end.
    fn next_record<const N: usize>(&mut self, rec: &mut [u8; N]) -> Result<bool> {
        match self.inner.read_exact(rec) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(StoreError::io(&self.path, e)),
        }
    }
}

enum Inner<const N: usize> {
    Memory { buckets: std::vec::IntoIter<Vec<[u8; N]>>, current: std::vec::IntoIter<[u8; N]> },
    Merge(Merge<N>),
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
            Inner::Merge(merge) => merge.next(),
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
pub(crate) mod tests {
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

    /// A xorshift stream: test records without a random number crate.
    pub(crate) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// Records made from `gen`, sorted by `sort_bucket` and by a comparison sort:
    /// the keys must come out in the same order, each with its own record.
    fn check_sort<const N: usize>(cmp_len: usize, count: usize, mut gen: impl FnMut(usize) -> [u8; N]) {
        let mut records: Vec<[u8; N]> = (0..count).map(&mut gen).collect();
        let mut want = records.clone();
        want.sort_by(|a, b| cmp_key(a, b, cmp_len).then(a.cmp(b)));
        sort_bucket(&mut records, cmp_len, &mut Scratch::default());
        assert!(records.windows(2).all(|w| cmp_key(&w[0], &w[1], cmp_len) != Ordering::Greater));
        // Ties may come in any order: compare each run of equal keys as a set.
        records.sort_by(|a, b| cmp_key(a, b, cmp_len).then(a.cmp(b)));
        assert_eq!(records, want);
    }

    #[test]
    fn sort_bucket_orders_uniform_keys() {
        let mut next = xorshift(7);
        check_sort::<28>(28, 50_000, |_| {
            let mut r = [0u8; 28];
            for c in r.chunks_mut(4) {
                c.copy_from_slice(&(next() as u32).to_le_bytes());
            }
            r[0] = 0x42;
            r
        });
        check_sort::<16>(16, 3, |i| [i as u8 ^ 1; 16]);
        check_sort::<16>(16, 1, |_| [9; 16]);
        check_sort::<16>(16, 0, |_| [9; 16]);
    }

    #[test]
    fn spread_sort_mixes_small_groups_and_ties() {
        // Hashes with a third of them one digest (a common password's pairs),
        // at sizes around where spreading starts and well past it.
        let mut next = xorshift(5);
        for count in [63, 64, 65, 1000, 20_000] {
            check_sort::<28>(28, count, |i| {
                let mut r = [0u8; 28];
                for c in r.chunks_mut(4) {
                    c.copy_from_slice(&(next() as u32).to_le_bytes());
                }
                if i % 3 == 0 {
                    r[..20].fill(0x42);
                }
                r[0] = 7;
                r
            });
        }
    }

    #[test]
    fn sort_bucket_orders_heavy_duplicates() {
        // A few popular digests, each with many pairs, and exact repeats.
        let mut next = xorshift(11);
        check_sort::<28>(28, 40_000, |_| {
            let v = next();
            let mut r = [0u8; 28];
            r[..20].fill((v % 5) as u8);
            r[20..].copy_from_slice(&((v >> 8) % 300).to_be_bytes());
            r
        });
        // Keys that differ only in their last byte, and keys shorter than a pass.
        check_sort::<40>(37, 10_000, |i| {
            let mut r = [3u8; 40];
            r[36] = (i * 7 % 251) as u8;
            r[39] = i as u8;
            r
        });
        check_sort::<20>(4, 5_000, |i| {
            let mut r = [0u8; 20];
            r[..4].copy_from_slice(&((i as u32).wrapping_mul(2_654_435_761) % 97).to_be_bytes());
            r[16..].copy_from_slice(&(i as u32).to_be_bytes());
            r
        });
    }

    #[test]
    fn single_domain_dump_sorts_and_dedupes() {
        // Every record under one domain key, in one bucket far past PARALLEL_SORT;
        // each account twice, with different payloads.
        const N: usize = 77;
        let mut next = xorshift(3);
        let accounts: Vec<u128> =
            (0..40_000).map(|_| u128::from(next()) << 64 | u128::from(next())).collect();
        let records: Vec<[u8; N]> = accounts
            .iter()
            .chain(&accounts)
            .enumerate()
            .map(|(i, a)| {
                let mut r = [0u8; N];
                r[..16].copy_from_slice(&[0xA5; 16]);
                r[16..32].copy_from_slice(&a.to_be_bytes());
                r[32..40].copy_from_slice(&(i as u64).to_le_bytes());
                r
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Runs::<N>::new(dir.path().to_owned(), "d", 32, true);
        runs.push(&Bucketed::new(records));
        let out: Vec<[u8; N]> = runs.finish().unwrap().map(Result::unwrap).collect();
        let mut want = accounts.clone();
        want.sort_unstable();
        let got: Vec<u128> = out.iter().map(|r| u128::from_be_bytes(r[16..32].try_into().unwrap())).collect();
        assert_eq!(got, want);
        assert!(out.iter().all(|r| r[..16] == [0xA5; 16]));
    }
}
