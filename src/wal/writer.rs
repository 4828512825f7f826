//! The WAL handle: opening (recovery), appending through the mmap'd active segment, group
//! commit, segment rolling, release of old segments, clean shutdown, and poisoning after a
//! failed write or sync.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use memmap2::MmapMut;

use super::error::WalError;
use super::frame::{
    encode_frame, encoded_len_bytes, Entry, HardState, Record, SnapshotMarker,
    ENTRY_FIXED_PAYLOAD_BYTES, FRAME_ALIGN_BYTES, FRAME_HEADER_BYTES,
};
use super::fsutil::{create_preallocated, list_names, sync_dir, write_atomically, TMP_SUFFIX};
use super::header::{CleanMarker, SegmentHeader, SEGMENT_HEADER_BYTES};
use super::replay::{replay_segment, Continuation, LogCursor, LogState, SegmentEnd};

/// Name of the clean-shutdown marker file in the WAL directory.
pub const CLEAN_MARKER_FILE: &str = "clean-shutdown";
/// Bytes kept free at the end of every segment so that a Commit, one snapshot marker (with its
/// Commit) and a clean shutdown (CleanShutdown + Commit) always fit without a new segment:
/// 24 + (40 + 24) + (32 + 24) = 144. A full WAL can therefore still record the snapshot that
/// lets `release_before` free space.
const RESERVED_TAIL_BYTES: usize = 160;
/// The part of the reserve that a snapshot marker may not use.
const RESERVED_AFTER_SNAPSHOT_BYTES: usize = 80;
/// Bytes of the hard-state and snapshot-marker copies written at the start of every segment.
const SEGMENT_PREFIX_COPIES_BYTES: usize = 48 + 40;
/// Smallest segment size accepted.
pub const MIN_SEGMENT_SIZE_BYTES: u64 = 4096;

/// Called with the WAL directory after each step that made something durable (a batch sync, a
/// new segment, a release). Tests use it to copy the directory at every durable point.
pub type DurableHook = Arc<dyn Fn(&Path) + Send + Sync>;

#[derive(Clone)]
pub struct WalOptions {
    /// Size every segment is preallocated to. Default 16 MiB: on ext4, an msync into a
    /// fallocated file slows down as the file fills (measured here: 0.08-0.09 ms for the first
    /// 16 MiB written, 0.13 ms at 24-32 MiB, 0.25-0.42 ms beyond 32 MiB; a fresh file is fast
    /// again), so shorter segments keep every sync near the disk's best.
    pub segment_size_bytes: u64,
    /// The WAL never lets its segment files add up to more than this (None: no limit).
    pub max_total_bytes: Option<u64>,
    #[doc(hidden)]
    pub after_durable: Option<DurableHook>,
    /// Test fault injection: while set, every msync of a batch fails with EIO (without flushing).
    #[doc(hidden)]
    pub fail_syncs: Option<Arc<AtomicBool>>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size_bytes: 16 << 20,
            max_total_bytes: None,
            after_durable: None,
            fail_syncs: None,
        }
    }
}

impl fmt::Debug for WalOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalOptions")
            .field("segment_size_bytes", &self.segment_size_bytes)
            .field("max_total_bytes", &self.max_total_bytes)
            .field("after_durable", &self.after_durable.is_some())
            .field("fail_syncs", &self.fail_syncs.is_some())
            .finish()
    }
}

/// A torn tail that recovery cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    pub offset: u64,
    pub reason: String,
}

/// What `Wal::open` found on disk.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    pub hard_state: Option<HardState>,
    /// The latest snapshot marker. Entries at or below its index may still be present; the
    /// caller ignores them.
    pub snapshot: Option<SnapshotMarker>,
    /// The final log after Raft truncations, consecutive indexes (may start after 1 when old
    /// segments were released).
    pub entries: Vec<Entry>,
    /// Index of the last entry or of the snapshot, whichever was written last (see LogCursor).
    pub last_index: u64,
    /// The previous run ended with `close_clean` (checked against the marker file).
    pub clean_shutdown: bool,
    /// Some when an unsynced batch left by a crash was cut.
    pub torn_tail: Option<TornTail>,
}

struct SegmentMeta {
    id: u64,
    first_index: u64,
    path: PathBuf,
    /// The preallocated size (from the header once replayed).
    size_bytes: u64,
}

struct ActiveSegment {
    map: MmapMut,
    /// Invariant: synced_offset <= write_offset <= map.len() - RESERVED_AFTER_SNAPSHOT_BYTES
    /// (except while writing a clean shutdown), both multiples of 8.
    write_offset: usize,
    synced_offset: usize,
    /// Pages below this offset were synced and dropped from the process's resident memory
    /// (they stay in the page cache). Invariant: page-aligned, <= synced_offset.
    released_offset: usize,
}

/// The write-ahead log. Not thread-safe by itself: the node's persist step owns it.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    log_id: u64,
    /// Invariant: sorted by id, consecutive ids; the last one is the active segment.
    segments: Vec<SegmentMeta>,
    active: ActiveSegment,
    /// Chained CRC after the last frame written.
    chain: u32,
    /// Sequence number of the last committed batch; records being written belong to +1.
    committed_batch_seq: u64,
    /// Records written since the last Commit frame.
    pending_records: bool,
    cursor: LogCursor,
    hard_state: Option<HardState>,
    snapshot: Option<SnapshotMarker>,
    poisoned: Option<WalError>,
    scratch: Vec<u8>,
}

fn segment_name(id: u64, first_index: u64) -> String {
    format!("{id:016x}-{first_index:016x}.wal")
}

fn parse_segment_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".wal")?;
    let (id, first) = stem.split_once('-')?;
    if id.len() != 16 || first.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(id, 16).ok()?,
        u64::from_str_radix(first, 16).ok()?,
    ))
}

fn new_log_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mixed = nanos ^ ((std::process::id() as u64) << 32) ^ (&nanos as *const u64 as u64);
    // splitmix64 finaliser so that close values differ in every bit
    let mut z = mixed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn map_segment(path: &Path) -> Result<MmapMut, WalError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|err| WalError::io(path, "open segment", &err))?;
    // SAFETY: the data dir lock keeps other raftkv processes out; the file is preallocated to
    // its full length, so stores never hit a hole.
    unsafe { MmapMut::map_mut(&file) }.map_err(|err| WalError::io(path, "mmap segment", &err))
}

impl Wal {
    /// Opens (or creates) the WAL in `dir`, replays it and returns the final log.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, Recovered), WalError> {
        assert!(
            opts.segment_size_bytes >= MIN_SEGMENT_SIZE_BYTES
                && opts.segment_size_bytes.is_multiple_of(8),
            "segment_size_bytes must be a multiple of 8 and >= {MIN_SEGMENT_SIZE_BYTES}, got {}",
            opts.segment_size_bytes
        );
        fs::create_dir_all(dir).map_err(|err| WalError::io(dir, "create directory", &err))?;
        let mut segments = Vec::new();
        let mut removed_tmp = false;
        for name in list_names(dir)? {
            if name.ends_with(TMP_SUFFIX) {
                let path = dir.join(&name);
                fs::remove_file(&path)
                    .map_err(|err| WalError::io(&path, "remove leftover tmp file", &err))?;
                removed_tmp = true;
            } else if let Some((id, first_index)) = parse_segment_name(&name) {
                segments.push(SegmentMeta {
                    id,
                    first_index,
                    path: dir.join(name),
                    size_bytes: 0,
                });
            }
        }
        if removed_tmp {
            sync_dir(dir)?;
        }
        segments.sort_by_key(|seg| seg.id);
        let marker_path = dir.join(CLEAN_MARKER_FILE);
        let marker = match fs::read(&marker_path) {
            Ok(bytes) => Some(CleanMarker::decode(&bytes).map_err(|err| {
                WalError::corrupt(
                    &marker_path,
                    0,
                    format!("{} {}", err.field, err.expected),
                    err.found,
                )
            })?),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(WalError::io(&marker_path, "read", &err)),
        };
        if segments.is_empty() {
            if let Some(marker) = marker {
                return Err(WalError::CutAfterCleanShutdown {
                    file: dir.to_path_buf(),
                    expected: format!(
                        "segment {} ending at offset {}",
                        marker.last_segment_id, marker.end_offset
                    ),
                    found: "no segment files".to_string(),
                });
            }
            return Wal::create_fresh(dir, opts);
        }

        let mut state = LogState::default();
        let mut previous: Option<Continuation> = None;
        let mut last_end: Option<SegmentEnd> = None;
        let segment_count = segments.len();
        for (position, seg) in segments.iter_mut().enumerate() {
            let bytes =
                fs::read(&seg.path).map_err(|err| WalError::io(&seg.path, "read segment", &err))?;
            let is_last = position + 1 == segment_count;
            let end = replay_segment(&bytes, &seg.path, previous, is_last, &mut state)?;
            seg.size_bytes = end.header.segment_size_bytes;
            if end.header.segment_id != seg.id || end.header.first_index != seg.first_index {
                return Err(WalError::corrupt(
                    &seg.path,
                    0,
                    format!(
                        "header with segment id {:#x} and first index {:#x} (the file name)",
                        seg.id, seg.first_index
                    ),
                    format!(
                        "segment id {:#x}, first index {:#x}",
                        end.header.segment_id, end.header.first_index
                    ),
                ));
            }
            previous = Some(Continuation {
                log_id: end.header.log_id,
                segment_id: end.header.segment_id,
                chain: end.chain,
                batch_seq: end.batch_seq,
            });
            last_end = Some(end);
        }
        let last_end = last_end.expect("at least one segment was replayed");
        let last_path = segments.last().expect("segments is not empty").path.clone();
        let found = format!(
            "log ends in segment {} at offset {} with last index {}{}{}",
            last_end.header.segment_id,
            last_end.committed_end,
            state.cursor.last_index,
            if state.ends_with_clean_shutdown {
                ""
            } else {
                ", no clean-shutdown record at the end"
            },
            match &last_end.torn_at {
                Some((at, why)) => format!(", torn bytes at offset {at} ({why})"),
                None => String::new(),
            }
        );
        if let Some(marker) = marker {
            let matches = marker.log_id == last_end.header.log_id
                && marker.last_segment_id == last_end.header.segment_id
                && marker.end_offset == last_end.committed_end as u64
                && marker.last_index == state.cursor.last_index
                && state.ends_with_clean_shutdown
                && last_end.torn_at.is_none();
            if !matches {
                return Err(WalError::CutAfterCleanShutdown {
                    file: last_path,
                    expected: format!(
                        "log ending in segment {} at offset {} with last index {}",
                        marker.last_segment_id, marker.end_offset, marker.last_index
                    ),
                    found,
                });
            }
        }

        let mut map = map_segment(&last_path)?;
        // After a process crash, committed frames may sit in the page cache only (the process
        // died inside msync, or between a rename and its directory fsync). Make what recovery
        // is about to report durable before anyone acts on it.
        map.flush()
            .map_err(|err| WalError::io(&last_path, "msync (start-up)", &err))?;
        sync_dir(dir)?;
        let torn_tail = last_end.torn_at.as_ref().map(|(at, why)| TornTail {
            file: last_path.clone(),
            offset: *at as u64,
            reason: why.clone(),
        });
        if torn_tail.is_some() {
            // Zero everything past the last commit so stale torn bytes can never be read as
            // records later, and make the zeroing durable before any new write.
            let start = last_end.committed_end;
            let mut dirty_from = None;
            for (page_number, page) in map[start..].chunks_mut(4096).enumerate() {
                if page.iter().any(|b| *b != 0) {
                    page.fill(0);
                    dirty_from.get_or_insert(start + page_number * 4096);
                }
            }
            if let Some(from) = dirty_from {
                map.flush_range(from, map.len() - from)
                    .map_err(|err| WalError::io(&last_path, "msync (zeroing torn tail)", &err))?;
            }
        }
        if marker.is_some() {
            fs::remove_file(&marker_path)
                .map_err(|err| WalError::io(&marker_path, "remove", &err))?;
            sync_dir(dir)?;
        }
        let recovered = Recovered {
            hard_state: state.hard_state,
            snapshot: state.snapshot,
            entries: std::mem::take(&mut state.entries),
            last_index: state.cursor.last_index,
            clean_shutdown: marker.is_some()
                || (state.ends_with_clean_shutdown && torn_tail.is_none()),
            torn_tail,
        };
        let wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            log_id: last_end.header.log_id,
            segments,
            active: ActiveSegment {
                released_offset: 0,
                map,
                write_offset: last_end.committed_end,
                synced_offset: last_end.committed_end,
            },
            chain: last_end.chain,
            committed_batch_seq: last_end.batch_seq,
            pending_records: false,
            cursor: state.cursor,
            hard_state: state.hard_state,
            snapshot: state.snapshot,
            poisoned: None,
            scratch: Vec::new(),
        };
        Ok((wal, recovered))
    }

    fn create_fresh(dir: &Path, opts: WalOptions) -> Result<(Wal, Recovered), WalError> {
        // The directory itself may be new: make its entry in the parent durable.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        let header = SegmentHeader {
            log_id: new_log_id(),
            segment_id: 1,
            first_index: 1,
            segment_size_bytes: opts.segment_size_bytes,
            prev_batch_seq: 0,
            prev_chain: 0,
        };
        if let Some(limit) = opts.max_total_bytes {
            if opts.segment_size_bytes > limit {
                return Err(WalError::NoSpace {
                    path: dir.to_path_buf(),
                    needed_bytes: opts.segment_size_bytes,
                    limit_bytes: Some(limit),
                    detail: "the first segment is larger than the WAL size limit".to_string(),
                });
            }
        }
        let name = segment_name(1, 1);
        let path = create_preallocated(dir, &name, &header.encode(), opts.segment_size_bytes)?;
        let map = map_segment(&path)?;
        let wal = Wal {
            dir: dir.to_path_buf(),
            log_id: header.log_id,
            segments: vec![SegmentMeta {
                id: 1,
                first_index: 1,
                path,
                size_bytes: opts.segment_size_bytes,
            }],
            active: ActiveSegment {
                released_offset: 0,
                map,
                write_offset: SEGMENT_HEADER_BYTES,
                synced_offset: SEGMENT_HEADER_BYTES,
            },
            chain: header.chain_seed(),
            committed_batch_seq: 0,
            pending_records: false,
            cursor: LogCursor::default(),
            hard_state: None,
            snapshot: None,
            poisoned: None,
            scratch: Vec::new(),
            opts,
        };
        wal.notify_durable();
        Ok((wal, Recovered::default()))
    }

    fn notify_durable(&self) {
        if let Some(hook) = &self.opts.after_durable {
            hook(&self.dir);
        }
    }

    /// Runs `op` unless poisoned; poisons the WAL when `op` fails with an error after which the
    /// on-disk state is unknown (everything except NoSpace and refused input).
    fn guarded<T>(
        &mut self,
        op: impl FnOnce(&mut Wal) -> Result<T, WalError>,
    ) -> Result<T, WalError> {
        if let Some(first) = &self.poisoned {
            return Err(WalError::Poisoned {
                first_error: Box::new(first.clone()),
            });
        }
        let result = op(self);
        if let Err(err) = &result {
            let recoverable = matches!(
                err,
                WalError::NoSpace { .. }
                    | WalError::RecordTooLarge { .. }
                    | WalError::NonContiguous { .. }
            );
            if !recoverable {
                self.poisoned = Some(err.clone());
            }
        }
        result
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Index of the last entry or snapshot written (synced or not).
    pub fn last_index(&self) -> u64 {
        self.cursor.last_index
    }

    /// Appends entries (not yet durable: call `sync`). An entry whose index is <= the last one
    /// replaces it and everything after it (Raft log truncation). Entries must be consecutive
    /// and the first must be <= last entry + 1, or right after the latest snapshot.
    /// On `NoSpace` the entries before the failing one may have been written; appending the
    /// same entries again is harmless (they overwrite themselves).
    pub fn append_entries(&mut self, entries: &[Entry]) -> Result<(), WalError> {
        self.guarded(|wal| {
            let Some(first) = entries.first() else {
                return Ok(());
            };
            if !wal.cursor.accepts_entry(first.index) {
                return Err(WalError::NonContiguous {
                    expected: wal.cursor.expected_entry(),
                    found: first.index,
                });
            }
            for pair in entries.windows(2) {
                if pair[1].index != pair[0].index.wrapping_add(1) {
                    return Err(WalError::NonContiguous {
                        expected: pair[0].index.wrapping_add(1).to_string(),
                        found: pair[1].index,
                    });
                }
            }
            for entry in entries {
                wal.append_record(&Record::Entry(entry.clone()))?;
                wal.cursor.apply_entry(entry.index);
            }
            Ok(())
        })
    }

    /// Records Raft's hard state (durable after the next `sync`).
    pub fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), WalError> {
        self.guarded(|wal| {
            wal.append_record(&Record::HardState(hard_state))?;
            wal.hard_state = Some(hard_state);
            Ok(())
        })
    }

    /// Records that a snapshot up to `marker.index` is durable (durable after the next `sync`).
    /// When the WAL is full, one marker still fits (space is reserved for it).
    pub fn mark_snapshot(&mut self, marker: SnapshotMarker) -> Result<(), WalError> {
        self.guarded(|wal| {
            let record = Record::SnapshotMarker(marker);
            let len = encoded_len_bytes(&record);
            if wal.active.write_offset + len + RESERVED_AFTER_SNAPSHOT_BYTES <= wal.active.map.len()
            {
                wal.write_frame(&record);
            } else {
                wal.append_record(&record)?;
            }
            wal.cursor.apply_snapshot(marker.index);
            wal.snapshot = Some(marker);
            Ok(())
        })
    }

    /// Makes everything appended since the last sync durable with one Commit frame and one
    /// msync(MS_SYNC) of the dirty range (an fdatasync of that range). A failure poisons the WAL.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.guarded(|wal| wal.commit_batch())
    }

    /// Deletes whole segments that hold only entries with index <= `index` (call after a
    /// snapshot covering `index` is durable and marked). Syncs pending records first. The
    /// active segment is never deleted. Returns how many segments were deleted.
    pub fn release_before(&mut self, index: u64) -> Result<usize, WalError> {
        self.guarded(|wal| {
            wal.commit_batch()?;
            // Oldest first, each removal made durable before the next, so that a crash leaves
            // a contiguous run of segments (never a hole).
            let mut removed = 0;
            while wal.segments.len() >= 2 && wal.segments[1].first_index <= index.saturating_add(1)
            {
                let seg = wal.segments.remove(0);
                fs::remove_file(&seg.path)
                    .map_err(|err| WalError::io(&seg.path, "remove released segment", &err))?;
                sync_dir(&wal.dir)?;
                wal.notify_durable();
                removed += 1;
            }
            Ok(removed)
        })
    }

    /// Syncs, writes a CleanShutdown record and the clean-shutdown marker file, and closes.
    /// The next `open` refuses a log that ends anywhere else.
    pub fn close_clean(mut self) -> Result<(), WalError> {
        self.guarded(|wal| {
            wal.commit_batch()?;
            // The reserve always holds one clean shutdown, except right after a previous clean
            // shutdown (or snapshot marker) used it up in this segment: then start a new one.
            if wal.active.write_offset + RESERVED_AFTER_SNAPSHOT_BYTES > wal.active.map.len() {
                wal.roll()?;
            }
            wal.write_frame(&Record::CleanShutdown {
                last_index: wal.cursor.last_index,
            });
            wal.commit_batch()?;
            let marker = CleanMarker {
                log_id: wal.log_id,
                last_segment_id: wal.segments.last().expect("active segment").id,
                end_offset: wal.active.write_offset as u64,
                last_index: wal.cursor.last_index,
            };
            write_atomically(&wal.dir, CLEAN_MARKER_FILE, &marker.encode())?;
            wal.notify_durable();
            Ok(())
        })
    }

    /// The largest `Entry::data` whose record fits in one segment. Callers refuse larger
    /// entries before they reach the log: [`Wal::append_entries`] fails on them, and a Raft
    /// entry that cannot be persisted stops every later write.
    pub fn max_entry_data_bytes(&self) -> usize {
        let aligned_frame = self.max_frame_bytes() / FRAME_ALIGN_BYTES * FRAME_ALIGN_BYTES;
        aligned_frame.saturating_sub(FRAME_HEADER_BYTES + ENTRY_FIXED_PAYLOAD_BYTES)
    }

    /// Largest frame that fits in an empty segment.
    fn max_frame_bytes(&self) -> usize {
        self.opts.segment_size_bytes as usize
            - SEGMENT_HEADER_BYTES
            - RESERVED_TAIL_BYTES
            - SEGMENT_PREFIX_COPIES_BYTES
    }

    fn append_record(&mut self, record: &Record) -> Result<(), WalError> {
        let len = encoded_len_bytes(record);
        if len > self.max_frame_bytes() {
            return Err(WalError::RecordTooLarge {
                max_bytes: self.max_frame_bytes() as u64,
                found_bytes: len as u64,
            });
        }
        if self.active.write_offset + len + RESERVED_TAIL_BYTES > self.active.map.len() {
            self.roll()?;
        }
        self.write_frame(record);
        Ok(())
    }

    /// Writes one frame into the map at the write offset (space was checked by the caller).
    fn write_frame(&mut self, record: &Record) {
        self.scratch.clear();
        self.chain = encode_frame(
            record,
            self.committed_batch_seq.wrapping_add(1),
            self.chain,
            &mut self.scratch,
        );
        let at = self.active.write_offset;
        assert!(
            at + self.scratch.len() <= self.active.map.len(),
            "frame of {} bytes at offset {at} overflows the {}-byte segment",
            self.scratch.len(),
            self.active.map.len()
        );
        self.active.map[at..at + self.scratch.len()].copy_from_slice(&self.scratch);
        self.active.write_offset += self.scratch.len();
        self.pending_records = true;
    }

    fn commit_batch(&mut self) -> Result<(), WalError> {
        if !self.pending_records {
            return Ok(());
        }
        self.write_frame(&Record::Commit);
        let from = self.active.synced_offset;
        let len = self.active.write_offset - from;
        let path = &self.segments.last().expect("active segment").path;
        let injected = self
            .opts
            .fail_syncs
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::SeqCst));
        if injected {
            let err = std::io::Error::from_raw_os_error(libc::EIO);
            return Err(WalError::io(path, "msync", &err));
        }
        self.active
            .map
            .flush_range(from, len)
            .map_err(|err| WalError::io(path, "msync", &err))?;
        self.committed_batch_seq += 1;
        self.active.synced_offset = self.active.write_offset;
        self.release_synced_pages();
        self.pending_records = false;
        self.notify_durable();
        Ok(())
    }

    /// Drops the whole pages below the synced offset from the process's resident set
    /// (`madvise(MADV_DONTNEED)` on a shared file mapping: the data stays in the file and the
    /// page cache; the WAL never reads these pages through this mapping again). Without it a
    /// segment's written pages would all count toward the server's resident memory.
    fn release_synced_pages(&mut self) {
        const PAGE_BYTES: usize = 4096;
        let up_to = self.active.synced_offset / PAGE_BYTES * PAGE_BYTES;
        let from = self.active.released_offset;
        if up_to <= from {
            return;
        }
        // SAFETY: the range lies inside the mapping (up_to <= synced_offset <= len) and is
        // page-aligned; DONTNEED on a MAP_SHARED file mapping only drops page-table entries,
        // later reads would see the file's contents again.
        let result = unsafe {
            libc::madvise(
                self.active.map.as_mut_ptr().add(from).cast(),
                up_to - from,
                libc::MADV_DONTNEED,
            )
        };
        if result == 0 {
            self.active.released_offset = up_to;
        }
    }

    /// Commits the active segment and starts the next one; the new segment begins with copies
    /// of the hard state and snapshot marker so that older segments can be released.
    fn roll(&mut self) -> Result<(), WalError> {
        self.commit_batch()?;
        let size = self.opts.segment_size_bytes;
        if let Some(limit) = self.opts.max_total_bytes {
            let used: u64 = self.segments.iter().map(|seg| seg.size_bytes).sum();
            if used + size > limit {
                return Err(WalError::NoSpace {
                    path: self.dir.clone(),
                    needed_bytes: size,
                    limit_bytes: Some(limit),
                    detail: format!(
                        "{used} bytes already used by {} segments",
                        self.segments.len()
                    ),
                });
            }
        }
        let id = self.segments.last().expect("active segment").id + 1;
        let header = SegmentHeader {
            log_id: self.log_id,
            segment_id: id,
            first_index: self.cursor.last_index.wrapping_add(1),
            segment_size_bytes: size,
            prev_batch_seq: self.committed_batch_seq,
            prev_chain: self.chain,
        };
        let path = create_preallocated(
            &self.dir,
            &segment_name(id, header.first_index),
            &header.encode(),
            size,
        )?;
        let map = map_segment(&path)?;
        self.active = ActiveSegment {
            released_offset: 0,
            map,
            write_offset: SEGMENT_HEADER_BYTES,
            synced_offset: SEGMENT_HEADER_BYTES,
        };
        self.segments.push(SegmentMeta {
            id,
            first_index: header.first_index,
            path,
            size_bytes: size,
        });
        self.chain = header.chain_seed();
        self.notify_durable();
        if let Some(hard_state) = self.hard_state {
            self.write_frame(&Record::HardState(hard_state));
        }
        if let Some(marker) = self.snapshot {
            self.write_frame(&Record::SnapshotMarker(marker));
        }
        Ok(())
    }
}
