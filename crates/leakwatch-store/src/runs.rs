//! External sort for fixed-width records: buffer in memory, sort and spill runs
//! to scratch files when the buffer outgrows its share of the memory budget,
//! then stream the union back in order with a k-way merge.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use rayon::slice::ParallelSliceMut;

use crate::error::{Result, StoreError};

/// Records of `N` bytes, sorted by their bytes. With `dedupe`, identical records
/// collapse into one (set semantics); without, every record survives (the
/// caller sums counts of equal keys).
pub struct Runs<const N: usize> {
    dir: PathBuf,
    name: &'static str,
    dedupe: bool,
    buf: Vec<[u8; N]>,
    files: Vec<PathBuf>,
    pushed: u64,
}

impl<const N: usize> Runs<N> {
    pub fn new(dir: PathBuf, name: &'static str, dedupe: bool) -> Self {
        Runs { dir, name, dedupe, buf: Vec::new(), files: Vec::new(), pushed: 0 }
    }

    pub fn extend(&mut self, records: &[[u8; N]]) {
        self.buf.extend_from_slice(records);
        self.pushed += records.len() as u64;
    }

    /// Records pushed so far, duplicates included: an upper bound on the output.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Bytes held in memory.
    pub fn mem_bytes(&self) -> usize {
        self.buf.capacity() * N
    }

    fn sort_buffer(&mut self) {
        self.buf.par_sort_unstable();
        if self.dedupe {
            self.buf.dedup();
        }
    }

    /// Sorts the buffer and writes it out as one run, freeing its memory.
    pub fn spill(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.sort_buffer();
        let path = self.dir.join(format!("{}-{:04}.run", self.name, self.files.len()));
        let file = File::create(&path).map_err(|e| StoreError::io(&path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(self.buf.as_flattened())
            .and_then(|_| out.flush())
            .map_err(|e| StoreError::io(&path, e))?;
        self.files.push(path);
        self.buf = Vec::new();
        Ok(())
    }

    /// Everything pushed, in order (deduplicated if asked).
    pub fn finish(mut self) -> Result<Sorted<N>> {
        if self.files.is_empty() {
            self.sort_buffer();
            return Ok(Sorted {
                inner: Inner::Memory(self.buf.into_iter()),
                dedupe: self.dedupe,
                last: None,
            });
        }
        self.spill()?;
        let mut readers = Vec::with_capacity(self.files.len());
        let mut heap = BinaryHeap::with_capacity(self.files.len());
        for (i, path) in self.files.iter().enumerate() {
            let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
            let mut reader = RunReader { path: path.clone(), inner: BufReader::with_capacity(1 << 16, file) };
            if let Some(rec) = reader.next_record()? {
                heap.push(Reverse((rec, i)));
            }
            readers.push(reader);
        }
        Ok(Sorted { inner: Inner::Merge { heap, readers }, dedupe: self.dedupe, last: None })
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
    Memory(std::vec::IntoIter<[u8; N]>),
    Merge { heap: BinaryHeap<Reverse<([u8; N], usize)>>, readers: Vec<RunReader> },
}

/// The sorted output of [`Runs`].
pub struct Sorted<const N: usize> {
    inner: Inner<N>,
    dedupe: bool,
    last: Option<[u8; N]>,
}

impl<const N: usize> Sorted<N> {
    fn next_raw(&mut self) -> Result<Option<[u8; N]>> {
        match &mut self.inner {
            Inner::Memory(it) => Ok(it.next()),
            Inner::Merge { heap, readers } => {
                let Some(Reverse((rec, i))) = heap.pop() else { return Ok(None) };
                if let Some(next) = readers[i].next_record()? {
                    heap.push(Reverse((next, i)));
                }
                Ok(Some(rec))
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
                    if self.dedupe && self.last == Some(rec) {
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

    #[test]
    fn spilled_and_in_memory_runs_agree() {
        let dir = tempfile::tempdir().unwrap();
        let input: Vec<[u8; 3]> = (0..10_000u32)
            .map(|i| {
                let v = i.wrapping_mul(2_654_435_761) % 3000;
                [(v >> 16) as u8, (v >> 8) as u8, v as u8]
            })
            .collect();
        let mut want = input.clone();
        want.sort();
        want.dedup();

        let mut memory = Runs::<3>::new(dir.path().to_owned(), "m", true);
        memory.extend(&input);
        let got: Vec<_> = memory.finish().unwrap().map(Result::unwrap).collect();
        assert_eq!(got, want);

        let mut spilled = Runs::<3>::new(dir.path().to_owned(), "s", true);
        for chunk in input.chunks(777) {
            spilled.extend(chunk);
            spilled.spill().unwrap();
        }
        let got: Vec<_> = spilled.finish().unwrap().map(Result::unwrap).collect();
        assert_eq!(got, want);

        let mut all = Runs::<3>::new(dir.path().to_owned(), "a", false);
        for chunk in input.chunks(999) {
            all.extend(chunk);
            all.spill().unwrap();
        }
        assert_eq!(all.finish().unwrap().count(), input.len());
    }
}
