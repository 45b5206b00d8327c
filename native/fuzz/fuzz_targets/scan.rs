//! Any bytes as a whole event file: the scan (without and with resync), the Event
//! validator, the peek and the retag must not panic, and what they return must hold
//! together (see the asserts). Run: see native/README.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tbrewrite_native::event_file::{flags, scan, ScalarFile, Scalars, Scanner};
use tbrewrite_native::proto::validate_event;
use tbrewrite_native::tf_record::{DamageKind, SliceSource};
use tbrewrite_native::wire::{peek, retag};

fuzz_target!(|data: &[u8]| {
    let size = data.len() as u64;
    let stop = scan(SliceSource::new(data), false).unwrap();
    let sync = scan(SliceSource::new(data), true).unwrap();
    for s in [&stop, &sync] {
        assert_eq!(s.size, size);
        assert_eq!(s.records as usize, s.offsets.len());
        assert!(s.frames >= s.records);
        let mut end = 0;
        for (i, (&off, &len)) in s.offsets.iter().zip(&s.lengths).enumerate() {
            assert!(off >= end, "records overlap");
            end = off + 16 + len;
            assert!(end <= size);
            let record = &data[off as usize + 12..(end - 4) as usize];
            assert!(validate_event(record).is_ok());
            assert_eq!(s.flags[i] & flags::PEEKED != 0, peek(record).is_some());
        }
        for w in s.damage.windows(2) {
            assert!(w[0].offset < w[1].offset);
        }
        for d in &s.damage {
            assert!(d.offset < size || (d.offset == 0 && size == 0));
            assert!(d.records_before <= s.frames);
            if d.kind == DamageKind::NotAnEventFile {
                assert_eq!(d.offset, 0);
            }
        }
    }
    // Fingerprints: one every CHECKPOINT_RECORDS frames, then one of every frame, ending
    // where the last record read ends.
    for s in [&stop, &sync] {
        let last = s.checkpoints.last().expect("a final checkpoint");
        assert_eq!(last.records, s.frames);
        assert!(last.end <= size);
        assert!(s.checkpoints.windows(2).all(|w| w[0].records < w[1].records && w[0].end <= w[1].end));
        if let Some(&off) = s.offsets.last() {
            assert!(last.end >= off + 16 + s.lengths[s.lengths.len() - 1]);
        }
    }
    // A scan in batches (of a size the input picks) reads what the whole scan reads.
    let batch = 1 + data.first().map_or(0, |&b| b as usize % 5);
    for (whole, resync) in [(&stop, false), (&sync, true)] {
        let mut scanner = Scanner::new(SliceSource::new(data), resync);
        let mut offsets = Vec::new();
        let mut metadata = Vec::new();
        while !scanner.done() {
            scanner.out.clear_rows();
            scanner.step(batch).unwrap();
            assert!(scanner.out.offsets.len() <= batch);
            offsets.extend_from_slice(&scanner.out.offsets);
            metadata.extend(scanner.out.metadata.iter().cloned());
        }
        assert_eq!(offsets, whole.offsets);
        assert_eq!(metadata, whole.metadata);
        assert_eq!(scanner.out.tags, whole.tags);
        assert_eq!(scanner.out.damage, whole.damage);
        assert_eq!(scanner.out.checkpoints, whole.checkpoints);
        assert_eq!(whole.more_rows.len(), whole.more_tag_ids.len());
        assert!(whole.more_rows.windows(2).all(|w| w[0] <= w[1]));
    }
    // Without resync reading stops at the first damage; with resync it reads the same
    // records up to there.
    assert!(stop.damage.len() <= 1);
    assert!(sync.offsets.len() >= stop.offsets.len());
    assert_eq!(&sync.offsets[..stop.offsets.len()], &stop.offsets[..]);
    if let Some(d) = stop.damage.first() {
        assert_eq!((d.kind, d.offset, &d.detail), (sync.damage[0].kind, sync.damage[0].offset, &sync.damage[0].detail));
    }
    // The export reader reads the same records and damage.
    let mut scalars = Scalars::default();
    scalars.read(SliceSource::new(data), true).unwrap();
    assert_eq!(scalars.damage[0], sync.damage);
    let mut batched = Scalars::default();
    let mut file = ScalarFile::new(SliceSource::new(data), true);
    let mut values = 0;
    while !file.done() {
        batched.clear_rows();
        batched.read_some(&mut file, batch).unwrap();
        values += batched.values.len();
    }
    assert_eq!(values, scalars.values.len());
    assert_eq!(batched.damage, scalars.damage);
    assert!(scalars.values.len() <= sync.offsets.len() * 1000 + data.len());
    // The bytes as one record: validate, peek, retag and back.
    let _ = validate_event(data);
    if let Some(p) = peek(data) {
        let tag = data[p.tag.0..p.tag.1].to_vec();
        let other = retag(data, &p, b"train/x");
        let q = peek(&other).expect("a retagged record peeks");
        assert_eq!(retag(&other, &q, &tag), data);
        if validate_event(data).is_ok() {
            assert!(validate_event(&other).is_ok());
        }
    }
});
