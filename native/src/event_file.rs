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
use crate::tf_record::{Damage, DamageKind, RecordReader, Source, FOOTER_LENGTH, HEADER_LENGTH};
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
#[derive(Debug, Default)]
pub struct Scan {
    /// Bytes read: the file size when opened, at most the limit.
    pub size: u64,
    /// Records whose checksums hold (Python `RecordReader.records`).
    pub frames: u64,
    /// Valid `Event` records (Python `EventFileReader.records`).
    pub records: u64,
    /// Damage, sorted by offset.
    pub damage: Vec<Damage>,
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
    /// Distinct tags in order of first appearance.
    pub tags: Vec<Vec<u8>>,
    tag_index: HashMap<Vec<u8>, u32>,
    recent: [u32; 2],
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
        id
    }
}

/// Read every record of `src` and return its [`Scan`].
pub fn scan<S: Source>(src: S, resync: bool) -> io::Result<Scan> {
    let mut reader = RecordReader::new(src, resync);
    let mut out = Scan::default();
    let mut invalid: Vec<Damage> = Vec::new();
    loop {
        let frames = reader.records;
        let Some((offset, data)) = reader.next_record()? else { break };
        if let Err(e) = validate_event(data) {
            invalid.push(invalid_event(offset, data.len(), frames - invalid.len() as u64, e, resync));
            if !resync {
                break;
            }
            continue;
        }
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
    out.size = reader.src.size();
    out.frames = reader.records;
    out.records = reader.records - invalid.len() as u64;
    out.damage = reader.damage;
    out.damage.extend(invalid);
    out.damage.sort_by_key(|d| d.offset);
    Ok(out)
}

/// The scalars of one run, as Python `commands.export.iter_scalars` reads them: every
/// value of every summary event of the files in order, whose tag's plugin (the
/// `plugin_name` of the tag's first value in the run, `""` if that value has no metadata)
/// is `""` or `"scalars"` and whose value is a scalar by `scalar_value`.
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
    /// Per file: its damage (as [`scan`] reports it).
    pub damage: Vec<Vec<Damage>>,
}

impl Scalars {
    /// Read one more file of the run.
    pub fn read<S: Source>(&mut self, src: S, resync: bool) -> io::Result<()> {
        let file = self.damage.len() as u32;
        let mut reader = RecordReader::new(src, resync);
        let mut invalid: Vec<Damage> = Vec::new();
        loop {
            let frames = reader.records;
            let Some((offset, data)) = reader.next_record()? else { break };
            if let Err(e) = validate_event(data) {
                invalid.push(invalid_event(offset, data.len(), frames - invalid.len() as u64, e, resync));
                if !resync {
                    break;
                }
                continue;
            }
            let Some(values) = crate::proto::summary_values(data) else { continue };
            let info = event_info(data);
            for (s, e) in values {
                let v = crate::scalar::value(data, s, e);
                let id = match self.tag_index.get(v.tag) {
                    Some(&id) => id,
                    None => {
                        let id = self.tags.len() as u32;
                        self.tags.push(v.tag.to_vec());
                        self.tag_index.insert(v.tag.to_vec(), id);
                        let plugin = if v.has_metadata { v.plugin_name } else { b"" };
                        self.plugin_ok.push(plugin.is_empty() || plugin == b"scalars");
                        id
                    }
                };
                if !self.plugin_ok[id as usize] {
                    continue;
                }
                if let Some(x) = v.scalar {
                    self.files.push(file);
                    self.tag_ids.push(id);
                    self.steps.push(info.step);
                    self.wall_times.push(info.wall_time);
                    self.values.push(x);
                }
            }
        }
        let mut damage = reader.damage;
        damage.extend(invalid);
        damage.sort_by_key(|d| d.offset);
        self.damage.push(damage);
        Ok(())
    }
}

fn invalid_event(offset: u64, len: usize, records_before: u64, e: crate::proto::DecodeError, resync: bool) -> Damage {
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
