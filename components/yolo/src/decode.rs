//! Decoding Ultralytics output tensors into scored boxes (in model-input pixels, or for
//! RT-DETR normalised to 0-1). What each layout is, read from Ultralytics 8.4's exporter and
//! heads (`engine/exporter.py`, `nn/modules/head.py`):
//!
//! - raw heads (`Detect`, `Segment`, `Pose`, `OBB`; YOLO26 and YOLOv10 unless exported with
//!   `nms=False`): `[1, 4 + nc + extra, N]`, centre-xywh, sigmoid class scores; OBB adds the
//!   angle last (radians; YOLO11's `(sigmoid - 0.25) * pi` in [-pi/4, 3pi/4], YOLO26's raw);
//! - end-to-end rows (`end2end: True`: YOLO26 and YOLOv10 exported with `nms=False`, from
//!   `Detect.postprocess`; or `args.nms: True`, NMS in the graph with conf 0.25 and IoU 0.7
//!   baked in, `NMSModel`): `[1, K, 6 + extra]` = x1, y1, x2, y2, score, class, then the mask
//!   coefficients or keypoints, best first, zero-padded; OBB rows are `[cx, cy, w, h, score,
//!   class, angle]` (`dist2rbox` ignores the exporter's xyxy switch);
//! - RT-DETR (`RTDETRDecoder`): `[1, K, 6]` = cx, cy, w, h normalised to 0-1, score, class,
//!   from a top-K over queries x classes (8.4.50 on); before, `[1, K, 4 + nc]` with a sigmoid
//!   score per class.

use model_sdk::boxes::Scored;
use model_sdk::image::{Channels, Normalize, Place};

/// The output layout of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `[1, 4 + nc + extra, N]`: YOLOv8/11/12; `extra` values per candidate follow the class
    /// scores (mask coefficients for segmentation, keypoints for pose).
    V8 { classes: usize, extra: usize },
    /// `[1, 4 + nc + 1, N]`: a raw OBB head, the angle after the class scores.
    Obb { classes: usize },
    /// `[1, K, 6 + extra]`: rows the model already suppressed (end-to-end head or NMS in the
    /// graph); the class count is the names'.
    Rows { classes: usize, extra: usize },
    /// `[1, K, 7]`: OBB rows `[cx, cy, w, h, score, class, angle]`.
    ObbRows { classes: usize },
    /// `[1, K, 6]`: RT-DETR rows, boxes normalised centre-xywh.
    RtDetr { classes: usize },
    /// `[1, K, 4 + nc]`: RT-DETR before Ultralytics 8.4.50, a score per class.
    RtDetrScores { classes: usize },
    /// `[1, N, 5 + nc]`: YOLOv5.
    V5 { classes: usize },
    /// `[1, N, 5 + nc]` with one candidate per cell of the stride 8, 16 and 32 grids over
    /// the `width` x `height` input, box offsets still in grid units: YOLOX (Megvii's ONNX
    /// export). Its inputs are BGR bytes, letterboxed into the top-left corner.
    Yolox {
        classes: usize,
        width: u32,
        height: u32,
    },
}

/// YOLOX's strides.
const YOLOX_STRIDES: [u32; 3] = [8, 16, 32];

/// Grid cells over a `width` x `height` input at YOLOX's strides.
fn yolox_cells(width: u32, height: u32) -> usize {
    YOLOX_STRIDES
        .iter()
        .map(|s| ((width / s) * (height / s)) as usize)
        .sum()
}

/// One decoded candidate: its axis-aligned box (for oriented boxes, the unrotated one around
/// the centre), the rotation in radians for oriented boxes, and its index in the output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub b: Scored,
    pub angle: Option<f32>,
    pub index: usize,
}

impl Format {
    /// Whether the model's output still needs NMS (raw heads) or is final (rows).
    pub fn needs_nms(&self) -> bool {
        matches!(
            self,
            Format::V8 { .. } | Format::V5 { .. } | Format::Yolox { .. } | Format::Obb { .. }
        )
    }

    /// Whether boxes come normalised to 0-1 of a stretched input (RT-DETR).
    pub fn normalised(&self) -> bool {
        matches!(self, Format::RtDetr { .. } | Format::RtDetrScores { .. })
    }

    /// Choose the format from config (`auto`, `v8`, `v5`, `yolox`), the output dims and
    /// the input size. With `auto`, `[1, N, 5 + nc]` is YOLOX when N is one candidate per
    /// grid cell (YOLOv5 has three anchors per cell); otherwise a known class count
    /// decides, else the smaller axis holds the channels.
    pub fn detect(
        choice: &str,
        dims: &[i64],
        known_classes: usize,
        extra: usize,
        input: (u32, u32),
    ) -> Result<Format, String> {
        if dims.len() != 3 || dims[1] <= 0 || dims[2] <= 0 {
            return Err(format!(
                "output dims {dims:?}: expected [1, C, N] or [1, N, C] with fixed sizes"
            ));
        }
        let (a, b) = (dims[1] as usize, dims[2] as usize);
        if extra > 0 {
            // Segmentation and pose exports are v8-style only.
            return (a > 4 + extra)
                .then(|| Format::V8 {
                    classes: a - 4 - extra,
                    extra,
                })
                .ok_or_else(|| {
                    format!("output dims {dims:?} leave no classes beside {extra} extra values")
                });
        }
        let v8 = (a > 4).then(|| Format::V8 {
            classes: a - 4,
            extra: 0,
        });
        let v5 = (b > 5).then(|| Format::V5 { classes: b - 5 });
        let yolox = (b > 5).then(|| Format::Yolox {
            classes: b - 5,
            width: input.0,
            height: input.1,
        });
        let pick = match choice {
            "v8" => v8,
            "v5" => v5,
            "yolox" => yolox.filter(|_| a == yolox_cells(input.0, input.1)),
            "auto" => {
                if b > 5 && a == yolox_cells(input.0, input.1) {
                    yolox
                } else if known_classes > 0 && a == 4 + known_classes {
                    v8
                } else if known_classes > 0 && b == 5 + known_classes {
                    v5
                } else if a < b {
                    // Channels on the shorter axis, as in [1, 84, 8400] and [1, 25200, 85];
                    // when that reading is impossible, the other one.
                    v8.or(v5)
                } else {
                    v5.or(v8)
                }
            }
            other => {
                return Err(format!(
                    "config key `format`: expected auto, v8, v5 or yolox, got `{other}`"
                ))
            }
        };
        pick.ok_or_else(|| format!("output dims {dims:?} do not fit format `{choice}`"))
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        match *self {
            Format::V8 { classes, .. }
            | Format::V5 { classes }
            | Format::Yolox { classes, .. }
            | Format::Obb { classes }
            | Format::Rows { classes, .. }
            | Format::ObbRows { classes }
            | Format::RtDetr { classes }
            | Format::RtDetrScores { classes } => classes,
        }
    }

    /// The `extra` values of candidate `i`: after the class scores (v8 layout) or after the
    /// class (rows).
    pub fn extra(&self, data: &[f32], dims: &[u32], i: usize) -> Vec<f32> {
        match *self {
            Format::V8 { classes, extra } => {
                let n = dims[2] as usize;
                (0..extra)
                    .map(|k| data[(4 + classes + k) * n + i])
                    .collect()
            }
            Format::Rows { extra, .. } => {
                let c = 6 + extra;
                data[i * c + 6..(i + 1) * c].to_vec()
            }
            _ => vec![],
        }
    }

    /// How the export wants its input: YOLOX reads BGR bytes letterboxed top-left;
    /// Ultralytics exports RGB in [0, 1], centred (RT-DETR stretched: see `normalised`).
    pub fn input_style(&self) -> (Channels, Normalize, Place) {
        match self {
            Format::Yolox { .. } => (Channels::Bgr, Normalize::RAW, Place::TopLeft),
            _ => (Channels::Rgb, Normalize::UNIT, Place::Centre),
        }
    }

    /// Short name for descriptions.
    pub fn name(&self) -> &'static str {
        match self {
            Format::V8 { .. } => "YOLOv8-style",
            Format::V5 { .. } => "YOLOv5-style",
            Format::Yolox { .. } => "YOLOX",
            Format::Obb { .. } => "oriented boxes, raw head",
            Format::Rows { .. } => "end-to-end rows",
            Format::ObbRows { .. } => "oriented boxes, end-to-end rows",
            Format::RtDetr { .. } | Format::RtDetrScores { .. } => "RT-DETR",
        }
    }

    /// Every candidate at or over `threshold`, wrapped with its angle and index (see
    /// [`Format::decode`], which this extends to oriented boxes and rows).
    pub fn candidates(
        &self,
        data: &[f32],
        dims: &[u32],
        threshold: f32,
    ) -> Result<Vec<Candidate>, String> {
        let expect = |ok: bool| {
            if ok && data.len() == dims.iter().map(|&d| d as usize).product::<usize>() {
                Ok(())
            } else {
                Err(format!("output dims {dims:?} changed since init"))
            }
        };
        let plain = |b: Scored, index| Candidate {
            b,
            angle: None,
            index,
        };
        let mut out = Vec::new();
        match *self {
            Format::Obb { classes } => {
                expect(dims.len() == 3 && dims[1] as usize == 5 + classes)?;
                let n = dims[2] as usize;
                let rows: Vec<&[f32]> = data.chunks_exact(n).collect();
                // Channel-major: candidate i is column i of every row.
                #[allow(clippy::needless_range_loop)]
                for i in 0..n {
                    let (class, score) = (0..classes)
                        .map(|c| (c, rows[4 + c][i]))
                        .fold((0, f32::MIN), |b, x| if x.1 > b.1 { x } else { b });
                    if score >= threshold {
                        let [x, y, w, h] = [0, 1, 2, 3].map(|r| rows[r][i]);
                        out.push(Candidate {
                            b: xywh(x, y, w, h, score, class),
                            angle: Some(rows[4 + classes][i]),
                            index: i,
                        });
                    }
                }
            }
            Format::Rows { .. } | Format::ObbRows { .. } | Format::RtDetr { .. } => {
                let c = match *self {
                    Format::Rows { extra, .. } => 6 + extra,
                    Format::ObbRows { .. } => 7,
                    _ => 6,
                };
                expect(dims.len() == 3 && dims[2] as usize == c)?;
                for (i, r) in data.chunks_exact(c).enumerate() {
                    // Zero-padded rows (and NMS-in-graph OBB rows under its conf) score 0.
                    if r[4] < threshold || r[4] <= 0.0 || r[5] < 0.0 {
                        continue;
                    }
                    let class = r[5] as usize;
                    out.push(match *self {
                        Format::Rows { .. } => plain(
                            Scored {
                                x1: r[0],
                                y1: r[1],
                                x2: r[2],
                                y2: r[3],
                                score: r[4],
                                class,
                            },
                            i,
                        ),
                        Format::ObbRows { .. } => Candidate {
                            b: xywh(r[0], r[1], r[2], r[3], r[4], class),
                            angle: Some(r[6]),
                            index: i,
                        },
                        _ => plain(xywh(r[0], r[1], r[2], r[3], r[4], class), i),
                    });
                }
            }
            Format::RtDetrScores { classes } => {
                expect(dims.len() == 3 && dims[2] as usize == 4 + classes)?;
                for (i, r) in data.chunks_exact(4 + classes).enumerate() {
                    for (class, &score) in r[4..].iter().enumerate() {
                        if score >= threshold {
                            out.push(plain(xywh(r[0], r[1], r[2], r[3], score, class), i));
                        }
                    }
                }
            }
            _ => {
                return Ok(self
                    .decode(data, dims, threshold)?
                    .into_iter()
                    .map(|(b, i)| plain(b, i))
                    .collect())
            }
        }
        Ok(out)
    }

    /// Candidates whose best class score is at least `threshold`, each with its index.
    pub fn decode(
        &self,
        data: &[f32],
        dims: &[u32],
        threshold: f32,
    ) -> Result<Vec<(Scored, usize)>, String> {
        if dims.len() != 3 || data.len() != dims.iter().map(|&d| d as usize).product::<usize>() {
            return Err(format!("unexpected output dims {dims:?}"));
        }
        let mut out = Vec::new();
        match *self {
            Format::Obb { .. }
            | Format::Rows { .. }
            | Format::ObbRows { .. }
            | Format::RtDetr { .. }
            | Format::RtDetrScores { .. } => {
                let found = self.candidates(data, dims, threshold)?;
                return Ok(found.into_iter().map(|c| (c.b, c.index)).collect());
            }
            Format::V8 { classes, extra } => {
                let n = dims[2] as usize;
                if dims[1] as usize != 4 + classes + extra {
                    return Err(format!("output dims {dims:?} changed since init"));
                }
                // Channel-major: walk each class's row of N scores contiguously, keeping the
                // best per candidate (the per-candidate walk strided N floats per class).
                let rows: Vec<&[f32]> = data.chunks_exact(n).collect();
                let mut best = rows[4].to_vec();
                let mut best_class = vec![0u32; n];
                for (c, row) in rows[5..4 + classes].iter().enumerate() {
                    for ((b, k), &v) in best.iter_mut().zip(best_class.iter_mut()).zip(*row) {
                        if v > *b {
                            *b = v;
                            *k = c as u32 + 1;
                        }
                    }
                }
                for (i, (&score, &class)) in best.iter().zip(&best_class).enumerate() {
                    if score >= threshold {
                        let [x, y, w, h] = [0, 1, 2, 3].map(|r| rows[r][i]);
                        out.push((xywh(x, y, w, h, score, class as usize), i));
                    }
                }
            }
            Format::V5 { classes } => {
                let stride = 5 + classes;
                if dims[2] as usize != stride {
                    return Err(format!("output dims {dims:?} changed since init"));
                }
                for (i, row) in data.chunks_exact(stride).enumerate() {
                    let (class, cls) = row[5..]
                        .iter()
                        .copied()
                        .enumerate()
                        .fold((0, f32::MIN), |best, x| if x.1 > best.1 { x } else { best });
                    let score = row[4] * cls;
                    if score >= threshold {
                        out.push((xywh(row[0], row[1], row[2], row[3], score, class), i));
                    }
                }
            }
            Format::Yolox {
                classes,
                width,
                height,
            } => {
                let stride = 5 + classes;
                if dims[2] as usize != stride || dims[1] as usize != yolox_cells(width, height) {
                    return Err(format!("output dims {dims:?} changed since init"));
                }
                let cells = YOLOX_STRIDES.iter().flat_map(|&s| {
                    let (gw, gh) = (width / s, height / s);
                    (0..gh)
                        .flat_map(move |gy| (0..gw).map(move |gx| (gx as f32, gy as f32, s as f32)))
                });
                for (i, (row, (gx, gy, s))) in data.chunks_exact(stride).zip(cells).enumerate() {
                    if row[4] < threshold {
                        continue; // score = objectness x class score <= objectness
                    }
                    let (class, cls) = row[5..]
                        .iter()
                        .copied()
                        .enumerate()
                        .fold((0, f32::MIN), |best, x| if x.1 > best.1 { x } else { best });
                    let score = row[4] * cls;
                    if score >= threshold {
                        let (cx, cy) = ((row[0] + gx) * s, (row[1] + gy) * s);
                        let (w, h) = (row[2].exp() * s, row[3].exp() * s);
                        out.push((xywh(cx, cy, w, h, score, class), i));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn xywh(cx: f32, cy: f32, w: f32, h: f32, score: f32, class: usize) -> Scored {
    Scored {
        x1: cx - w / 2.0,
        y1: cy - h / 2.0,
        x2: cx + w / 2.0,
        y2: cy + h / 2.0,
        score,
        class,
    }
}

/// A metadata value by key.
pub fn meta<'a>(metadata: &'a [(String, String)], key: &str) -> Option<&'a str> {
    metadata
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Ultralytics `kpt_shape`, e.g. `[17, 3]`.
pub fn kpt_shape(text: &str) -> Option<(usize, usize)> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    let mut it = inner.split(',').map(|p| p.trim().parse::<usize>().ok());
    match (it.next().flatten(), it.next().flatten()) {
        (Some(k), Some(d)) if k > 0 && (2..=3).contains(&d) => Some((k, d)),
        _ => None,
    }
}

/// Class names from Ultralytics export metadata: `names` = `{0: 'person', 1: 'car'}`.
pub fn ultralytics_names(metadata: &[(String, String)]) -> Vec<String> {
    let Some((_, names)) = metadata.iter().find(|(k, _)| k == "names") else {
        return vec![];
    };
    let body = names.trim().trim_start_matches('{').trim_end_matches('}');
    let mut out = Vec::new();
    for part in split_top(body) {
        let Some((idx, name)) = part.split_once(':') else {
            return vec![];
        };
        let Ok(idx) = idx.trim().parse::<usize>() else {
            return vec![];
        };
        if idx != out.len() {
            return vec![];
        }
        out.push(
            name.trim()
                .trim_matches(|c| c == '\'' || c == '"')
                .to_string(),
        );
    }
    out
}

/// Split on commas that are not inside quotes.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quote) = (0, None);
    for (i, c) in s.char_indices() {
        match (c, quote) {
            ('\'' | '"', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            (',', None) => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        parts.push(&s[start..]);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v8_decode_picks_each_candidates_best_class() {
        // [1, 4 + 3 classes + 2 extra, 5 candidates], channel-major.
        let (classes, extra, n) = (3usize, 2usize, 5usize);
        let mut data = vec![0f32; (4 + classes + extra) * n];
        let mut seed = 7u32;
        for v in data.iter_mut() {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *v = (seed >> 8) as f32 / (1u32 << 24) as f32;
        }
        data[4 * n + 2] = 0.9; // candidate 2: a tie between classes 0 and 2 goes to class 0
        data[6 * n + 2] = 0.9;
        let f = Format::V8 { classes, extra };
        let got = f
            .decode(&data, &[1, (4 + classes + extra) as u32, n as u32], 0.3)
            .unwrap();
        let mut want = Vec::new();
        for i in 0..n {
            let (mut class, mut score) = (0, f32::MIN);
            for c in 0..classes {
                if data[(4 + c) * n + i] > score {
                    (class, score) = (c, data[(4 + c) * n + i]);
                }
            }
            if score >= 0.3 {
                let at = |r: usize| data[r * n + i];
                want.push((xywh(at(0), at(1), at(2), at(3), score, class), i));
            }
        }
        assert!(!want.is_empty());
        assert_eq!(got, want);
        assert_eq!(got.iter().find(|(_, i)| *i == 2).unwrap().0.class, 0);
    }

    #[test]
    fn names_from_metadata() {
        let md = vec![(
            "names".to_string(),
            "{0: 'person', 1: 'traffic, light'}".to_string(),
        )];
        assert_eq!(ultralytics_names(&md), vec!["person", "traffic, light"]);
    }

    #[test]
    fn format_detection() {
        let d = |dims: &[i64], known, extra| {
            Format::detect("auto", dims, known, extra, (640, 640)).unwrap()
        };
        assert_eq!(
            d(&[1, 84, 8400], 0, 0),
            Format::V8 {
                classes: 80,
                extra: 0
            }
        );
        assert_eq!(d(&[1, 25200, 85], 0, 0), Format::V5 { classes: 80 });
        assert_eq!(d(&[1, 3, 6], 1, 0), Format::V5 { classes: 1 });
        // Fewer candidates than channels: only one reading fits.
        assert_eq!(
            d(&[1, 6, 3], 0, 0),
            Format::V8 {
                classes: 2,
                extra: 0
            }
        );
        // Segmentation (32 mask coefficients) and pose (17 keypoints x 3).
        assert_eq!(
            d(&[1, 116, 8400], 0, 32),
            Format::V8 {
                classes: 80,
                extra: 32
            }
        );
        assert_eq!(
            d(&[1, 56, 8400], 0, 51),
            Format::V8 {
                classes: 1,
                extra: 51
            }
        );
        assert_eq!(super::kpt_shape("[17, 3]"), Some((17, 3)));
        // YOLOX at 416: one candidate per cell of the 52, 26 and 13 grids; YOLOv5 has three.
        let yolox = Format::Yolox {
            classes: 80,
            width: 416,
            height: 416,
        };
        let at416 = |dims: &[i64], choice| Format::detect(choice, dims, 0, 0, (416, 416));
        assert_eq!(at416(&[1, 3549, 85], "auto"), Ok(yolox));
        assert_eq!(
            at416(&[1, 10647, 85], "auto"),
            Ok(Format::V5 { classes: 80 })
        );
        assert_eq!(at416(&[1, 3549, 85], "yolox"), Ok(yolox));
        assert!(at416(&[1, 10647, 85], "yolox").is_err());
    }

    #[test]
    fn yolox_decodes_grid_offsets() {
        // An 32x32 input: 16 + 4 + 1 = 21 cells, 1 class. Cell 5 is (1, 1) on the stride-8
        // grid; cell 20 the only stride-32 cell.
        let f = Format::Yolox {
            classes: 1,
            width: 32,
            height: 32,
        };
        let mut data = vec![0f32; 21 * 6];
        data[5 * 6..6 * 6].copy_from_slice(&[0.5, 0.25, 0.0, (2f32).ln(), 0.9, 0.5]);
        data[20 * 6..21 * 6].copy_from_slice(&[0.0, 0.0, 0.0, 0.0, 0.2, 1.0]);
        let got = f.decode(&data, &[1, 21, 6], 0.3).unwrap();
        assert_eq!(got.len(), 1, "the stride-32 cell scores 0.2");
        let (b, i) = &got[0];
        assert_eq!(*i, 5);
        // centre ((0.5 + 1) * 8, (0.25 + 1) * 8) = (12, 10); size (8, 16).
        assert_eq!((b.x1, b.y1, b.x2, b.y2), (8.0, 2.0, 16.0, 18.0));
        assert!((b.score - 0.45).abs() < 1e-6);
    }
}
