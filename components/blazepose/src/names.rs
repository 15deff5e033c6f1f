//! BlazePose's 33 body landmarks and the skeleton SVG CVAT draws them with.

/// Landmark names, in the model's order.
pub const NAMES: [&str; 33] = [
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
];

/// Where to draw each landmark (0-100 box, the person facing the viewer).
const LAYOUT: [(f32, f32); 33] = [
    (50.0, 8.0),
    (52.0, 6.0),
    (53.5, 6.0),
    (55.0, 6.0),
    (48.0, 6.0),
    (46.5, 6.0),
    (45.0, 6.0),
    (57.0, 8.0),
    (43.0, 8.0),
    (52.0, 11.0),
    (48.0, 11.0),
    (60.0, 22.0),
    (40.0, 22.0),
    (66.0, 37.0),
    (34.0, 37.0),
    (70.0, 51.0),
    (30.0, 51.0),
    (72.0, 55.0),
    (28.0, 55.0),
    (71.0, 56.0),
    (29.0, 56.0),
    (68.0, 54.0),
    (32.0, 54.0),
    (56.0, 52.0),
    (44.0, 52.0),
    (57.0, 72.0),
    (43.0, 72.0),
    (58.0, 90.0),
    (42.0, 90.0),
    (57.0, 93.0),
    (43.0, 93.0),
    (61.0, 95.0),
    (39.0, 95.0),
];

/// MediaPipe's POSE_CONNECTIONS, 0-based.
const EDGES: [(usize, usize); 35] = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 7),
    (0, 4),
    (4, 5),
    (5, 6),
    (6, 8),
    (9, 10),
    (11, 12),
    (11, 13),
    (13, 15),
    (15, 17),
    (15, 19),
    (15, 21),
    (17, 19),
    (12, 14),
    (14, 16),
    (16, 18),
    (16, 20),
    (16, 22),
    (18, 20),
    (11, 23),
    (12, 24),
    (23, 24),
    (23, 25),
    (24, 26),
    (25, 27),
    (26, 28),
    (27, 29),
    (28, 30),
    (29, 31),
    (30, 32),
    (27, 31),
    (28, 32),
];

/// CVAT's skeleton SVG (1-based node ids, `data-label-name` = the sublabel).
pub fn svg() -> String {
    let mut out = String::new();
    for (a, b) in EDGES {
        let ((x1, y1), (x2, y2)) = (LAYOUT[a], LAYOUT[b]);
        out.push_str(&format!(
            r#"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="black" data-type="edge" data-node-from="{}" data-node-to="{}" stroke-width="0.5"></line>"#,
            a + 1,
            b + 1
        ));
    }
    for (i, name) in NAMES.iter().enumerate() {
        let (x, y) = LAYOUT[i];
        let id = i + 1;
        out.push_str(&format!(
            r##"<circle r="1" stroke="black" fill="#b3b3b3" cx="{x}" cy="{y}" stroke-width="0.1" data-type="element node" data-element-id="{id}" data-node-id="{id}" data-label-name="{name}"></circle>"##
        ));
    }
    out
}
