//! The request's frame turned into model inputs by the host (`cvat:model/pixels`): resizing,
//! placement, channel order, layout, element type and normalisation happen natively in one
//! pass, and the tensor comes back as a wasi-nn tensor. The frame's pixels never enter the
//! component.

use crate::bindings::cvat::model::pixels::{self as host, Filter, Fit, Mapping, TensorSpec};
use crate::bindings::cvat::model::types::{Bbox, Frame};
use crate::bindings::wasi::nn::tensor::{Tensor, TensorType};
use crate::image::{Channels, InputSpec, Layout, Letterbox, Place};

/// The host's description of `input` (its size, layout, channel order, pad byte and
/// normalisation `byte * mul + add`, i.e. `(byte - mean) * scale`), holding `element`s.
pub fn spec(input: &InputSpec, element: TensorType, filter: Filter) -> TensorSpec {
    let (mul, add) = (input.norm.mul, input.norm.add);
    let mean = if mul != 0.0 { -add / mul } else { 0.0 };
    let pad = input.pad as f32;
    TensorSpec {
        width: input.width,
        height: input.height,
        layout: match input.layout {
            Layout::Nchw => host::Layout::Nchw,
            Layout::Nhwc => host::Layout::Nhwc,
        },
        channels: match input.channels {
            Channels::Rgb => host::Channels::Rgb,
            Channels::Bgr => host::Channels::Bgr,
        },
        element,
        mean: (mean, mean, mean),
        scale: (mul, mul, mul),
        pad: (pad, pad, pad),
        filter,
    }
}

/// The frame letterboxed into `input` (centred or top-left as `input.place` says) as an f32
/// tensor, and how input pixels map back to the frame.
pub fn letterbox(frame: &Frame, input: &InputSpec) -> Result<(Tensor, Letterbox), String> {
    let fit = match input.place {
        Place::Centre => Fit::LetterboxCentre,
        Place::TopLeft => Fit::LetterboxTopLeft,
    };
    let s = spec(input, TensorType::Fp32, Filter::Bilinear);
    let (tensor, m) = host::fit_frame(frame, fit, s)?;
    Ok((tensor, letterbox_of(&m)))
}

/// The frame fitted into a tensor the caller describes in full (per-channel normalisation).
pub fn fit(frame: &Frame, fit: Fit, spec: TensorSpec) -> Result<(Tensor, Mapping), String> {
    host::fit_frame(frame, fit, spec)
}

/// Regions of the frame, each stretched to the spec's size, as one `[n, ...]` tensor.
pub fn crops(frame: &Frame, regions: &[Bbox], spec: TensorSpec) -> Result<Tensor, String> {
    host::crop_frame(frame, regions, spec)
}

/// A letterbox mapping (one scale for both axes) as the SDK's [`Letterbox`].
pub fn letterbox_of(m: &Mapping) -> Letterbox {
    Letterbox {
        scale: m.scale_x,
        pad_x: m.offset_x,
        pad_y: m.offset_y,
    }
}
