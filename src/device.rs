//! Choosing where and in what precision to compute.

use candle_core::{DType, Device};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Cuda,
    Metal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
    Bf16,
}

impl Precision {
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }
}

/// Opens the device, or says which cargo feature the build lacks.
pub fn open(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda => {
            if !cfg!(feature = "cuda") {
                return Err(Error::invalid(
                    "this build has no CUDA support; rebuild with `cargo build --release --features cuda`",
                ));
            }
            Device::new_cuda(0).map_err(|e| Error::invalid(format!("no usable CUDA device: {e}")))
        }
        DeviceChoice::Metal => {
            if !cfg!(feature = "metal") {
                return Err(Error::invalid(
                    "this build has no Metal support; rebuild with `cargo build --release --features metal`",
                ));
            }
            Device::new_metal(0).map_err(|e| Error::invalid(format!("no usable Metal device: {e}")))
        }
    }
}
