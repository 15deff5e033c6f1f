//! What an ONNX file declares, read straight from its protobuf without a session: its
//! `metadata_props`, for backends whose API does not expose them (OpenVINO), and its whole
//! signature (inputs, outputs, metadata), for components that describe themselves while the
//! host lists them (listing never loads a model).

use super::graph::{Signature, TensorInfo};
use super::tensor::ElementType;

/// The graph's inputs (initializers excluded, as ONNX Runtime does), outputs and metadata,
/// as a loaded session would report them. Symbolic or missing dimensions are -1.
pub fn signature(model: &[u8]) -> Result<Signature, String> {
    let mut graph = None;
    for (field, value) in Fields(model) {
        if let (7, Value::Bytes(g)) = (field, value) {
            graph = Some(g);
        }
    }
    let graph = graph.ok_or("not an ONNX model (no graph)")?;
    let (mut inputs, mut outputs, mut initializers) = (vec![], vec![], vec![]);
    for (field, value) in Fields(graph) {
        match (field, value) {
            (5, Value::Bytes(t)) => initializers.push(string_field(t, 8)),
            (11, Value::Bytes(v)) => inputs.push(value_info(v)),
            (12, Value::Bytes(v)) => outputs.push(value_info(v)),
            _ => {}
        }
    }
    inputs.retain(|i| !initializers.contains(&i.name));
    Ok(Signature {
        inputs,
        outputs,
        metadata: metadata_props(model),
    })
}

/// A `ValueInfoProto`: name (1) and type (2) -> tensor_type (1) -> elem_type (1), shape (2)
/// -> dim (1) -> dim_value (1) | dim_param (2).
fn value_info(v: &[u8]) -> TensorInfo {
    let mut info = TensorInfo {
        name: string_field(v, 1),
        ty: None,
        dims: vec![],
    };
    let tensor = message(v, 2).and_then(|t| message(t, 1));
    for (field, value) in tensor.map(Fields).into_iter().flatten() {
        match (field, value) {
            (1, Value::Varint(t)) => info.ty = element_type(t),
            (2, Value::Bytes(shape)) => {
                for (f, dim) in Fields(shape) {
                    if let (1, Value::Bytes(dim)) = (f, dim) {
                        let fixed = Fields(dim).find_map(|(f, v)| match (f, v) {
                            (1, Value::Varint(n)) => Some(n as i64),
                            _ => None,
                        });
                        info.dims.push(fixed.unwrap_or(-1));
                    }
                }
            }
            _ => {}
        }
    }
    info
}

/// ONNX's `TensorProto.DataType` codes for the element types wasi-nn has.
fn element_type(code: u64) -> Option<ElementType> {
    Some(match code {
        1 => ElementType::F32,
        2 => ElementType::U8,
        6 => ElementType::I32,
        7 => ElementType::I64,
        10 => ElementType::F16,
        11 => ElementType::F64,
        16 => ElementType::Bf16,
        _ => return None,
    })
}

/// The last length-delimited field `n` of a message.
fn message(msg: &[u8], n: u64) -> Option<&[u8]> {
    Fields(msg)
        .filter_map(|(f, v)| match v {
            Value::Bytes(b) if f == n => Some(b),
            _ => None,
        })
        .last()
}

fn string_field(msg: &[u8], n: u64) -> String {
    message(msg, n)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// Key/value pairs of `ModelProto.metadata_props` (field 14), in file order. Malformed
/// input yields what was read before the damage.
pub fn metadata_props(model: &[u8]) -> Vec<(String, String)> {
    let mut props = Vec::new();
    for (field, value) in Fields(model) {
        if let (14, Value::Bytes(entry)) = (field, value) {
            let (mut key, mut val) = (String::new(), String::new());
            for (f, v) in Fields(entry) {
                match (f, v) {
                    (1, Value::Bytes(b)) => key = String::from_utf8_lossy(b).into_owned(),
                    (2, Value::Bytes(b)) => val = String::from_utf8_lossy(b).into_owned(),
                    _ => {}
                }
            }
            props.push((key, val));
        }
    }
    props
}

enum Value<'a> {
    Varint(u64),
    Fixed,
    Bytes(&'a [u8]),
}

/// Top-level fields of one protobuf message; stops at the first malformed field.
struct Fields<'a>(&'a [u8]);

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

impl<'a> Iterator for Fields<'a> {
    type Item = (u64, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = self.0;
        let key = varint(&mut buf)?;
        let value = match key & 7 {
            0 => varint(&mut buf).map(Value::Varint),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                buf.get(n..).map(|rest| {
                    buf = rest;
                    Value::Fixed
                })
            }
            2 => {
                let len = usize::try_from(varint(&mut buf)?).ok()?;
                (len <= buf.len()).then(|| {
                    let (bytes, rest) = buf.split_at(len);
                    buf = rest;
                    Value::Bytes(bytes)
                })
            }
            _ => None,
        };
        let Some(value) = value else {
            self.0 = &[];
            return None;
        };
        self.0 = buf;
        Some((key >> 3, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u8, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![(n << 3) | 2, bytes.len() as u8];
        v.extend_from_slice(bytes);
        v
    }

    #[test]
    fn reads_metadata_between_other_fields_and_survives_truncation() {
        let mut entry = field(1, b"names");
        entry.extend(field(2, b"{0: 'face'}"));
        let mut model = vec![0x08, 0x08]; // ir_version = 8
        model.extend(field(2, b"producer"));
        model.extend(field(14, &entry));
        model.extend([0x0d, 1, 2, 3, 4]); // a fixed32 field 1 after it
        assert_eq!(
            metadata_props(&model),
            vec![("names".to_string(), "{0: 'face'}".to_string())]
        );
        assert!(metadata_props(&model[..model.len() - 8]).is_empty());
        assert!(metadata_props(b"\xff\xff\xff").is_empty());
    }
}
