//! Label specs as CVAT lists them (`metadata.annotations.spec`).

use serde::Serialize;

/// CVAT shape types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeType {
    Any,
    Rectangle,
    Polygon,
    Polyline,
    Points,
    Ellipse,
    Cuboid,
    Mask,
    Skeleton,
    Tag,
}

impl ShapeType {
    /// The name CVAT uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ShapeType::Any => "any",
            ShapeType::Rectangle => "rectangle",
            ShapeType::Polygon => "polygon",
            ShapeType::Polyline => "polyline",
            ShapeType::Points => "points",
            ShapeType::Ellipse => "ellipse",
            ShapeType::Cuboid => "cuboid",
            ShapeType::Mask => "mask",
            ShapeType::Skeleton => "skeleton",
            ShapeType::Tag => "tag",
        }
    }
}

/// An attribute declaration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeSpec {
    pub name: String,
    pub input_type: String,
    pub values: Vec<String>,
}

/// One label of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSpec {
    pub id: u32,
    pub name: String,
    pub shape: ShapeType,
    pub attributes: Vec<AttributeSpec>,
    pub sublabels: Vec<(u32, String)>,
    pub svg: Option<String>,
}

/// What a component reports after `init`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub labels: Vec<LabelSpec>,
    pub description: String,
    /// Config keys the component cannot run without.
    pub needs: Vec<String>,
    /// The input a detector fits frames into, if it declared one (see `frame::Fit`).
    pub input_size: Option<(u32, u32)>,
}
