//! Box geometry and non-maximum suppression.

/// An axis-aligned box with a score and a class index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
    pub class: usize,
}

impl Scored {
    /// Box area (zero for degenerate boxes).
    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Intersection over union with `other`.
    pub fn iou(&self, other: &Scored) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// Class-wise greedy NMS: keeps the best box and drops boxes of the same class that overlap
/// it by more than `iou`. Each box carries a payload (an index, keypoints...). Returns at
/// most `max` items, best first.
pub fn nms<T>(mut items: Vec<(Scored, T)>, iou: f32, max: usize) -> Vec<(Scored, T)> {
    items.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
    let mut kept: Vec<(Scored, T)> = Vec::new();
    for item in items {
        if kept.len() >= max {
            break;
        }
        let b = &item.0;
        if kept
            .iter()
            .all(|(k, _)| k.class != b.class || k.iou(b) <= iou)
        {
            kept.push(item);
        }
    }
    kept
}

/// Weighted NMS (BlazeFace style): each kept box is the score-weighted mean of the boxes it
/// suppresses, and `extra` (e.g. keypoints, one row per box) is averaged the same way.
pub fn weighted_nms(
    mut items: Vec<(Scored, Vec<f32>)>,
    iou: f32,
    max: usize,
) -> Vec<(Scored, Vec<f32>)> {
    items.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
    let mut out = Vec::new();
    while !items.is_empty() && out.len() < max {
        let best = items[0].0;
        let (group, rest): (Vec<_>, Vec<_>) =
            items.into_iter().partition(|(b, _)| best.iou(b) > iou);
        items = rest;
        let total: f32 = group.iter().map(|(b, _)| b.score).sum();
        let mut merged = best;
        let (mut x1, mut y1, mut x2, mut y2) = (0.0, 0.0, 0.0, 0.0);
        let mut extra = vec![0.0; group[0].1.len()];
        for (b, e) in &group {
            let w = b.score / total;
            x1 += b.x1 * w;
            y1 += b.y1 * w;
            x2 += b.x2 * w;
            y2 += b.y2 * w;
            for (acc, v) in extra.iter_mut().zip(e) {
                *acc += v * w;
            }
        }
        merged.x1 = x1;
        merged.y1 = y1;
        merged.x2 = x2;
        merged.y2 = y2;
        out.push((merged, extra));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32, score: f32, class: usize) -> Scored {
        Scored {
            x1,
            y1,
            x2,
            y2,
            score,
            class,
        }
    }

    #[test]
    fn nms_is_class_wise() {
        let kept = nms(
            vec![
                (b(0., 0., 10., 10., 0.9, 0), 'a'),
                (b(1., 1., 10., 10., 0.8, 0), 'b'),
                (b(1., 1., 10., 10., 0.7, 1), 'c'),
            ],
            0.5,
            10,
        );
        assert_eq!(kept.iter().map(|k| k.1).collect::<String>(), "ac");
    }
}
