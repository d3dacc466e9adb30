//! A frozen graph's file: written beside the hnsw_rs snapshot, mapped back
//! without copying its node blocks, every count and id checked first.

use std::sync::atomic::AtomicUsize;

use parking_lot::Mutex;

use super::memory::NodeMemory;
use super::{FrozenGraph, MAX_DEGREE0, UpperLayer, liveness};
use crate::metric::{Kernel, Metric};

/// The first word of a frozen graph's file ("BHFROZN1").
const FILE_MAGIC: u64 = u64::from_le_bytes(*b"BHFROZN1");

/// Why a frozen graph's file cannot be used. The tenant then freezes
/// again; nothing is lost (the file is a cache of the snapshot).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FormatError {
    #[error("the file ends inside its {0}")]
    Truncated(&'static str),
    #[error("not a frozen graph file")]
    NotFrozenGraph,
    #[error("made for another metric or dimension")]
    OtherShape,
    #[error("inconsistent {0}")]
    Inconsistent(&'static str),
    #[error("{0} out of range")]
    OutOfRange(&'static str),
    #[error("trailing bytes after the upper layers")]
    TrailingBytes,
}

impl FrozenGraph {
    /// The graph as bytes for its file (see [`FrozenGraph::from_file`]):
    /// a header of u64s, the internal ids, then the node blocks at a
    /// 64-byte aligned offset (so the file maps without a copy), then the
    /// upper layers. Little endian.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let n = self.ids.len();
        let header = [
            FILE_MAGIC,
            self.kernel as u64,
            self.dim as u64,
            n as u64,
            self.block as u64,
            self.links_at as u64,
            u64::from(self.entry),
            self.covers_below,
            self.upper.len() as u64,
        ];
        let mut out = Vec::new();
        for word in header.into_iter().chain(self.ids.iter().copied()) {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.resize(out.len().next_multiple_of(64), 0);
        let data = &self.data.as_slice()[self.base..][..n * self.block];
        for word in data {
            out.extend_from_slice(&word.to_le_bytes());
        }
        for layer in &self.upper {
            let mut nodes = vec![0u32; layer.rows.len()];
            for (&node, &row) in &layer.rows {
                nodes[row as usize] = node;
            }
            let words = [layer.stride as u32, nodes.len() as u32]
                .into_iter()
                .chain(nodes)
                .chain(layer.links.iter().copied());
            for word in words {
                out.extend_from_slice(&word.to_le_bytes());
            }
        }
        out
    }

    /// Reads a graph back from its mapped file without copying the node
    /// blocks. Every count and id is checked, so a damaged file is an
    /// error (the caller freezes again), never a panic in a search.
    pub(crate) fn from_file(
        map: memmap2::Mmap,
        metric: Metric,
        dim: usize,
        live: impl Fn(u64) -> bool,
    ) -> Result<FrozenGraph, FormatError> {
        let bytes = &map[..];
        let mut at = 0usize;
        let u64_at = |at: &mut usize| -> Result<u64, FormatError> {
            let word = bytes
                .get(*at..*at + 8)
                .ok_or(FormatError::Truncated("header"))?;
            *at += 8;
            Ok(u64::from_le_bytes(
                word.try_into()
                    .map_err(|_| FormatError::Truncated("header"))?,
            ))
        };
        let header: Vec<u64> = (0..9).map(|_| u64_at(&mut at)).collect::<Result<_, _>>()?;
        let [
            magic,
            kernel,
            file_dim,
            n,
            block,
            links_at,
            entry,
            covers_below,
            layers,
        ] = header[..]
        else {
            return Err(FormatError::Truncated("header"));
        };
        if magic != FILE_MAGIC {
            return Err(FormatError::NotFrozenGraph);
        }
        let kernel_now = Kernel::of(metric);
        if kernel != kernel_now as u64 || file_dim != dim as u64 {
            return Err(FormatError::OtherShape);
        }
        let (n, block, links_at) = (n as usize, block as usize, links_at as usize);
        if links_at != dim.next_multiple_of(16)
            || block <= links_at + 1
            || block - links_at > MAX_DEGREE0 + 16
            || n > u32::MAX as usize
            || (n > 0 && entry >= n as u64)
            || layers > 64
        {
            return Err(FormatError::Inconsistent("header"));
        }
        // Sized from the file, never from the header alone.
        if n.checked_mul(8).is_none_or(|need| need > bytes.len() - at) {
            return Err(FormatError::Truncated("internal ids"));
        }
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(u64_at(&mut at)?);
        }
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(FormatError::Inconsistent("internal ids (not ascending)"));
        }
        let offset = at.next_multiple_of(64);
        let overflow = FormatError::Inconsistent("sizes (overflow)");
        let len = n.checked_mul(block).ok_or(overflow.clone())?;
        let end = offset
            .checked_add(len.checked_mul(4).ok_or(overflow.clone())?)
            .ok_or(overflow)?;
        if end > bytes.len() {
            return Err(FormatError::Truncated("node blocks"));
        }
        let words: &[u32] = bytemuck::try_cast_slice(&bytes[offset..end])
            .map_err(|_| FormatError::Inconsistent("node block alignment"))?;
        let valid_list = |list: &[u32]| {
            let count = list[0] as usize;
            count < list.len() && list[1..=count].iter().all(|&id| (id as usize) < n)
        };
        // The traversal holds at most MAX_DEGREE0 layer-0 neighbours.
        let valid_layer0 = |list: &[u32]| list[0] as usize <= MAX_DEGREE0 && valid_list(list);
        if !words.chunks(block).all(|b| valid_layer0(&b[links_at..])) {
            return Err(FormatError::OutOfRange("a neighbour list"));
        }
        let mut rest = &bytes[end..];
        let mut u32_next = || -> Result<u32, FormatError> {
            let (word, tail) = rest
                .split_first_chunk::<4>()
                .ok_or(FormatError::Truncated("upper layers"))?;
            rest = tail;
            Ok(u32::from_le_bytes(*word))
        };
        let mut upper = Vec::with_capacity(layers as usize);
        for _ in 0..layers {
            let stride = u32_next()? as usize;
            let rows = u32_next()? as usize;
            if !(2..=MAX_DEGREE0 + 1).contains(&stride) || rows > n {
                return Err(FormatError::Inconsistent("upper layer"));
            }
            let mut layer = UpperLayer {
                stride,
                ..UpperLayer::default()
            };
            for row in 0..rows {
                let node = u32_next()?;
                if node as usize >= n || layer.rows.insert(node, row as u32).is_some() {
                    return Err(FormatError::OutOfRange(
                        "an upper-layer node (or it is repeated)",
                    ));
                }
            }
            for _ in 0..rows * stride {
                layer.links.push(u32_next()?);
            }
            if !layer.links.chunks(stride).all(valid_list) {
                return Err(FormatError::OutOfRange("an upper-layer neighbour list"));
            }
            upper.push(layer);
        }
        if !rest.is_empty() {
            return Err(FormatError::TrailingBytes);
        }
        let (alive, dead) = liveness(&ids, live);
        Ok(FrozenGraph {
            kernel: kernel_now,
            dim,
            ids,
            data: NodeMemory::File { map, offset, len },
            base: 0,
            block,
            links_at,
            upper,
            entry: entry as u32,
            alive,
            dead: AtomicUsize::new(dead),
            covers_below,
            scratch: Mutex::new(Vec::new()),
        })
    }
}
