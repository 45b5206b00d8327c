//! Protobuf wire-format validation of an `Event` record, accepting and rejecting exactly
//! what upb (the runtime behind the Python reader's `Event.FromString`) does, with upb's
//! error text; and the few `Event` fields the scan needs, decoded with protobuf's merge
//! rules (last scalar wins, repeated fields append, a oneof switched away is cleared).
//!
//! upb's rules, each checked against `Event.FromString` (tests/native/test_proto_rules.py):
//! a tag is a varint of at most 5 bytes and at most 2^32-1, field number 0 and wire types
//! 6 and 7 are corrupt; a value varint has at most 10 bytes; a length varint at most 5 and
//! must fit in what is left; a known field arriving with another wire type is an unknown
//! field (skipped); a repeated number field also accepts the packed form, whose fixed-size
//! payload must be a whole number of elements; proto3 `string` fields must be UTF-8;
//! submessages and groups share one depth budget of 100 below the `Event`, and exceeding it
//! is "Exceeded upb_DecodeOptions_MaxDepth" for a message but "Wire format was corrupt" for
//! a group; an end-group tag must close the innermost open group.

use crate::schema::{EVENT, MESSAGES, SUMMARY, SUMMARY_VALUE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Varint,
    Fixed32,
    Fixed64,
    Str,
    Bytes,
    Msg(usize),
}

#[derive(Debug)]
pub struct Field {
    pub number: u32,
    pub kind: Kind,
    pub repeated: bool,
}

#[derive(Debug)]
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

/// Why a record is not an `Event`, as upb reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    Corrupt,
    BadUtf8,
    MaxDepth,
}

impl DecodeError {
    /// upb's status text, as the Python `DecodeError` carries it.
    pub fn upb_text(self) -> &'static str {
        match self {
            DecodeError::Corrupt => "Wire format was corrupt",
            DecodeError::BadUtf8 => "String field had bad UTF-8",
            DecodeError::MaxDepth => "Exceeded upb_DecodeOptions_MaxDepth",
        }
    }

    /// The text of the Python `DecodeError` raised by `Event.FromString`.
    pub fn python_text(self) -> String {
        format!("Error parsing message with type 'tensorboard.Event': {}", self.upb_text())
    }
}

/// upb's default depth budget (Python protobuf's recursion limit).
pub const MAX_DEPTH: u32 = 100;

const WT_VARINT: u32 = 0;
const WT_FIXED64: u32 = 1;
const WT_LEN: u32 = 2;
const WT_START_GROUP: u32 = 3;
const WT_END_GROUP: u32 = 4;
const WT_FIXED32: u32 = 5;

type R<T> = Result<T, DecodeError>;

/// Read a value varint (at most 10 bytes) at `p`; return (value, next position).
#[inline]
pub fn varint(d: &[u8], mut p: usize) -> R<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *d.get(p).ok_or(DecodeError::Corrupt)?;
        p += 1;
        v |= ((b & 0x7f) as u64).wrapping_shl(7 * i);
        if b < 0x80 {
            return Ok((v, p));
        }
    }
    Err(DecodeError::Corrupt)
}

/// Read a tag or length varint: at most 5 bytes, at most 2^32-1.
#[inline]
fn varint32(d: &[u8], mut p: usize) -> R<(u32, usize)> {
    let mut v: u64 = 0;
    for i in 0..5 {
        let b = *d.get(p).ok_or(DecodeError::Corrupt)?;
        p += 1;
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b < 0x80 {
            return u32::try_from(v).map(|v| (v, p)).map_err(|_| DecodeError::Corrupt);
        }
    }
    Err(DecodeError::Corrupt)
}

/// Read a length prefix at `p` and return the (start, end) of the payload within `end`.
#[inline]
fn delimited(d: &[u8], p: usize, end: usize) -> R<(usize, usize)> {
    let (n, p) = varint32(d, p)?;
    let n = n as usize;
    if p > end || n > end - p {
        return Err(DecodeError::Corrupt);
    }
    Ok((p, p + n))
}

/// Check that `data` is a valid serialized `tensorboard.Event`.
pub fn validate_event(data: &[u8]) -> R<()> {
    fields(data, 0, data.len(), Some(EVENT), MAX_DEPTH, None).map(|_| ())
}

/// Walk the fields of one message (or, with `msg` None, of an unknown group) in
/// `d[p..end]`; inside a group, stop at its end-group tag and return the position after it.
///
/// As in upb, `end` (the message's limit) only bounds the loop and the length of a
/// submessage: every other read is bounded by the whole record, so a field may run past
/// `end` (a string's UTF-8 is even checked there) before the overrun is found when the
/// loop stops.
fn fields(d: &[u8], mut p: usize, end: usize, msg: Option<usize>, depth: u32, group: Option<u32>) -> R<usize> {
    while p < end {
        let (tag, q) = varint32(d, p)?;
        p = q;
        let number = tag >> 3;
        let wt = tag & 7;
        if wt == WT_END_GROUP {
            return if group == Some(number) && number != 0 { Ok(p) } else { Err(DecodeError::Corrupt) };
        }
        if number == 0 || wt > WT_FIXED32 {
            return Err(DecodeError::Corrupt);
        }
        let field = msg.and_then(|m| find(m, number));
        if let Some(f) = field {
            if let Some(next) = known(d, p, end, f, wt, depth)? {
                p = next;
                continue;
            }
        }
        p = unknown(d, p, end, number, wt, depth)?;
    }
    if p > end || group.is_some() {
        return Err(DecodeError::Corrupt);
    }
    Ok(p)
}

#[inline]
fn find(msg: usize, number: u32) -> Option<&'static Field> {
    MESSAGES[msg].fields.iter().find(|f| f.number == number)
}

/// Parse a known field's payload at `p`; None if the wire type does not match (then the
/// field is unknown to the parser).
#[inline]
fn known(d: &[u8], p: usize, end: usize, f: &Field, wt: u32, depth: u32) -> R<Option<usize>> {
    Ok(Some(match (f.kind, wt) {
        (Kind::Varint, WT_VARINT) => varint(d, p)?.1,
        (Kind::Fixed32, WT_FIXED32) => fixed(p, d.len(), 4)?,
        (Kind::Fixed64, WT_FIXED64) => fixed(p, d.len(), 8)?,
        (Kind::Str, WT_LEN) => {
            // Checked against the whole record, not the message: upb validates the bytes
            // of a string that runs past its message before noticing the overrun.
            let (s, e) = delimited(d, p, d.len())?;
            if std::str::from_utf8(&d[s..e]).is_err() {
                return Err(DecodeError::BadUtf8);
            }
            e
        }
        (Kind::Bytes, WT_LEN) => delimited(d, p, d.len())?.1,
        (Kind::Msg(m), WT_LEN) => {
            if p > end {
                return Err(DecodeError::Corrupt);
            }
            let (s, e) = delimited(d, p, end)?;
            if depth == 0 {
                return Err(DecodeError::MaxDepth);
            }
            fields(d, s, e, Some(m), depth - 1, None)?;
            e
        }
        (Kind::Varint, WT_LEN) if f.repeated => {
            let (mut s, e) = delimited(d, p, d.len())?;
            while s < e {
                s = varint(&d[..e], s)?.1;
            }
            e
        }
        (Kind::Fixed32, WT_LEN) if f.repeated => packed_fixed(d, p, d.len(), 4)?,
        (Kind::Fixed64, WT_LEN) if f.repeated => packed_fixed(d, p, d.len(), 8)?,
        _ => return Ok(None),
    }))
}

#[inline]
fn fixed(p: usize, end: usize, n: usize) -> R<usize> {
    if end - p < n {
        Err(DecodeError::Corrupt)
    } else {
        Ok(p + n)
    }
}

#[inline]
fn packed_fixed(d: &[u8], p: usize, end: usize, n: usize) -> R<usize> {
    let (s, e) = delimited(d, p, end)?; // `end` is the whole record here
    if (e - s) % n != 0 {
        return Err(DecodeError::Corrupt);
    }
    Ok(e)
}

fn unknown(d: &[u8], p: usize, end: usize, number: u32, wt: u32, depth: u32) -> R<usize> {
    match wt {
        WT_VARINT => Ok(varint(d, p)?.1),
        WT_FIXED64 => fixed(p, d.len(), 8),
        WT_FIXED32 => fixed(p, d.len(), 4),
        WT_LEN => Ok(delimited(d, p, d.len())?.1),
        WT_START_GROUP => {
            if depth == 0 {
                return Err(DecodeError::Corrupt);
            }
            fields(d, p, end, None, depth - 1, Some(number))
        }
        _ => Err(DecodeError::Corrupt),
    }
}

/// `Event.what`: the field number of the oneof member set, 0 if none.
pub mod what {
    pub const NONE: u8 = 0;
    pub const FILE_VERSION: u8 = 3;
    pub const GRAPH_DEF: u8 = 4;
    pub const SUMMARY: u8 = 5;
    pub const LOG_MESSAGE: u8 = 6;
    pub const SESSION_LOG: u8 = 7;
    pub const TAGGED_RUN_METADATA: u8 = 8;
    pub const META_GRAPH_DEF: u8 = 9;
}

/// What the scan keeps of one valid `Event`, decoded with protobuf's merge rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventInfo<'a> {
    pub wall_time: f64,
    pub step: i64,
    /// `Event.what` as a field number (see [`what`]).
    pub what: u8,
    /// Number of `summary.value` entries (0 unless `what` is a summary).
    pub values: u32,
    /// The first value's tag (empty if there is no value).
    pub tag: &'a [u8],
    /// The first value's `value` oneof as a field number: 2 simple_value,
    /// 3 obsolete_old_style_histogram, 4 image, 5 histo, 6 audio, 8 tensor; 0 if unset.
    pub value_kind: u8,
    /// Whether the first value has `metadata`.
    pub has_metadata: bool,
    /// The first value's `simple_value` (last occurrence), if `value_kind` is 2.
    pub simple_value: f32,
    /// Byte range of the first value in the record (for further decoding).
    pub value_range: (usize, usize),
    /// Whether the first value occurs in more than one byte range (merged summaries
    /// are fine; this flags nothing else yet).
    pub first_value_set: bool,
}

/// Decode the scan's fields of a record that [`validate_event`] accepted.
pub fn event_info(d: &[u8]) -> EventInfo<'_> {
    let mut info = EventInfo::default();
    let mut p = 0;
    let end = d.len();
    // The record is valid, so every read below succeeds; any failure just stops early.
    while p < end {
        let Ok((tag, q)) = varint32(d, p) else { break };
        p = q;
        let (number, wt) = (tag >> 3, tag & 7);
        match (number, wt) {
            (1, WT_FIXED64) if end - p >= 8 => {
                info.wall_time = f64::from_le_bytes(d[p..p + 8].try_into().unwrap());
                p += 8;
                continue;
            }
            (2, WT_VARINT) => {
                let Ok((v, q)) = varint(d, p) else { break };
                info.step = v as i64;
                p = q;
                continue;
            }
            (3 | 4 | 6 | 7 | 8 | 9, WT_LEN) => info.what = number as u8,
            (5, WT_LEN) => {
                let Ok((s, e)) = delimited(d, p, end) else { break };
                if info.what != what::SUMMARY {
                    info.what = what::SUMMARY;
                    info.values = 0;
                    info.first_value_set = false;
                }
                summary(d, s, e, &mut info);
                p = e;
                continue;
            }
            _ => {}
        }
        match skip(d, p, end, number, wt) {
            Some(q) => p = q,
            None => break,
        }
    }
    if info.what != what::SUMMARY {
        info.values = 0;
        info.tag = &[];
        info.value_kind = 0;
        info.has_metadata = false;
        info.first_value_set = false;
    }
    info
}

fn summary<'a>(d: &'a [u8], mut p: usize, end: usize, info: &mut EventInfo<'a>) {
    debug_assert!(MESSAGES[SUMMARY].fields[0].number == 1);
    while p < end {
        let Ok((tag, q)) = varint32(d, p) else { return };
        p = q;
        let (number, wt) = (tag >> 3, tag & 7);
        if number == 1 && wt == WT_LEN {
            let Ok((s, e)) = delimited(d, p, end) else { return };
            if !info.first_value_set {
                info.first_value_set = true;
                info.tag = &[];
                info.value_kind = 0;
                info.has_metadata = false;
                info.value_range = (s, e);
                value(d, s, e, info);
            }
            info.values += 1;
            p = e;
            continue;
        }
        match skip(d, p, end, number, wt) {
            Some(q) => p = q,
            None => return,
        }
    }
}

fn value<'a>(d: &'a [u8], mut p: usize, end: usize, info: &mut EventInfo<'a>) {
    debug_assert!(MESSAGES[SUMMARY_VALUE].fields.iter().any(|f| f.number == 9));
    while p < end {
        let Ok((tag, q)) = varint32(d, p) else { return };
        p = q;
        let (number, wt) = (tag >> 3, tag & 7);
        match (number, wt) {
            (1, WT_LEN) => {
                let Ok((s, e)) = delimited(d, p, end) else { return };
                info.tag = &d[s..e];
                p = e;
                continue;
            }
            (2, WT_FIXED32) if end - p >= 4 => {
                info.value_kind = 2;
                info.simple_value = f32::from_le_bytes(d[p..p + 4].try_into().unwrap());
                p += 4;
                continue;
            }
            (3 | 4 | 5 | 6 | 8, WT_LEN) => info.value_kind = number as u8,
            (9, WT_LEN) => info.has_metadata = true,
            _ => {}
        }
        match skip(d, p, end, number, wt) {
            Some(q) => p = q,
            None => return,
        }
    }
}

/// The tag, `value` oneof and metadata presence of the `Summary.Value` in `d[s..e]` (a
/// valid record), in an [`EventInfo`]'s `tag`, `value_kind`, `has_metadata` and
/// `simple_value` fields.
pub fn value_info(d: &[u8], s: usize, e: usize) -> EventInfo<'_> {
    let mut info = EventInfo { value_range: (s, e), ..EventInfo::default() };
    value(d, s, e, &mut info);
    info
}

/// The `metadata` of the `Summary.Value` in `d[s..e]` (a valid record) as one serialized
/// `SummaryMetadata`: every occurrence's payload, concatenated (parsing a concatenation
/// merges, as protobuf merges repeated occurrences of a message field).
pub fn value_metadata(d: &[u8], s: usize, e: usize) -> Vec<u8> {
    let mut out = Vec::new();
    each_field(d, s, e, |number, wt, ps, pe| {
        if number == 9 && wt == WT_LEN {
            out.extend_from_slice(&d[ps..pe]);
        }
    });
    out
}

/// Skip one field's payload of wire type `wt` at `p` (groups included).
fn skip(d: &[u8], p: usize, end: usize, number: u32, wt: u32) -> Option<usize> {
    unknown(d, p, end, number, wt, MAX_DEPTH).ok()
}

/// The byte ranges of every `summary.value` of a valid record, with protobuf's merge
/// rules (summaries merge; a `what` oneof switched away clears them); None if the event is
/// not a summary.
pub fn summary_values(d: &[u8]) -> Option<Vec<(usize, usize)>> {
    let mut values = Vec::new();
    let mut what = what::NONE;
    each_field(d, 0, d.len(), |number, wt, s, e| match (number, wt) {
        (5, WT_LEN) => {
            if what != what::SUMMARY {
                values.clear();
                what = what::SUMMARY;
            }
            each_field(d, s, e, |n, w, vs, ve| {
                if n == 1 && w == WT_LEN {
                    values.push((vs, ve));
                }
            });
        }
        (3 | 4 | 6 | 7 | 8 | 9, WT_LEN) => what = number as u8,
        _ => {}
    });
    (what == what::SUMMARY).then_some(values)
}

/// Iterate the fields of a message in `d[p..end]` as (number, wire type, payload start,
/// payload end); for varint/fixed fields the payload is the raw bytes. Stops at the
/// first malformed field.
pub fn each_field(d: &[u8], mut p: usize, end: usize, mut f: impl FnMut(u32, u32, usize, usize)) {
    while p < end {
        let Ok((tag, q)) = varint32(d, p) else { return };
        p = q;
        let (number, wt) = (tag >> 3, tag & 7);
        let (s, e) = match wt {
            WT_LEN => match delimited(d, p, end) {
                Ok(r) => r,
                Err(_) => return,
            },
            _ => match skip(d, p, end, number, wt) {
                Some(q) => (p, q),
                None => return,
            },
        };
        f(number, wt, s, e);
        p = e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(field: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, ((field << 3) | 2) as u64);
        put_varint(&mut out, body.len() as u64);
        out.extend_from_slice(body);
        out
    }

    fn put_varint(out: &mut Vec<u8>, mut n: u64) {
        while n > 0x7f {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn check(d: &[u8]) -> Result<(), &'static str> {
        validate_event(d).map_err(|e| e.upb_text())
    }

    const CORRUPT: Result<(), &str> = Err("Wire format was corrupt");

    #[test]
    fn upb_rules() {
        assert_eq!(check(b""), Ok(()));
        assert_eq!(check(&[0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), Ok(()));
        assert_eq!(check(&[0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), CORRUPT);
        assert_eq!(check(b"\x00\x00"), CORRUPT); // field number 0
        assert_eq!(check(b"\x0e"), CORRUPT); // wire type 6
        assert_eq!(check(b"\x0c"), CORRUPT); // end group outside a group
        assert_eq!(check(b"\xa3\x01\x08\x01\xa4\x01"), Ok(())); // unknown group
        assert_eq!(check(b"\xa3\x01\x08\x01\xac\x01"), CORRUPT); // mismatched end
        assert_eq!(check(b"\xa3\x01\x08\x01"), CORRUPT); // unterminated
        assert_eq!(check(b"\x08\x05"), Ok(())); // wall_time as a varint: unknown field
        assert_eq!(check(b"\xf8\xff\xff\xff\x0f\x00"), Ok(())); // tag 2^32-8
        assert_eq!(check(b"\x80\x80\x80\x80\x10\x00"), CORRUPT); // tag 2^32
        assert_eq!(check(b"\x22\x80\x80\x80\x80\x00"), Ok(())); // 5-byte length 0
        assert_eq!(check(b"\x22\x80\x80\x80\x80\x80\x00"), CORRUPT); // 6-byte length
        assert_eq!(check(b"\x1a\x03\xed\xa0\x80"), Err("String field had bad UTF-8"));
        assert_eq!(check(b"\x22\x01\xff"), Ok(())); // graph_def is bytes
        // Summary.Value.tensor.float_val packed with 6 bytes.
        let bad_packed = ld(5, &ld(1, &ld(8, &[0x2a, 0x02, 0, 0])));
        assert_eq!(check(&bad_packed), CORRUPT);
    }

    #[test]
    fn depth() {
        let groups = |n: usize| {
            let mut v = b"\xa3\x01".repeat(n);
            v.extend(b"\xa4\x01".repeat(n));
            v
        };
        assert_eq!(check(&groups(100)), Ok(()));
        assert_eq!(check(&groups(101)), CORRUPT);
        // summary -> value -> tensor -> (variant_val -> tensors)*k -> tensor_shape [-> dim]
        let nested = |k: usize, dim: bool| {
            let mut t = if dim { ld(2, &ld(2, b"")) } else { ld(2, b"") };
            for _ in 0..k {
                t = ld(15, &ld(3, &t));
            }
            ld(5, &ld(1, &ld(8, &t)))
        };
        assert_eq!(check(&nested(48, false)), Ok(())); // 100 levels
        assert_eq!(check(&nested(48, true)), Err("Exceeded upb_DecodeOptions_MaxDepth"));
    }

    #[test]
    fn merge_rules() {
        let val = |tag: &[u8]| ld(1, &[ld(1, tag), b"\x15\x00\x00\x80\x3f".to_vec()].concat());
        let two = [ld(5, &val(b"a")), ld(5, &val(b"b"))].concat();
        let info = event_info(&two);
        assert_eq!((info.what, info.values, info.tag), (5, 2, &b"a"[..]));
        let switched = [ld(5, &val(b"a")), ld(3, b"v"), ld(5, &val(b"b"))].concat();
        let info = event_info(&switched);
        assert_eq!((info.what, info.values, info.tag), (5, 1, &b"b"[..]));
        let last_tag = ld(5, &ld(1, &[ld(1, b"a"), ld(1, b"b")].concat()));
        assert_eq!(event_info(&last_tag).tag, b"b");
    }
}
