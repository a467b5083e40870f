//! Vector kernels for aarch64. Each is chosen at run time, only when the CPU has its
//! feature; none is compiled for other targets.

pub(crate) mod neon;
