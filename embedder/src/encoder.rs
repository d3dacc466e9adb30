//! A BERT-family sentence encoder from a sentence-transformers folder.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, DTYPE};

use crate::bert::Bert;
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{EmbedderError, Result};
use crate::pooling::{Pooling, PoolingConfig, normalize};

#[derive(Debug, Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
}

/// A loaded encoder: tokenizer, BERT weights, pooling and normalization as
/// the model folder's sentence-transformers configs say.
pub struct Encoder {
    name: String,
    model: Bert,
    tokenizer: Tokenizer,
    pooling: Pooling,
    normalize: bool,
    max_seq_length: usize,
    dimension: usize,
    pad_id: u32,
    device: Device,
    /// SHA-256 of model.safetensors, lowercase hex: the model's identity
    /// in the server's lineage registry.
    digest: String,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("name", &self.name)
            .field("pooling", &self.pooling)
            .field("normalize", &self.normalize)
            .field("max_seq_length", &self.max_seq_length)
            .finish_non_exhaustive()
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs_err::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| EmbedderError::model(path, e))
}

impl Encoder {
    /// Loads the model in `dir` onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Encoder> {
        let name = dir
            .file_name()
            .map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned());
        let config: Config = read_json(&dir.join("config.json"))?;
        let modules: Vec<Module> = match dir.join("modules.json") {
            p if p.exists() => read_json(&p)?,
            _ => Vec::new(),
        };
        let pooling_dir = modules
            .iter()
            .find(|m| m.kind.ends_with("Pooling"))
            .map_or_else(|| PathBuf::from("1_Pooling"), |m| PathBuf::from(&m.path));
        let pooling_path = dir.join(pooling_dir).join("config.json");
        let pooling = if pooling_path.exists() {
            read_json::<PoolingConfig>(&pooling_path)?
                .mode()
                .ok_or_else(|| {
                    EmbedderError::model(&pooling_path, "exactly one pooling mode must be enabled")
                })?
        } else {
            Pooling::Mean
        };
        let normalize = modules.iter().any(|m| m.kind.ends_with("Normalize"));
        // sentence-transformers truncates at max_seq_length (256 for
        // all-MiniLM-L6-v2), not at the 128 its tokenizer.json declares.
        let st_path = dir.join("sentence_bert_config.json");
        let max_seq_length = if st_path.exists() {
            read_json::<SentenceBertConfig>(&st_path)?.max_seq_length
        } else {
            None
        }
        .unwrap_or(config.max_position_embeddings)
        .min(config.max_position_embeddings);

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| EmbedderError::model(&tokenizer_path, e))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq_length,
                ..Default::default()
            }))
            .map_err(|e| EmbedderError::Tokenizer(e.to_string()))?;

        // Padding is done per length group in `encode`, not by the tokenizer
        // (whose file may say "pad everything to 128").
        let pad_id = tokenizer.get_padding().map_or(0, |p| p.pad_id);
        tokenizer.with_padding(None);

        let weights_path = dir.join("model.safetensors");
        let weights = fs_err::read(&weights_path)?;
        let digest = {
            use sha2::Digest as _;
            let hash = sha2::Sha256::digest(&weights);
            hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let vb = VarBuilder::from_buffered_safetensors(weights, DTYPE, device)
            .map_err(|e| EmbedderError::model(&weights_path, e))?;
        let model = Bert::load(vb, &config).map_err(|e| EmbedderError::model(&weights_path, e))?;
        let dimension = config.hidden_size;
        Ok(Encoder {
            name,
            model,
            tokenizer,
            pooling,
            normalize,
            max_seq_length,
            dimension,
            pad_id,
            digest,
            device: device.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 (hex) of the weights this encoder loaded.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Length of the vectors this encoder makes.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// Embeds `texts`: one vector per text, in order. Each text is padded
    /// to its own width, its token count rounded up to [`WIDTH_STEP`], and
    /// texts of one width run in one forward pass. A text's vector thus
    /// depends on its own tokens only, never on the other texts of its
    /// batch (other tenants' texts of its trust class): padding to the
    /// batch's longest text changed the low bits of the others' vectors.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encodings = self.tokenize(texts)?;
        self.encode_tokenized(&encodings.iter().collect::<Vec<_>>())
    }

    /// The first half of [`encode`](Self::encode): each text's tokens,
    /// truncated at the model's limit. The batcher tokenizes a request's
    /// texts before they join a queue, so a text the tokenizer refuses
    /// fails its own request only, and each text's cost (its tokens) is
    /// known when it is scheduled.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<tokenizers::Encoding>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedderError::Tokenizer(e.to_string()))
    }

    /// The second half of [`encode`](Self::encode): one vector per
    /// encoding, in order.
    pub fn encode_tokenized(&self, encodings: &[&tokenizers::Encoding]) -> Result<Vec<Vec<f32>>> {
        let widths: Vec<usize> = encodings
            .iter()
            .map(|e| padded_width(e.get_ids().len(), self.max_seq_length))
            .collect();
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| widths[i]);
        let mut out = vec![Vec::new(); encodings.len()];
        for group in order.chunk_by(|&a, &b| widths[a] == widths[b]) {
            let members: Vec<&tokenizers::Encoding> = group.iter().map(|&i| encodings[i]).collect();
            let vectors = self.encode_group(&members, widths[group[0]])?;
            for (&i, vector) in group.iter().zip(vectors) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    /// One forward pass over encodings padded to `width` (at least the
    /// longest of them).
    fn encode_group(
        &self,
        encodings: &[&tokenizers::Encoding],
        width: usize,
    ) -> Result<Vec<Vec<f32>>> {
        let rows = encodings.len();
        let width = encodings
            .iter()
            .map(|e| e.get_ids().len())
            .fold(width, usize::max);
        let pad_id = self.pad_id;
        let mut ids = Vec::with_capacity(rows * width);
        let mut types = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for e in encodings {
            let padding = width - e.get_ids().len();
            ids.extend_from_slice(e.get_ids());
            ids.extend(std::iter::repeat_n(pad_id, padding));
            types.extend_from_slice(e.get_type_ids());
            types.extend(std::iter::repeat_n(0, padding));
            mask.extend_from_slice(e.get_attention_mask());
            mask.extend(std::iter::repeat_n(0, padding));
        }
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let types = Tensor::from_vec(types, (rows, width), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, width), &self.device)?;
        let hidden = self.model.forward(&ids, &types, &mask)?;
        let mut pooled = self.pooling.apply(&hidden, &mask)?;
        if self.normalize {
            pooled = normalize(&pooled)?;
        }
        Ok(pooled.to_vec2::<f32>()?)
    }
}

/// Texts are padded to their token count rounded up to a multiple of this:
/// at most 7 padded positions per text, and few forward passes per batch
/// (short queries fall in one or two widths).
const WIDTH_STEP: usize = 8;

/// The width a text of `tokens` tokens is padded to: a function of its own
/// length only, never of the batch it is in.
fn padded_width(tokens: usize, max_seq_length: usize) -> usize {
    tokens
        .div_ceil(WIDTH_STEP)
        .saturating_mul(WIDTH_STEP)
        .min(max_seq_length.max(tokens))
}

#[cfg(test)]
mod tests {
    use super::{WIDTH_STEP, padded_width};

    #[test]
    fn a_text_width_depends_on_its_own_length_only() {
        assert_eq!(padded_width(1, 256), WIDTH_STEP);
        assert_eq!(padded_width(8, 256), 8);
        assert_eq!(padded_width(9, 256), 16);
        assert_eq!(padded_width(250, 256), 256);
        assert_eq!(padded_width(254, 254), 254, "never past the model's limit");
        for tokens in 1..=256 {
            let width = padded_width(tokens, 256);
            assert!(
                width >= tokens && width - tokens < WIDTH_STEP,
                "{tokens} -> {width}"
            );
        }
    }
}
