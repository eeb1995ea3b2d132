//! The journal, `events.jsonl`: one JSON record per line, written before the event takes
//! effect and synced to disk right after by a thread of its own (see `syncer`). Reading never fails on a bad line: a line torn by a crash, or being written
//! right now, is skipped with a warning, so that `orch status` works on any journal.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::event::{Event, Record, now_ms};
use super::syncer::Syncer;

/// The run's journal, open for appending. Only the engine (and `orch up`, before the engine
/// starts) writes it; the run's lock keeps writers to one.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Length after the last complete record: a failed write is cut back to it, so that the
    /// next record never lands glued to a fragment.
    len: u64,
    repaired: Option<String>,
    /// Makes written lines durable off the caller's thread.
    syncer: Syncer,
}

/// What `read_journal` found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    pub records: Vec<Record>,
    /// Lines skipped, each saying which and why.
    pub warnings: Vec<String>,
}

impl Journal {
    /// Opens (creating) the journal for appending. A torn last line left by a crash is cut
    /// off first (and kept in `events.jsonl.torn`): its record was never acknowledged, and
    /// the next record must start on a line of its own.
    pub fn open(path: &Path) -> anyhow::Result<Journal> {
        // 0600: failures quote what agents printed.
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io_error(path, "open", &e))?;
        let syncer = start_syncer(path, &file, 0)?;
        let mut journal = Journal {
            path: path.to_path_buf(),
            len: 0,
            file,
            repaired: None,
            syncer,
        };
        journal.len = journal
            .file
            .metadata()
            .map_err(|e| io_error(path, "read", &e))?
            .len();
        journal.cut_torn_tail()?;
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the journal's file is still at its path (the same file, not another put
    /// there). An agent may delete or move `.orch/` (`git clean -fdx`): the open file lives
    /// on, and [`Journal::restore`] writes it back.
    pub fn in_place(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(&self.path), self.file.metadata()) {
            (Ok(there), Ok(ours)) => there.dev() == ours.dev() && there.ino() == ours.ino(),
            _ => false,
        }
    }

    /// Writes the journal back at its path from the open file (every record so far, none
    /// lost), and appends there from now on. Parent directories are recreated.
    pub fn restore(&mut self) -> anyhow::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let mut content = Vec::new();
        let mut reader = self
            .file
            .try_clone()
            .map_err(|e| io_error(&self.path, "read", &e))?;
        reader
            .seek(SeekFrom::Start(0))
            .and_then(|_| {
                Read::by_ref(&mut reader)
                    .take(self.len)
                    .read_to_end(&mut content)
            })
            .map_err(|e| io_error(&self.path, "read", &e))?;
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(parent, "create", &e))?;
        }
        // Beside it first, then renamed into place: a crash leaves the old state or the new.
        let temp = self.path.with_extension("jsonl.restoring");
        std::fs::write(&temp, &content)
            .and_then(|()| std::fs::File::open(&temp)?.sync_all())
            .and_then(|()| std::fs::rename(&temp, &self.path))
            .map_err(|e| io_error(&self.path, "restore", &e))?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io_error(&self.path, "open", &e))?;
        self.len = content.len() as u64;
        // The old syncer finishes with the old file as it is dropped.
        self.syncer = start_syncer(&self.path, &self.file, self.len)?;
        Ok(())
    }

    /// Set when `open` cut a torn last line off: what it did, for the engine to show.
    pub fn repaired(&self) -> Option<&str> {
        self.repaired.as_deref()
    }

    /// Journals `event` now: one line, written before this returns (every reader sees it, and
    /// a crash of the engine cannot lose it), and synced to disk by the syncer right after.
    /// Only then may the caller act on it.
    pub fn append(&mut self, event: Event) -> anyhow::Result<Record> {
        self.append_at(now_ms(), event)
    }

    /// Like `append`, with the time given (tests, and callers that already took it).
    pub fn append_at(&mut self, t: u64, event: Event) -> anyhow::Result<Record> {
        let record = Record { t, event };
        self.write(std::slice::from_ref(&record), true)?;
        Ok(record)
    }

    /// Journals `event` without asking for a sync of its own, for an event whose loss in a
    /// machine crash (not the engine's: the line is in the kernel's hands once this returns)
    /// costs little; the next `append` syncs it with its own line.
    pub fn append_unsynced(&mut self, event: Event) -> anyhow::Result<Record> {
        let record = Record { t: now_ms(), event };
        self.write(std::slice::from_ref(&record), false)?;
        Ok(record)
    }

    /// Journals several events at once: their lines in one write and one sync. As with
    /// `append`, the caller may act on none of them before this returns.
    /// A crash in the middle may leave the first lines and not the rest, exactly as a crash
    /// between separate appends would.
    pub fn append_all(&mut self, events: Vec<Event>) -> anyhow::Result<Vec<Record>> {
        let t = now_ms();
        let records: Vec<Record> = events
            .into_iter()
            .map(|event| Record { t, event })
            .collect();
        self.write(&records, true)?;
        Ok(records)
    }

    /// Waits until every line written so far is on disk: where durability must come first,
    /// such as the end of a run. Dropping the journal does the same.
    pub fn sync(&self) -> anyhow::Result<()> {
        self.syncer
            .wait(self.len)
            .map_err(|e| io_error(&self.path, "sync", &e))
    }

    /// Writes the records' lines with one write, then asks the syncer for them if asked. On
    /// failure the file is cut back to where it was, so that no partial line is left.
    fn write(&mut self, records: &[Record], sync: bool) -> anyhow::Result<()> {
        let mut lines = String::new();
        for record in records {
            lines.push_str(&serde_json::to_string(record).context("failed to encode an event")?);
            lines.push('\n');
        }
        // A sync that failed since the last write: the disk is in trouble; say so before
        // acting on anything more.
        if sync {
            self.syncer.request(self.len).map_err(|e| {
                io_error(&self.path, "sync", &e)
                    .context("the event was not recorded, so orch did not act on it")
            })?;
        }
        if let Err(e) = self.file.write_all(lines.as_bytes()) {
            // Best effort: if even this fails, the next open cuts the fragment off.
            let _ = self.file.set_len(self.len);
            return Err(io_error(&self.path, "write", &e)
                .context("the event was not recorded, so orch did not act on it"));
        }
        self.len += lines.len() as u64;
        if sync {
            // Cannot fail now: a failure would have been reported above, or comes next time.
            let _ = self.syncer.request(self.len);
        }
        Ok(())
    }

    fn cut_torn_tail(&mut self) -> anyhow::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        let mut last = [0u8];
        self.file
            .read_exact_at(&mut last, self.len - 1)
            .map_err(|e| io_error(&self.path, "read", &e))?;
        if last[0] == b'\n' {
            return Ok(());
        }
        let keep = self.last_newline()?.map_or(0, |at| at + 1);
        let mut torn = vec![0u8; usize::try_from(self.len - keep).unwrap_or(0)];
        self.file
            .read_exact_at(&mut torn, keep)
            .map_err(|e| io_error(&self.path, "read", &e))?;
        let torn_bytes = torn.len();
        torn.push(b'\n');
        let aside = self.path.with_extension("jsonl.torn");
        let saved = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&aside)
            .and_then(|mut f| f.write_all(&torn));
        self.file
            .set_len(keep)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io_error(&self.path, "repair", &e))?;
        self.repaired = Some(format!(
            "{}: cut off a torn last line ({} bytes, from a crash mid-write){}",
            self.path.display(),
            torn_bytes,
            match saved {
                Ok(()) => format!("; kept in {}", aside.display()),
                Err(_) => String::new(),
            }
        ));
        self.len = keep;
        Ok(())
    }

    /// Offset of the last `\n`, searching back from the end in blocks.
    fn last_newline(&self) -> anyhow::Result<Option<u64>> {
        const BLOCK: u64 = 64 * 1024;
        let mut end = self.len;
        let mut buf = Vec::new();
        while end > 0 {
            let start = end.saturating_sub(BLOCK);
            buf.resize(usize::try_from(end - start).unwrap_or(0), 0);
            self.file
                .read_exact_at(&mut buf, start)
                .map_err(|e| io_error(&self.path, "read", &e))?;
            if let Some(i) = buf.iter().rposition(|&b| b == b'\n') {
                return Ok(Some(start + i as u64));
            }
            end = start;
        }
        Ok(None)
    }
}

fn start_syncer(path: &Path, file: &File, durable: u64) -> anyhow::Result<Syncer> {
    let handle = file.try_clone().map_err(|e| io_error(path, "open", &e))?;
    Syncer::start(handle, durable).map_err(|e| {
        anyhow::anyhow!(
            "cannot start the journal's sync thread for {}: {e}; check the system's limits \
             on threads (ulimit -u)",
            path.display()
        )
    })
}

/// Reads a journal for replay. A missing file is an empty journal; a line that is not a valid
/// record is skipped with a warning (the last one is expected now and then: a crash mid-write,
/// or the engine writing it right now).
pub fn read_journal(path: &Path) -> anyhow::Result<Replay> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Replay::default()),
        Err(e) => return Err(io_error(path, "read", &e)),
    };
    let mut replay = Replay::default();
    let complete = bytes.ends_with(b"\n");
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // `split` yields an empty piece after the final newline; without one, the last piece is
    // the torn line.
    let torn = lines.pop().filter(|_| !complete);
    let count = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(record) => replay.records.push(record),
            Err(e) if i + 1 == count && torn.is_none() => replay.warnings.push(format!(
                "{} line {}: the last record is unreadable ({e}), most likely torn by a crash: skipped",
                path.display(),
                i + 1
            )),
            Err(e) => replay.warnings.push(format!(
                "{} line {}: not a valid record ({e}): skipped; the state shown may miss that event",
                path.display(),
                i + 1
            )),
        }
    }
    if let Some(torn) = torn.filter(|t| !t.is_empty()) {
        replay.warnings.push(format!(
            "{} line {}: the last line is incomplete ({} bytes without a newline: being written \
             right now, or torn by a crash): skipped",
            path.display(),
            count + 1,
            torn.len()
        ));
    }
    Ok(replay)
}

/// An I/O error on `.orch/`, saying what to do about the usual causes.
fn io_error(path: &Path, doing: &str, e: &io::Error) -> anyhow::Error {
    let advice = match e.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            "orch keeps each run's state under .orch/ in the project: make it writable by this \
             user (e.g. `chmod -R u+w .orch`), or run orch as the user who owns it"
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "the disk is full: free some space (old runs under .orch/runs/ may go), then \
             `orch resume`"
        }
        io::ErrorKind::NotFound => {
            "its run directory is missing: it may have been deleted; start a new run with `orch up`"
        }
        _ => "check that .orch/ is on a local, writable file system",
    };
    anyhow::anyhow!(
        "failed to {doing} the journal {}: {e}; {advice}",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Outcome;

    fn started(pid: u32) -> Event {
        Event::EngineStarted { pid }
    }

    #[test]
    fn a_journal_deleted_or_moved_is_restored_whole_from_the_open_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".orch/runs/r/events.jsonl");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut journal = Journal::open(&path).unwrap();
        journal.append(started(1)).unwrap();
        assert!(journal.in_place());
        std::fs::rename(dir.path().join(".orch"), dir.path().join("moved")).unwrap();
        assert!(!journal.in_place());
        journal.append(started(2)).unwrap(); // lands in the moved file
        journal.restore().unwrap();
        assert!(journal.in_place());
        journal.append(started(3)).unwrap();
        std::fs::remove_dir_all(dir.path().join(".orch")).unwrap();
        journal.restore().unwrap();
        journal.append(started(4)).unwrap();
        let pids: Vec<Event> = read_journal(&path)
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.event)
            .collect();
        assert_eq!(pids, [started(1), started(2), started(3), started(4)]);
    }

    #[test]
    fn a_group_of_events_is_one_write_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        let first = journal.append(started(1)).unwrap();
        let group = journal
            .append_all(vec![started(2), started(3), started(4)])
            .unwrap();
        assert_eq!(group.len(), 3);
        let replay = read_journal(&path).unwrap();
        assert_eq!(replay.records[0], first);
        assert_eq!(replay.records[1..], group[..]);
        assert!(journal.append_all(vec![]).unwrap().is_empty());
    }

    #[test]
    fn appended_records_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        let a = journal.append(started(1)).unwrap();
        let b = journal
            .append(Event::RunFinished {
                outcome: Outcome::Succeeded,
                reason: Some("two\nlines".into()),
            })
            .unwrap();
        drop(journal);
        // Reopening appends after what is there.
        let c = Journal::open(&path).unwrap().append(started(3)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        let replay = read_journal(&path).unwrap();
        assert_eq!(replay.records, vec![a, b, c]);
        assert!(replay.warnings.is_empty());
    }

    #[test]
    fn a_missing_journal_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let replay = read_journal(&dir.path().join("nope.jsonl")).unwrap();
        assert_eq!(replay, Replay::default());
    }

    #[test]
    fn a_torn_last_line_is_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        journal.append(started(1)).unwrap();
        drop(journal);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"t":2,"event":"engine_sta"#).unwrap();
        let replay = read_journal(&path).unwrap();
        assert_eq!(replay.records.len(), 1);
        assert_eq!(replay.warnings.len(), 1);
        assert!(
            replay.warnings[0].contains("line 2"),
            "{:?}",
            replay.warnings
        );
        assert!(replay.warnings[0].contains("incomplete"));
    }

    #[test]
    fn valid_json_without_its_newline_is_still_torn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, r#"{"t":2,"event":"engine_started","pid":1}"#).unwrap();
        let replay = read_journal(&path).unwrap();
        assert!(replay.records.is_empty());
        assert_eq!(replay.warnings.len(), 1);
    }

    #[test]
    fn an_unreadable_last_line_with_its_newline_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(
            &path,
            "{\"t\":1,\"event\":\"engine_started\",\"pid\":1}\n{\"t\":\n",
        )
        .unwrap();
        let replay = read_journal(&path).unwrap();
        assert_eq!(replay.records.len(), 1);
        assert!(
            replay.warnings[0].contains("torn by a crash"),
            "{:?}",
            replay.warnings
        );
    }

    #[test]
    fn a_bad_middle_line_is_warned_by_number_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(
            &path,
            "{\"t\":1,\"event\":\"engine_started\",\"pid\":1}\n\
             garbage \u{ff}\n\
             {\"t\":3,\"event\":\"no_such_event\"}\n\
             \n\
             {\"t\":4,\"event\":\"engine_started\",\"pid\":4}\n",
        )
        .unwrap();
        let replay = read_journal(&path).unwrap();
        assert_eq!(replay.records.len(), 2);
        assert_eq!(replay.warnings.len(), 2, "{:?}", replay.warnings);
        assert!(replay.warnings[0].contains("line 2"));
        assert!(replay.warnings[1].contains("line 3"));
        assert!(replay.warnings[1].contains("no_such_event"));
    }

    #[test]
    fn open_cuts_a_torn_tail_so_the_next_record_stands_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(
            &path,
            "{\"t\":1,\"event\":\"engine_started\",\"pid\":1}\n{\"t\":2,\"ev",
        )
        .unwrap();
        let mut journal = Journal::open(&path).unwrap();
        assert!(journal.repaired().unwrap().contains("torn"));
        journal.append(started(3)).unwrap();
        let replay = read_journal(&path).unwrap();
        assert!(replay.warnings.is_empty(), "{:?}", replay.warnings);
        assert_eq!(replay.records.len(), 2);
        let aside = std::fs::read_to_string(dir.path().join("events.jsonl.torn")).unwrap();
        assert_eq!(aside, "{\"t\":2,\"ev\n");
    }

    #[test]
    fn a_journal_that_is_one_torn_line_is_cut_to_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"t\":2").unwrap();
        let mut journal = Journal::open(&path).unwrap();
        journal.append(started(3)).unwrap();
        assert_eq!(read_journal(&path).unwrap().records.len(), 1);
    }

    #[test]
    fn an_unwritable_run_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Journal::open(&dir.path().join("gone/events.jsonl")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("gone/events.jsonl") && msg.contains("orch up"),
            "{msg}"
        );

        use std::os::unix::fs::PermissionsExt as _;
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        // root ignores permissions: nothing to check then.
        if let Err(err) = Journal::open(&ro.join("events.jsonl")) {
            let msg = format!("{err:#}");
            assert!(
                msg.contains("ro/events.jsonl") && msg.contains("writable"),
                "{msg}"
            );
        }
    }

    #[test]
    fn io_errors_say_what_to_do() {
        let path = Path::new("/p/.orch/runs/r/events.jsonl");
        let denied = io_error(
            path,
            "open",
            &io::Error::from(io::ErrorKind::PermissionDenied),
        );
        let msg = denied.to_string();
        assert!(
            msg.contains("/p/.orch/runs/r/events.jsonl") && msg.contains("chmod"),
            "{msg}"
        );
        let full = io_error(path, "write", &io::Error::from(io::ErrorKind::StorageFull));
        assert!(full.to_string().contains("free some space"), "{full}");
    }
}
