//! Building what a detector answers: label specs and detections, the same way in every
//! component.

use crate::bindings::cvat::model::types::{Detection, Label, ShapeType};

/// One label per `(id, name)` (the id being the model's class index), all of `shape`.
pub fn labels<'a>(named: impl IntoIterator<Item = (u32, &'a str)>, shape: ShapeType) -> Vec<Label> {
    named
        .into_iter()
        .map(|(id, name)| Label {
            id,
            name: name.to_string(),
            shape,
            attributes: vec![],
            sublabels: vec![],
            svg: None,
        })
        .collect()
}

/// A detection of `shape` with nothing but its label, confidence and points.
pub fn detection(label: &str, confidence: f32, shape: ShapeType, points: Vec<f32>) -> Detection {
    Detection {
        label: label.to_string(),
        confidence,
        shape,
        points,
        mask: None,
        rotation: None,
        attributes: vec![],
        elements: vec![],
    }
}

/// An axis-aligned rectangle `[x1, y1, x2, y2]`, clipped to the `width` x `height` frame;
/// none when nothing of it is left.
pub fn rectangle(
    label: &str,
    confidence: f32,
    b: [f32; 4],
    width: u32,
    height: u32,
) -> Option<Detection> {
    let (w, h) = (width as f32, height as f32);
    let [x1, y1, x2, y2] = [
        b[0].clamp(0.0, w),
        b[1].clamp(0.0, h),
        b[2].clamp(0.0, w),
        b[3].clamp(0.0, h),
    ];
    (x2 > x1 && y2 > y1).then(|| {
        detection(
            label,
            confidence,
            ShapeType::Rectangle,
            vec![x1, y1, x2, y2],
        )
    })
}

/// A rotated rectangle as CVAT stores it: the unrotated box `[cx - w/2, cy - h/2, cx + w/2,
/// cy + h/2]` and `rotation` in degrees in [0, 360), clockwise about the centre in image
/// coordinates (y down). `angle` is in radians, positive turning the box's x axis towards
/// +y (Ultralytics' OBB convention, which is the same turn).
pub fn rotated(
    label: &str,
    confidence: f32,
    centre: (f32, f32),
    size: (f32, f32),
    angle: f32,
) -> Detection {
    let (cx, cy) = centre;
    let (hw, hh) = (size.0 / 2.0, size.1 / 2.0);
    let mut d = detection(
        label,
        confidence,
        ShapeType::Rectangle,
        vec![cx - hw, cy - hh, cx + hw, cy + hh],
    );
    d.rotation = Some(angle.to_degrees().rem_euclid(360.0));
    d
}

/// An image-level tag.
pub fn tag(label: &str, confidence: f32) -> Detection {
    detection(label, confidence, ShapeType::Tag, vec![])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangles_clip_and_rotations_are_clockwise_degrees() {
        let r = rectangle("a", 0.5, [-5.0, 2.0, 50.0, 300.0], 40, 100).unwrap();
        assert_eq!(r.points, vec![0.0, 2.0, 40.0, 100.0]);
        assert!(rectangle("a", 0.5, [50.0, 2.0, 60.0, 3.0], 40, 100).is_none());
        let o = rotated(
            "a",
            0.9,
            (10.0, 20.0),
            (8.0, 4.0),
            -std::f32::consts::FRAC_PI_2,
        );
        assert_eq!(o.points, vec![6.0, 18.0, 14.0, 22.0]);
        assert!((o.rotation.unwrap() - 270.0).abs() < 1e-3);
    }
}
