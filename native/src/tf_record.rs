//! TFRecord framing: `u64 length | u32 masked_crc(length) | data | u32 masked_crc(data)`,
//! little-endian (TensorFlow `core/lib/io/record_writer.cc`; TensorBoard
//! `data/server/tf_record.rs`). A streaming reader that reports damage exactly as Python
//! `tbrewrite.events.framing.RecordReader` does (kinds, offsets, records_before, detail
//! text) and resyncs the same way (the next offset where a whole record with both
//! checksums valid starts).
//!
//! Memory: the reader holds a window of at most `CHUNK` bytes or one record, whichever is
//! larger; a declared length is checked against the bytes left in the file before anything
//! is read or allocated for it, so a corrupt length field claiming petabytes is reported as
//! a truncation and never allocated.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use crate::masked_crc::{crc32c, crc32c_append, mask, masked_crc32c};

pub const HEADER_LENGTH: u64 = 12;
pub const FOOTER_LENGTH: u64 = 4;
/// Bytes read per `read()` when the window is refilled.
pub const CHUNK: usize = 1 << 20;
/// Every this many records the reader notes a [`Checkpoint`] (Python
/// `framing.CHECKPOINT_RECORDS`).
pub const CHECKPOINT_RECORDS: u64 = 1 << 16;

/// A fingerprint of the first `records` records whose checksums hold (Python
/// `framing.Checkpoint`): `end` is the offset just past the last of them, `digest` the sum
/// of their stored data CRCs (the u32 footers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub records: u64,
    pub end: u64,
    pub digest: u64,
}

/// Who a file was when it was opened (Python `framing.FileStamp`: `os.fstat`'s
/// `st_dev`, `st_ino`, `st_size`, `st_mtime_ns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
}

/// The damage kinds, as Python names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    Truncated,
    CrcMismatch,
    NotAnEventFile,
    InvalidEvent,
}

impl DamageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DamageKind::Truncated => "truncated",
            DamageKind::CrcMismatch => "crc_mismatch",
            DamageKind::NotAnEventFile => "not_an_event_file",
            DamageKind::InvalidEvent => "invalid_event",
        }
    }
}

/// One damaged stretch of a file (Python `Damage`, without the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub kind: DamageKind,
    pub offset: u64,
    pub records_before: u64,
    pub detail: String,
    pub resumed_at: Option<u64>,
}

/// Random access to the bytes of one file (or of a buffer), in the reader's order.
pub trait Source {
    /// Bytes that may be read: the file size when opened, at most the limit.
    fn size(&self) -> u64;
    /// Bytes `[off, off + len)`; fewer only if the file shrank. `off + len <= size()`.
    fn get(&mut self, off: u64, len: usize) -> io::Result<&[u8]>;
    /// The masked CRC of `[off, off + len)` and the u32 stored right after it; None if
    /// the file shrank. `off + len + 4 <= size()`. Leaves the window alone.
    fn check(&mut self, off: u64, len: u64) -> io::Result<Option<(u32, u32)>>;
    /// The file as it was opened; None for a buffer.
    fn stamp(&self) -> Option<FileStamp> {
        None
    }
}

/// A whole buffer in memory (tests, fuzzing, `scan_bytes`).
pub struct SliceSource<'a> {
    data: &'a [u8],
}

impl<'a> SliceSource<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        SliceSource { data }
    }
}

impl Source for SliceSource<'_> {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn get(&mut self, off: u64, len: usize) -> io::Result<&[u8]> {
        let off = off as usize;
        Ok(&self.data[off..off + len])
    }

    fn check(&mut self, off: u64, len: u64) -> io::Result<Option<(u32, u32)>> {
        let (off, len) = (off as usize, len as usize);
        let crc = masked_crc32c(&self.data[off..off + len]);
        let stored = u32::from_le_bytes(self.data[off + len..off + len + 4].try_into().unwrap());
        Ok(Some((crc, stored)))
    }
}

/// A file read through a window that slides forward.
pub struct FileSource {
    file: File,
    size: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: u64,
    scratch: Vec<u8>,
    stamp: FileStamp,
}

impl FileSource {
    /// Open `file`, reading at most `limit` bytes of it.
    pub fn new(file: File, limit: Option<u64>) -> io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata()?;
        let stamp = FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        };
        let mut size = meta.len();
        if let Some(limit) = limit {
            size = size.min(limit);
        }
        Ok(FileSource { file, size, buf: Vec::new(), base: 0, scratch: Vec::new(), stamp })
    }
}

fn read_full(file: &File, buf: &mut [u8], mut off: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], off) {
            Ok(0) => break,
            Ok(n) => {
                done += n;
                off += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

impl Source for FileSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn stamp(&self) -> Option<FileStamp> {
        Some(self.stamp)
    }

    fn get(&mut self, off: u64, len: usize) -> io::Result<&[u8]> {
        let have = self.base + self.buf.len() as u64;
        if off >= self.base && off + len as u64 <= have {
            let s = (off - self.base) as usize;
            return Ok(&self.buf[s..s + len]);
        }
        // Refill from `off`: keep the bytes already read past it, read the rest.
        let want = len.max(CHUNK).min((self.size - off) as usize).max(len);
        let keep = if off >= self.base && off < have {
            let s = (off - self.base) as usize;
            self.buf.copy_within(s.., 0);
            self.buf.len() - s
        } else {
            0
        };
        self.buf.resize(want, 0);
        let n = read_full(&self.file, &mut self.buf[keep..], off + keep as u64)?;
        self.buf.truncate(keep + n);
        self.base = off;
        let got = len.min(self.buf.len());
        Ok(&self.buf[..got])
    }

    fn check(&mut self, off: u64, len: u64) -> io::Result<Option<(u32, u32)>> {
        let have = self.base + self.buf.len() as u64;
        if off >= self.base && off + len + FOOTER_LENGTH <= have {
            let s = (off - self.base) as usize;
            let e = s + len as usize;
            let stored = u32::from_le_bytes(self.buf[e..e + 4].try_into().unwrap());
            return Ok(Some((masked_crc32c(&self.buf[s..e]), stored)));
        }
        if self.scratch.is_empty() {
            self.scratch = vec![0; CHUNK];
        }
        let mut crc = crc32c(b"");
        let mut pos = off;
        let end = off + len;
        while pos < end {
            let n = ((end - pos) as usize).min(CHUNK);
            if read_full(&self.file, &mut self.scratch[..n], pos)? < n {
                return Ok(None);
            }
            crc = crc32c_append(crc, &self.scratch[..n]);
            pos += n as u64;
        }
        let mut footer = [0u8; 4];
        if read_full(&self.file, &mut footer, end)? < 4 {
            return Ok(None);
        }
        Ok(Some((mask(crc), u32::from_le_bytes(footer))))
    }
}

/// Open `path` as a [`FileSource`].
pub fn open(path: &std::path::Path, limit: Option<u64>) -> io::Result<FileSource> {
    let mut file = File::open(path)?;
    // Fail now, as Python's open() does, if the path is a folder.
    let mut probe = [0u8; 0];
    let _ = file.read(&mut probe)?;
    FileSource::new(file, limit)
}

/// Stream the valid records of a source, recording damage (Python `RecordReader`).
pub struct RecordReader<S: Source> {
    pub src: S,
    resync: bool,
    pos: u64,
    done: bool,
    /// Records with both checksums valid, returned so far.
    pub records: u64,
    pub damage: Vec<Damage>,
    /// Offset just past the last valid record (Python `RecordReader.end`).
    pub end: u64,
    /// Sum of the stored data CRCs of the valid records (Python `RecordReader.digest`).
    pub digest: u64,
    /// One every [`CHECKPOINT_RECORDS`] records (Python `RecordReader.checkpoints`).
    pub checkpoints: Vec<Checkpoint>,
    /// Offset and stored data CRC of the record returned last, for [`Self::retract`].
    last: (u64, u32),
}

/// What went wrong at one offset.
type Bad = (DamageKind, String);

impl<S: Source> RecordReader<S> {
    pub fn new(src: S, resync: bool) -> Self {
        RecordReader {
            src,
            resync,
            pos: 0,
            done: false,
            records: 0,
            damage: Vec::new(),
            end: 0,
            digest: 0,
            checkpoints: Vec::new(),
            last: (0, 0),
        }
    }

    /// The fingerprint of every valid record read so far.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint { records: self.records, end: self.end, digest: self.digest }
    }

    /// Uncount the record returned last (the caller found it is not an Event and stops
    /// there), so counts and fingerprints cover exactly the records before it (Python
    /// `RecordReader.retract`).
    pub fn retract(&mut self) {
        let (offset, stored) = self.last;
        self.records -= 1;
        self.end = offset;
        self.digest -= stored as u64;
        if self.checkpoints.last().is_some_and(|c| c.records > self.records) {
            self.checkpoints.pop();
        }
    }

    /// The next valid record as (offset of its frame, its data); None at the end or at
    /// damage that stops reading.
    pub fn next_record(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        loop {
            if self.done {
                return Ok(None);
            }
            let offset = self.pos;
            match self.frame_at(offset)? {
                Ok(Some((len, stored))) => {
                    self.pos = offset + HEADER_LENGTH + len + FOOTER_LENGTH;
                    self.records += 1;
                    self.end = self.pos;
                    self.digest += stored as u64;
                    self.last = (offset, stored);
                    if self.records.is_multiple_of(CHECKPOINT_RECORDS) {
                        self.checkpoints.push(self.checkpoint());
                    }
                    let data = &self.src.get(offset + HEADER_LENGTH, len as usize)?;
                    return Ok(Some((offset, data)));
                }
                Ok(None) => {
                    self.done = true;
                    return Ok(None);
                }
                Err((kind, detail)) => {
                    self.stop(kind, offset, detail);
                    if !self.resync {
                        self.done = true;
                        return Ok(None);
                    }
                    match find_next_record(&mut self.src, offset + 1)? {
                        None => {
                            self.done = true;
                            return Ok(None);
                        }
                        Some(resume) => {
                            self.damage.last_mut().unwrap().resumed_at = Some(resume);
                            self.pos = resume;
                        }
                    }
                }
            }
        }
    }

    /// Check the frame at `offset`: Ok(Ok(Some((data length, stored data CRC)))) if valid, Ok(Ok(None)) at
    /// the end of the file (damage already recorded if reading must stop), Ok(Err(bad))
    /// for damage that resync may skip.
    fn frame_at(&mut self, offset: u64) -> io::Result<Result<Option<(u64, u32)>, Bad>> {
        let left = self.src.size() - offset;
        if left == 0 {
            if offset == 0 {
                self.stop(DamageKind::Truncated, 0, "file is empty".into());
            }
            return Ok(Ok(None));
        }
        if left < HEADER_LENGTH {
            let part = if left < 8 { "header" } else { "header crc" };
            let detail = format!("truncated record in {part}: needs 12 bytes, {left} left");
            return Ok(Err((DamageKind::Truncated, detail)));
        }
        let header = self.src.get(offset, HEADER_LENGTH as usize)?;
        if header.len() < HEADER_LENGTH as usize {
            return self.shrank(offset);
        }
        let length = u64::from_le_bytes(header[..8].try_into().unwrap());
        let stored = u32::from_le_bytes(header[8..12].try_into().unwrap());
        let want = masked_crc32c(&header[..8]);
        if want != stored {
            let detail = format!("length checksum mismatch: got {stored:#010x}, want {want:#010x}");
            return Ok(Err((DamageKind::CrcMismatch, detail)));
        }
        let need = HEADER_LENGTH as u128 + length as u128 + FOOTER_LENGTH as u128;
        if need > left as u128 {
            let part = if HEADER_LENGTH as u128 + length as u128 > left as u128 { "data" } else { "data crc" };
            let detail = format!("truncated record in {part}: needs {need} bytes, {left} left");
            return Ok(Err((DamageKind::Truncated, detail)));
        }
        // `need <= left`: the allocation below is bounded by the file's size.
        let frame = self.src.get(offset, need as usize)?;
        if frame.len() < need as usize {
            return self.shrank(offset);
        }
        let end = frame.len() - FOOTER_LENGTH as usize;
        let stored = u32::from_le_bytes(frame[end..].try_into().unwrap());
        let want = masked_crc32c(&frame[HEADER_LENGTH as usize..end]);
        if want != stored {
            let detail = format!("data checksum mismatch: got {stored:#010x}, want {want:#010x}");
            return Ok(Err((DamageKind::CrcMismatch, detail)));
        }
        Ok(Ok(Some((length, stored))))
    }

    fn shrank<T>(&mut self, offset: u64) -> io::Result<Result<Option<T>, Bad>> {
        self.stop(DamageKind::Truncated, offset, "file shrank while being read".into());
        Ok(Ok(None))
    }

    fn stop(&mut self, mut kind: DamageKind, offset: u64, mut detail: String) {
        if offset == 0 && self.records == 0 && kind == DamageKind::CrcMismatch {
            kind = DamageKind::NotAnEventFile;
            detail = format!("first record is invalid: {detail}");
        }
        self.damage.push(Damage { kind, offset, records_before: self.records, detail, resumed_at: None });
    }
}

/// Bytes of headers examined per window of the resync scan.
const SCAN_WINDOW: usize = 1 << 16;

/// The first offset `>= start` where a whole valid record begins (valid length checksum,
/// fits in the source, valid data checksum), or None (Python `find_next_record`).
pub fn find_next_record<S: Source>(src: &mut S, start: u64) -> io::Result<Option<u64>> {
    let size = src.size();
    let zero_crc = masked_crc32c(&[0u8; 8]);
    let mut pos = start;
    let mut hits: Vec<(u64, u64)> = Vec::new();
    while pos + HEADER_LENGTH + FOOTER_LENGTH <= size {
        let n = ((size - pos) as usize).min(SCAN_WINDOW + HEADER_LENGTH as usize - 1);
        let buf = src.get(pos, n)?;
        if buf.len() < HEADER_LENGTH as usize {
            return Ok(None);
        }
        hits.clear();
        for i in 0..=buf.len() - HEADER_LENGTH as usize {
            let length = u64::from_le_bytes(buf[i..i + 8].try_into().unwrap());
            let at = pos + i as u64;
            // Cheap test first: most garbage declares a length past the end of the file.
            let room = size - at;
            if room < HEADER_LENGTH + FOOTER_LENGTH || length > room - HEADER_LENGTH - FOOTER_LENGTH {
                continue;
            }
            let stored = u32::from_le_bytes(buf[i + 8..i + 12].try_into().unwrap());
            let want = if length == 0 { zero_crc } else { masked_crc32c(&buf[i..i + 8]) };
            if want == stored {
                hits.push((at, length));
            }
        }
        let advance = buf.len() as u64 - HEADER_LENGTH + 1;
        for &(at, length) in &hits {
            if let Some((crc, stored)) = src.check(at + HEADER_LENGTH, length)? {
                if crc == stored {
                    return Ok(Some(at));
                }
            }
        }
        pos += advance;
    }
    Ok(None)
}

/// Frame `data` as one TFRecord.
pub fn encode_record(data: &[u8], out: &mut Vec<u8>) {
    let header = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&header);
    out.extend_from_slice(&masked_crc32c(&header).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(records: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            encode_record(r, &mut out);
        }
        out
    }

    fn read_all<S: Source>(mut r: RecordReader<S>) -> (Vec<(u64, Vec<u8>)>, Vec<Damage>) {
        let mut got = Vec::new();
        while let Some((off, data)) = r.next_record().unwrap() {
            got.push((off, data.to_vec()));
        }
        (got, r.damage)
    }

    fn read(data: &[u8], resync: bool) -> (Vec<(u64, Vec<u8>)>, Vec<Damage>) {
        read_all(RecordReader::new(SliceSource::new(data), resync))
    }

    const RECORDS: [&[u8]; 3] = [b"first", b"", b"the third record"];

    #[test]
    fn clean_file() {
        let data = frames(&RECORDS);
        let (got, damage) = read(&data, false);
        assert!(damage.is_empty());
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![0, 21, 37]);
        assert_eq!(got[2].1, b"the third record");
    }

    #[test]
    fn empty_file() {
        let (got, damage) = read(b"", false);
        assert!(got.is_empty());
        assert_eq!(damage[0].detail, "file is empty");
        assert_eq!(damage[0].kind, DamageKind::Truncated);
    }

    /// A cut at every byte keeps exactly the records that end before it, and names the
    /// part the cut falls in as Python does.
    #[test]
    fn truncation_at_every_byte() {
        let data = frames(&RECORDS);
        let ends = [21u64, 37, 69];
        for cut in 0..data.len() {
            let (got, damage) = read(&data[..cut], false);
            let whole = ends.iter().filter(|&&e| e <= cut as u64).count();
            assert_eq!(got.len(), whole, "cut {cut}");
            let start = if whole == 0 { 0 } else { ends[whole - 1] };
            let left = cut as u64 - start;
            if left == 0 && cut > 0 {
                assert!(damage.is_empty(), "a cut between records is a clean end");
                continue;
            }
            let d = &damage[0];
            assert_eq!((d.kind, d.offset, d.records_before), (DamageKind::Truncated, start, whole as u64));
            let expect = if cut == 0 {
                "file is empty".to_string()
            } else if left < 8 {
                format!("truncated record in header: needs 12 bytes, {left} left")
            } else if left < 12 {
                format!("truncated record in header crc: needs 12 bytes, {left} left")
            } else {
                let len = RECORDS[whole].len() as u64;
                let part = if 12 + len > left { "data" } else { "data crc" };
                format!("truncated record in {part}: needs {} bytes, {left} left", len + 16)
            };
            assert_eq!(d.detail, expect, "cut {cut}");
        }
    }

    #[test]
    fn crc_damage_and_resync() {
        let mut data = frames(&RECORDS);
        data[21 + 12] ^= 1; // no data in record 1: flips its data crc
        let (got, damage) = read(&data, false);
        assert_eq!(got.len(), 1);
        assert_eq!(damage[0].kind, DamageKind::CrcMismatch);
        assert!(damage[0].detail.starts_with("data checksum mismatch: got 0x"), "{}", damage[0].detail);
        let (got, damage) = read(&data, true);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![0, 37]);
        assert_eq!(damage[0].resumed_at, Some(37));
        data[0] ^= 1;
        let (_, damage) = read(&data, false);
        assert_eq!(damage[0].kind, DamageKind::NotAnEventFile);
        assert!(damage[0].detail.starts_with("first record is invalid: length checksum mismatch: got 0x"));
    }

    #[test]
    fn huge_length_is_a_truncation_not_an_allocation() {
        let mut data = Vec::new();
        let header = u64::MAX.to_le_bytes();
        data.extend_from_slice(&header);
        data.extend_from_slice(&masked_crc32c(&header).to_le_bytes());
        let (_, damage) = read(&data, true);
        assert_eq!(damage[0].detail, format!("truncated record in data: needs {} bytes, 12 left", u64::MAX as u128 + 16));
    }

    /// The file reader, with its window, reads what the in-memory reader reads, for files
    /// whose records straddle the window in every way.
    #[test]
    fn file_source_equals_slice_source() {
        let big = vec![7u8; CHUNK + 5];
        let mid = vec![3u8; CHUNK / 2 + 3];
        let mut data = frames(&[b"a", &mid, &big, b"b", &mid, &mid, b"c"]);
        let dir = std::env::temp_dir().join(format!("tbrewrite-native-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        for flip in [None, Some(30usize), Some(CHUNK + 100), Some(data.len() - 3)] {
            if let Some(i) = flip {
                data[i] ^= 0x40;
            }
            std::fs::write(&path, &data).unwrap();
            for resync in [false, true] {
                let file = open(&path, None).unwrap();
                assert_eq!(read_all(RecordReader::new(file, resync)), read(&data, resync), "{flip:?} {resync}");
            }
            if let Some(i) = flip {
                data[i] ^= 0x40;
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Fingerprints: the sum of the stored data CRCs, the end of the last valid record, a
    /// checkpoint every CHECKPOINT_RECORDS records; retract undoes the last record, and
    /// the checkpoint taken at it.
    #[test]
    fn checkpoints_and_retract() {
        let n = CHECKPOINT_RECORDS as usize + 3;
        let payloads: Vec<Vec<u8>> = (0..n).map(|i| format!("r{}", i % 1000).into_bytes()).collect();
        let mut data = Vec::new();
        let mut ends = Vec::new();
        let mut sums = Vec::new();
        let mut sum = 0u64;
        for p in &payloads {
            encode_record(p, &mut data);
            sum += masked_crc32c(p) as u64;
            ends.push(data.len() as u64);
            sums.push(sum);
        }
        let k = CHECKPOINT_RECORDS as usize;
        let mut r = RecordReader::new(SliceSource::new(&data), false);
        while r.next_record().unwrap().is_some() {}
        assert!(r.damage.is_empty());
        assert_eq!(r.checkpoints, vec![Checkpoint { records: k as u64, end: ends[k - 1], digest: sums[k - 1] }]);
        assert_eq!(r.checkpoint(), Checkpoint { records: n as u64, end: data.len() as u64, digest: sum });
        // Stop at record k (1-based): retracting it drops the checkpoint taken at it.
        let mut r = RecordReader::new(SliceSource::new(&data), false);
        for _ in 0..k {
            r.next_record().unwrap().unwrap();
        }
        assert_eq!(r.checkpoints.len(), 1);
        r.retract();
        assert!(r.checkpoints.is_empty());
        assert_eq!(r.checkpoint(), Checkpoint { records: k as u64 - 1, end: ends[k - 2], digest: sums[k - 2] });
        // An empty file: a zero fingerprint.
        let r = RecordReader::new(SliceSource::new(b""), false);
        assert_eq!(r.checkpoint(), Checkpoint { records: 0, end: 0, digest: 0 });
    }
}
