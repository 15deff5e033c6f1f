//! Guest-side helpers for model components.
//!
//! Everything here is plain Rust that a component links in: [`nn`] wraps the `wasi:nn`
//! imports (plus the host's `cvat:model/graphs` signature query), [`pixels`] asks the host to
//! turn the request's frame into a model input tensor (described by [`image`]'s `InputSpec`), [`boxes`] holds box geometry and NMS, [`config`]
//! reads the instance's `config` map, [`results`] builds label specs and detections, and
//! [`b64`] encodes bytes for tracker states.

pub mod anchors;
pub mod b64;
pub mod boxes;
pub mod config;
pub mod image;
pub mod nn;
pub mod pixels;
pub mod results;

/// Generate a component's bindings for `world` (e.g. `"detector-model"`), reusing the SDK's
/// bindings of the imports every component has. The WIT folder defaults to `../../wit`
/// (a crate under `components/`); pass another path as the second argument.
#[macro_export]
macro_rules! world {
    ($world:tt) => {
        $crate::world!($world, "../../wit");
    };
    ($world:tt, $path:tt) => {
        wit_bindgen::generate!({
            world: $world,
            path: $path,
            with: {
                "wasi:nn/tensor@0.2.0-rc-2024-10-28": model_sdk::bindings::wasi::nn::tensor,
                "wasi:nn/graph@0.2.0-rc-2024-10-28": model_sdk::bindings::wasi::nn::graph,
                "wasi:nn/inference@0.2.0-rc-2024-10-28": model_sdk::bindings::wasi::nn::inference,
                "wasi:nn/errors@0.2.0-rc-2024-10-28": model_sdk::bindings::wasi::nn::errors,
                "cvat:model/types@0.3.0": model_sdk::bindings::cvat::model::types,
                "cvat:model/graphs@0.3.0": model_sdk::bindings::cvat::model::graphs,
                "cvat:model/pixels@0.3.0": model_sdk::bindings::cvat::model::pixels,
            },
            generate_all,
        });
        // Every `cvat:model` import is the SDK's (see `with` above): `cvat::model::types`
        // and friends, for the component's own code.
        #[allow(unused_imports)]
        use model_sdk::bindings::cvat;
    };
}

/// Bindings for the imports every model component has (`wasi:nn/*`, `cvat:model/types`,
/// `graphs` and `pixels`).
/// Component crates reuse them through wit-bindgen's `with` option.
pub mod bindings {
    wit_bindgen::generate!({
        world: "model-imports",
        path: "../../wit",
        generate_all,
    });
}
