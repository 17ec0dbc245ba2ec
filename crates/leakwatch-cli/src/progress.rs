//! The ingest progress bar: bytes, records/s and ETA on a terminal, nothing
//! otherwise (so scripts and CI logs stay clean).

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakwatch_store::Progress;

/// Polls the ingest counters from a background thread until dropped.
pub struct Bar {
    bar: ProgressBar,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    pub fn start(progress: Arc<Progress>) -> Bar {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (bar, stop) = (bar.clone(), stop.clone());
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    bar.set_position(progress.bytes.load(Ordering::Relaxed));
                    let records = progress.records.load(Ordering::Relaxed);
                    let rate = records as f64 / started.elapsed().as_secs_f64().max(0.001);
                    bar.set_message(format!(
                        "{} records, {} records/s",
                        crate::output::thousands(records),
                        crate::output::thousands(rate as u64)
                    ));
                    // Parked, not asleep: `drop` wakes the thread at once
                    // instead of the ingest's end waiting out a tick.
                    std::thread::park_timeout(Duration::from_millis(100));
                }
            })
        };
        Bar { bar, stop, thread: Some(thread) }
    }

    /// Shows a file being read, against its raw size when known.
    pub fn reading(&self, name: &str, raw_len: Option<u64>) {
        self.bar.set_position(0);
        match raw_len {
            Some(len) => {
                self.bar.set_length(len);
                self.bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}  {msg}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
            }
            None => {
                self.bar.unset_length();
                self.bar.set_style(
                    ProgressStyle::with_template("{prefix} {spinner} {bytes} {bytes_per_sec}  {msg}")
                        .expect("valid template"),
                );
            }
        }
        self.bar.set_prefix(name.to_owned());
    }

    pub fn writing(&self) {
        self.bar.set_style(
            ProgressStyle::with_template("{spinner} writing segments  {msg}").expect("valid template"),
        );
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}
