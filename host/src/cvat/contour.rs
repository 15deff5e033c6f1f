//! Polygons for mask results, so that CVAT's "convert masks to polygons" (`conv_mask_to_poly`)
//! works: CVAT turns a mask item into a polygon only if the item carries `points`
//! (shared/docs/cvat-protocol.md §4.1.3). The host traces the outline of each mask's largest
//! region along pixel edges and simplifies it (Douglas–Peucker).

use crate::runtime::loaded::{Detection, Mask, WitShapeType};

/// How far, in pixels, the simplified outline may stray from the traced one.
pub const TOLERANCE: f32 = 1.0;

/// Give every mask detection without `points` the polygon of its mask's largest region
/// (4-connected), unless it would exceed `max_points` numbers.
pub fn add_polygons(dets: &mut [Detection], max_points: usize) {
    for d in dets {
        if d.shape != WitShapeType::Mask || !d.points.is_empty() {
            continue;
        }
        if let Some(m) = &d.mask {
            let poly = polygon(m, TOLERANCE);
            if poly.len() >= 6 && poly.len() <= max_points {
                d.points = poly;
            }
        }
    }
}

/// The simplified outline of the mask's largest 4-connected region, as flat `[x, y, ...]`
/// pixel-corner coordinates in the frame; empty if the mask is empty.
pub fn polygon(m: &Mask, tolerance: f32) -> Vec<f32> {
    let w = (m.x2 - m.x1 + 1) as usize;
    let h = (m.y2 - m.y1 + 1) as usize;
    let Some(region) = largest_region(&m.bitmap, w, h) else {
        return vec![];
    };
    let corners = trace(&region, w, h);
    simplify(&corners, tolerance)
        .into_iter()
        .flat_map(|(x, y)| [x as f32 + m.x1 as f32, y as f32 + m.y1 as f32])
        .collect()
}

/// A bitmap of the largest 4-connected region of `bitmap` (non-zero = set). Works on runs
/// of set pixels, joined across rows with union-find: a mask of a million pixels is a few
/// thousand runs.
fn largest_region(bitmap: &[u8], w: usize, h: usize) -> Option<Vec<bool>> {
    // (row, first, end) of each run, row by row; `rows[y]..rows[y + 1]` are row y's runs.
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let mut rows = Vec::with_capacity(h + 1);
    for (y, row) in bitmap.chunks_exact(w).enumerate() {
        rows.push(runs.len());
        let mut x = 0;
        while x < w {
            if row[x] == 0 {
                x += 1;
                continue;
            }
            let first = x;
            while x < w && row[x] != 0 {
                x += 1;
            }
            runs.push((y, first, x));
        }
    }
    rows.push(runs.len());
    if runs.is_empty() {
        return None;
    }
    let mut parent: Vec<usize> = (0..runs.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for y in 1..h {
        let above = rows[y - 1]..rows[y];
        let mut j = above.start;
        for i in rows[y]..rows[y + 1] {
            let (_, first, end) = runs[i];
            while j < above.end && runs[j].2 <= first {
                j += 1;
            }
            // Runs above that share a column with this one touch it (4-connected).
            let mut k = j;
            while k < above.end && runs[k].1 < end {
                let (a, b) = (root(&mut parent, i), root(&mut parent, k));
                parent[a] = b;
                k += 1;
            }
        }
    }
    // Size of each region, and its first run in row order (ties go to the region met first).
    let mut size = vec![0usize; runs.len()];
    let mut first_run = vec![usize::MAX; runs.len()];
    for (i, run) in runs.iter().enumerate() {
        let r = root(&mut parent, i);
        size[r] += run.2 - run.1;
        first_run[r] = first_run[r].min(i);
    }
    let best = (0..runs.len()).max_by_key(|&r| (size[r], std::cmp::Reverse(first_run[r])))?;
    let mut region = vec![false; w * h];
    for (i, &(y, first, end)) in runs.iter().enumerate() {
        if root(&mut parent, i) == best {
            region[y * w + first..y * w + end].fill(true);
        }
    }
    Some(region)
}

/// The outer boundary of a 4-connected region, walked clockwise along pixel edges with the
/// region on the right; returns the corners where the walk turns. Pixel (i, j) spans
/// corners (i, j) to (i + 1, j + 1).
fn trace(region: &[bool], w: usize, h: usize) -> Vec<(i64, i64)> {
    let inside = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && region[y as usize * w + x as usize]
    };
    // The first set pixel in row order has no set pixel above it: its top edge is outer.
    let first = region.iter().position(|&b| b).unwrap_or(0);
    let start = ((first % w) as i64, (first / w) as i64);
    const STEP: [(i64, i64); 4] = [(1, 0), (0, 1), (-1, 0), (0, -1)]; // right, down, left, up
    let (mut at, mut dir) = (start, 0usize);
    let mut corners = vec![start];
    loop {
        at = (at.0 + STEP[dir].0, at.1 + STEP[dir].1);
        if at == start {
            break;
        }
        let (x, y) = at;
        // The pixels ahead of the corner, left and right of the direction of travel.
        let (ahead_left, ahead_right) = match dir {
            0 => ((x, y - 1), (x, y)),
            1 => ((x, y), (x - 1, y)),
            2 => ((x - 1, y), (x - 1, y - 1)),
            _ => ((x - 1, y - 1), (x, y - 1)),
        };
        let turn = match (
            inside(ahead_left.0, ahead_left.1),
            inside(ahead_right.0, ahead_right.1),
        ) {
            (false, true) => dir,
            (true, true) => (dir + 3) % 4,
            // Outside ahead, or only a diagonal neighbour (not 4-connected): turn right.
            _ => (dir + 1) % 4,
        };
        if turn != dir {
            corners.push(at);
            dir = turn;
        }
    }
    corners
}

/// Douglas–Peucker on a closed outline: split at the corner farthest from the first, then
/// simplify each half as an open chain.
fn simplify(closed: &[(i64, i64)], tolerance: f32) -> Vec<(i64, i64)> {
    if closed.len() <= 4 {
        return closed.to_vec();
    }
    let far = (1..closed.len())
        .max_by_key(|&i| {
            let (dx, dy) = (closed[i].0 - closed[0].0, closed[i].1 - closed[0].1);
            dx * dx + dy * dy
        })
        .unwrap_or(1);
    let mut ring: Vec<(i64, i64)> = closed.to_vec();
    ring.push(closed[0]);
    let mut keep = vec![false; ring.len()];
    keep[0] = true;
    keep[far] = true;
    let mut spans = vec![(0, far), (far, ring.len() - 1)];
    while let Some((a, b)) = spans.pop() {
        let (p, q) = (ring[a], ring[b]);
        let (dx, dy) = ((q.0 - p.0) as f32, (q.1 - p.1) as f32);
        let len = (dx * dx + dy * dy).sqrt().max(f32::EPSILON);
        let dist = |r: (i64, i64)| ((r.0 - p.0) as f32 * dy - (r.1 - p.1) as f32 * dx).abs() / len;
        if let Some((i, d)) = (a + 1..b)
            .map(|i| (i, dist(ring[i])))
            .max_by(|x, y| x.1.total_cmp(&y.1))
        {
            if d > tolerance {
                keep[i] = true;
                spans.push((a, i));
                spans.push((i, b));
            }
        }
    }
    ring.pop();
    ring.into_iter()
        .zip(keep)
        .filter_map(|(r, k)| k.then_some(r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(x1: u32, y1: u32, rows: &[&str]) -> Mask {
        let w = rows[0].len() as u32;
        Mask {
            x1,
            y1,
            x2: x1 + w - 1,
            y2: y1 + rows.len() as u32 - 1,
            bitmap: rows
                .iter()
                .flat_map(|r| r.bytes().map(|b| u8::from(b == b'#')))
                .collect(),
        }
    }

    /// The plain flood fill the run-based labelling must agree with.
    fn largest_by_flood_fill(bitmap: &[u8], w: usize, h: usize) -> Option<Vec<bool>> {
        let mut label = vec![0usize; w * h];
        let (mut best, mut best_size, mut next) = (0, 0, 0);
        for start in 0..w * h {
            if bitmap[start] == 0 || label[start] != 0 {
                continue;
            }
            next += 1;
            label[start] = next;
            let (mut stack, mut size) = (vec![start], 0);
            while let Some(i) = stack.pop() {
                size += 1;
                let (x, y) = (i % w, i / w);
                let near = [
                    (x > 0).then(|| i - 1),
                    (x + 1 < w).then(|| i + 1),
                    (y > 0).then(|| i - w),
                    (y + 1 < h).then(|| i + w),
                ];
                for n in near.into_iter().flatten() {
                    if bitmap[n] != 0 && label[n] == 0 {
                        label[n] = next;
                        stack.push(n);
                    }
                }
            }
            if size > best_size {
                (best, best_size) = (next, size);
            }
        }
        (best_size > 0).then(|| label.iter().map(|&l| l == best).collect())
    }

    #[test]
    fn run_labelling_agrees_with_a_flood_fill_on_random_masks() {
        let mut seed = 5u32;
        let mut bit = |density: u32| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            u8::from((seed >> 16) % 100 < density)
        };
        for case in 0..300 {
            let (w, h) = (1 + case % 23, 1 + case % 17);
            let density = [20, 45, 55, 70][case % 4];
            let bitmap: Vec<u8> = (0..w * h).map(|_| bit(density)).collect();
            assert_eq!(
                largest_region(&bitmap, w, h),
                largest_by_flood_fill(&bitmap, w, h),
                "case {case}: {w}x{h}"
            );
        }
    }

    #[test]
    fn a_rectangle_becomes_its_four_corners_in_frame_pixels() {
        let m = mask(10, 20, &["....", ".##.", ".##.", ".##.", "...."]);
        assert_eq!(
            polygon(&m, 1.0),
            vec![11.0, 21.0, 13.0, 21.0, 13.0, 24.0, 11.0, 24.0]
        );
    }

    #[test]
    fn an_l_shape_keeps_its_inner_corner_and_the_largest_region_wins() {
        // The lone pixel top right is its own (smaller) region; the diagonal pixel bottom
        // right touches the L only at a corner, so it is not part of it.
        let m = mask(0, 0, &["#..#", "#...", "###.", "...#"]);
        assert_eq!(
            polygon(&m, 0.5),
            vec![0.0, 0.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0, 3.0, 3.0, 0.0, 3.0]
        );
        assert!(polygon(&mask(0, 0, &["....", "...."]), 1.0).is_empty());
    }

    #[test]
    fn a_disc_outline_is_simplified_but_stays_within_tolerance() {
        let r = 20.0f32;
        let rows: Vec<String> = (0..41)
            .map(|y| {
                (0..41)
                    .map(|x| {
                        let (dx, dy) = (x as f32 - 20.0, y as f32 - 20.0);
                        if dx * dx + dy * dy <= r * r {
                            '#'
                        } else {
                            '.'
                        }
                    })
                    .collect()
            })
            .collect();
        let rows: Vec<&str> = rows.iter().map(|s| s.as_str()).collect();
        let m = mask(100, 200, &rows);
        let poly = polygon(&m, 1.0);
        let n = poly.len() / 2;
        let staircase = trace(&largest_region(&m.bitmap, 41, 41).unwrap(), 41, 41).len();
        assert!(n >= 12 && n < staircase / 2, "{n} vertices of {staircase}");
        for p in poly.chunks(2) {
            let (dx, dy) = (p[0] - 120.5, p[1] - 220.5);
            let d = (dx * dx + dy * dy).sqrt();
            assert!((d - r).abs() < 2.5, "vertex {p:?} at {d} from the centre");
        }
    }
}
