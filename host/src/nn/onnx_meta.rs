//! The `metadata_props` of an ONNX file, read straight from its protobuf, for backends
//! whose API does not expose them (OpenVINO). ONNX Runtime reads them itself.

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
    Scalar,
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
            0 => varint(&mut buf).map(|_| Value::Scalar),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                buf.get(n..).map(|rest| {
                    buf = rest;
                    Value::Scalar
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
