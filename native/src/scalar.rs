//! Scalar values, decoded as Python `tbrewrite.events.reader.scalar_value` decodes them:
//! a `simple_value`, or a rank-0 `TensorProto` of dtype DT_FLOAT (`float_val[0]`, else 4
//! bytes of `tensor_content`) or DT_DOUBLE (`double_val[0]`, else 8 bytes of content).
//! Protobuf's merge rules apply: the last `dtype` and `tensor_content` win, repeated values
//! append (packed or not), and a `value` oneof switched away from `tensor` clears it.

use crate::proto::{each_field, EventInfo};

const DT_FLOAT: u32 = 1;
const DT_DOUBLE: u32 = 2;

#[derive(Default)]
struct Tensor<'a> {
    dtype: u32,
    dims: usize,
    content: &'a [u8],
    float0: Option<f32>,
    double0: Option<f64>,
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
    v.scalar = match kind {
        2 => Some(simple as f64),
        8 => tensor.and_then(|t| t.scalar()),
        _ => None,
    };
    v
}

impl Tensor<'_> {
    fn scalar(&self) -> Option<f64> {
        if self.dims > 0 {
            return None;
        }
        match self.dtype {
            DT_FLOAT => self.float0.map(f64::from).or_else(|| {
                (self.content.len() == 4).then(|| f32::from_le_bytes(self.content.try_into().unwrap()) as f64)
            }),
            DT_DOUBLE => self.double0.or_else(|| {
                (self.content.len() == 8).then(|| f64::from_le_bytes(self.content.try_into().unwrap()))
            }),
            _ => None,
        }
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
        _ => {}
    });
}
