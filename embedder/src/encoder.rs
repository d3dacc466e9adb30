//! A BERT-family sentence encoder from a sentence-transformers folder.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, DTYPE};

use crate::bert::Bert;
use serde::Deserialize;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

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
    device: Device,
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
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));

        let weights_path = dir.join("model.safetensors");
        let weights = fs_err::read(&weights_path)?;
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
            device: device.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Length of the vectors this encoder makes.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// Embeds `texts` as one batch: one vector per text, in order.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedderError::Tokenizer(e.to_string()))?;
        let rows = encodings.len();
        let width = encodings.first().map_or(0, |e| e.get_ids().len());
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings
                .iter()
                .flat_map(|e| f(e).iter().copied())
                .collect()
        };
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (rows, width), &self.device)?;
        let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), (rows, width), &self.device)?;
        let mask = Tensor::from_vec(
            flat(&|e| e.get_attention_mask()),
            (rows, width),
            &self.device,
        )?;
        let hidden = self.model.forward(&ids, &types, &mask)?;
        let mut pooled = self.pooling.apply(&hidden, &mask)?;
        if self.normalize {
            pooled = normalize(&pooled)?;
        }
        Ok(pooled.to_vec2::<f32>()?)
    }
}
