//! Scalar values, decoded as Python `tbrewrite.events.summary.scalar_number` decodes them:
//! a `simple_value` (a float32), or a rank-0 `TensorProto` of a numeric dtype TensorBoard's
//! data provider plots (float32, float64, float16, int8..int64, uint8..uint64, bool) holding
//! its element in the typed field's first value (`float_val`, `double_val`, `int_val`,
//! `int64_val`, `bool_val`, `half_val`, `uint32_val`, `uint64_val`; an integer cut to the
//! dtype's width) or else in exactly one element's bytes of `tensor_content`.
//! Protobuf's merge rules apply: the last `dtype` and `tensor_content` win, repeated values
//! append (packed or not), and a `value` oneof switched away from `tensor` clears it.

use crate::proto::{each_field, varint, EventInfo};

pub const DT_FLOAT: u32 = 1;
const DT_DOUBLE: u32 = 2;
const DT_INT32: u32 = 3;
const DT_UINT8: u32 = 4;
const DT_INT16: u32 = 5;
const DT_INT8: u32 = 6;
const DT_INT64: u32 = 9;
const DT_BOOL: u32 = 10;
const DT_UINT16: u32 = 17;
const DT_HALF: u32 = 19;
const DT_UINT32: u32 = 22;
const DT_UINT64: u32 = 23;

#[derive(Default)]
struct Tensor<'a> {
    dtype: u32,
    dims: usize,
    content: &'a [u8],
    float0: Option<f32>,
    double0: Option<f64>,
    /// The first value of `int_val` (7), `int64_val` (10), `bool_val` (11), `half_val`
    /// (13), `uint32_val` (16), `uint64_val` (17), as the varint on the wire (64 bits).
    int0: Option<u64>,
    int64_0: Option<u64>,
    bool0: Option<u64>,
    half0: Option<u64>,
    uint32_0: Option<u64>,
    uint64_0: Option<u64>,
}

/// The scalar of the first summary value of a valid record, if it is one.
pub fn first_value_scalar(d: &[u8], info: &EventInfo) -> Option<f64> {
    match info.value_kind {
        2 => Some(info.simple_value as f64),
        8 => value(d, info.value_range.0, info.value_range.1).scalar,
        _ => None,
    }
}

/// What export needs of one `Summary.Value` (protobuf merge rules).
#[derive(Debug, Default)]
pub struct Value<'a> {
    pub tag: &'a [u8],
    pub has_metadata: bool,
    pub plugin_name: &'a [u8],
    pub scalar: Option<f64>,
    /// The scalar's `DataType` code (DT_FLOAT for a `simple_value`); 0 if no scalar.
    pub dtype: u8,
}

/// Decode the `Summary.Value` in `d[s..e]` (a valid record).
pub fn value(d: &[u8], s: usize, e: usize) -> Value<'_> {
    let mut v = Value::default();
    let mut kind = 0u8;
    let mut simple = 0f32;
    let mut tensor: Option<Tensor> = None;
    each_field(d, s, e, |number, wt, ps, pe| match (number, wt) {
        (1, 2) => v.tag = &d[ps..pe],
        (2, 5) => {
            kind = 2;
            simple = f32::from_le_bytes(d[ps..pe].try_into().unwrap());
            tensor = None;
        }
        (3 | 4 | 5 | 6, 2) => {
            kind = number as u8;
            tensor = None;
        }
        (8, 2) => {
            kind = 8;
            tensor_fields(d, ps, pe, tensor.get_or_insert_with(Tensor::default));
        }
        (9, 2) => {
            v.has_metadata = true;
            // SummaryMetadata.plugin_data (1) .plugin_name (1): merged, last one wins.
            each_field(d, ps, pe, |n, w, qs, qe| {
                if n == 1 && w == 2 {
                    each_field(d, qs, qe, |n2, w2, rs, re| {
                        if n2 == 1 && w2 == 2 {
                            v.plugin_name = &d[rs..re];
                        }
                    });
                }
            });
        }
        _ => {}
    });
    let scalar = match kind {
        2 => Some((simple as f64, DT_FLOAT)),
        8 => tensor.and_then(|t| t.scalar().map(|x| (x, t.dtype))),
        _ => None,
    };
    if let Some((x, dtype)) = scalar {
        v.scalar = Some(x);
        v.dtype = dtype as u8;
    }
    v
}

/// A float16's bits as a float64, as Python's `struct.unpack("<e")`: a NaN is the quiet
/// NaN of its sign (its payload dropped).
pub fn f16_to_f64(bits: u16) -> f64 {
    let negative = bits & 0x8000 != 0;
    let exponent = ((bits >> 10) & 0x1f) as i32;
    let mantissa = (bits & 0x3ff) as f64;
    let magnitude = match exponent {
        0 => mantissa * 2f64.powi(-24),
        0x1f if mantissa == 0.0 => f64::INFINITY,
        0x1f => return f64::from_bits(0x7ff8_0000_0000_0000 | (negative as u64) << 63),
        _ => (1.0 + mantissa / 1024.0) * 2f64.powi(exponent - 15),
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

impl Tensor<'_> {
    fn scalar(&self) -> Option<f64> {
        if self.dims > 0 {
            return None;
        }
        // One element: the typed field's first value, else exactly its bytes of content.
        fn content<const N: usize>(c: &[u8]) -> Option<[u8; N]> {
            c.try_into().ok()
        }
        let c = self.content;
        match self.dtype {
            DT_FLOAT => self.float0.map(f64::from).or_else(|| content(c).map(|b| f32::from_le_bytes(b) as f64)),
            DT_DOUBLE => self.double0.or_else(|| content(c).map(f64::from_le_bytes)),
            DT_INT32 => match self.int0 {
                Some(v) => Some(v as i32 as f64),
                None => content(c).map(|b| i32::from_le_bytes(b) as f64),
            },
            DT_UINT8 => match self.int0 {
                Some(v) => Some(v as u8 as f64),
                None => content::<1>(c).map(|b| b[0] as f64),
            },
            DT_INT16 => match self.int0 {
                Some(v) => Some(v as i16 as f64),
                None => content(c).map(|b| i16::from_le_bytes(b) as f64),
            },
            DT_INT8 => match self.int0 {
                Some(v) => Some(v as i8 as f64),
                None => content::<1>(c).map(|b| b[0] as i8 as f64),
            },
            DT_UINT16 => match self.int0 {
                Some(v) => Some(v as u16 as f64),
                None => content(c).map(|b| u16::from_le_bytes(b) as f64),
            },
            DT_INT64 => match self.int64_0 {
                Some(v) => Some(v as i64 as f64),
                None => content(c).map(|b| i64::from_le_bytes(b) as f64),
            },
            DT_BOOL => match self.bool0 {
                Some(v) => Some(if v != 0 { 1.0 } else { 0.0 }),
                None => content::<1>(c).map(|b| if b[0] != 0 { 1.0 } else { 0.0 }),
            },
            DT_HALF => match self.half0 {
                Some(v) => Some(f16_to_f64(v as u16)),
                None => content(c).map(|b| f16_to_f64(u16::from_le_bytes(b))),
            },
            DT_UINT32 => match self.uint32_0 {
                Some(v) => Some(v as u32 as f64),
                None => content(c).map(|b| u32::from_le_bytes(b) as f64),
            },
            DT_UINT64 => match self.uint64_0 {
                Some(v) => Some(v as f64),
                None => content(c).map(|b| u64::from_le_bytes(b) as f64),
            },
            _ => None,
        }
    }
}

/// The first varint of a repeated varint field's occurrence `d[s..e]`: the value itself
/// (wire type 0) or the first of a packed run (wire type 2).
fn first_varint(d: &[u8], wt: u32, s: usize, e: usize) -> Option<u64> {
    match wt {
        0 => varint(d, s).ok().map(|(v, _)| v),
        2 if e > s => varint(&d[..e], s).ok().map(|(v, _)| v),
        _ => None,
    }
}

fn tensor_fields<'a>(d: &'a [u8], s: usize, e: usize, t: &mut Tensor<'a>) {
    each_field(d, s, e, |number, wt, ps, pe| match (number, wt) {
        (1, 0) => {
            if let Ok((v, _)) = crate::proto::varint(d, ps) {
                t.dtype = v as u32;
            }
        }
        (2, 2) => each_field(d, ps, pe, |n, w, _, _| {
            if n == 2 && w == 2 {
                t.dims += 1;
            }
        }),
        (4, 2) => t.content = &d[ps..pe],
        (5, 5) if t.float0.is_none() => t.float0 = Some(f32::from_le_bytes(d[ps..pe].try_into().unwrap())),
        (5, 2) if t.float0.is_none() && pe - ps >= 4 => {
            t.float0 = Some(f32::from_le_bytes(d[ps..ps + 4].try_into().unwrap()))
        }
        (6, 1) if t.double0.is_none() => t.double0 = Some(f64::from_le_bytes(d[ps..pe].try_into().unwrap())),
        (6, 2) if t.double0.is_none() && pe - ps >= 8 => {
            t.double0 = Some(f64::from_le_bytes(d[ps..ps + 8].try_into().unwrap()))
        }
        (7, _) if t.int0.is_none() => t.int0 = first_varint(d, wt, ps, pe),
        (10, _) if t.int64_0.is_none() => t.int64_0 = first_varint(d, wt, ps, pe),
        (11, _) if t.bool0.is_none() => t.bool0 = first_varint(d, wt, ps, pe),
        (13, _) if t.half0.is_none() => t.half0 = first_varint(d, wt, ps, pe),
        (16, _) if t.uint32_0.is_none() => t.uint32_0 = first_varint(d, wt, ps, pe),
        (17, _) if t.uint64_0.is_none() => t.uint64_0 = first_varint(d, wt, ps, pe),
        _ => {}
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_varint(out: &mut Vec<u8>, mut n: u64) {
        while n > 0x7f {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn field(out: &mut Vec<u8>, number: u32, wt: u32, body: &[u8]) {
        put_varint(out, ((number << 3) | wt) as u64);
        if wt == 2 {
            put_varint(out, body.len() as u64);
        }
        out.extend_from_slice(body);
    }

    fn varint_bytes(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, n);
        out
    }

    /// A `Summary.Value{tag: "t", tensor: {dtype, <tensor fields>}}`, decoded.
    fn decode(dtype: u32, tensor_fields: &[u8]) -> (Option<f64>, u8) {
        let mut tensor = Vec::new();
        field(&mut tensor, 1, 0, &varint_bytes(dtype as u64));
        tensor.extend_from_slice(tensor_fields);
        let mut v = Vec::new();
        field(&mut v, 1, 2, b"t");
        field(&mut v, 8, 2, &tensor);
        let got = value(&v, 0, v.len());
        (got.scalar, got.dtype)
    }

    #[test]
    fn f16_bits_as_python_struct_reads_them() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x7bff), 65504.0);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24)); // smallest subnormal
        assert_eq!(f16_to_f64(0x3555), 0.333251953125);
        assert_eq!(f16_to_f64(0x7c00), f64::INFINITY);
        assert_eq!(f16_to_f64(0xfc00), f64::NEG_INFINITY);
        assert_eq!(f16_to_f64(0x7e01).to_bits(), 0x7ff8_0000_0000_0000);
        assert_eq!(f16_to_f64(0xfd55).to_bits(), 0xfff8_0000_0000_0000);
        assert_eq!(f16_to_f64(0x8000).to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn every_numeric_dtype_from_content() {
        let content = |bytes: &[u8]| {
            let mut f = Vec::new();
            field(&mut f, 4, 2, bytes);
            f
        };
        assert_eq!(decode(DT_FLOAT, &content(&1.5f32.to_le_bytes())), (Some(1.5), 1));
        assert_eq!(decode(DT_DOUBLE, &content(&0.1f64.to_le_bytes())), (Some(0.1), 2));
        assert_eq!(decode(DT_INT32, &content(&(-7i32).to_le_bytes())), (Some(-7.0), 3));
        assert_eq!(decode(DT_UINT8, &content(&[200])), (Some(200.0), 4));
        assert_eq!(decode(DT_INT16, &content(&(-300i16).to_le_bytes())), (Some(-300.0), 5));
        assert_eq!(decode(DT_INT8, &content(&[0xff])), (Some(-1.0), 6));
        assert_eq!(decode(DT_INT64, &content(&(1i64 << 40).to_le_bytes())), (Some(2f64.powi(40)), 9));
        assert_eq!(decode(DT_BOOL, &content(&[2])), (Some(1.0), 10));
        assert_eq!(decode(DT_UINT16, &content(&60000u16.to_le_bytes())), (Some(60000.0), 17));
        assert_eq!(decode(DT_HALF, &content(&0x3c00u16.to_le_bytes())), (Some(1.0), 19));
        assert_eq!(decode(DT_UINT32, &content(&u32::MAX.to_le_bytes())), (Some(u32::MAX as f64), 22));
        assert_eq!(decode(DT_UINT64, &content(&u64::MAX.to_le_bytes())), (Some(u64::MAX as f64), 23));
        // One element's bytes exactly; strings, complex, bfloat16 are no scalars.
        assert_eq!(decode(DT_INT32, &content(&[1, 2, 3])), (None, 0));
        assert_eq!(decode(7, &content(b"abcd")), (None, 0));
        assert_eq!(decode(14, &content(&[0x80, 0x3f])), (None, 0));
    }

    #[test]
    fn typed_fields_packed_or_not_first_value_cut_to_width() {
        // int_val (7) unpacked: a negative int32 is a 10-byte varint.
        let mut f = Vec::new();
        field(&mut f, 7, 0, &varint_bytes(-5i64 as u64));
        field(&mut f, 7, 0, &varint_bytes(9));
        assert_eq!(decode(DT_INT32, &f), (Some(-5.0), 3));
        assert_eq!(decode(DT_UINT8, &f), (Some(251.0), 4)); // low byte of -5
        // packed int64_val (10)
        let mut run = varint_bytes(-(1i64 << 50) as u64);
        run.extend(varint_bytes(3));
        let mut f = Vec::new();
        field(&mut f, 10, 2, &run);
        assert_eq!(decode(DT_INT64, &f), (Some(-(2f64.powi(50))), 9));
        // bool_val (11), half_val (13); an empty packed run adds nothing.
        let mut f = Vec::new();
        field(&mut f, 11, 2, &[]);
        field(&mut f, 11, 0, &varint_bytes(1));
        assert_eq!(decode(DT_BOOL, &f), (Some(1.0), 10));
        let mut f = Vec::new();
        field(&mut f, 13, 0, &varint_bytes(0x1_c000)); // bits above 16 are cut
        assert_eq!(decode(DT_HALF, &f), (Some(-2.0), 19));
        // The typed field wins over content; uint32_val (16), uint64_val (17); int_val is
        // not uint64's field.
        let mut f = Vec::new();
        field(&mut f, 7, 0, &varint_bytes(4));
        field(&mut f, 4, 2, &9i32.to_le_bytes());
        assert_eq!(decode(DT_INT32, &f), (Some(4.0), 3));
        let mut f = Vec::new();
        field(&mut f, 16, 0, &varint_bytes(u32::MAX as u64 + 6)); // cut to 32 bits: 5
        assert_eq!(decode(DT_UINT32, &f), (Some(5.0), 22));
        let mut f = Vec::new();
        field(&mut f, 17, 0, &varint_bytes(u64::MAX));
        assert_eq!(decode(DT_UINT64, &f), (Some(u64::MAX as f64), 23));
        let mut f = Vec::new();
        field(&mut f, 7, 0, &varint_bytes(4));
        assert_eq!(decode(DT_UINT64, &f), (None, 0));
    }
}
