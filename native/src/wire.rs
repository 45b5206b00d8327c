//! The common event record read and retagged straight from its bytes: the same rules,
//! byte for byte, as Python `tbrewrite.events.wire` (`peek`, `retag`, `has_metadata`).
//!
//! The common shape is `Event { wall_time (1, double), [step (2, varint)], summary (5) {
//! value (1) { tag (1), ...rest of the value... } } }` with the summary and its one value
//! running to the end of the record. Anything else is not peeked (None), and the caller
//! decodes the record in full.

const WALL_TIME: u8 = 0x09;
const STEP: u8 = 0x10;
const SUMMARY: u8 = 0x2a;
const VALUE: u8 = 0x0a;
const SIMPLE_VALUE: u8 = 0x15;
const METADATA: u8 = 0x4a;

/// What [`peek`] reads of a common-shape record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peek {
    pub wall_time: f64,
    pub step: i64,
    /// The tag's byte range in the record.
    pub tag: (usize, usize),
    /// Offset of the summary field's key byte.
    pub summary_at: usize,
    /// Offset just past the tag's bytes.
    pub rest_at: usize,
}

/// Python `wire._varint`: at most 10 bytes, the value kept whole (up to 70 bits).
fn varint(d: &[u8], mut p: usize) -> Option<(u128, usize)> {
    let mut value: u128 = 0;
    let mut shift = 0;
    loop {
        let b = *d.get(p)?;
        p += 1;
        value |= ((b & 0x7f) as u128) << shift;
        if b < 0x80 {
            return Some((value, p));
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// A length prefix at `p`: (length, position after the prefix).
fn length(d: &[u8], p: usize) -> Option<(u128, usize)> {
    let n = *d.get(p)?;
    if n < 0x80 {
        Some((n as u128, p + 1))
    } else {
        varint(d, p)
    }
}

/// Return the [`Peek`] of a common-shape record, or None for any other record.
pub fn peek(d: &[u8]) -> Option<Peek> {
    let end = d.len();
    if end < 14 || d[0] != WALL_TIME {
        return None;
    }
    let mut p = 9;
    let mut step: i64 = 0;
    if d[p] == STEP {
        let (v, q) = varint(d, 10)?;
        step = v as u64 as i64; // protobuf keeps the low 64 bits of an overlong varint
        p = q;
    }
    if *d.get(p)? != SUMMARY {
        return None;
    }
    let summary_at = p;
    let (n, q) = length(d, p + 1)?;
    p = q;
    if p as u128 + n != end as u128 || *d.get(p)? != VALUE {
        return None;
    }
    let (n, q) = length(d, p + 1)?;
    p = q;
    if p as u128 + n != end as u128 || *d.get(p)? != VALUE {
        return None;
    }
    let (n, q) = length(d, p + 1)?;
    p = q;
    if p as u128 + n > end as u128 {
        return None;
    }
    let rest_at = p + n as usize;
    let wall_time = f64::from_le_bytes(d[1..9].try_into().ok()?);
    Some(Peek { wall_time, step, tag: (p, rest_at), summary_at, rest_at })
}

/// Append the protobuf varint of `n`.
pub fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n > 0x7f {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn varint_len(n: u64) -> usize {
    let mut len = 1;
    let mut n = n >> 7;
    while n > 0 {
        len += 1;
        n >>= 7;
    }
    len
}

/// Python `wire.retag_head`: the bytes from the summary key through the new tag, for a
/// value whose bytes after the tag are `rest` long.
pub fn retag_head(out: &mut Vec<u8>, tag: &[u8], rest: usize) {
    let value = 1 + varint_len(tag.len() as u64) + tag.len() + rest;
    let summary = 1 + varint_len(value as u64) + value;
    out.push(SUMMARY);
    put_varint(out, summary as u64);
    out.push(VALUE);
    put_varint(out, value as u64);
    out.push(VALUE);
    put_varint(out, tag.len() as u64);
    out.extend_from_slice(tag);
}

/// Python `wire.retag`: record `d` (common shape, as peeked) with its value's tag replaced.
pub fn retag(d: &[u8], peeked: &Peek, tag: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(d.len() + tag.len() + 16);
    out.extend_from_slice(&d[..peeked.summary_at]);
    retag_head(&mut out, tag, d.len() - peeked.rest_at);
    out.extend_from_slice(&d[peeked.rest_at..]);
    out
}

/// Python `wire.has_metadata`: whether the value carries `metadata` (None if its fields
/// after the tag do not parse by that function's narrow rules).
pub fn has_metadata(d: &[u8], peeked: &Peek) -> Option<bool> {
    let mut p = peeked.rest_at as u128;
    let end = d.len() as u128;
    while p < end {
        let key = d[p as usize];
        if key == METADATA {
            return Some(true);
        }
        if key == SIMPLE_VALUE {
            p += 5;
        } else if key & 7 == 2 && key < 0x80 {
            let (n, q) = varint(d, p as usize + 1)?;
            p = q as u128 + n;
        } else {
            return None;
        }
    }
    if p == end {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Event{wall_time=1.5, step=3, summary{value{tag="loss", simple_value=0.25}}}
    const RECORD: &[u8] = &[
        0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, // wall_time 1.5
        0x10, 0x03, // step 3
        0x2a, 0x0d, // summary, 13 bytes
        0x0a, 0x0b, // value, 11 bytes
        0x0a, 0x04, b'l', b'o', b's', b's', // tag "loss"
        0x15, 0, 0, 0x80, 0x3e, // simple_value 0.25
    ];

    #[test]
    fn peeks_and_retags() {
        let p = peek(RECORD).unwrap();
        assert_eq!((p.wall_time, p.step), (1.5, 3));
        assert_eq!(&RECORD[p.tag.0..p.tag.1], b"loss");
        assert_eq!((p.summary_at, p.rest_at), (11, 21));
        assert_eq!(has_metadata(RECORD, &p), Some(false));
        let r = retag(RECORD, &p, b"train/loss");
        let q = peek(&r).unwrap();
        assert_eq!(&r[q.tag.0..q.tag.1], b"train/loss");
        assert_eq!(&r[q.rest_at..], &RECORD[p.rest_at..]);
        assert_eq!(retag(&r, &q, b"loss"), RECORD);
    }

    #[test]
    fn every_cut_is_safe() {
        for n in 0..RECORD.len() {
            let _ = peek(&RECORD[..n]).map(|p| has_metadata(&RECORD[..n], &p));
        }
        assert!(peek(&RECORD[..RECORD.len() - 1]).is_none());
    }
}
