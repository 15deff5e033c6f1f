//! Which DETR layout a graph has, from its signature, and its outputs as detections in frame
//! pixels (see the crate's documentation for both layouts).

use model_sdk::bindings::cvat::model::graphs::{GraphSignature, TensorInfo};
use model_sdk::bindings::wasi::nn::tensor::TensorType;
use model_sdk::nn::{sigmoid, Output};

/// The exporters' conventions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// RT-DETR, D-FINE, DEIM: labels/boxes/scores, the frame size as an input.
    RtDetr,
    /// RF-DETR: dets/labels logits.
    RfDetr,
}

impl Style {
    pub fn name(self) -> &'static str {
        match self {
            Style::RtDetr => "DETR-family detector (RT-DETR / D-FINE / DEIM layout)",
            Style::RfDetr => "DETR-family detector (RF-DETR layout)",
        }
    }
}

/// How to run a graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub style: Style,
    pub image_input: String,
    /// The square input side.
    pub size: u32,
    /// RT-DETR's `orig_target_sizes` input and its element type.
    pub sizes_input: Option<(String, TensorType)>,
}

/// One detection: class index, score, `[x1, y1, x2, y2]` in frame pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub class: usize,
    pub score: f32,
    pub b: [f32; 4],
}

fn shapes(list: &[TensorInfo]) -> String {
    list.iter()
        .map(|t| format!("{} {:?}", t.name, t.dims))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Plan {
    /// The plan for `s`, or an error naming what the graph has and the layouts read here.
    pub fn of(s: &GraphSignature, default_size: u32) -> Result<Plan, String> {
        let has_out = |n: &str| s.outputs.iter().any(|o| o.name == n);
        let image = s
            .inputs
            .iter()
            .find(|i| i.dims.len() == 4 && i.dims[1] == 3)
            .ok_or_else(|| Self::refusal(s, "no [N, 3, H, W] image input"))?;
        let size = match image.dims[2..] {
            [h, w] if h > 0 && h == w => h as u32,
            [h, w] if h <= 0 && w <= 0 => default_size,
            _ => return Err(Self::refusal(s, "the image input is not square")),
        };
        let sizes = s.inputs.iter().find(|i| i.name != image.name);
        let style = if has_out("labels") && has_out("boxes") && has_out("scores") && sizes.is_some()
        {
            Style::RtDetr
        } else if has_out("dets") && has_out("labels") && s.inputs.len() == 1 {
            Style::RfDetr
        } else {
            return Err(Self::refusal(
                s,
                "its inputs and outputs fit neither layout",
            ));
        };
        Ok(Plan {
            style,
            image_input: image.name.clone(),
            size,
            sizes_input: (style == Style::RtDetr)
                .then(|| sizes.map(|t| (t.name.clone(), t.ty)))
                .flatten(),
        })
    }

    fn refusal(s: &GraphSignature, why: &str) -> String {
        format!(
            "{why}: inputs {}; outputs {}. Layouts read here: RT-DETR / D-FINE / DEIM (inputs images [N,3,S,S] + orig_target_sizes [N,2]; outputs labels [N,Q], boxes [N,Q,4], scores [N,Q]) and RF-DETR (input [1,3,R,R]; outputs dets [1,Q,4], labels [1,Q,C]); Ultralytics' RT-DETR export is read by the `yolo` component",
            shapes(&s.inputs),
            shapes(&s.outputs)
        )
    }

    /// The detections at or over `threshold`, best first, at most `max`.
    pub fn decode(
        &self,
        outputs: &[Output],
        frame: (u32, u32),
        threshold: f32,
        max: usize,
    ) -> Result<Vec<Found>, String> {
        let get = |name: &str| {
            outputs
                .iter()
                .find(|o| o.name == name)
                .ok_or_else(|| format!("the graph gave no `{name}` output"))
        };
        let mut found = Vec::new();
        match self.style {
            Style::RtDetr => {
                let (labels, boxes, scores) = (get("labels")?, get("boxes")?, get("scores")?);
                let q = scores.data.len();
                if labels.data.len() != q || boxes.data.len() != 4 * q {
                    return Err(format!(
                        "outputs labels {:?}, boxes {:?}, scores {:?} disagree on the number of queries",
                        labels.dims, boxes.dims, scores.dims
                    ));
                }
                for i in 0..q {
                    let (score, class) = (scores.data[i], labels.data[i]);
                    if score >= threshold && class >= 0.0 {
                        let b = &boxes.data[4 * i..4 * i + 4];
                        found.push(Found {
                            class: class as usize,
                            score,
                            b: [b[0], b[1], b[2], b[3]],
                        });
                    }
                }
            }
            Style::RfDetr => {
                let (dets, logits) = (get("dets")?, get("labels")?);
                let q = dets.data.len() / 4;
                let c = match logits.dims.as_slice() {
                    [_, n, c] if *n as usize == q && *c > 0 => *c as usize,
                    d => return Err(format!("labels {d:?} do not fit dets {:?}", dets.dims)),
                };
                let (w, h) = (frame.0 as f32, frame.1 as f32);
                for (i, row) in logits.data.chunks_exact(c).enumerate() {
                    let d = &dets.data[4 * i..4 * i + 4];
                    for (class, &logit) in row.iter().enumerate() {
                        let score = sigmoid(logit);
                        if score >= threshold {
                            let (cx, cy, bw, bh) = (d[0] * w, d[1] * h, d[2] * w, d[3] * h);
                            found.push(Found {
                                class,
                                score,
                                b: [cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0],
                            });
                        }
                    }
                }
            }
        }
        found.sort_by(|a, b| b.score.total_cmp(&a.score));
        found.truncate(max);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, ty: TensorType, dims: &[i64]) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            ty,
            dims: dims.to_vec(),
        }
    }

    fn out(name: &str, dims: &[u32], data: Vec<f32>) -> Output {
        Output {
            name: name.into(),
            dims: dims.to_vec(),
            data,
        }
    }

    #[test]
    fn layouts_from_names_and_a_refusal_that_says_what_was_found() {
        let f = TensorType::Fp32;
        let rt = GraphSignature {
            inputs: vec![
                info("images", f, &[-1, 3, 640, 640]),
                info("orig_target_sizes", TensorType::I64, &[-1, 2]),
            ],
            outputs: vec![
                info("labels", TensorType::I64, &[-1, 300]),
                info("boxes", f, &[-1, 300, 4]),
                info("scores", f, &[-1, 300]),
            ],
            metadata: vec![],
        };
        let p = Plan::of(&rt, 640).unwrap();
        assert_eq!(
            (p.style, p.size, p.sizes_input),
            (
                Style::RtDetr,
                640,
                Some(("orig_target_sizes".into(), TensorType::I64))
            )
        );
        let rf = GraphSignature {
            inputs: vec![info("input", f, &[1, 3, 560, 560])],
            outputs: vec![
                info("dets", f, &[1, 300, 4]),
                info("labels", f, &[1, 300, 91]),
            ],
            metadata: vec![],
        };
        assert_eq!(Plan::of(&rf, 640).unwrap().style, Style::RfDetr);
        let other = GraphSignature {
            inputs: vec![info("images", f, &[1, 3, 640, 640])],
            outputs: vec![info("output0", f, &[1, 84, 8400])],
            metadata: vec![],
        };
        let e = Plan::of(&other, 640).unwrap_err();
        assert!(
            e.contains("output0 [1, 84, 8400]") && e.contains("RF-DETR"),
            "{e}"
        );
    }

    #[test]
    fn rf_detr_scales_normalised_centres_and_keeps_the_best() {
        let p = Plan {
            style: Style::RfDetr,
            image_input: "input".into(),
            size: 560,
            sizes_input: None,
        };
        let outputs = [
            out(
                "dets",
                &[1, 2, 4],
                vec![0.5, 0.5, 0.2, 0.4, 0.1, 0.1, 0.1, 0.1],
            ),
            out("labels", &[1, 2, 3], vec![-9.0, 3.0, -9.0, -9.0, -9.0, 0.0]),
        ];
        let found = p.decode(&outputs, (200, 100), 0.4, 10).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].class, found[0].b), (1, [80.0, 30.0, 120.0, 70.0]));
        assert_eq!(found[1].class, 2);
        assert_eq!(p.decode(&outputs, (200, 100), 0.4, 1).unwrap().len(), 1);
    }
}
