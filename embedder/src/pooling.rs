//! sentence-transformers pooling (`1_Pooling/config.json`) over token
//! embeddings, masked by the attention mask.

use candle_core::{D, DType, Tensor};
use serde::Deserialize;

use crate::error::Result;

/// How token embeddings become one sentence embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
    Max,
    MeanSqrtLen,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

impl PoolingConfig {
    /// The one mode the config enables; `None` if none or several are set.
    pub(crate) fn mode(&self) -> Option<Pooling> {
        let modes = [
            (self.pooling_mode_mean_tokens, Pooling::Mean),
            (self.pooling_mode_cls_token, Pooling::Cls),
            (self.pooling_mode_max_tokens, Pooling::Max),
            (self.pooling_mode_mean_sqrt_len_tokens, Pooling::MeanSqrtLen),
        ];
        let mut on = modes.iter().filter(|(set, _)| *set).map(|(_, m)| *m);
        match (on.next(), on.next()) {
            (Some(mode), None) => Some(mode),
            _ => None,
        }
    }
}

impl Pooling {
    /// `hidden`: (batch, tokens, dim); `mask`: (batch, tokens) of 0/1.
    pub(crate) fn apply(self, hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let mask = mask.to_dtype(DType::F32)?;
        let expanded = mask.unsqueeze(D::Minus1)?.broadcast_as(hidden.shape())?;
        Ok(match self {
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Mean | Pooling::MeanSqrtLen => {
                let summed = (hidden * &expanded)?.sum(1)?;
                let counts = mask.sum_keepdim(1)?.clamp(1e-9f32, f32::MAX)?;
                let divisor = if self == Pooling::Mean {
                    counts
                } else {
                    counts.sqrt()?
                };
                summed.broadcast_div(&divisor)?
            }
            Pooling::Max => {
                // Padding positions must never win the max.
                let penalty = ((expanded.ones_like()? - &expanded)? * -1e9f64)?;
                (hidden + penalty)?.max(1)?
            }
        })
    }
}

/// Scales each row to unit length.
pub(crate) fn normalize(embeddings: &Tensor) -> Result<Tensor> {
    let norms = embeddings
        .sqr()?
        .sum_keepdim(1)?
        .sqrt()?
        .clamp(1e-12f32, f32::MAX)?;
    Ok(embeddings.broadcast_div(&norms)?)
}
