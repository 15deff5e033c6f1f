//! `host probe`: load one model file with a chosen backend and device, print its signature,
//! its load and first-run times and its steady-state latency. It answers "does this model run
//! on cuda:0 here, and how fast is the backend alone?" before an instance is configured, and
//! gives benchmarks their raw inference floor.

use std::path::Path;
use std::time::Instant;

use crate::nn::graph::{self, Graph};
use crate::nn::tensor::{ElementType, HostTensor};
use crate::nn::{Libraries, SessionOptions};

/// What a probe measured, in milliseconds.
#[derive(Debug, Clone)]
pub struct Report {
    pub load_ms: f64,
    pub first_run_ms: f64,
    /// Sorted latencies of the timed runs.
    pub runs_ms: Vec<f64>,
    /// Sum of every f32 output element of the last run, to compare backends and devices.
    pub output_sum: f64,
    /// The precision the backend computes in, as it reports it ([`Graph::precision`]).
    pub precision: String,
    /// Every output of the last run, for comparing backends element by element.
    pub outputs: Vec<(String, HostTensor)>,
}

impl Report {
    /// The `q` quantile (0..=1) of the timed runs.
    pub fn quantile(&self, q: f64) -> f64 {
        let i = ((self.runs_ms.len() - 1) as f64 * q).round() as usize;
        self.runs_ms[i]
    }
}

/// A deterministic input for each of the graph's inputs (dynamic dimensions become 1).
pub fn inputs(g: &dyn Graph) -> anyhow::Result<Vec<(String, HostTensor)>> {
    g.signature()
        .inputs
        .iter()
        .map(|i| {
            let dims: Vec<u32> = i.dims.iter().map(|&d| d.max(1) as u32).collect();
            let n = dims.iter().map(|&d| d as usize).product::<usize>();
            let ty = i.ty.unwrap_or(ElementType::F32);
            let data: Vec<u8> = match ty {
                ElementType::F32 => (0..n)
                    .flat_map(|k| (((k * 7919) % 255) as f32 / 255.0).to_le_bytes())
                    .collect(),
                ElementType::U8 => (0..n).map(|k| ((k * 7919) % 255) as u8).collect(),
                other => anyhow::bail!("input `{}` is {other:?}; probe feeds f32 or u8", i.name),
            };
            Ok((i.name.clone(), HostTensor { dims, ty, data }))
        })
        .collect()
}

/// Load `path` and time `runs` runs after a first, untimed one.
pub fn probe(
    path: &Path,
    options: SessionOptions,
    libraries: &Libraries,
    runs: usize,
    mut say: impl FnMut(&str),
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let g = graph::load(path, options, libraries)?;
    let load_ms = ms(started);
    let s = g.signature();
    for (dir, list) in [("input", &s.inputs), ("output", &s.outputs)] {
        for t in list {
            say(&format!("{dir:<6} {:<24} {:?} {:?}", t.name, t.ty, t.dims));
        }
    }
    let input = inputs(g.as_ref())?;
    let started = Instant::now();
    let mut out = g.run(input.clone())?;
    let first_run_ms = ms(started);
    let mut runs_ms = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let input = input.clone();
        let started = Instant::now();
        out = g.run(input)?;
        runs_ms.push(ms(started));
    }
    runs_ms.sort_by(f64::total_cmp);
    let output_sum = out
        .iter()
        .filter(|(_, t)| t.ty == ElementType::F32)
        .flat_map(|(_, t)| t.data.chunks_exact(4))
        .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
        .sum();
    Ok(Report {
        load_ms,
        first_run_ms,
        runs_ms,
        output_sum,
        precision: g.precision(),
        outputs: out,
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}
