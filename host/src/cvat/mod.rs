//! Everything CVAT sees (shared/docs/cvat-protocol.md): the request and answer payloads of
//! each kind ([`payload`]), mask RLE ([`rle`]) and outlines ([`contour`]), label specs
//! ([`labels`]), the function objects and annotations ([`functions`]), the Nuclio-dashboard
//! API ([`gateway`]), the remote pools it also lists and forwards to ([`pools`]) and the
//! generated Nuclio functions ([`nuclio`]).

pub mod contour;
pub mod functions;
pub mod gateway;
pub mod labels;
pub mod nuclio;
pub mod payload;
pub mod pools;
pub mod rle;
