//! CVAT's payloads (see shared/docs/cvat-protocol.md §4): parsing requests with errors
//! that name the field, and rendering results exactly as CVAT reads them.

use serde_json::{json, Map, Value};

use crate::api_error::ApiError;
use crate::runtime::loaded::{shape_name, Detection};

/// A detector request: `{"image": "<base64>", "threshold": 0.5}`.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorRequest {
    pub image: String,
    pub threshold: Option<f32>,
}

/// The body must be a JSON object.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::field("body", format!("invalid JSON: {e}")))?;
    match value {
        Value::Object(m) => Ok(m),
        other => Err(ApiError::field(
            "body",
            format!("expected a JSON object, got {}", type_name(&other)),
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Required string field.
pub fn string_field(m: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match m.get(field) {
        None | Some(Value::Null) => Err(ApiError::field(field, format!("`{field}` is required"))),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ApiError::field(
            field,
            format!("expected a string, got {}", type_name(other)),
        )),
    }
}

/// Optional number in `[0, 1]` (CVAT drops `null` and `0`; both mean "use the default").
pub fn unit_field(m: &Map<String, Value>, field: &str) -> Result<Option<f32>, ApiError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let v = n
                .as_f64()
                .filter(|v| v.is_finite() && (0.0..=1.0).contains(v));
            match v {
                Some(0.0) => Ok(None),
                Some(v) => Ok(Some(v as f32)),
                None => Err(ApiError::field(
                    field,
                    format!("expected a number between 0 and 1, got {n}"),
                )),
            }
        }
        Some(other) => Err(ApiError::field(
            field,
            format!("expected a number, got {}", type_name(other)),
        )),
    }
}

impl DetectorRequest {
    /// Parse and check a detector body.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let m = parse_object(body)?;
        Ok(Self {
            image: string_field(&m, "image")?,
            threshold: unit_field(&m, "threshold")?,
        })
    }
}

/// Round a coordinate for JSON (f32 precision, two decimals).
fn coord(v: f32) -> Value {
    json!((v as f64 * 100.0).round() / 100.0)
}

/// Confidence as CVAT's examples carry it: a string.
fn confidence(v: f32) -> String {
    format!("{}", (v as f64 * 10_000.0).round() / 10_000.0)
}

/// Render detections as CVAT's detector response (§4.1.2).
pub fn detections_json(detections: &[Detection]) -> Value {
    Value::Array(detections.iter().map(detection_json).collect())
}

fn detection_json(d: &Detection) -> Value {
    let mut o = Map::new();
    o.insert("label".into(), json!(d.label));
    o.insert("type".into(), json!(shape_name(d.shape)));
    o.insert(
        "points".into(),
        Value::Array(d.points.iter().map(|&p| coord(p)).collect()),
    );
    o.insert("confidence".into(), json!(confidence(d.confidence)));
    if let Some(m) = &d.mask {
        let mut flat: Vec<Value> = m.bitmap.iter().map(|&b| json!(u8::from(b != 0))).collect();
        flat.extend([m.x1, m.y1, m.x2, m.y2].map(|v| json!(v)));
        o.insert("mask".into(), Value::Array(flat));
    }
    if let Some(r) = d.rotation {
        o.insert("rotation".into(), coord(r));
    }
    if !d.attributes.is_empty() {
        o.insert(
            "attributes".into(),
            Value::Array(
                d.attributes
                    .iter()
                    .map(|a| json!({"name": a.name, "value": a.value}))
                    .collect(),
            ),
        );
    }
    if !d.elements.is_empty() {
        o.insert(
            "elements".into(),
            Value::Array(
                d.elements
                    .iter()
                    .map(|e| json!({"label": e.label, "type": "points", "points": [coord(e.x), coord(e.y)], "outside": u8::from(e.outside)}))
                    .collect(),
            ),
        );
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_request_fields() {
        let r = DetectorRequest::parse(br#"{"image":"abc","threshold":0.25}"#).unwrap();
        assert_eq!(r.threshold, Some(0.25));
        assert_eq!(
            DetectorRequest::parse(br#"{"image":"abc","threshold":0}"#)
                .unwrap()
                .threshold,
            None
        );
        let e = DetectorRequest::parse(br#"{"threshold":0.5}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("image"));
        let e = DetectorRequest::parse(br#"{"image":5}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("image"));
        let e = DetectorRequest::parse(br#"{"image":"a","threshold":"high"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("threshold"));
        let e = DetectorRequest::parse(br#"{"image":"a","threshold":7}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("threshold"));
        assert_eq!(
            DetectorRequest::parse(b"[1]").unwrap_err().field.as_deref(),
            Some("body")
        );
        assert_eq!(
            DetectorRequest::parse(b"\xff\xfe")
                .unwrap_err()
                .field
                .as_deref(),
            Some("body")
        );
    }

    #[test]
    fn confidence_is_a_short_string() {
        assert_eq!(confidence(0.92137), "0.9214");
        assert_eq!(confidence(1.0), "1");
    }
}
