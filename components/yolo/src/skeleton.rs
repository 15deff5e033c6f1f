//! Skeleton label specs for pose exports: keypoint names and the SVG CVAT draws them with.

/// COCO's 17 keypoints (Ultralytics pose models) and where to draw them (0-100 box).
const COCO: [(&str, f32, f32); 17] = [
    ("nose", 50.0, 10.0),
    ("left_eye", 53.0, 8.0),
    ("right_eye", 47.0, 8.0),
    ("left_ear", 56.0, 10.0),
    ("right_ear", 44.0, 10.0),
    ("left_shoulder", 60.0, 25.0),
    ("right_shoulder", 40.0, 25.0),
    ("left_elbow", 66.0, 40.0),
    ("right_elbow", 34.0, 40.0),
    ("left_wrist", 70.0, 55.0),
    ("right_wrist", 30.0, 55.0),
    ("left_hip", 56.0, 55.0),
    ("right_hip", 44.0, 55.0),
    ("left_knee", 57.0, 75.0),
    ("right_knee", 43.0, 75.0),
    ("left_ankle", 58.0, 95.0),
    ("right_ankle", 42.0, 95.0),
];

/// COCO's limbs, 1-based as Ultralytics lists them.
const COCO_EDGES: [(usize, usize); 19] = [
    (16, 14),
    (14, 12),
    (17, 15),
    (15, 13),
    (12, 13),
    (6, 12),
    (7, 13),
    (6, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (9, 11),
    (2, 3),
    (1, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
    (5, 7),
];

/// Names for `k` keypoints: COCO's for 17, else `kp0`, `kp1`, ...
pub fn default_names(k: usize) -> Vec<String> {
    if k == COCO.len() {
        COCO.iter().map(|(n, _, _)| n.to_string()).collect()
    } else {
        (0..k).map(|i| format!("kp{i}")).collect()
    }
}

/// CVAT's skeleton SVG: a circle per keypoint (`data-label-name` = its sublabel) and, for
/// COCO, a line per limb.
pub fn svg(names: &[String]) -> String {
    let coco = names.len() == COCO.len() && names.iter().zip(COCO.iter()).all(|(a, b)| a == b.0);
    let pos = |i: usize| -> (f32, f32) {
        if coco {
            (COCO[i].1, COCO[i].2)
        } else {
            let a = i as f32 / names.len().max(1) as f32 * std::f32::consts::TAU;
            (50.0 + 40.0 * a.cos(), 50.0 + 40.0 * a.sin())
        }
    };
    let mut out = String::new();
    if coco {
        for (a, b) in COCO_EDGES {
            let ((x1, y1), (x2, y2)) = (pos(a - 1), pos(b - 1));
            out.push_str(&format!(
                r#"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="black" data-type="edge" data-node-from="{a}" data-node-to="{b}" stroke-width="0.5"></line>"#
            ));
        }
    }
    for (i, name) in names.iter().enumerate() {
        let (x, y) = pos(i);
        let id = i + 1;
        out.push_str(&format!(
            r##"<circle r="1.5" stroke="black" fill="#b3b3b3" cx="{x}" cy="{y}" stroke-width="0.1" data-type="element node" data-element-id="{id}" data-node-id="{id}" data-label-name="{name}"></circle>"##
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn coco_svg_has_every_node_and_limb() {
        let names = super::default_names(17);
        let svg = super::svg(&names);
        assert_eq!(svg.matches("<circle").count(), 17);
        assert_eq!(svg.matches("<line").count(), 19);
        assert!(svg.contains(r#"data-label-name="left_ankle""#));
        assert_eq!(super::default_names(2), vec!["kp0", "kp1"]);
    }
}
