//! The BERT encoder's forward pass (Hugging Face `BertModel` in eval mode),
//! on candle. Same weights, names and math as candle-transformers' `bert`,
//! which this replaces for speed on CPU (numbers in embedder/bench/README.md):
//!
//! - exact GELU with a rational approximation of erf (within 2e-6 of
//!   candle's exact GELU) in one vectorizable pass on both cores; candle's
//!   `gelu_erf` calls libm's scalar `erff` per element, which was a fifth
//!   of the encoder's time;
//! - linear layers as one matmul over all rows of all texts, weights
//!   transposed once at load (candle's `Linear` runs one matmul per text);
//! - the query, key and value projections as one matmul, the 1/sqrt(d)
//!   scale folded into the query, and the softmax fused over the last
//!   dimension.
//!
//! On other devices the GELU is candle's own.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder, embedding, layer_norm, linear};

/// A linear layer run as one matmul over all rows of all texts: candle's
/// `Linear` on (batch, seq, in) runs one small matmul per text, each
/// repacking the whole weight matrix.
struct Dense {
    /// (in, out), contiguous.
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    fn new(linear: Linear) -> Result<Dense> {
        let Some(bias) = linear.bias().cloned() else {
            candle_core::bail!("BERT linear layers need biases");
        };
        Ok(Dense {
            weight: linear.weight().t()?.contiguous()?,
            bias,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, seq, width) = x.dims3()?;
        let out = self.weight.dim(1)?;
        x.reshape((batch * seq, width))?
            .matmul(&self.weight)?
            .broadcast_add(&self.bias)?
            .reshape((batch, seq, out))
    }
}
use candle_transformers::models::bert::{Config, HiddenAct};
use rayon::prelude::*;

struct Layer {
    qkv: Dense,
    heads: usize,
    attention_out: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
}

pub struct Bert {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
}

impl Bert {
    /// Loads the weights, under `bert.`, `<model_type>.` or no prefix.
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Bert> {
        if config.hidden_act != HiddenAct::Gelu {
            candle_core::bail!("only BERT models with exact GELU (\"gelu\") are supported");
        }
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else if let Some(prefix) = config
            .model_type
            .as_deref()
            .filter(|t| vb.contains_tensor(&format!("{t}.embeddings.word_embeddings.weight")))
        {
            vb.pp(prefix)
        } else {
            vb
        };
        let hidden = config.hidden_size;
        let eps = config.layer_norm_eps;
        let e = vb.pp("embeddings");
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Bert {
            words: embedding(config.vocab_size, hidden, e.pp("word_embeddings"))?,
            positions: embedding(
                config.max_position_embeddings,
                hidden,
                e.pp("position_embeddings"),
            )?,
            token_types: embedding(
                config.type_vocab_size,
                hidden,
                e.pp("token_type_embeddings"),
            )?,
            embeddings_norm: layer_norm(hidden, eps, e.pp("LayerNorm"))?,
            layers,
        })
    }

    /// Hidden states (batch, seq, hidden) of token ids, token type ids and
    /// the attention mask (1 for tokens, 0 for padding), all (batch, seq).
    pub fn forward(&self, ids: &Tensor, types: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (_, seq) = ids.dims2()?;
        let positions = Tensor::arange(0u32, seq as u32, ids.device())?;
        let x = (self.words.forward(ids)? + self.token_types.forward(types)?)?
            .broadcast_add(&self.positions.forward(&positions)?)?;
        let mut x = self.embeddings_norm.forward(&x)?;
        // 0 where attended, the most negative f32 where padded: (batch, 1, 1, seq).
        let mask = ((1.0 - mask.to_dtype(DType::F32)?)? * f64::from(f32::MIN))?
            .unsqueeze(1)?
            .unsqueeze(1)?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask)?;
        }
        Ok(x)
    }
}

impl Layer {
    fn load(vb: VarBuilder, config: &Config) -> Result<Layer> {
        let hidden = config.hidden_size;
        let eps = config.layer_norm_eps;
        let attention = vb.pp("attention");
        let projections = ["query", "key", "value"]
            .map(|name| linear(hidden, hidden, attention.pp("self").pp(name)));
        let [q, k, v] = projections;
        let (q, k, v) = (q?, k?, v?);
        let weight = Tensor::cat(&[q.weight(), k.weight(), v.weight()], 0)?;
        let bias = match (q.bias(), k.bias(), v.bias()) {
            (Some(q), Some(k), Some(v)) => Some(Tensor::cat(&[q, k, v], 0)?),
            _ => candle_core::bail!("BERT attention projections need biases"),
        };
        Ok(Layer {
            qkv: Dense::new(Linear::new(weight, bias))?,
            heads: config.num_attention_heads,
            attention_out: Dense::new(linear(hidden, hidden, attention.pp("output").pp("dense"))?)?,
            attention_norm: layer_norm(hidden, eps, attention.pp("output").pp("LayerNorm"))?,
            intermediate: Dense::new(linear(
                hidden,
                config.intermediate_size,
                vb.pp("intermediate").pp("dense"),
            )?)?,
            output: Dense::new(linear(
                config.intermediate_size,
                hidden,
                vb.pp("output").pp("dense"),
            )?)?,
            output_norm: layer_norm(hidden, eps, vb.pp("output").pp("LayerNorm"))?,
        })
    }

    fn forward(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, seq, hidden) = x.dims3()?;
        let head = hidden / self.heads;
        // (batch, seq, 3 * hidden) -> three (batch, heads, seq, head).
        let qkv = self
            .qkv
            .forward(x)?
            .reshape((batch, seq, 3, self.heads, head))?
            .permute((2, 0, 3, 1, 4))?;
        let q = (qkv.get(0)? * (1.0 / (head as f64).sqrt()))?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((batch, seq, hidden))?;
        let attended = self
            .attention_norm
            .forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = gelu(&self.intermediate.forward(&attended)?)?;
        self.output_norm
            .forward(&(self.output.forward(&inner)? + &attended)?)
    }
}

/// Exact GELU, x * (1 + erf(x / sqrt 2)) / 2.
fn gelu(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.apply_op1_no_bwd(&CpuGelu)
    } else {
        x.gelu_erf()
    }
}

struct CpuGelu;

/// Elements per parallel task: big enough to amortize the hand-off.
const GELU_CHUNK: usize = 16 * 1024;

impl CustomOp1 for CpuGelu {
    fn name(&self) -> &'static str {
        "gelu-erf-rational"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("gelu: f32 only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("gelu: contiguous input only");
        };
        let input = &data[start..end];
        let mut out = vec![0f32; input.len()];
        out.par_chunks_mut(GELU_CHUNK)
            .zip(input.par_chunks(GELU_CHUNK))
            .for_each(|(out, input)| {
                for (o, &x) in out.iter_mut().zip(input) {
                    *o = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// erf for f32 as a rational function of x (Eigen's and XLA's
/// `generic_fast_erf_float`): absolute error below 1e-6 on all of f32,
/// branch-free, so the loop above vectorizes. Plain multiply and add, not
/// `mul_add`: without the FMA target feature that is a call to libm's fmaf.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_474e-2;
    p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_matches_candles_exact_gelu() {
        let xs: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 / 1_000.0).collect();
        let x = Tensor::new(xs.as_slice(), &candle_core::Device::Cpu).unwrap();
        let fast = gelu(&x).unwrap().to_vec1::<f32>().unwrap();
        let exact = x.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        let worst = fast
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 2e-6, "max |fast - exact| = {worst}");
    }

    #[test]
    fn erf_is_odd_bounded_and_exact_at_known_points() {
        for (x, expected) in [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
            (6.0, 1.0),
        ] {
            assert!((erf(x) - expected).abs() < 1e-6, "erf({x}) = {}", erf(x));
            assert!((erf(-x) + expected).abs() < 1e-6);
        }
    }
}
