//! Operand checks the kernels run once per call, before any pointer arithmetic: the kernels
//! index raw slices with sizes taken from their operands, so an operand of the wrong shape
//! (a model whose config disagrees with its weights, a caller's bug) must become an error here
//! rather than a read past a buffer. Each message is one line naming the kernel and operand.

use candle_core::{DType, Tensor};

/// An error for `kernel` about `what`.
pub fn fail(kernel: &str, what: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("{kernel}: {what}"))
}

/// `t` must be f32 and have exactly the dimensions `want`.
pub fn dims(kernel: &str, name: &str, t: &Tensor, want: &[usize]) -> candle_core::Result<()> {
    f32(kernel, name, t)?;
    if t.dims() != want {
        return Err(fail(
            kernel,
            format!("{name} has shape {:?}, expected {want:?}", t.dims()),
        ));
    }
    Ok(())
}

/// `t` must be f32 and have `rank` dimensions; returns them.
pub fn rank<'a>(kernel: &str, name: &str, t: &'a Tensor, rank: usize) -> candle_core::Result<&'a [usize]> {
    f32(kernel, name, t)?;
    if t.rank() != rank {
        return Err(fail(
            kernel,
            format!("{name} has shape {:?}, expected {rank} dimensions", t.dims()),
        ));
    }
    Ok(t.dims())
}

/// As [`dims`] for an operand that may be absent.
pub fn opt_dims(kernel: &str, name: &str, t: Option<&Tensor>, want: &[usize]) -> candle_core::Result<()> {
    t.map_or(Ok(()), |t| dims(kernel, name, t, want))
}

/// A condition on sizes that must hold (`what` says which, for the message).
pub fn that(kernel: &str, ok: bool, what: impl FnOnce() -> String) -> candle_core::Result<()> {
    if ok { Ok(()) } else { Err(fail(kernel, what())) }
}

/// `t` must hold f32.
pub fn f32(kernel: &str, name: &str, t: &Tensor) -> candle_core::Result<()> {
    if t.dtype() != DType::F32 {
        return Err(fail(kernel, format!("{name} is {:?}, expected f32", t.dtype())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn messages_name_the_kernel_and_operand() {
        let t = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(dims("k", "w", &t, &[2, 3]).is_ok());
        let e = dims("k", "w", &t, &[3, 2]).unwrap_err().to_string();
        assert!(e.contains("k: w has shape [2, 3], expected [3, 2]"), "{e}");
        let e = rank("k", "x", &t, 4).unwrap_err().to_string();
        assert!(e.contains("expected 4 dimensions"), "{e}");
        let h = Tensor::zeros((2, 3), DType::F16, &Device::Cpu).unwrap();
        assert!(
            dims("k", "w", &h, &[2, 3])
                .unwrap_err()
                .to_string()
                .contains("expected f32")
        );
        assert!(opt_dims("k", "w", None, &[1]).is_ok());
    }

    fn t(shape: &[usize]) -> Tensor {
        Tensor::ones(shape, DType::F32, &Device::Cpu).unwrap()
    }

    fn refused(result: candle_core::Result<Tensor>, expect: &str) {
        let e = result.expect_err(expect).to_string();
        assert!(e.contains(expect), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    /// Every kernel refuses operands that disagree, with an error instead of a read past
    /// a buffer (the weight narrower than the input, a residual of another size, …).
    #[test]
    fn kernels_refuse_mismatched_operands() {
        use crate::model::cpu::{attention, conv, group_norm, matmul, winograd};
        // linear: the weight's inner size must be the input's last dimension.
        refused(
            matmul::linear(&t(&[2, 5, 7]), &t(&[3, 4]), None, None),
            "weight has shape [3, 4], expected [3, 7]",
        );
        refused(
            matmul::linear(&t(&[2, 7]), &t(&[3, 7]), Some(&t(&[4])), None),
            "bias has shape [4]",
        );
        refused(
            matmul::linear(&t(&[2, 7]), &t(&[3, 7]), None, Some(&t(&[2, 4]))),
            "residual has shape [2, 4]",
        );
        refused(
            matmul::image_to_tokens(&t(&[1, 4, 2, 2]), &t(&[3, 1]), &t(&[3])),
            "image_to_tokens: weight",
        );
        refused(
            matmul::tokens_to_image(&t(&[1, 5, 3]), &t(&[4, 3]), &t(&[4]), &t(&[1, 4, 2, 2])),
            "tokens has shape [1, 5, 3], expected [1, 4, 3]",
        );
        refused(matmul::geglu(&t(&[2, 3]), None), "even");
        refused(matmul::geglu(&t(&[2, 4]), Some(&t(&[2]))), "bias has shape [2]");
        // attention: keys and values must match the queries' width and each other.
        refused(
            attention::attention(&t(&[1, 4, 8]), &t(&[1, 3, 4]), &t(&[1, 3, 4]), 2, 1.0),
            "k has shape [1, 3, 4], expected [1, 3, 8]",
        );
        refused(
            attention::attention(&t(&[1, 4, 8]), &t(&[1, 3, 8]), &t(&[1, 2, 8]), 2, 1.0),
            "v has shape",
        );
        refused(
            attention::attention(&t(&[1, 4, 8]), &t(&[1, 3, 8]), &t(&[1, 3, 8]), 3, 1.0),
            "3 heads do not divide",
        );
        refused(
            attention::attention(&t(&[1, 4, 8]), &t(&[1, 3, 8]), &t(&[1, 3, 8]), 0, 1.0),
            "0 heads",
        );
        refused(
            attention::attention_masked(&t(&[1, 4, 8]), &t(&[1, 3, 8]), &t(&[1, 3, 8]), 2, 1.0, true),
            "causal",
        );
        // group norm: weights per channel, groups dividing the channels.
        refused(
            group_norm::group_norm(&t(&[1, 4, 2, 2]), 3, &t(&[4]), &t(&[4]), 1e-5, false),
            "3 groups do not divide 4",
        );
        refused(
            group_norm::group_norm(&t(&[1, 4, 2, 2]), 2, &t(&[8]), &t(&[4]), 1e-5, false),
            "weight has shape [8]",
        );
        refused(
            group_norm::group_norm(&t(&[4]), 2, &t(&[4]), &t(&[4]), 1e-5, false),
            "expected [B, C",
        );
        // 3×3 convolutions: the weight's input channels, the extra terms, the input's size.
        refused(
            conv::conv3x3(&t(&[1, 4, 8, 8]), &t(&[2, 1, 3, 3]), &t(&[2]), 1, 1, None, None),
            "weight has shape [2, 1, 3, 3], expected [2, 4, 3, 3]",
        );
        refused(
            conv::conv3x3(
                &t(&[1, 4, 8, 8]),
                &t(&[2, 4, 3, 3]),
                &t(&[2]),
                1,
                1,
                Some(&t(&[1, 3])),
                None,
            ),
            "image bias",
        );
        refused(
            conv::conv3x3(
                &t(&[1, 4, 8, 8]),
                &t(&[2, 4, 3, 3]),
                &t(&[2]),
                2,
                1,
                None,
                Some(&t(&[1, 2, 8, 8])),
            ),
            "residual has shape [1, 2, 8, 8], expected [1, 2, 4, 4]",
        );
        refused(
            conv::conv3x3(&t(&[1, 4, 2, 2]), &t(&[2, 4, 3, 3]), &t(&[2]), 2, 0, None, None),
            "smaller than the 3×3 kernel",
        );
        refused(
            conv::conv3x3(&t(&[1, 4, 8, 8]), &t(&[2, 4, 3, 3]), &t(&[2]), 0, 1, None, None),
            "stride 0",
        );
        refused(
            winograd::conv3x3(&t(&[1, 4, 8, 8]), &t(&[2, 1, 3, 3]), &t(&[2]), None, None),
            "Winograd): weight",
        );
        refused(
            winograd::conv3x3(
                &t(&[1, 4, 8, 8]),
                &t(&[2, 4, 3, 3]),
                &t(&[2]),
                None,
                Some(&t(&[1, 2, 4, 4])),
            ),
            "residual",
        );
        // Non-f32 data is refused rather than reinterpreted.
        let half = t(&[3, 7]).to_dtype(DType::F16).unwrap();
        refused(matmul::linear(&t(&[2, 7]), &half, None, None), "expected f32");
    }
}
