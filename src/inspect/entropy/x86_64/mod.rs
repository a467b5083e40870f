//! Vector kernels for x86_64. Each is chosen at run time, only when the CPU has its
//! feature; none is compiled for other targets.

pub(crate) mod avx2;
pub(crate) mod sse2;
