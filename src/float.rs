//! The element types a network can compute in: `f32` and `f64`.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::{Float as NumFloat, FromPrimitive, ToPrimitive};

/// A floating-point element type: implemented for `f32` and `f64` only.
///
/// The matrix products go through [`crate::linalg`], whose backend multiplies exactly these two
/// types.
pub trait Float:
    NumFloat
    + FromPrimitive
    + ToPrimitive
    + LinalgScalar
    + ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + safetensors_dtype::HasDtype
    + 'static
{
    /// Converts an `f64` constant, rounding to nearest for `f32`.
    fn of(value: f64) -> Self;
}

impl Float for f32 {
    fn of(value: f64) -> Self {
        value as f32
    }
}

impl Float for f64 {
    fn of(value: f64) -> Self {
        value
    }
}

/// The safetensors data type of each element type; private to the crate.
pub(crate) mod safetensors_dtype {
    /// An element type with a safetensors `Dtype` and a little-endian byte encoding.
    pub trait HasDtype: Sized {
        /// The safetensors data type.
        const DTYPE: safetensors::Dtype;
        /// Appends the little-endian bytes of `self` to `out`.
        fn write_le(self, out: &mut Vec<u8>);
        /// Reads one value from exactly `size_of::<Self>()` little-endian bytes.
        fn read_le(bytes: &[u8]) -> Self;
    }

    impl HasDtype for f32 {
        const DTYPE: safetensors::Dtype = safetensors::Dtype::F32;
        fn write_le(self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.to_le_bytes());
        }
        fn read_le(bytes: &[u8]) -> Self {
            f32::from_le_bytes(bytes.try_into().expect("4 bytes"))
        }
    }

    impl HasDtype for f64 {
        const DTYPE: safetensors::Dtype = safetensors::Dtype::F64;
        fn write_le(self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.to_le_bytes());
        }
        fn read_le(bytes: &[u8]) -> Self {
            f64::from_le_bytes(bytes.try_into().expect("8 bytes"))
        }
    }
}
