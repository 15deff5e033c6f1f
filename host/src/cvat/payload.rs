//! CVAT's payloads (see shared/docs/cvat-protocol.md §4): parsing requests with errors
//! that name the field, and rendering results exactly as CVAT reads them.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::runtime::loaded::{shape_name, Detection};
use crate::serve::api_error::ApiError;

/// A detector request: `{"image": "<base64>", "threshold": 0.5}`.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorRequest {
    pub image: String,
    pub threshold: Option<f32>,
}

/// How much one request may ask of a model: every list a component turns into tensor work
/// is bounded where the request is read (settings `max_clicks`, `max_track_objects`,
/// `max_reid_boxes`), and a request past a bound gets a 400 naming the field and the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Positive and negative clicks together.
    pub clicks: usize,
    /// Tracker shapes or states.
    pub track_objects: usize,
    /// Re-identification boxes per frame.
    pub reid_boxes: usize,
}

impl RequestLimits {
    /// The bounds in `settings`.
    pub fn of(settings: &crate::config::Settings) -> Self {
        Self {
            clicks: settings.max_clicks,
            track_objects: settings.max_track_objects,
            reid_boxes: settings.max_reid_boxes,
        }
    }
}

/// The length of list field `field`, if it is a list.
fn list_len(m: &Map<String, Value>, field: &str) -> usize {
    m.get(field).and_then(Value::as_array).map_or(0, Vec::len)
}

/// A 400 for `n` items in `field`, over `max` (settings key `setting`).
fn too_many(field: &str, what: &str, n: usize, max: usize, setting: &str) -> ApiError {
    ApiError::field(
        field,
        format!("{n} {what}, over the limit of {max} per request (settings.{setting})"),
    )
}

/// A 400 for the first list field of `fields` with more than `max` items.
fn each_within(
    m: &Map<String, Value>,
    fields: &[&str],
    what: &str,
    max: usize,
    setting: &str,
) -> Result<(), ApiError> {
    match fields
        .iter()
        .map(|f| (*f, list_len(m, f)))
        .find(|(_, n)| *n > max)
    {
        Some((field, n)) => Err(too_many(field, what, n, max, setting)),
        None => Ok(()),
    }
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
fn round2(v: f32) -> f64 {
    (v as f64 * 100.0).round() / 100.0
}

fn coord(v: f32) -> Value {
    json!(round2(v))
}

/// Confidence as CVAT's examples carry it: a string.
fn confidence(v: f32) -> String {
    format!("{}", (v as f64 * 10_000.0).round() / 10_000.0)
}

/// CVAT's detector response (§4.1.2), serialized straight to JSON text: a mask's bitmap is
/// written number by number instead of as one JSON value per pixel (a 1 Mpx mask used to
/// take tens of milliseconds and ~100 MB of temporaries).
pub struct Detections<'a>(pub &'a [Detection]);

/// The detector response as a JSON value (for tests and tools; the server streams
/// [`Detections`]).
pub fn detections_json(detections: &[Detection]) -> Value {
    serde_json::to_value(Detections(detections)).unwrap_or(Value::Null)
}

impl Serialize for Detections<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(DetectionJson))
    }
}

struct DetectionJson<'a>(&'a Detection);

/// Rounded coordinates (f32 precision, two decimals).
struct Coords<'a>(&'a [f32]);

impl Serialize for Coords<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|&v| round2(v)))
    }
}

/// A mask as CVAT reads it: one 0/1 per pixel of the inclusive box, then the box.
struct MaskJson<'a>(&'a crate::runtime::loaded::Mask);

impl Serialize for MaskJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let bits = m.bitmap.iter().map(|&b| u32::from(b != 0));
        s.collect_seq(bits.chain([m.x1, m.y1, m.x2, m.y2]))
    }
}

impl Serialize for DetectionJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let mut o = s.serialize_map(None)?;
        o.serialize_entry("label", &d.label)?;
        o.serialize_entry("type", shape_name(d.shape))?;
        // Tags and skeletons carry no points; a mask's points are an optional polygon.
        if !(d.points.is_empty() && matches!(shape_name(d.shape), "tag" | "skeleton" | "mask")) {
            o.serialize_entry("points", &Coords(&d.points))?;
        }
        o.serialize_entry("confidence", &confidence(d.confidence))?;
        if let Some(m) = &d.mask {
            o.serialize_entry("mask", &MaskJson(m))?;
        }
        if let Some(r) = d.rotation {
            o.serialize_entry("rotation", &round2(r))?;
        }
        if !d.attributes.is_empty() {
            let attributes: Vec<Value> = d
                .attributes
                .iter()
                .map(|a| json!({"name": a.name, "value": a.value}))
                .collect();
            o.serialize_entry("attributes", &attributes)?;
        }
        if !d.elements.is_empty() {
            let elements: Vec<Value> = d
                .elements
                .iter()
                .map(|e| json!({"label": e.label, "type": "points", "points": [coord(e.x), coord(e.y)], "outside": u8::from(e.outside)}))
                .collect();
            o.serialize_entry("elements", &elements)?;
        }
        o.end()
    }
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
    fn every_detection_field_renders_as_cvat_reads_it() {
        use crate::runtime::loaded::{Attribute, Element, Mask, WitShapeType};
        let det = |shape, points: Vec<f32>| Detection {
            label: "x".into(),
            confidence: 0.5,
            shape,
            points,
            mask: None,
            rotation: None,
            attributes: vec![],
            elements: vec![],
        };
        let mut rect = det(WitShapeType::Rectangle, vec![1.0, 2.0, 3.0, 4.0]);
        rect.rotation = Some(15.0);
        rect.attributes = vec![Attribute {
            name: "age".into(),
            value: "31".into(),
        }];
        let mut mask = det(WitShapeType::Mask, vec![]);
        mask.mask = Some(Mask {
            x1: 10,
            y1: 20,
            x2: 12,
            y2: 21,
            bitmap: vec![0, 1, 1, 1, 1, 0],
        });
        let mut skel = det(WitShapeType::Skeleton, vec![]);
        skel.elements = vec![Element {
            label: "nose".into(),
            x: 5.0,
            y: 6.0,
            outside: true,
        }];
        let tag = det(WitShapeType::Tag, vec![]);
        assert_eq!(
            detections_json(&[rect, mask, skel, tag]),
            json!([
                {"label": "x", "type": "rectangle", "points": [1.0, 2.0, 3.0, 4.0], "confidence": "0.5", "rotation": 15.0,
                 "attributes": [{"name": "age", "value": "31"}]},
                {"label": "x", "type": "mask", "confidence": "0.5", "mask": [0, 1, 1, 1, 1, 0, 10, 20, 12, 21]},
                {"label": "x", "type": "skeleton", "confidence": "0.5",
                 "elements": [{"label": "nose", "type": "points", "points": [5.0, 6.0], "outside": 1}]},
                {"label": "x", "type": "tag", "confidence": "0.5"},
            ])
        );
    }

    #[test]
    fn confidence_is_a_short_string() {
        assert_eq!(confidence(0.92137), "0.9214");
        assert_eq!(confidence(1.0), "1");
    }
}

/// A finite number from JSON.
fn number(v: &Value) -> Option<f32> {
    v.as_f64()
        .filter(|x| x.is_finite() && x.abs() < 1e9)
        .map(|x| x as f32)
}

/// `[[x, y], ...]`, each pair of finite numbers.
fn point_list(
    m: &Map<String, Value>,
    field: &str,
    required: bool,
) -> Result<Vec<(f32, f32)>, ApiError> {
    match m.get(field) {
        None | Some(Value::Null) if !required => Ok(vec![]),
        None | Some(Value::Null) => Err(ApiError::field(field, format!("`{field}` is required"))),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, p)| match p.as_array().map(|a| a.as_slice()) {
                Some([x, y]) => match (number(x), number(y)) {
                    (Some(x), Some(y)) => Ok((x, y)),
                    _ => Err(ApiError::field(
                        field,
                        format!("point {i}: coordinates must be finite numbers"),
                    )),
                },
                _ => Err(ApiError::field(
                    field,
                    format!("point {i}: expected [x, y]"),
                )),
            })
            .collect(),
        Some(other) => Err(ApiError::field(
            field,
            format!("expected a list of [x, y], got {}", type_name(other)),
        )),
    }
}

/// An interactor request (§4.2.2).
#[derive(Debug, Clone, PartialEq)]
pub struct InteractorRequest {
    pub image: String,
    pub positive: Vec<(f32, f32)>,
    pub negative: Vec<(f32, f32)>,
    /// `[[xtl, ytl], [xbr, ybr]]`; `[]` and `null` mean no box.
    pub bbox: Option<[f32; 4]>,
}

impl InteractorRequest {
    /// Parse and check an interactor body.
    pub fn parse(body: &[u8], limits: &RequestLimits) -> Result<Self, ApiError> {
        let m = parse_object(body)?;
        let clicks = list_len(&m, "pos_points") + list_len(&m, "neg_points");
        if clicks > limits.clicks {
            let field = if list_len(&m, "pos_points") > 0 {
                "pos_points"
            } else {
                "neg_points"
            };
            return Err(too_many(
                field,
                "clicks in pos_points and neg_points",
                clicks,
                limits.clicks,
                "max_clicks",
            ));
        }
        let bbox = match point_list(&m, "obj_bbox", false)?.as_slice() {
            [] => None,
            [(x1, y1), (x2, y2)] => Some([x1.min(*x2), y1.min(*y2), x1.max(*x2), y1.max(*y2)]),
            other => {
                return Err(ApiError::field(
                    "obj_bbox",
                    format!("expected two corners, got {} points", other.len()),
                ))
            }
        };
        Ok(Self {
            image: string_field(&m, "image")?,
            positive: point_list(&m, "pos_points", true)?,
            negative: point_list(&m, "neg_points", true)?,
            bbox,
        })
    }

    /// Refuse clicks outside the frame (a 1-pixel margin for clicks on the border).
    pub fn check_bounds(&self, width: u32, height: u32) -> Result<(), ApiError> {
        let inside = |&(x, y): &(f32, f32)| {
            x >= -1.0 && y >= -1.0 && x <= width as f32 + 1.0 && y <= height as f32 + 1.0
        };
        for (field, pts) in [
            ("pos_points", &self.positive),
            ("neg_points", &self.negative),
        ] {
            if let Some(p) = pts.iter().find(|p| !inside(p)) {
                return Err(ApiError::field(
                    field,
                    format!("point {p:?} is outside the {width}x{height} image"),
                ));
            }
        }
        Ok(())
    }
}

/// Interactor results in the current unified format (§4.2.3): one mask shape per proposal,
/// best first, CVAT RLE with the inclusive bbox, confidence as attribute `spec_id` 0.
pub fn interactor_json(proposals: &[crate::runtime::loaded::Proposal]) -> Value {
    let shapes: Vec<Value> = proposals
        .iter()
        .map(|p| {
            let m = &p.mask;
            json!({
                "type": "mask",
                "points": crate::cvat::rle::points(&m.bitmap, m.x1, m.y1, m.x2, m.y2),
                "attributes": [{"spec_id": 0, "value": confidence(p.confidence)}],
            })
        })
        .collect();
    json!({ "shapes": shapes })
}

/// The legacy interactor answer (§4.2.4): the best proposal as a full-image 2-D mask, no
/// `bounds` (UIs since 2.60 treat `mask` as the full image).
pub fn interactor_legacy_json(
    proposals: &[crate::runtime::loaded::Proposal],
    width: u32,
    height: u32,
) -> Value {
    let mut rows = vec![vec![0u8; width as usize]; height as usize];
    if let Some(p) = proposals.first() {
        let m = &p.mask;
        let bw = (m.x2 - m.x1 + 1) as usize;
        for (i, &v) in m.bitmap.iter().enumerate() {
            let (x, y) = (m.x1 as usize + i % bw, m.y1 as usize + i / bw);
            if v != 0 && y < rows.len() && x < width as usize {
                rows[y][x] = 1;
            }
        }
    }
    json!({ "mask": rows })
}

/// How a tracker request's shapes were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeFlavour {
    /// `[x1, y1, x2, y2]` (no `supported_shape_types`).
    Legacy,
    /// `{"type": ..., "points": [...]}`.
    Dict,
}

/// One object of a tracker request.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackItem {
    /// No state yet: start from this rectangle.
    Start([f32; 4]),
    /// Continue from this state (compact JSON text).
    Continue(String),
}

/// A tracker request (§4.3).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerRequest {
    pub image: String,
    pub items: Vec<TrackItem>,
    /// The flavour the request used, when its shapes said (all-null shapes do not).
    pub flavour: Option<ShapeFlavour>,
}

fn rectangle(
    field: &str,
    i: usize,
    v: &Value,
    flavour: &mut Option<ShapeFlavour>,
) -> Result<Option<[f32; 4]>, ApiError> {
    let points = match v {
        Value::Null => return Ok(None),
        Value::Array(a) => {
            *flavour = Some(ShapeFlavour::Legacy);
            a
        }
        Value::Object(o) => {
            *flavour = Some(ShapeFlavour::Dict);
            let ty = o.get("type").and_then(Value::as_str).unwrap_or("rectangle");
            if ty != "rectangle" {
                return Err(ApiError::field(
                    field,
                    format!("This function does not support shapes of type {ty}"),
                ));
            }
            o.get("points")
                .and_then(Value::as_array)
                .ok_or_else(|| ApiError::field(field, format!("shape {i}: no points")))?
        }
        other => {
            return Err(ApiError::field(
                field,
                format!("shape {i}: expected a shape, got {}", type_name(other)),
            ))
        }
    };
    let nums: Option<Vec<f32>> = points.iter().map(number).collect();
    match nums.as_deref() {
        // Any point list becomes its axis-aligned box, as CVAT's UI does.
        Some(p) if p.len() >= 4 && p.len() % 2 == 0 => {
            let xs = p.iter().step_by(2);
            let ys = p.iter().skip(1).step_by(2);
            let (x1, x2) = xs.fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            let (y1, y2) = ys.fold((f32::MAX, f32::MIN), |(a, b), &y| (a.min(y), b.max(y)));
            if x2 <= x1 || y2 <= y1 {
                return Err(ApiError::field(field, format!("shape {i}: empty box")));
            }
            Ok(Some([x1, y1, x2, y2]))
        }
        _ => Err(ApiError::field(
            field,
            format!("shape {i}: points must be an even list of at least 4 finite numbers"),
        )),
    }
}

impl TrackerRequest {
    /// Parse and check a tracker body: `states` empty (or null) starts every shape; a state
    /// continues its object.
    pub fn parse(body: &[u8], limits: &RequestLimits) -> Result<Self, ApiError> {
        let m = parse_object(body)?;
        let image = string_field(&m, "image")?;
        let list = |f: &str| match m.get(f) {
            None | Some(Value::Null) => Ok(vec![]),
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(other) => Err(ApiError::field(
                f,
                format!("expected a list, got {}", type_name(other)),
            )),
        };
        each_within(
            &m,
            &["shapes", "states"],
            "objects",
            limits.track_objects,
            "max_track_objects",
        )?;
        let shapes = list("shapes")?;
        let states = list("states")?;
        let mut flavour = None;
        let n = shapes.len().max(states.len());
        if n == 0 {
            return Err(ApiError::field(
                "shapes",
                "no shapes and no states to track",
            ));
        }
        let mut items = Vec::with_capacity(n);
        for i in 0..n {
            let state = states.get(i).filter(|s| !s.is_null());
            let shape = match shapes.get(i) {
                Some(v) => rectangle("shapes", i, v, &mut flavour)?,
                None => None,
            };
            items.push(match (state, shape) {
                (Some(s), _) => TrackItem::Continue(s.to_string()),
                (None, Some(b)) => TrackItem::Start(b),
                (None, None) => {
                    return Err(ApiError::field(
                        "states",
                        format!("object {i} has neither a state nor a shape"),
                    ))
                }
            });
        }
        Ok(Self {
            image,
            items,
            flavour,
        })
    }
}

/// A tracked rectangle in the request's flavour.
pub fn tracked_shape_json(points: &[f32], flavour: ShapeFlavour) -> Value {
    let pts = Value::Array(points.iter().map(|&p| coord(p)).collect());
    match flavour {
        ShapeFlavour::Legacy => pts,
        ShapeFlavour::Dict => json!({"type": "rectangle", "points": pts}),
    }
}

/// A reid request (§4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct ReidRequest {
    pub image0: String,
    pub image1: String,
    pub boxes0: Vec<[f32; 4]>,
    pub boxes1: Vec<[f32; 4]>,
    pub threshold: Option<f32>,
    pub max_distance: Option<f32>,
}

fn boxes(m: &Map<String, Value>, field: &str) -> Result<Vec<[f32; 4]>, ApiError> {
    let Some(Value::Array(items)) = m.get(field) else {
        return Err(ApiError::field(
            field,
            format!("`{field}` must be a list of shapes"),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let p: Option<Vec<f32>> = b
                .get("points")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(number).collect());
            match p.as_deref() {
                Some([x1, y1, x2, y2]) => Ok([*x1, *y1, *x2, *y2]),
                _ => Err(ApiError::field(
                    field,
                    format!("shape {i}: `points` must be 4 finite numbers"),
                )),
            }
        })
        .collect()
}

fn positive_field(m: &Map<String, Value>, field: &str) -> Result<Option<f32>, ApiError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match number(v) {
            Some(0.0) => Ok(None),
            Some(x) if x > 0.0 => Ok(Some(x)),
            _ => Err(ApiError::field(
                field,
                format!("expected a positive number, got {v}"),
            )),
        },
    }
}

impl ReidRequest {
    /// Parse and check a reid body; extra keys of the CVAT shape dicts are ignored.
    pub fn parse(body: &[u8], limits: &RequestLimits) -> Result<Self, ApiError> {
        let m = parse_object(body)?;
        each_within(
            &m,
            &["boxes0", "boxes1"],
            "boxes",
            limits.reid_boxes,
            "max_reid_boxes",
        )?;
        Ok(Self {
            image0: string_field(&m, "image0")?,
            image1: string_field(&m, "image1")?,
            boxes0: boxes(&m, "boxes0")?,
            boxes1: boxes(&m, "boxes1")?,
            threshold: positive_field(&m, "threshold")?,
            max_distance: positive_field(&m, "max_distance")?,
        })
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits {
        clicks: 3,
        track_objects: 2,
        reid_boxes: 2,
    };

    #[test]
    fn request_sizes_are_bounded_naming_the_field_and_the_setting() {
        let e = InteractorRequest::parse(
            br#"{"image":"a","pos_points":[[1,2],[3,4]],"neg_points":[[5,6],[7,8]]}"#,
            &LIMITS,
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("pos_points"));
        assert!(
            e.error.contains("4 clicks") && e.error.contains("settings.max_clicks"),
            "{}",
            e.error
        );
        assert!(InteractorRequest::parse(
            br#"{"image":"a","pos_points":[[1,2],[3,4]],"neg_points":[[5,6]]}"#,
            &LIMITS
        )
        .is_ok());
        let e = TrackerRequest::parse(
            br#"{"image":"a","shapes":[null,null,null],"states":[]}"#,
            &LIMITS,
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("shapes"));
        assert!(
            e.error.contains("settings.max_track_objects"),
            "{}",
            e.error
        );
        let e = ReidRequest::parse(
            br#"{"image0":"a","image1":"b","boxes0":[],"boxes1":[{},{},{}]}"#,
            &LIMITS,
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("boxes1"));
        assert!(e.error.contains("3 boxes"), "{}", e.error);
    }

    #[test]
    fn interactor_requests() {
        let r = InteractorRequest::parse(
            br#"{"image":"a","pos_points":[[1,2]],"neg_points":[],"obj_bbox":[[5,6],[1,2]]}"#,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(r.bbox, Some([1.0, 2.0, 5.0, 6.0]));
        for bbox in ["[]", "null"] {
            let body = format!(
                r#"{{"image":"a","pos_points":[[1,2]],"neg_points":[],"obj_bbox":{bbox}}}"#
            );
            assert_eq!(
                InteractorRequest::parse(body.as_bytes(), &LIMITS)
                    .unwrap()
                    .bbox,
                None
            );
        }
        let r = InteractorRequest::parse(
            br#"{"image":"a","pos_points":[[1,2]],"neg_points":[]}"#,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(r.bbox, None);
        assert_eq!(
            InteractorRequest::parse(br#"{"image":"a","neg_points":[]}"#, &LIMITS)
                .unwrap_err()
                .field
                .as_deref(),
            Some("pos_points")
        );
        assert_eq!(
            InteractorRequest::parse(
                br#"{"image":"a","pos_points":[[1]],"neg_points":[]}"#,
                &LIMITS
            )
            .unwrap_err()
            .field
            .as_deref(),
            Some("pos_points")
        );
        assert_eq!(
            InteractorRequest::parse(
                br#"{"image":"a","pos_points":[],"neg_points":[["x",1]]}"#,
                &LIMITS
            )
            .unwrap_err()
            .field
            .as_deref(),
            Some("neg_points")
        );
        let r = InteractorRequest::parse(
            br#"{"image":"a","pos_points":[[500,2]],"neg_points":[]}"#,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(
            r.check_bounds(100, 100).unwrap_err().field.as_deref(),
            Some("pos_points")
        );
    }

    #[test]
    fn tracker_requests_both_flavours() {
        let r = TrackerRequest::parse(
            br#"{"image":"a","shapes":[[1,2,30,40]],"states":[]}"#,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(
            (r.items, r.flavour),
            (
                vec![TrackItem::Start([1.0, 2.0, 30.0, 40.0])],
                Some(ShapeFlavour::Legacy)
            )
        );
        let r = TrackerRequest::parse(
            br#"{"image":"a","shapes":[{"type":"rectangle","points":[1,2,30,40]}],"states":[]}"#,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(r.flavour, Some(ShapeFlavour::Dict));
        let r = TrackerRequest::parse(
            br#"{"image":"a","shapes":[null],"states":[{"k":[1,2]}]}"#,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(
            (r.items, r.flavour),
            (vec![TrackItem::Continue(r#"{"k":[1,2]}"#.into())], None)
        );
        let e = TrackerRequest::parse(
            br#"{"image":"a","shapes":[{"type":"polygon","points":[1,2,3,4,5,6]}],"states":[]}"#,
            &LIMITS,
        )
        .unwrap_err();
        assert!(e.error.contains("does not support shapes of type polygon"));
        assert_eq!(
            TrackerRequest::parse(br#"{"image":"a","shapes":[],"states":[]}"#, &LIMITS)
                .unwrap_err()
                .field
                .as_deref(),
            Some("shapes")
        );
        assert_eq!(
            TrackerRequest::parse(br#"{"image":"a","shapes":[[1,2,"x",4]]}"#, &LIMITS)
                .unwrap_err()
                .field
                .as_deref(),
            Some("shapes")
        );
    }

    #[test]
    fn reid_requests_ignore_extra_keys() {
        let r = ReidRequest::parse(br#"{"image0":"a","image1":"b","boxes0":[{"id":1,"type":"rectangle","points":[1,2,3,4],"attributes":[],"path_id":0}],"boxes1":[],"max_distance":50}"#, &LIMITS).unwrap();
        assert_eq!(
            (r.boxes0, r.max_distance, r.threshold),
            (vec![[1.0, 2.0, 3.0, 4.0]], Some(50.0), None)
        );
        assert_eq!(
            ReidRequest::parse(
                br#"{"image0":"a","image1":"b","boxes0":[{"points":[1]}],"boxes1":[]}"#,
                &LIMITS
            )
            .unwrap_err()
            .field
            .as_deref(),
            Some("boxes0")
        );
        assert_eq!(
            ReidRequest::parse(
                br#"{"image0":"a","image1":"b","boxes0":[],"boxes1":[],"threshold":-1}"#,
                &LIMITS
            )
            .unwrap_err()
            .field
            .as_deref(),
            Some("threshold")
        );
    }
}
