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

/// Plain numbers a tensor holds: every bit pattern valid, no padding.
pub trait Number: Copy + 'static {
    /// The little-endian bytes of one value.
    fn le(self) -> Vec<u8>;
}

macro_rules! number {
    ($($t:ty),*) => {$(impl Number for $t {
        fn le(self) -> Vec<u8> {
            self.to_le_bytes().to_vec()
        }
    })*};
}
number!(u8, i32, i64, f32, f64);

/// The little-endian bytes of `values` (one copy, at memory speed).
pub fn le_bytes<T: Number>(values: &[T]) -> Vec<u8> {
    if cfg!(target_endian = "little") {
        // SAFETY: `Number` types are plain numbers (all bytes initialised, no padding), and
        // u8 has no alignment requirement, so the whole slice is the middle part.
        let (_, bytes, _) = unsafe { values.align_to::<u8>() };
        bytes.to_vec()
    } else {
        values.iter().flat_map(|v| v.le()).collect()
    }
}

/// The little-endian bytes of f32 values.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    le_bytes(values)
}

/// `bytes` as f32 values without copying, when they are aligned for f32 (large buffers
/// from the allocator are) and hold whole values; else `None`.
pub fn as_f32(bytes: &[u8]) -> Option<&[f32]> {
    if cfg!(target_endian = "big") || !bytes.len().is_multiple_of(4) {
        return None;
    }
    // SAFETY: every bit pattern is a valid f32; align_to only returns the aligned middle.
    let (head, values, tail) = unsafe { bytes.align_to::<f32>() };
    (head.is_empty() && tail.is_empty()).then_some(values)
}

/// [`as_f32`] for writing.
pub fn as_f32_mut(bytes: &mut [u8]) -> Option<&mut [f32]> {
    if cfg!(target_endian = "big") || !bytes.len().is_multiple_of(4) {
        return None;
    }
    // SAFETY: every bit pattern is a valid f32 and u8; align_to_mut only returns the aligned
    // middle, which borrows `bytes` exclusively.
    let (head, values, tail) = unsafe { bytes.align_to_mut::<f32>() };
    (head.is_empty() && tail.is_empty()).then_some(values)
}

#[cfg(test)]
mod tests {
    #[test]
    fn f32_bytes_round_trip() {
        let v = [1.5f32, -2.0, f32::MAX];
        let b = super::f32_bytes(&v);
        assert_eq!(&b[..4], &1.5f32.to_le_bytes());
        if let Some(back) = super::as_f32(&b) {
            assert_eq!(back, &v);
        }
        assert!(super::as_f32(&b[1..]).is_none());
    }
}
