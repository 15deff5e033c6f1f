//! Oriented boxes: Ultralytics' probabilistic IoU (each box a Gaussian, `utils/metrics.py`
//! `batch_probiou`) and the Fast-NMS its `non_max_suppression(rotated=True)` runs.

use crate::decode::Candidate;

const EPS: f32 = 1e-7;

/// The covariance terms of a box of `w` x `h` turned by `angle` (radians).
fn covariance(w: f32, h: f32, angle: f32) -> (f32, f32, f32) {
    let (a, b) = (w * w / 12.0, h * h / 12.0);
    let (sin, cos) = angle.sin_cos();
    (
        a * cos * cos + b * sin * sin,
        a * sin * sin + b * cos * cos,
        (a - b) * cos * sin,
    )
}

/// Probabilistic IoU of two oriented candidates (1 = the same box).
pub fn probiou(p: &Candidate, q: &Candidate) -> f32 {
    let centre = |c: &Candidate| ((c.b.x1 + c.b.x2) / 2.0, (c.b.y1 + c.b.y2) / 2.0);
    let size = |c: &Candidate| (c.b.x2 - c.b.x1, c.b.y2 - c.b.y1);
    let ((x1, y1), (x2, y2)) = (centre(p), centre(q));
    let ((w1, h1), (w2, h2)) = (size(p), size(q));
    let (a1, b1, c1) = covariance(w1, h1, p.angle.unwrap_or(0.0));
    let (a2, b2, c2) = covariance(w2, h2, q.angle.unwrap_or(0.0));
    let det = (a1 + a2) * (b1 + b2) - (c1 + c2).powi(2);
    let t1 = ((a1 + a2) * (y1 - y2).powi(2) + (b1 + b2) * (x1 - x2).powi(2)) / (det + EPS) * 0.25;
    let t2 = ((c1 + c2) * (x2 - x1) * (y1 - y2)) / (det + EPS) * 0.5;
    let spread = ((a1 * b1 - c1 * c1).max(0.0) * (a2 * b2 - c2 * c2).max(0.0)).sqrt();
    let t3 = (det / (4.0 * spread + EPS) + EPS).ln() * 0.5;
    let bd = (t1 + t2 + t3).clamp(EPS, 100.0);
    1.0 - (1.0 - (-bd).exp() + EPS).sqrt()
}

/// Fast-NMS, class-wise: best first, a candidate is kept unless a better one of its class
/// (kept or not) overlaps it by more than `iou`. At most `max`.
pub fn nms(mut items: Vec<Candidate>, iou: f32, max: usize) -> Vec<Candidate> {
    items.sort_by(|a, b| b.b.score.total_cmp(&a.b.score));
    let keep: Vec<bool> = (0..items.len())
        .map(|j| {
            (0..j).all(|i| {
                items[i].b.class != items[j].b.class || probiou(&items[i], &items[j]) <= iou
            })
        })
        .collect();
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(c, k)| k.then_some(c))
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use model_sdk::boxes::Scored;

    fn cand(cx: f32, cy: f32, w: f32, h: f32, angle: f32, score: f32, class: usize) -> Candidate {
        Candidate {
            b: Scored {
                x1: cx - w / 2.0,
                y1: cy - h / 2.0,
                x2: cx + w / 2.0,
                y2: cy + h / 2.0,
                score,
                class,
            },
            angle: Some(angle),
            index: 0,
        }
    }

    #[test]
    fn probiou_is_one_for_the_same_box_and_falls_with_distance_and_turn() {
        let a = cand(50.0, 50.0, 40.0, 10.0, 0.3, 0.9, 0);
        assert!((probiou(&a, &a) - 1.0).abs() < 1e-3);
        let shifted = cand(51.0, 50.0, 40.0, 10.0, 0.3, 0.9, 0);
        let turned = cand(
            50.0,
            50.0,
            40.0,
            10.0,
            0.3 + std::f32::consts::FRAC_PI_2,
            0.9,
            0,
        );
        let far = cand(150.0, 50.0, 40.0, 10.0, 0.3, 0.9, 0);
        assert!(probiou(&a, &shifted) > 0.8);
        assert!(probiou(&a, &turned) < 0.5);
        assert!(probiou(&a, &far) < 1e-3);
        // A box turned by pi is the same box.
        let flipped = cand(50.0, 50.0, 40.0, 10.0, 0.3 + std::f32::consts::PI, 0.9, 0);
        assert!((probiou(&a, &flipped) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn fast_nms_is_class_wise_and_keeps_the_best() {
        let kept = nms(
            vec![
                cand(50.0, 50.0, 40.0, 10.0, 0.3, 0.7, 0),
                cand(51.0, 50.0, 40.0, 10.0, 0.3, 0.9, 0),
                cand(51.0, 50.0, 40.0, 10.0, 0.3, 0.8, 1),
            ],
            0.7,
            10,
        );
        let scores: Vec<f32> = kept.iter().map(|c| c.b.score).collect();
        assert_eq!(scores, [0.9, 0.8]);
    }
}
