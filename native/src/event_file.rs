//! Event files: records that must decode as `tensorboard.Event`, and the per-file scan that
//! returns columns (offsets, lengths, wall_times, steps, first tags...) plus damage, the
//! way Python `tbrewrite.events.reader.EventFileReader` reads a file.
//!
//! A record whose checksums hold but whose bytes are not an `Event` (by upb's rules, see
//! [`crate::proto`]) stops the file (`invalid_event`; `not_an_event_file` at offset 0),
//! or with resync is skipped, reading going on at the very next record. As in Python, the
//! framing layer's `records_before` counts every record whose checksums hold (invalid
//! events included), while an `invalid_event`'s counts only the valid events before it.

use std::collections::HashMap;
use std::io;

use crate::proto::{event_info, validate_event};
use crate::tf_record::{Checkpoint, Damage, DamageKind, FileStamp, RecordReader, Source, FOOTER_LENGTH, HEADER_LENGTH};
use crate::wire;

/// `flags` bits of one record.
pub mod flags {
    /// The record has the common shape (`wire::peek` succeeded): its tag, step and
    /// wall_time columns are the peek's.
    pub const PEEKED: u8 = 1;
    /// The first summary value has `metadata` (protobuf decoding).
    pub const HAS_METADATA: u8 = 2;
    /// Peeked, and `wire::has_metadata` says False (Python scan's fast path).
    pub const WIRE_NO_METADATA: u8 = 4;
    /// The first summary value is a scalar by Python `scalar_value` (its value is in
    /// the `scalars` column).
    pub const SCALAR: u8 = 8;
}

/// No tag: the event is not a summary, or its summary has no value.
pub const NO_TAG: u32 = u32::MAX;

/// The columns of one scanned file: one row per valid `Event` record, in file order.
/// A [`Scanner`] fills them a batch at a time; [`scan`] in one go.
#[derive(Debug, Default)]
pub struct Scan {
    /// Bytes read: the file size when opened, at most the limit.
    pub size: u64,
    /// Records whose checksums hold (Python `RecordReader.records`): with resync, invalid
    /// events included; without, the invalid event that stops the file is retracted.
    pub frames: u64,
    /// Valid `Event` records (Python `EventFileReader.records`).
    pub records: u64,
    /// Damage, sorted by offset.
    pub damage: Vec<Damage>,
    /// Fingerprints every `CHECKPOINT_RECORDS` frames, then one of every frame read (Python
    /// `EventFileReader.checkpoints`: counts are frames, so with resync an invalid event
    /// skipped is in them; without, the invalid event that stops the file is not).
    pub checkpoints: Vec<Checkpoint>,
    /// The file as opened (None for a buffer).
    pub stamp: Option<FileStamp>,
    pub offsets: Vec<u64>,
    /// Data length of each record (the frame is 16 bytes longer).
    pub lengths: Vec<u64>,
    pub wall_times: Vec<f64>,
    pub steps: Vec<i64>,
    /// `Event.what` as a field number (3 file_version ... 9 meta_graph_def, 0 none).
    pub whats: Vec<u8>,
    /// Number of summary values.
    pub values: Vec<u32>,
    /// The first value's `value` oneof as a field number (2 simple_value, 8 tensor...).
    pub value_kinds: Vec<u8>,
    /// Index into `tags` of the first value's tag, or [`NO_TAG`].
    pub tag_ids: Vec<u32>,
    pub flags: Vec<u8>,
    /// The first value's scalar (NaN unless `flags::SCALAR`).
    pub scalars: Vec<f64>,
    /// For peeked records, wire offsets for retagging (else 0).
    pub summary_at: Vec<u32>,
    pub rest_at: Vec<u32>,
    /// The second and later values of summaries with several, one row each, in file
    /// order: the row (index into the columns above) of their record, their tag, `value`
    /// oneof and flags (only `flags::HAS_METADATA`).
    pub more_rows: Vec<u32>,
    pub more_tag_ids: Vec<u32>,
    pub more_kinds: Vec<u8>,
    pub more_flags: Vec<u8>,
    /// For each tag, when it first appears on a value with `metadata` in the file: (tag id,
    /// that `SummaryMetadata` serialized), in the order they are found.
    pub metadata: Vec<(u32, Vec<u8>)>,
    /// Distinct tags of summary values in order of first appearance.
    pub tags: Vec<Vec<u8>>,
    tag_index: HashMap<Vec<u8>, u32>,
    recent: [u32; 2],
    /// Per tag id: its metadata is in `metadata` (or was handed out with an earlier batch).
    has_meta: Vec<bool>,
}

impl Scan {
    fn tag_id(&mut self, tag: &[u8]) -> u32 {
        // Logs interleave a few tags: try the last two before hashing.
        for &id in self.recent.iter() {
            if (id as usize) < self.tags.len() && self.tags[id as usize] == tag {
                return id;
            }
        }
        let id = self.lookup(tag);
        self.recent = [id, self.recent[0]];
        id
    }

    fn lookup(&mut self, tag: &[u8]) -> u32 {
        if let Some(&id) = self.tag_index.get(tag) {
            return id;
        }
        let id = self.tags.len() as u32;
        self.tags.push(tag.to_vec());
        self.tag_index.insert(tag.to_vec(), id);
        self.has_meta.push(false);
        id
    }

    /// Keep the metadata of the value in `data[s..e]` if it is its tag's first.
    fn metadata_of(&mut self, id: u32, data: &[u8], (s, e): (usize, usize)) {
        if !self.has_meta[id as usize] {
            self.has_meta[id as usize] = true;
            self.metadata.push((id, crate::proto::value_metadata(data, s, e)));
        }
    }

    /// Empty the per-record columns (and `more_*`, `metadata`), keeping the tag table:
    /// the next batch's rows start at 0.
    pub fn clear_rows(&mut self) {
        self.offsets.clear();
        self.lengths.clear();
        self.wall_times.clear();
        self.steps.clear();
        self.whats.clear();
        self.values.clear();
        self.value_kinds.clear();
        self.tag_ids.clear();
        self.flags.clear();
        self.scalars.clear();
        self.summary_at.clear();
        self.rest_at.clear();
        self.more_rows.clear();
        self.more_tag_ids.clear();
        self.more_kinds.clear();
        self.more_flags.clear();
        self.metadata.clear();
    }
}

/// A scan that can stop after any number of records and go on (Python reads a large file
/// in batches, so its memory stays flat).
pub struct Scanner<S: Source> {
    reader: RecordReader<S>,
    resync: bool,
    invalid: Vec<Damage>,
    done: bool,
    /// The columns of the records read since the caller last cleared them, and once
    /// [`Self::done`], the file's totals.
    pub out: Scan,
}

impl<S: Source> Scanner<S> {
    pub fn new(src: S, resync: bool) -> Self {
        let out = Scan { size: src.size(), stamp: src.stamp(), ..Scan::default() };
        Scanner { reader: RecordReader::new(src, resync), resync, invalid: Vec::new(), done: false, out }
    }

    /// Whether the whole file has been read (the totals in `out` are then final).
    pub fn done(&self) -> bool {
        self.done
    }

    /// Read up to `max` more valid Event records into `out`'s columns.
    pub fn step(&mut self, max: usize) -> io::Result<()> {
        let mut rows = 0;
        while !self.done && rows < max {
            let frames = self.reader.records;
            let Some((offset, data)) = self.reader.next_record()? else {
                self.finish();
                break;
            };
            if let Err(e) = validate_event(data) {
                let records_before = frames - self.invalid.len() as u64;
                self.invalid.push(invalid_event(offset, data.len(), records_before, e, self.resync));
                if !self.resync {
                    self.reader.retract();
                    self.finish();
                    break;
                }
                continue;
            }
            row(&mut self.out, offset, data);
            rows += 1;
        }
        Ok(())
    }

    fn finish(&mut self) {
        let (reader, out) = (&mut self.reader, &mut self.out);
        self.done = true;
        out.checkpoints = std::mem::take(&mut reader.checkpoints);
        out.checkpoints.push(reader.checkpoint());
        out.frames = reader.records;
        // Without resync the invalid event that stopped the file was retracted already.
        out.records = if self.resync { reader.records - self.invalid.len() as u64 } else { reader.records };
        out.damage = std::mem::take(&mut reader.damage);
        out.damage.append(&mut self.invalid);
        out.damage.sort_by_key(|d| d.offset);
    }
}

/// Append the row of one valid Event record.
fn row(out: &mut Scan, offset: u64, data: &[u8]) {
    let info = event_info(data);
    let peeked = wire::peek(data);
    let mut flag = 0u8;
    let (wall_time, step, tag, summary_at, rest_at) = match &peeked {
        Some(p) => {
            flag |= flags::PEEKED;
            if wire::has_metadata(data, p) == Some(false) {
                flag |= flags::WIRE_NO_METADATA;
            }
            let tag = &data[p.tag.0..p.tag.1];
            (p.wall_time, p.step, Some(tag), p.summary_at as u32, p.rest_at as u32)
        }
        None => {
            let tag = if info.values > 0 { Some(info.tag) } else { None };
            (info.wall_time, info.step, tag, 0, 0)
        }
    };
    if info.has_metadata {
        flag |= flags::HAS_METADATA;
    }
    let scalar = if info.values > 0 { crate::scalar::first_value_scalar(data, &info) } else { None };
    if scalar.is_some() {
        flag |= flags::SCALAR;
    }
    let tag_id = match tag {
        Some(t) => out.tag_id(t),
        None => NO_TAG,
    };
    let row = out.offsets.len() as u32;
    if info.has_metadata && tag_id != NO_TAG {
        out.metadata_of(tag_id, data, info.value_range);
    }
    if info.values > 1 {
        let ranges = crate::proto::summary_values(data).unwrap_or_default();
        debug_assert_eq!(ranges.len(), info.values as usize);
        for &(s, e) in ranges.iter().skip(1) {
            let v = crate::proto::value_info(data, s, e);
            let id = out.tag_id(v.tag);
            out.more_rows.push(row);
            out.more_tag_ids.push(id);
            out.more_kinds.push(v.value_kind);
            out.more_flags.push(if v.has_metadata { flags::HAS_METADATA } else { 0 });
            if v.has_metadata {
                out.metadata_of(id, data, (s, e));
            }
        }
    }
    out.offsets.push(offset);
    out.lengths.push(data.len() as u64);
    out.wall_times.push(wall_time);
    out.steps.push(step);
    out.whats.push(info.what);
    out.values.push(info.values);
    out.value_kinds.push(info.value_kind);
    out.tag_ids.push(tag_id);
    out.flags.push(flag);
    out.scalars.push(scalar.unwrap_or(f64::NAN));
    out.summary_at.push(summary_at);
    out.rest_at.push(rest_at);
}

/// Read every record of `src` and return its [`Scan`].
pub fn scan<S: Source>(src: S, resync: bool) -> io::Result<Scan> {
    let mut scanner = Scanner::new(src, resync);
    while !scanner.done() {
        scanner.step(usize::MAX)?;
    }
    Ok(scanner.out)
}

/// The scalars of one run, as Python `commands.export.iter_scalars` reads them: every
/// value of every summary event of the files in order, whose tag's plugin (the
/// `plugin_name` of the tag's first value in the run, `""` if that value has no metadata)
/// is `""` or `"scalars"` and whose value is a scalar by `scalar_number` (its `DataType`
/// code in `dtypes`).
#[derive(Debug, Default)]
pub struct Scalars {
    pub tags: Vec<Vec<u8>>,
    tag_index: HashMap<Vec<u8>, u32>,
    plugin_ok: Vec<bool>,
    pub files: Vec<u32>,
    pub tag_ids: Vec<u32>,
    pub steps: Vec<i64>,
    pub wall_times: Vec<f64>,
    pub values: Vec<f64>,
    pub dtypes: Vec<u8>,
    /// Per file: its damage (as [`scan`] reports it).
    pub damage: Vec<Vec<Damage>>,
    recent: [u32; 2],
    /// Per tag: the `plugin_name` of its first value (empty without metadata).
    pub plugins: Vec<Vec<u8>>,
    /// Whether to list the records holding anything but scalars in `others`.
    pub collect_others: bool,
    /// The valid records that are not summaries of scalars only (with `collect_others`):
    /// every non-summary event but the file version, and every summary with a value that
    /// is not a scalar of the scalars plugin, for `tbrewrite.frames` to decode.
    pub others: Vec<Other>,
    /// Data bytes of the records in `others`: a batch ends once they reach [`OTHERS_BYTES`].
    pub others_bytes: u64,
}

/// The record bytes listed in [`Scalars::others`] at which a batch ends, so that the caller,
/// who reads and decodes them, holds a bounded amount at a time.
pub const OTHERS_BYTES: u64 = 16 << 20;

impl Scalars {
    /// A reader that also lists the records holding anything but scalars (`others`).
    pub fn with_others(collect_others: bool) -> Self {
        Scalars { collect_others, ..Scalars::default() }
    }

    /// Whether the records listed in `others` reached [`OTHERS_BYTES`] (the batch ends).
    pub fn others_full(&self) -> bool {
        self.others_bytes >= OTHERS_BYTES
    }
}

/// A record [`Scalars`] leaves to the caller: where it is and what its first value is.
#[derive(Debug, Clone, PartialEq)]
pub struct Other {
    pub file: u32,
    /// Byte offset of the record's frame in its file.
    pub offset: u64,
    /// Length of its data (the frame is 16 bytes longer).
    pub length: u64,
    /// `Event.what` as a field number.
    pub what: u8,
    /// Number of summary values.
    pub values: u32,
    /// The first value's `value` oneof as a field number (0 if none).
    pub kind: u8,
    /// The first value's tag id, or [`NO_TAG`].
    pub tag_id: u32,
    pub step: i64,
}

/// One file of a run being read by [`Scalars::read_some`], which can stop after any
/// number of rows and go on.
pub struct ScalarFile<S: Source> {
    reader: RecordReader<S>,
    invalid: Vec<Damage>,
    resync: bool,
    done: bool,
}

impl<S: Source> ScalarFile<S> {
    pub fn new(src: S, resync: bool) -> Self {
        ScalarFile { reader: RecordReader::new(src, resync), invalid: Vec::new(), resync, done: false }
    }

    /// Whether the file has been read to its end (its damage is then in `Scalars::damage`).
    pub fn done(&self) -> bool {
        self.done
    }
}

impl Scalars {
    /// Read one more file of the run.
    pub fn read<S: Source>(&mut self, src: S, resync: bool) -> io::Result<()> {
        let mut file = ScalarFile::new(src, resync);
        self.read_some(&mut file, usize::MAX)
    }

    /// Read records of `f` (the run's next file) until at least `max_rows` more rows are
    /// in the columns or the file ends; at its end, push its damage.
    pub fn read_some<S: Source>(&mut self, f: &mut ScalarFile<S>, max_rows: usize) -> io::Result<()> {
        let file = self.damage.len() as u32;
        let start = self.values.len();
        while !f.done && self.values.len() - start < max_rows && !self.others_full() {
            let frames = f.reader.records;
            let Some((offset, data)) = f.reader.next_record()? else {
                f.done = true;
                break;
            };
            if let Err(e) = validate_event(data) {
                let records_before = frames - f.invalid.len() as u64;
                f.invalid.push(invalid_event(offset, data.len(), records_before, e, f.resync));
                if !f.resync {
                    f.done = true;
                    break;
                }
                continue;
            }
            let info = event_info(data);
            if info.values == 0 {
                // Not a summary (or one without values); the file version is no data.
                if self.collect_others && info.what != 0 && info.what != 3 && info.what != 5 {
                    let length = data.len() as u64;
                    self.others_bytes += data.len() as u64;
                    self.others.push(Other { file, offset, length, what: info.what, values: 0, kind: 0, tag_id: NO_TAG, step: info.step });
                }
                continue;
            }
            // One value (the common shape): its range is known; else find them all.
            let (one, many);
            let ranges: &[(usize, usize)] = if info.values == 1 {
                one = [info.value_range];
                &one
            } else {
                many = crate::proto::summary_values(data).unwrap_or_default();
                &many
            };
            let mut first_id = NO_TAG;
            let mut only_scalars = true;
            for &(s, e) in ranges {
                let v = crate::scalar::value(data, s, e);
                let id = self.tag_id(&v);
                if first_id == NO_TAG {
                    first_id = id;
                }
                if !self.plugin_ok[id as usize] || v.scalar.is_none() {
                    only_scalars = false;
                }
                if !self.plugin_ok[id as usize] {
                    continue;
                }
                if let Some(x) = v.scalar {
                    self.files.push(file);
                    self.tag_ids.push(id);
                    self.steps.push(info.step);
                    self.wall_times.push(info.wall_time);
                    self.values.push(x);
                    self.dtypes.push(v.dtype);
                }
            }
            if self.collect_others && !only_scalars {
                let (length, values, kind) = (data.len() as u64, info.values, info.value_kind);
                self.others_bytes += data.len() as u64;
                self.others.push(Other { file, offset, length, what: info.what, values, kind, tag_id: first_id, step: info.step });
            }
        }
        if f.done {
            let mut damage = std::mem::take(&mut f.reader.damage);
            damage.append(&mut f.invalid);
            damage.sort_by_key(|d| d.offset);
            self.damage.push(damage);
        }
        Ok(())
    }

    /// The id of `v`'s tag; a new tag's plugin is taken from `v` (its first value).
    fn tag_id(&mut self, v: &crate::scalar::Value<'_>) -> u32 {
        // Logs interleave a few tags: try the last two before hashing.
        for &id in self.recent.iter() {
            if (id as usize) < self.tags.len() && self.tags[id as usize] == v.tag {
                return id;
            }
        }
        let id = match self.tag_index.get(v.tag) {
            Some(&id) => id,
            None => {
                let id = self.tags.len() as u32;
                self.tags.push(v.tag.to_vec());
                self.tag_index.insert(v.tag.to_vec(), id);
                let plugin = if v.has_metadata { v.plugin_name } else { b"" };
                self.plugin_ok.push(plugin.is_empty() || plugin == b"scalars");
                self.plugins.push(plugin.to_vec());
                id
            }
        };
        self.recent = [id, self.recent[0]];
        id
    }

    /// Empty the row columns, keeping the tags and the damage: the next rows start at 0.
    pub fn clear_rows(&mut self) {
        self.files.clear();
        self.tag_ids.clear();
        self.steps.clear();
        self.wall_times.clear();
        self.values.clear();
        self.dtypes.clear();
        self.others.clear();
        self.others_bytes = 0;
    }
}

pub(crate) fn invalid_event(offset: u64, len: usize, records_before: u64, e: crate::proto::DecodeError, resync: bool) -> Damage {
    let kind = if offset == 0 { DamageKind::NotAnEventFile } else { DamageKind::InvalidEvent };
    let next = offset + HEADER_LENGTH + len as u64 + FOOTER_LENGTH;
    Damage {
        kind,
        offset,
        records_before,
        detail: format!("record is not an Event protobuf ({})", e.python_text()),
        resumed_at: if resync { Some(next) } else { None },
    }
}

/// One tag's values in a batch, in file order, and what they say (Python
/// `engine.scan._Group`; the batch's tags in order of first appearance).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub tag_id: u32,
    pub count: u64,
    pub first_step: i64,
    pub first_wall_time: f64,
    /// The first value's `value` oneof as a field number.
    pub first_form: u8,
    pub first_has_metadata: bool,
    pub last_step: i64,
    pub last_wall_time: f64,
    pub min_step: i64,
    pub max_step: i64,
    /// Values after the group's first whose step is not above the previous one's.
    pub backwards: u64,
    /// ... equal to it.
    pub repeated: u64,
    /// The `value` oneof of the group's first value with metadata, if any.
    pub metadata_form: Option<u8>,
    /// The first `limit` of those values: (position in the group, previous step, step).
    pub backwards_at: Vec<(u64, i64, i64)>,
}

/// A batch of [`Scan`] rows folded per tag: what `engine.scan` keeps of them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Fold {
    /// `Event.what` field numbers with their counts, in order of first appearance.
    pub whats: Vec<(u8, u64)>,
    /// The batch's first record's wall_time.
    pub first_wall_time: Option<f64>,
    pub groups: Vec<Group>,
}

/// Fold the rows of `scan` (one batch) per tag, keeping at most `limit` backwards values
/// per group (None: all).
pub fn fold(scan: &Scan, limit: Option<usize>) -> Fold {
    let mut out = Fold { first_wall_time: scan.wall_times.first().copied(), ..Fold::default() };
    let mut what_at: [usize; 256] = [usize::MAX; 256];
    for &w in &scan.whats {
        let slot = &mut what_at[w as usize];
        if *slot == usize::MAX {
            *slot = out.whats.len();
            out.whats.push((w, 0));
        }
        out.whats[*slot].1 += 1;
    }
    let mut group_of: HashMap<u32, usize> = HashMap::new();
    let mut recent: Option<(u32, usize)> = None;
    let mut more = 0usize;
    let mut observe = |out: &mut Fold, tag_id: u32, form: u8, meta: bool, step: i64, wall_time: f64| {
        let g = match recent {
            Some((id, g)) if id == tag_id => g,
            _ => {
                let g = *group_of.entry(tag_id).or_insert_with(|| {
                    out.groups.push(Group {
                        tag_id,
                        count: 0,
                        first_step: step,
                        first_wall_time: wall_time,
                        first_form: form,
                        first_has_metadata: meta,
                        last_step: step,
                        last_wall_time: wall_time,
                        min_step: step,
                        max_step: step,
                        backwards: 0,
                        repeated: 0,
                        metadata_form: None,
                        backwards_at: Vec::new(),
                    });
                    out.groups.len() - 1
                });
                recent = Some((tag_id, g));
                g
            }
        };
        let group = &mut out.groups[g];
        if group.count > 0 {
            if step <= group.last_step {
                group.backwards += 1;
                group.repeated += (step == group.last_step) as u64;
                if limit.is_none_or(|l| group.backwards_at.len() < l) {
                    group.backwards_at.push((group.count, group.last_step, step));
                }
            }
            group.min_step = group.min_step.min(step);
            group.max_step = group.max_step.max(step);
            group.last_step = step;
            group.last_wall_time = wall_time;
        }
        if meta && group.metadata_form.is_none() {
            group.metadata_form = Some(form);
        }
        group.count += 1;
    };
    for row in 0..scan.whats.len() {
        if scan.values[row] == 0 {
            continue;
        }
        let (step, wall_time) = (scan.steps[row], scan.wall_times[row]);
        let meta = scan.flags[row] & flags::HAS_METADATA != 0;
        observe(&mut out, scan.tag_ids[row], scan.value_kinds[row], meta, step, wall_time);
        while more < scan.more_rows.len() && scan.more_rows[more] as usize == row {
            let meta = scan.more_flags[more] & flags::HAS_METADATA != 0;
            observe(&mut out, scan.more_tag_ids[more], scan.more_kinds[more], meta, step, wall_time);
            more += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tf_record::{encode_record, SliceSource};

    fn ld(field: u32, body: &[u8]) -> Vec<u8> {
        let mut out = vec![(field << 3 | 2) as u8, body.len() as u8];
        out.extend_from_slice(body);
        out
    }

    /// A `Summary.Value` with a tag, a simple_value and optionally metadata naming `plugin`.
    fn value(tag: &str, plugin: Option<&str>) -> Vec<u8> {
        let mut v = ld(1, tag.as_bytes());
        v.extend_from_slice(&[0x15, 0, 0, 0x80, 0x3f]); // simple_value = 1.0
        if let Some(p) = plugin {
            v.extend(ld(9, &ld(1, &ld(1, p.as_bytes()))));
        }
        v
    }

    fn event(step: u8, values: &[Vec<u8>]) -> Vec<u8> {
        let mut e = vec![0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, step]; // wall_time 1.0, step
        let summary: Vec<u8> = values.iter().flat_map(|v| ld(1, v)).collect();
        e.extend(ld(5, &summary));
        e
    }

    fn file(events: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in events {
            encode_record(e, &mut out);
        }
        out
    }

    /// Several values per summary: the second and later go to the `more_*` columns; each
    /// tag's first metadata is kept once, with its payload.
    #[test]
    fn more_values_and_first_metadata() {
        let data = file(&[
            event(1, &[value("a", None)]),
            event(2, &[value("a", Some("scalars")), value("b", None), value("c", Some("text"))]),
            event(3, &[value("b", Some("x")), value("a", Some("y"))]),
        ]);
        let s = scan(SliceSource::new(&data), false).unwrap();
        assert_eq!(s.tags, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(s.values, vec![1, 3, 2]);
        assert_eq!(s.more_rows, vec![1, 1, 2]);
        assert_eq!(s.more_tag_ids, vec![1, 2, 0]);
        assert_eq!(s.more_kinds, vec![2, 2, 2]);
        assert_eq!(s.more_flags, vec![0, flags::HAS_METADATA, flags::HAS_METADATA]);
        let ids: Vec<u32> = s.metadata.iter().map(|m| m.0).collect();
        assert_eq!(ids, vec![0, 2, 1]);
        assert_eq!(s.metadata[0].1, ld(1, &ld(1, b"scalars")));
        assert_eq!(s.metadata[2].1, ld(1, &ld(1, b"x")));
    }

    /// A scan in batches of any size gives the rows, tags, metadata and totals of a whole
    /// scan, with or without resync, clean or damaged.
    #[test]
    fn batches_equal_a_whole_scan() {
        let mut events = Vec::new();
        for i in 0..40u8 {
            let tag = format!("t{}", i % 7);
            let mut values = vec![value(&tag, (i % 5 == 3).then_some("scalars"))];
            if i % 4 == 0 {
                values.push(value(&format!("u{}", i % 3), Some("p")));
            }
            events.push(event(i, &values));
        }
        let mut data = file(&events);
        for damage in [None, Some(300usize), Some(301)] {
            if let Some(at) = damage {
                data[at] ^= 0x10;
            }
            for resync in [false, true] {
                let whole = scan(SliceSource::new(&data), resync).unwrap();
                for batch in [1, 3, 1000] {
                    let mut scanner = Scanner::new(SliceSource::new(&data), resync);
                    let (mut steps, mut tag_ids, mut more, mut metadata) = (vec![], vec![], vec![], vec![]);
                    while !scanner.done() {
                        scanner.out.clear_rows();
                        scanner.step(batch).unwrap();
                        let base = steps.len() as u32;
                        assert!(scanner.out.steps.len() <= batch);
                        steps.extend_from_slice(&scanner.out.steps);
                        tag_ids.extend_from_slice(&scanner.out.tag_ids);
                        more.extend(scanner.out.more_rows.iter().map(|r| r + base));
                        metadata.extend(scanner.out.metadata.iter().cloned());
                    }
                    let s = &scanner.out;
                    assert_eq!((&steps, &tag_ids, &more, &metadata), (&whole.steps, &whole.tag_ids, &whole.more_rows, &whole.metadata));
                    assert_eq!((&s.tags, &s.damage, &s.checkpoints), (&whole.tags, &whole.damage, &whole.checkpoints));
                    assert_eq!((s.records, s.frames, s.size), (whole.records, whole.frames, whole.size));
                }
            }
        }
    }

    /// The export's reader in batches of rows reads what it reads in one go.
    #[test]
    fn scalar_batches_equal_one_read() {
        let events: Vec<Vec<u8>> = (0..30u8).map(|i| event(i, &[value("a", None), value("b", None)])).collect();
        let data = file(&events);
        let mut whole = Scalars::default();
        whole.read(SliceSource::new(&data), false).unwrap();
        let mut batched = Scalars::default();
        let mut f = ScalarFile::new(SliceSource::new(&data), false);
        let mut steps = Vec::new();
        while !f.done() {
            batched.clear_rows();
            batched.read_some(&mut f, 3).unwrap();
            assert!(batched.steps.len() <= 4, "a record's values are never split");
            steps.extend_from_slice(&batched.steps);
        }
        assert_eq!(steps, whole.steps);
        assert_eq!(batched.damage, whole.damage);
    }
    /// With `collect_others`, the records holding anything but scalars of the scalars plugin
    /// are listed (not their scalars' rows), and the file version is not.
    #[test]
    fn others_are_the_records_that_are_not_scalars_only() {
        let version = [0x1a, 0x0d].iter().copied().chain(b"brain.Event:2".iter().copied()).collect::<Vec<u8>>();
        let graph = ld(4, b"g");
        let data = file(&[
            version,
            graph,
            event(1, &[value("a", None)]),
            event(2, &[value("t", Some("text"))]),
            event(3, &[value("a", None), value("t", None)]),
        ]);
        let mut s = Scalars::with_others(true);
        s.read(SliceSource::new(&data), false).unwrap();
        assert_eq!(s.steps, vec![1, 3]);
        assert_eq!(s.plugins, vec![b"".to_vec(), b"text".to_vec()]);
        let got: Vec<(u8, u32, u8, u32, i64)> = s.others.iter().map(|o| (o.what, o.values, o.kind, o.tag_id, o.step)).collect();
        assert_eq!(got, vec![(4, 0, 0, NO_TAG, 0), (5, 1, 2, 1, 2), (5, 2, 2, 0, 3)]);
        let graph_at = s.others[0].offset as usize;
        assert_eq!(&data[graph_at + 12..graph_at + 12 + s.others[0].length as usize], &ld(4, b"g")[..]);
        assert_eq!(s.others_bytes, s.others.iter().map(|o| o.length).sum::<u64>());
        let mut plain = Scalars::default();
        plain.read(SliceSource::new(&data), false).unwrap();
        assert!(plain.others.is_empty());
    }
}
