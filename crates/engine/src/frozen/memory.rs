//! Where a frozen graph's node blocks live.

/// The frozen graph's node blocks, as words: an anonymous map that asks for transparent
/// huge pages (a search touches blocks all over the graph, and with 4 KiB
/// pages most of those touches miss the TLB), or a plain vector when the
/// map cannot be made.
pub(super) enum NodeMemory {
    Mapped(memmap2::MmapMut),
    Owned(Vec<u32>),
    /// A frozen graph read back from its file: `len` words at byte
    /// `offset` (a multiple of 64) of the map.
    File {
        map: memmap2::Mmap,
        offset: usize,
        len: usize,
    },
}

impl NodeMemory {
    pub(super) fn zeroed(len: usize) -> NodeMemory {
        if len >= 1 << 16
            && let Ok(map) = memmap2::MmapMut::map_anon(len * 4)
        {
            #[cfg(target_os = "linux")]
            let _ = map.advise(memmap2::Advice::HugePage);
            return NodeMemory::Mapped(map);
        }
        NodeMemory::Owned(vec![0; len])
    }

    #[inline]
    pub(super) fn as_slice(&self) -> &[u32] {
        match self {
            NodeMemory::Mapped(map) => bytemuck::cast_slice(&map[..]),
            NodeMemory::Owned(v) => v,
            NodeMemory::File { map, offset, len } => {
                bytemuck::cast_slice(&map[*offset..][..*len * 4])
            }
        }
    }

    pub(super) fn as_mut_slice(&mut self) -> &mut [u32] {
        match self {
            NodeMemory::Mapped(map) => bytemuck::cast_slice_mut(&mut map[..]),
            NodeMemory::Owned(v) => v,
            // Only `freeze` writes words, and it never makes a file map.
            NodeMemory::File { .. } => &mut [],
        }
    }
}
