//! Tensors as they cross the wasi-nn boundary: dimensions, element type and raw
//! little-endian bytes.

/// Element types the wasi-nn interface names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    F16,
    F32,
    F64,
    Bf16,
    U8,
    I32,
    I64,
}

impl ElementType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElementType::U8 => 1,
            ElementType::F16 | ElementType::Bf16 => 2,
            ElementType::F32 | ElementType::I32 => 4,
            ElementType::F64 | ElementType::I64 => 8,
        }
    }
}

/// A tensor owned by the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub dims: Vec<u32>,
    pub ty: ElementType,
    pub data: Vec<u8>,
}

impl HostTensor {
    /// Build a tensor, checking that `data` holds exactly `product(dims) * size(ty)` bytes
    /// and that it stays under `max_bytes`.
    pub fn new(
        dims: Vec<u32>,
        ty: ElementType,
        data: Vec<u8>,
        max_bytes: usize,
    ) -> Result<Self, String> {
        let elements = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
            .ok_or("tensor dimensions overflow")?;
        let bytes = elements
            .checked_mul(ty.size())
            .ok_or("tensor size overflows")?;
        if bytes > max_bytes {
            return Err(format!(
                "tensor of {bytes} bytes exceeds the limit of {max_bytes} bytes"
            ));
        }
        if bytes != data.len() {
            return Err(format!(
                "tensor dims {dims:?} of {ty:?} need {bytes} bytes, got {}",
                data.len()
            ));
        }
        Ok(Self { dims, ty, data })
    }
}
