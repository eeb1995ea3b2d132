//! A log with a cap: it keeps the first half of the cap and the last half of what was
//! written, with one marker line between them saying how many bytes were cut. Everything
//! written still passes through (to the pane, the transcript, the stream parser): only what
//! stays on disk is bounded. While the agent runs the file may hold up to one more half of
//! recent output (it is compacted each time that fills up), so that the end is always on
//! disk, not only in memory.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Seek as _, SeekFrom, Write as _};

/// The default cap per attempt and log: 10 MiB (`limits.output_cap`).
pub const DEFAULT_CAP: u64 = 10 * 1024 * 1024;
/// The smallest cap taken: below it the head and tail would say nothing.
pub const MIN_CAP: u64 = 4 * 1024;

pub(super) struct Capped {
    file: File,
    cap: u64,
    /// Bytes kept from the beginning.
    head: u64,
    /// Bytes kept from the end.
    tail: usize,
    /// Bytes offered so far.
    total: u64,
    /// Bytes in the file now.
    len: u64,
    /// The last `tail` bytes offered past the head: what a compaction keeps.
    recent: VecDeque<u8>,
}

impl Capped {
    pub(super) fn new(file: File, cap: u64) -> Capped {
        let cap = cap.max(MIN_CAP);
        let head = cap / 2;
        Capped {
            file,
            cap,
            head,
            tail: usize::try_from(cap - head).unwrap_or(usize::MAX),
            total: 0,
            len: 0,
            recent: VecDeque::new(),
        }
    }

    pub(super) fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        self.total += bytes.len() as u64;
        if self.len < self.head {
            let room = usize::try_from(self.head - self.len).unwrap_or(usize::MAX);
            let (first, rest) = bytes.split_at(room.min(bytes.len()));
            self.file.write_all(first)?;
            self.len += first.len() as u64;
            bytes = rest;
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.recent.extend(bytes);
        let excess = self.recent.len().saturating_sub(self.tail);
        self.recent.drain(..excess);
        if self.len + bytes.len() as u64 > self.head + 2 * self.tail as u64 + 512 {
            return self.compact();
        }
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Bytes cut so far (0 while everything fits).
    pub(super) fn cut(&self) -> u64 {
        self.total
            .saturating_sub(self.head + self.recent.len() as u64)
    }

    /// Leaves the file as it stays: the head, the marker and the tail when anything was cut.
    pub(super) fn finish(&mut self) -> std::io::Result<()> {
        if self.total > self.cap && self.len > self.head + self.recent.len() as u64 {
            self.compact()?;
        }
        Ok(())
    }

    fn compact(&mut self) -> std::io::Result<()> {
        let marker = format!(
            "\n[orch: {} bytes of output cut here; this log keeps the first {} and the last {} \
             bytes of the attempt (limits.output_cap: {})]\n",
            self.cut(),
            self.head,
            self.tail,
            self.cap
        );
        self.file.set_len(self.head)?;
        self.file.seek(SeekFrom::Start(self.head))?;
        let (a, b) = self.recent.as_slices();
        let mut rest = Vec::with_capacity(marker.len() + a.len() + b.len());
        rest.extend_from_slice(marker.as_bytes());
        rest.extend_from_slice(a);
        rest.extend_from_slice(b);
        self.file.write_all(&rest)?;
        self.len = self.head + rest.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(cap: u64, chunks: &[&[u8]]) -> Vec<u8> {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log");
        let mut log = Capped::new(File::create(&path).unwrap(), cap);
        for chunk in chunks {
            log.write(chunk).unwrap();
            let on_disk = std::fs::metadata(&path).unwrap().len();
            assert!(on_disk <= cap + cap / 2 + 1024, "{on_disk} on disk");
        }
        log.finish().unwrap();
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn what_fits_is_kept_whole() {
        let text: Vec<u8> = (0..8000u32).map(|i| b'a' + (i % 26) as u8).collect();
        assert_eq!(written(8192, &[&text[..3000], &text[3000..]]), text);
    }

    #[test]
    fn the_beginning_and_the_end_are_kept_with_a_marker_between() {
        let text: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let chunks: Vec<&[u8]> = text.chunks(7777).collect();
        let log = written(8192, &chunks);
        assert_eq!(&log[..4096], &text[..4096]);
        assert_eq!(&log[log.len() - 4096..], &text[text.len() - 4096..]);
        let middle = String::from_utf8_lossy(&log[4096..log.len() - 4096]).into_owned();
        assert_eq!(
            middle,
            format!(
                "\n[orch: {} bytes of output cut here; this log keeps the first 4096 and the \
                 last 4096 bytes of the attempt (limits.output_cap: 8192)]\n",
                1_000_000 - 8192
            )
        );
    }
}
