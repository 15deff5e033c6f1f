//! The host: runs sandboxed WebAssembly model components for CVAT.
//!
//! - [`config`]: models.yaml, the desired state.
//! - [`runtime`]: wasmtime engine, compile cache, deadlines, loaded instances.
//! - [`nn`]: the `wasi:nn` host over ONNX Runtime.
//! - [`instance`]: lazy load, serialized calls, idle unload, status.
//! - [`server`], [`cvat`], [`frame`], [`contour`], [`api_error`]: HTTP and CVAT's payloads.
//! - [`up`]: start everything and serve until shutdown.
//! - [`probe`]: time one model file on one backend and device (`host probe`).

pub mod api_error;
pub mod config;
pub mod contour;
pub mod cvat;
pub mod daemon;
pub mod discovery;
pub mod frame;
pub mod functions;
pub mod gateway;
pub mod instance;
pub mod labels;
pub mod metrics;
pub mod nn;
pub mod nuclio;
pub mod probe;
pub mod reconcile;
pub mod rle;
pub mod runtime;
pub mod scaffold;
pub mod server;
pub mod up;
pub mod watch;
pub mod yaml_edit;
