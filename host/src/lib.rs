//! The host: runs sandboxed WebAssembly model components for CVAT.
//!
//! - [`config`]: models.yaml (the desired state), editing it, watching it and `components/`.
//! - [`reconcile`]: models.yaml → running instances and their ports.
//! - [`runtime`]: wasmtime engine, compile cache, deadlines, loaded instances.
//! - [`nn`]: the `wasi:nn` host over ONNX Runtime and OpenVINO.
//! - [`instance`]: lazy load, serialized calls, idle unload, status.
//! - [`app`]: the state every handler shares.
//! - [`serve`]: HTTP: instance ports and the management port; frames and errors.
//! - [`cvat`]: CVAT's payloads, masks and labels, the Nuclio-compatible gateway and the
//!   generated Nuclio functions.
//! - [`up`], [`daemon`], [`supervise`], [`probe`], [`scaffold`], [`metrics`]: the CLI's verbs
//!   (`up -d` runs the server under a supervisor that restarts it) and metrics.

pub mod app;
pub mod config;
pub mod contract;
pub mod cvat;
pub mod daemon;
pub mod instance;
pub mod metrics;
pub mod nn;
pub mod probe;
pub mod reconcile;
pub mod runtime;
pub mod scaffold;
pub mod serve;
pub mod supervise;
pub mod up;
