//! Guest-side helpers for model components.
//!
//! Everything here is plain Rust that a component links in: [`nn`] wraps the `wasi:nn`
//! imports (plus the host's `cvat:model/graphs` signature query), [`image`] turns a decoded
//! RGB frame into a model input tensor, [`boxes`] holds box geometry and NMS, and [`config`]
//! reads the instance's `config` map.

pub mod boxes;
pub mod config;
pub mod image;
pub mod nn;

/// Bindings for the imports every model component has (`wasi:nn/*`, `cvat:model/graphs`).
/// Component crates reuse them through wit-bindgen's `with` option.
pub mod bindings {
    wit_bindgen::generate!({
        world: "model-imports",
        path: "../../wit",
        generate_all,
    });
}
