//! The rewrite pass: Python `tbrewrite.engine.rewrite.rewrite`'s per-record loop, with the
//! same output bytes, damage and counts.
//!
//! The sources' records are read (framing, both checksums, resync, `invalid_event` exactly
//! as Python `EventFileReader` with `check` as given), merged by wall_time with the plan's
//! extra events as CPython's `heapq.merge` merges `(wall_time, source, seq)` tuples (same
//! heap, same comparisons, so NaN wall_times land where Python puts them), checked against
//! the first pass's fingerprints, and written framed to the output's file descriptor.
//!
//! Records on the fast path never reach Python: a tag the plan passes through is copied,
//! a tag it only renames is retagged from its bytes ([`wire::retag`]). Every other record
//! (a tag's first value, which may get plugin metadata; several values per event; drops,
//! `--restarts keep-last`, sidecar replacements; non-summary events) goes to the
//! [`Host`], which is Python's own code for it, and which says which tags are on the fast
//! path from then on: one engine, two loops, the same decisions.
//!
//! A tag whose values are decided one by one (`compact`'s kept ordinals, `crop`'s window:
//! Python `TagAction.keep` and `.window`) can be on the fast path too, with its rule
//! ([`PerValue`]): its one-value records are then kept, thinned or cropped here. Python
//! counts the tag's ordinals as well (for records that still reach it), so the two
//! counters are kept equal: the host is told what was counted here before each call
//! ([`Host::slow`]'s `counted`), and says what it counted ([`Slow::ordinals`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, RawFd};
use std::path::PathBuf;

use memchr::memmem;

use crate::event_file::invalid_event;
use crate::masked_crc::masked_crc32c;
use crate::proto::{event_info, validate_event};
use crate::tf_record::{self, Checkpoint, Damage, FileSource, RecordReader, Source};
use crate::wire::{self, Peek};

/// One event file of a source, as the first pass read it (Python `SourceFile`).
#[derive(Debug, Clone)]
pub struct FilePlan {
    pub path: PathBuf,
    /// Bytes to read: the scanned size with resync, else the end of the last valid record.
    pub limit: u64,
    pub resync: bool,
    /// Validate peeked records too (Python `EventFileReader(check=)`).
    pub check: bool,
    /// The first pass's checkpoints.
    pub expected: Vec<Checkpoint>,
}

/// How the reading of one file ended.
#[derive(Debug, Clone, PartialEq)]
pub enum FileEnd {
    /// Periodic checkpoint number `verified` differs from the first pass's (or the first
    /// pass has none there): reading stopped (Python `_changed`).
    Changed { verified: usize },
    /// Read to its end (Python `_finish`): its damage, last checkpoint and size at open.
    Finished { damage: Vec<Damage>, last: Checkpoint, file_size: u64 },
}

/// One file's end, in the order files ended.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOutcome {
    pub source: usize,
    pub file: usize,
    pub end: FileEnd,
    /// Valid Event records read (Python `EventFileReader.records`).
    pub events: u64,
}

/// How the values of a per-value tag on the fast path are decided (Python
/// `TagAction.keep` and `TagAction.window`, in the order `_Pass.slow` applies them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerValue {
    /// The ordinal the tag's next value in this source has.
    pub next: u64,
    /// The ordinals kept, ascending (those below `next` may be left out); None keeps all.
    pub keep: Option<Vec<u64>>,
    /// Steps kept: `start <= step < stop`, None unbounded.
    pub steps: (Option<i64>, Option<i64>),
    /// Wall times kept: `start <= wall_time < stop`, None unbounded (NaN only if both are).
    pub wall_times: (Option<f64>, Option<f64>),
}

/// What became of a per-value tag's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Kept,
    Thinned,
    Cropped,
}

/// A [`PerValue`] rule in use: where its `keep` list has been read to, and the values
/// counted since the host last heard of them.
#[derive(Debug)]
struct Rule {
    spec: PerValue,
    cursor: usize,
    counted: u64,
}

impl Rule {
    /// The fate of the tag's next value (at `step`, `wall_time`), counting it.
    fn decide(&mut self, step: i64, wall_time: f64) -> Fate {
        if let Some(keep) = &self.spec.keep {
            let ordinal = self.spec.next;
            self.spec.next += 1;
            self.counted += 1;
            while self.cursor < keep.len() && keep[self.cursor] < ordinal {
                self.cursor += 1;
            }
            if keep.get(self.cursor) != Some(&ordinal) {
                return Fate::Thinned;
            }
        }
        let (lo, hi) = self.spec.steps;
        if lo.is_some_and(|lo| step < lo) || hi.is_some_and(|hi| step >= hi) {
            return Fate::Cropped;
        }
        let (start, stop) = self.spec.wall_times;
        if start.is_some_and(|s| !(wall_time >= s)) || stop.is_some_and(|s| !(wall_time < s)) {
            return Fate::Cropped;
        }
        Fate::Kept
    }
}

/// A tag on the fast path: its new name (None: unchanged) and its per-value rule, if any.
#[derive(Debug)]
struct FastTag {
    new: Option<Vec<u8>>,
    rule: Option<Rule>,
}

/// What the host did with a record off the fast path.
#[derive(Debug, Default)]
pub struct Slow {
    /// The record to write, if any.
    pub data: Option<Vec<u8>>,
    /// Source tags whose later one-value records are passed through (None) or retagged.
    pub fast: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Per-value tags put on the fast path: tag, new tag (None: unchanged), rule.
    pub per_value: Vec<(Vec<u8>, Option<Vec<u8>>, PerValue)>,
    /// Per-value tags of this source already on the fast path whose values the host
    /// counted: tag, the ordinal of its next value.
    pub ordinals: Vec<(Vec<u8>, u64)>,
    /// The output's descriptor, if the host opened the output for this record.
    pub fd: Option<RawFd>,
}

/// The Python side of the pass.
pub trait Host {
    type Error;
    /// The next extra event `(wall_time, serialized Event)`, in the plan's order.
    fn next_extra(&mut self) -> Result<Option<(f64, Vec<u8>)>, Self::Error>;
    /// Decide a record off the fast path. `extras_done` extra events were written before it;
    /// `counted` are this source's per-value tags whose values were counted on the fast
    /// path since the last call, with how many.
    fn slow(
        &mut self,
        source: usize,
        data: &[u8],
        offset: u64,
        extras_done: u64,
        counted: Vec<(Vec<u8>, u64)>,
    ) -> Result<Slow, Self::Error>;
}

/// Why a pass failed.
#[derive(Debug)]
pub enum Error<E> {
    /// Reading `path` (an input) or writing the output (`path` None) failed.
    Io(io::Error, Option<PathBuf>),
    /// The host raised.
    Host(E),
}

/// The totals of a pass.
#[derive(Debug, Default)]
pub struct Outcome {
    pub files: Vec<FileOutcome>,
    /// Values retagged on the fast path.
    pub renamed: u64,
    /// Values of per-value tags left out on the fast path: not a kept ordinal.
    pub thinned: u64,
    /// Values of per-value tags left out on the fast path: outside the window.
    pub cropped: u64,
    /// Records written (by this pass: not the header the host wrote when opening).
    pub records: u64,
    /// Bytes written, frames included.
    pub bytes: u64,
}

/// A file read as Python `EventFileReader` reads it.
struct Reader {
    reader: RecordReader<FileSource>,
    resync: bool,
    check: bool,
    invalid: Vec<Damage>,
    skipped: u64,
}

impl Reader {
    /// Copy the next valid Event record into `buf`; its offset and peek, or None at the end.
    fn next(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<(u64, Option<Peek>)>> {
        loop {
            let frames = self.reader.records;
            let Some((offset, data)) = self.reader.next_record()? else {
                return Ok(None);
            };
            let peeked = wire::peek(data);
            if peeked.is_none() || self.check {
                if let Err(e) = validate_event(data) {
                    let before = frames - self.skipped;
                    self.invalid.push(invalid_event(offset, data.len(), before, e, self.resync));
                    if !self.resync {
                        self.reader.retract();
                        return Ok(None);
                    }
                    self.skipped += 1;
                    continue;
                }
            }
            buf.clear();
            buf.extend_from_slice(data);
            return Ok(Some((offset, peeked)));
        }
    }

    fn events(&self) -> u64 {
        self.reader.records - self.skipped
    }

    fn finish(mut self) -> FileEnd {
        let mut damage = std::mem::take(&mut self.reader.damage);
        damage.append(&mut self.invalid);
        damage.sort_by_key(|d| d.offset);
        let size = self.reader.src.stamp().map_or(0, |s| s.size);
        FileEnd::Finished { damage, last: self.reader.checkpoint(), file_size: size }
    }
}

/// One input stream: a source's files in order, or the extra events.
struct Stream {
    files: Vec<FilePlan>,
    file: usize,
    reader: Option<Reader>,
    verified: usize,
    /// The head record: its bytes, offset, peek and wall_time.
    data: Vec<u8>,
    offset: u64,
    peek: Option<Peek>,
    wall_time: f64,
    /// Tag bytes -> what one-value records of the tag on the fast path become.
    fast: HashMap<Vec<u8>, FastTag>,
    /// Per-value tags whose `counted` is not zero.
    counted: Vec<Vec<u8>>,
}

impl Stream {
    fn new(files: Vec<FilePlan>) -> Self {
        Stream {
            files,
            file: 0,
            reader: None,
            verified: 0,
            data: Vec::new(),
            offset: 0,
            peek: None,
            wall_time: 0.0,
            fast: HashMap::new(),
            counted: Vec::new(),
        }
    }

    /// Read the next record into the head; false when the stream is exhausted.
    fn advance<E>(&mut self, source: usize, out: &mut Outcome) -> Result<bool, Error<E>> {
        loop {
            if self.reader.is_none() {
                let Some(plan) = self.files.get(self.file) else {
                    return Ok(false);
                };
                let src = tf_record::open(&plan.path, Some(plan.limit)).map_err(|e| Error::Io(e, Some(plan.path.clone())))?;
                let reader = RecordReader::new(src, plan.resync);
                self.reader = Some(Reader { reader, resync: plan.resync, check: plan.check, invalid: Vec::new(), skipped: 0 });
                self.verified = 0;
            }
            let reader = self.reader.as_mut().unwrap();
            let next = reader.next(&mut self.data).map_err(|e| Error::Io(e, Some(self.files[self.file].path.clone())))?;
            match next {
                Some((offset, peek)) => {
                    self.offset = offset;
                    self.peek = peek;
                    self.wall_time = match &peek {
                        Some(p) => p.wall_time,
                        None => event_info(&self.data).wall_time,
                    };
                    return Ok(true);
                }
                None => {
                    let reader = self.reader.take().unwrap();
                    let events = reader.events();
                    out.files.push(FileOutcome { source, file: self.file, end: reader.finish(), events });
                    self.file += 1;
                }
            }
        }
    }

    /// The per-value tags counted on the fast path since the last call, with how many; resets them.
    fn take_counted(&mut self) -> Vec<(Vec<u8>, u64)> {
        let mut taken = Vec::with_capacity(self.counted.len());
        for tag in self.counted.drain(..) {
            if let Some(rule) = self.fast.get_mut(&tag).and_then(|f| f.rule.as_mut()) {
                taken.push((tag, std::mem::take(&mut rule.counted)));
            }
        }
        taken
    }

    /// Take the host's word on the fast path: new fast tags, per-value rules, ordinals.
    fn apply(&mut self, slow: Slow) -> Option<Vec<u8>> {
        for (tag, new) in slow.fast {
            self.fast.insert(tag, FastTag { new, rule: None });
        }
        for (tag, new, spec) in slow.per_value {
            self.fast.insert(tag, FastTag { new, rule: Some(Rule { spec, cursor: 0, counted: 0 }) });
        }
        for (tag, next) in slow.ordinals {
            if let Some(rule) = self.fast.get_mut(&tag).and_then(|f| f.rule.as_mut()) {
                rule.spec.next = next;
            }
        }
        slow.data
    }

    /// After the head was used: compare the next periodic checkpoint, if one was taken,
    /// with the first pass's; on a difference the file ends there.
    fn verify(&mut self, source: usize, out: &mut Outcome) {
        let Some(reader) = &self.reader else { return };
        let periodic = &reader.reader.checkpoints;
        if periodic.len() <= self.verified {
            return;
        }
        let expected = &self.files[self.file].expected;
        if self.verified < expected.len() && periodic[self.verified] == expected[self.verified] {
            self.verified += 1;
            return;
        }
        let events = reader.events();
        out.files.push(FileOutcome { source, file: self.file, end: FileEnd::Changed { verified: self.verified }, events });
        self.reader = None;
        self.file += 1;
    }
}

/// The output file: frames written through a 1 MiB buffer to a descriptor the host owns.
struct Output {
    file: Option<ManuallyDrop<File>>,
    buf: Vec<u8>,
    records: u64,
    bytes: u64,
}

const BUFFER: usize = 1 << 20;
const DIRECT: usize = 1 << 16;

impl Output {
    fn set_fd(&mut self, fd: RawFd) {
        // SAFETY: the host keeps `fd` open for the whole pass and closes it itself; the
        // ManuallyDrop never closes it.
        self.file = Some(ManuallyDrop::new(unsafe { File::from_raw_fd(fd) }));
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let n = data.len();
        let header = (n as u64).to_le_bytes();
        let frame_head = [&header[..], &masked_crc32c(&header).to_le_bytes()].concat();
        let footer = masked_crc32c(data).to_le_bytes();
        if n >= DIRECT {
            self.flush()?;
            let file = self.file.as_mut().expect("output open");
            file.write_all(&frame_head)?;
            file.write_all(data)?;
            file.write_all(&footer)?;
        } else {
            self.buf.extend_from_slice(&frame_head);
            self.buf.extend_from_slice(data);
            self.buf.extend_from_slice(&footer);
            if self.buf.len() >= BUFFER {
                self.flush()?;
            }
        }
        self.records += 1;
        self.bytes += n as u64 + 16;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.as_mut().expect("output open").write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// CPython `heapq`'s order on `[(wall_time, index, seq, ...), index, next]` entries:
/// the first elements that differ by `==` decide by `<`.
fn less(streams: &[Stream], a: usize, b: usize) -> bool {
    let (x, y) = (streams[a].wall_time, streams[b].wall_time);
    #[allow(clippy::float_cmp)]
    if x == y {
        a < b
    } else {
        x < y
    }
}

/// CPython `heapq._siftdown`.
fn sift_down(h: &mut [usize], streams: &[Stream], start: usize, mut pos: usize) {
    let item = h[pos];
    while pos > start {
        let parent = (pos - 1) >> 1;
        if less(streams, item, h[parent]) {
            h[pos] = h[parent];
            pos = parent;
            continue;
        }
        break;
    }
    h[pos] = item;
}

/// CPython `heapq._siftup`.
fn sift_up(h: &mut [usize], streams: &[Stream], mut pos: usize) {
    let end = h.len();
    let start = pos;
    let item = h[pos];
    let mut child = 2 * pos + 1;
    while child < end {
        let right = child + 1;
        if right < end && !less(streams, h[child], h[right]) {
            child = right;
        }
        h[pos] = h[child];
        pos = child;
        child = 2 * pos + 1;
    }
    h[pos] = item;
    sift_down(h, streams, start, pos);
}

/// Run the pass. `sources[i]` are source `i`'s files; `extras` whether the host has extra
/// events; `fd` the output's descriptor if it is open already (`Header.OWN`).
pub fn rewrite<H: Host>(sources: Vec<Vec<FilePlan>>, extras: bool, fd: Option<RawFd>, host: &mut H) -> Result<Outcome, Error<H::Error>> {
    let n = sources.len();
    let mut streams: Vec<Stream> = sources.into_iter().map(Stream::new).collect();
    streams.push(Stream::new(Vec::new()));
    let mut out = Outcome::default();
    let mut output = Output { file: None, buf: Vec::new(), records: 0, bytes: 0 };
    if let Some(fd) = fd {
        output.set_fd(fd);
    }
    let mut extras_done = 0u64;
    let advance = |s: usize, streams: &mut [Stream], out: &mut Outcome, host: &mut H| -> Result<bool, Error<H::Error>> {
        if s < n {
            return streams[s].advance(s, out);
        }
        if !extras {
            return Ok(false);
        }
        match host.next_extra().map_err(Error::Host)? {
            Some((wall_time, data)) => {
                streams[s].wall_time = wall_time;
                streams[s].data = data;
                Ok(true)
            }
            None => Ok(false),
        }
    };
    // heapq.merge: prime every stream in order, heapify, pop the least until one is left.
    let mut heap: Vec<usize> = Vec::new();
    for s in 0..=n {
        if advance(s, &mut streams, &mut out, host)? {
            heap.push(s);
        }
    }
    for i in (0..heap.len() / 2).rev() {
        sift_up(&mut heap, &streams, i);
    }
    while let Some(&s) = heap.first() {
        if s == n {
            output.write(&streams[s].data).map_err(|e| Error::Io(e, None))?;
            extras_done += 1;
        } else {
            let stream = &mut streams[s];
            let mut done = false;
            if let (Some(p), Some(_)) = (&stream.peek, &output.file) {
                let Stream { data, fast, counted, .. } = stream;
                let tag = &data[p.tag.0..p.tag.1];
                if let Some(f) = fast.get_mut(tag) {
                    // A retag splices the tag's first occurrence: the rest must not hold it.
                    if f.new.is_none() || memmem::find(&data[p.rest_at..], tag).is_none() {
                        let fate = match &mut f.rule {
                            None => Fate::Kept,
                            Some(rule) => {
                                let fate = rule.decide(p.step, p.wall_time);
                                if rule.counted == 1 {
                                    counted.push(tag.to_vec());
                                }
                                fate
                            }
                        };
                        match (fate, &f.new) {
                            (Fate::Kept, None) => output.write(data).map_err(|e| Error::Io(e, None))?,
                            (Fate::Kept, Some(new)) => {
                                output.write(&wire::retag(data, p, new)).map_err(|e| Error::Io(e, None))?;
                                out.renamed += 1;
                            }
                            (Fate::Thinned, _) => out.thinned += 1,
                            (Fate::Cropped, _) => out.cropped += 1,
                        }
                        done = true;
                    }
                }
            }
            if !done {
                let counted = stream.take_counted();
                let slow = host.slow(s, &stream.data, stream.offset, extras_done, counted).map_err(Error::Host)?;
                if let Some(fd) = slow.fd {
                    output.flush().map_err(|e| Error::Io(e, None))?;
                    output.set_fd(fd);
                }
                if let Some(data) = stream.apply(slow) {
                    output.write(&data).map_err(|e| Error::Io(e, None))?;
                }
            }
            stream.verify(s, &mut out);
        }
        if advance(s, &mut streams, &mut out, host)? {
            sift_up(&mut heap, &streams, 0);
        } else {
            let last = heap.pop().unwrap();
            if !heap.is_empty() {
                heap[0] = last;
                sift_up(&mut heap, &streams, 0);
            }
        }
    }
    output.flush().map_err(|e| Error::Io(e, None))?;
    out.records = output.records;
    out.bytes = output.bytes;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tf_record::encode_record;

    /// Event{wall_time, step, summary{value{tag, simple_value}}}, the peek's shape.
    fn scalar(wall_time: f64, step: u8, tag: &[u8]) -> Vec<u8> {
        let mut value = vec![0x0a, tag.len() as u8];
        value.extend_from_slice(tag);
        value.extend_from_slice(&[0x15, 0, 0, 0x80, 0x3f]);
        let mut e = vec![0x09];
        e.extend_from_slice(&wall_time.to_le_bytes());
        e.extend_from_slice(&[0x10, step, 0x2a, value.len() as u8 + 2, 0x0a, value.len() as u8]);
        e.extend(value);
        e
    }

    fn write_file(dir: &std::path::Path, name: &str, records: &[Vec<u8>]) -> FilePlan {
        let mut data = Vec::new();
        for r in records {
            encode_record(r, &mut data);
        }
        let path = dir.join(name);
        std::fs::write(&path, &data).unwrap();
        FilePlan { path, limit: data.len() as u64, resync: false, check: false, expected: Vec::new() }
    }

    /// Sends every record to `slow` and writes it as is; marks tags as `fast` wants.
    #[derive(Default)]
    struct Recorder {
        seen: Vec<(usize, f64, u8)>,
        fast: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        per_value: Vec<(Vec<u8>, Option<Vec<u8>>, PerValue)>,
        counted: Vec<(Vec<u8>, u64)>,
        fd: Option<RawFd>,
    }

    impl Host for Recorder {
        type Error = ();
        fn next_extra(&mut self) -> Result<Option<(f64, Vec<u8>)>, ()> {
            Ok(None)
        }
        fn slow(&mut self, source: usize, data: &[u8], _offset: u64, _extras: u64, counted: Vec<(Vec<u8>, u64)>) -> Result<Slow, ()> {
            let p = wire::peek(data).unwrap();
            self.seen.push((source, p.wall_time, p.step as u8));
            self.counted.extend(counted);
            Ok(Slow {
                data: Some(data.to_vec()),
                fast: std::mem::take(&mut self.fast),
                per_value: std::mem::take(&mut self.per_value),
                fd: self.fd.take(),
                ..Slow::default()
            })
        }
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tbrewrite-rewrite-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The merge order is CPython heapq.merge's on (wall_time, source, seq), NaN and
    /// signed zeros included: `[(2, 1), (0, 1), (2, 2), (0, 2), (2, 3), (0, 3), (0, 4),
    /// (1, 1), (1, 2), (1, 3)]` as printed by Python for these three streams, each NaN a
    /// float object of its own as the engine's are (an identical object would compare
    /// equal in a tuple).
    #[test]
    fn merge_order_is_heapq_merge() {
        let dir = tempdir("order");
        let nan = f64::NAN;
        let a = write_file(&dir, "a", &[scalar(1.0, 1, b"a"), scalar(nan, 2, b"a"), scalar(2.0, 3, b"a"), scalar(2.0, 4, b"a")]);
        let b = write_file(&dir, "b", &[scalar(2.0, 1, b"b"), scalar(0.5, 2, b"b"), scalar(-0.0, 3, b"b")]);
        let c = write_file(&dir, "c", &[scalar(0.0, 1, b"c"), scalar(nan, 2, b"c"), scalar(1.0, 3, b"c")]);
        let out = std::fs::File::create(dir.join("out")).unwrap();
        let mut host = Recorder::default();
        use std::os::fd::AsRawFd;
        rewrite(vec![vec![a], vec![b], vec![c]], false, Some(out.as_raw_fd()), &mut host).unwrap();
        let order: Vec<(usize, u8)> = host.seen.iter().map(|&(s, _, step)| (s, step)).collect();
        assert_eq!(order, vec![(2, 1), (0, 1), (2, 2), (0, 2), (2, 3), (0, 3), (0, 4), (1, 1), (1, 2), (1, 3)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// After the host puts a tag on the fast path, its records are copied or retagged
    /// without the host; a record whose rest holds the tag's bytes still goes to the host.
    #[test]
    fn fast_path_copies_and_retags() {
        let dir = tempdir("fast");
        let records = vec![scalar(1.0, 1, b"loss"), scalar(2.0, 2, b"loss"), scalar(3.0, 3, b"loss")];
        let f = write_file(&dir, "in", &records);
        let out = std::fs::File::create(dir.join("out")).unwrap();
        use std::os::fd::AsRawFd;
        let mut host = Recorder { fast: vec![(b"loss".to_vec(), Some(b"train/loss".to_vec()))], ..Recorder::default() };
        let done = rewrite(vec![vec![f]], false, Some(out.as_raw_fd()), &mut host).unwrap();
        assert_eq!(host.seen.len(), 1);
        assert_eq!((done.renamed, done.records), (2, 3));
        let written = std::fs::read(dir.join("out")).unwrap();
        let mut expect = Vec::new();
        encode_record(&records[0], &mut expect);
        for r in &records[1..] {
            encode_record(&wire::retag(r, &wire::peek(r).unwrap(), b"train/loss"), &mut expect);
        }
        assert_eq!(written, expect);
        assert_eq!(done.bytes, expect.len() as u64);
        match &done.files[0].end {
            FileEnd::Finished { damage, last, .. } => {
                assert!(damage.is_empty());
                assert_eq!(last.records, 3);
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A per-value tag on the fast path is thinned by ordinal, then cropped by step and
    /// wall_time, as `_Pass.slow` does; the next call to the host hears what was counted.
    #[test]
    fn per_value_tags_are_thinned_and_cropped() {
        let dir = tempdir("per-value");
        let mut records: Vec<Vec<u8>> = (0..10).map(|i| scalar(i as f64, i, b"x")).collect();
        records.push(scalar(10.0, 10, b"y"));
        let f = write_file(&dir, "in", &records);
        let out = std::fs::File::create(dir.join("out")).unwrap();
        use std::os::fd::AsRawFd;
        let rule = PerValue { next: 1, keep: Some(vec![0, 3, 4, 8]), steps: (None, Some(8)), wall_times: (Some(1.0), None) };
        let mut host = Recorder { per_value: vec![(b"x".to_vec(), None, rule)], ..Recorder::default() };
        let done = rewrite(vec![vec![f]], false, Some(out.as_raw_fd()), &mut host).unwrap();
        let seen: Vec<u8> = host.seen.iter().map(|&(_, _, step)| step).collect();
        assert_eq!(seen, vec![0, 10]);
        assert_eq!((done.thinned, done.cropped, done.records), (6, 1, 4));
        assert_eq!(host.counted, vec![(b"x".to_vec(), 9)]);
        let mut expect = Vec::new();
        for i in [0, 3, 4, 10] {
            encode_record(&records[i], &mut expect);
        }
        assert_eq!(std::fs::read(dir.join("out")).unwrap(), expect);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A periodic checkpoint that differs from the first pass's ends the file there.
    #[test]
    fn a_differing_checkpoint_stops_the_file() {
        let dir = tempdir("changed");
        let n = tf_record::CHECKPOINT_RECORDS as usize + 5;
        let records: Vec<Vec<u8>> = (0..n).map(|i| scalar(i as f64, (i % 100) as u8, b"x")).collect();
        let mut f = write_file(&dir, "in", &records);
        f.expected = vec![Checkpoint { records: tf_record::CHECKPOINT_RECORDS, end: 1, digest: 2 }];
        let out = std::fs::File::create(dir.join("out")).unwrap();
        use std::os::fd::AsRawFd;
        let mut host = Recorder { fast: vec![(b"x".to_vec(), None)], ..Recorder::default() };
        let done = rewrite(vec![vec![f]], false, Some(out.as_raw_fd()), &mut host).unwrap();
        assert_eq!(done.files[0].end, FileEnd::Changed { verified: 0 });
        assert_eq!(done.files[0].events, tf_record::CHECKPOINT_RECORDS);
        assert_eq!(done.records, tf_record::CHECKPOINT_RECORDS);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
