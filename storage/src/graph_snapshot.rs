//! A tenant's HNSW graph on disk: an hnsw_rs dump, optionally the engine's
//! frozen search layout of it (an opaque file this crate memory-maps), and
//! a small manifest that names them and the highest internal id the dump
//! covers.
//!
//! A snapshot is a cache of the column family, never the truth: a missing,
//! stale or unreadable snapshot costs a rebuild, not data. It is replaced
//! atomically: the new dump is written and fsynced under a fresh name, then
//! the manifest is renamed over the old one, then the old dump is removed.

use std::path::{Path, PathBuf};

use anndists::dist::Distance;
use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;
use serde::{Deserialize, Serialize};

use crate::error::{AtPath, Result, StorageError};
use crate::layout::sync_dir;

const MANIFEST: &str = "snapshot.json";
const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    basename: String,
    /// Every point with an internal id below this is in the dump.
    covers_below: u64,
    /// The frozen layout's file, if one was saved with the dump.
    #[serde(default)]
    frozen: Option<String>,
}

/// The graph snapshots of one tenant.
#[derive(Debug, Clone)]
pub struct GraphSnapshot {
    dir: PathBuf,
    faults: Option<std::sync::Arc<crate::faults::FaultInjector>>,
}

/// A graph read back from a snapshot.
pub struct LoadedGraph<D: Distance<f32>> {
    pub hnsw: Hnsw<'static, f32, D>,
    /// Every point with an internal id below this is in the graph; later
    /// ones must be replayed from the column family.
    pub covers_below: u64,
}

impl GraphSnapshot {
    pub(crate) fn new(
        dir: PathBuf,
        faults: Option<std::sync::Arc<crate::faults::FaultInjector>>,
    ) -> Self {
        GraphSnapshot { dir, faults }
    }

    /// Writes `hnsw` as the tenant's snapshot. The caller guarantees that no
    /// insert runs concurrently and that every id below `covers_below` is in it.
    /// Fails with `Gone` if the tenant's folder no longer exists (dropped).
    /// `frozen`, if given, is the engine's search layout, saved beside the
    /// dump under the same fresh name.
    pub fn save<D: Distance<f32> + Send + Sync>(
        &self,
        hnsw: &Hnsw<'_, f32, D>,
        covers_below: u64,
        frozen: Option<&[u8]>,
    ) -> Result<()> {
        let tenant_dir = self.dir.parent().ok_or(StorageError::Gone)?;
        if !tenant_dir.exists() {
            return Err(StorageError::Gone);
        }
        crate::faults::check(self.faults.as_ref(), "snapshot write")?;
        std::fs::create_dir_all(&self.dir).at(&self.dir)?;
        let previous = self.manifest().ok().flatten();
        // A fresh name for every dump: hnsw_rs overwrites a dump of the same
        // name in place, which would tear the snapshot the manifest names.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let wanted = format!("g{covers_below}-{nanos}");
        let dumped = hnsw
            .file_dump(&self.dir, &wanted)
            .map_err(|e| StorageError::Snapshot(format!("dump failed: {e}")));
        let basename = dumped.as_deref().unwrap_or(wanted.as_str()).to_string();
        let tmp = self.dir.join(format!("{MANIFEST}.tmp"));
        let written = dumped.and_then(|_| self.write_files(&basename, covers_below, frozen, &tmp));
        if let Err(e) = written {
            // Nothing names these files yet: a failed snapshot leaves none.
            for name in snapshot_files(&basename)
                .into_iter()
                .chain([format!("{MANIFEST}.tmp")])
            {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
            return Err(e);
        }
        let manifest_path = self.dir.join(MANIFEST);
        std::fs::rename(&tmp, &manifest_path).at(&manifest_path)?;
        sync_dir(&self.dir)?;
        if let Some(old) = previous.filter(|old| old.basename != basename) {
            for name in snapshot_files(&old.basename) {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
        }
        Ok(())
    }

    /// Syncs the dump `basename`, writes the frozen layout beside it and
    /// the manifest naming both to `tmp`, synced: everything but the rename
    /// that makes it the snapshot.
    fn write_files(
        &self,
        basename: &str,
        covers_below: u64,
        frozen: Option<&[u8]>,
        tmp: &Path,
    ) -> Result<()> {
        for ext in ["hnsw.graph", "hnsw.data"] {
            let path = self.dir.join(format!("{basename}.{ext}"));
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .at(&path)?;
        }
        let frozen = match frozen {
            Some(bytes) => {
                let name = format!("{basename}.frozen");
                write_synced(&self.dir.join(&name), bytes)?;
                Some(name)
            }
            None => None,
        };
        let manifest = Manifest {
            format: FORMAT,
            basename: basename.to_string(),
            covers_below,
            frozen,
        };
        let body = serde_json::to_vec(&manifest)
            .map_err(|e| StorageError::Snapshot(format!("manifest: {e}")))?;
        let mut file = std::fs::File::create(tmp).at(tmp)?;
        std::io::Write::write_all(&mut file, &body).at(tmp)?;
        crate::faults::check(self.faults.as_ref(), "snapshot sync")?;
        file.sync_all().at(tmp)
    }

    /// The frozen layout saved with the current dump, memory-mapped, if
    /// there is one. Its contents are the engine's to check.
    pub fn load_frozen(&self) -> Result<Option<memmap2::Mmap>> {
        let Some(name) = self.manifest()?.and_then(|m| m.frozen) else {
            return Ok(None);
        };
        let path = self.dir.join(name);
        let file = std::fs::File::open(&path).at(&path)?;
        // SAFETY: the file is this tenant's own, written once under a fresh
        // name and fsynced before the manifest named it, and never written
        // again: a newer snapshot replaces it by name and unlinks it, which
        // leaves an existing mapping intact. Bulkhead owns the data folder;
        // another process truncating the file would break that contract.
        let map = unsafe { memmap2::Mmap::map(&file) }.at(&path)?;
        Ok(Some(map))
    }

    fn manifest(&self) -> Result<Option<Manifest>> {
        let path = self.dir.join(MANIFEST);
        if !path.exists() {
            return Ok(None);
        }
        let body = std::fs::read(&path).at(&path)?;
        let manifest: Manifest = serde_json::from_slice(&body)
            .map_err(|e| StorageError::Snapshot(format!("{}: {e}", path.display())))?;
        if manifest.format != FORMAT {
            return Err(StorageError::Snapshot(format!(
                "unknown snapshot format {}",
                manifest.format
            )));
        }
        Ok(Some(manifest))
    }

    /// Reads the snapshot back, `None` if there is none. hnsw_rs asserts on
    /// malformed files, so a panic while loading is reported as an error and
    /// the caller rebuilds from the column family.
    pub fn load<D: Distance<f32> + Send + Sync + 'static>(
        &self,
        dist: D,
    ) -> Result<Option<LoadedGraph<D>>> {
        let Some(manifest) = self.manifest()? else {
            return Ok(None);
        };
        // hnsw_rs exits the process on a short data file and sizes
        // allocations from values in it: check the dump first.
        check_dump(&self.dir, &manifest.basename)?;
        // The loaded graph borrows its loader for hnsw_rs's mmap mode. We do not
        // mmap (points are copied into the graph), so the loader is leaked: a
        // few hundred bytes per load buys a 'static graph without unsafe code.
        let io: &'static HnswIo = Box::leak(Box::new(HnswIo::new(&self.dir, &manifest.basename)));
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
            || -> anyhow::Result<Hnsw<'static, f32, D>> { io.load_hnsw_with_dist(dist) },
        ));
        match loaded {
            Ok(Ok(hnsw)) => Ok(Some(LoadedGraph {
                hnsw,
                covers_below: manifest.covers_below,
            })),
            Ok(Err(e)) => Err(StorageError::Snapshot(format!("load failed: {e}"))),
            Err(_) => Err(StorageError::Snapshot("load failed: malformed dump".into())),
        }
    }
}

/// hnsw_rs 0.3.5's dump format, as far as `check_dump` reads it (native
/// endian): the graph file starts with its description (magic, mode u8,
/// max connections u8, level scale f64, layers u8, ef, points and
/// dimension as usize); the data file is a header (magic, dimension) and
/// one record per point (magic, origin id u64, length u64, the vector).
const DESCRIPTION_MAGIC: u32 = 0x002a_6779;
const DATA_MAGIC: u32 = 0xa67f_0000;
const DUMP_LAYERS: u8 = 16;

/// Checks that the dump `basename` is whole before hnsw_rs reads it: the
/// data file holds exactly the graph's number of points, each a complete
/// record of the graph's dimension.
fn check_dump(dir: &Path, basename: &str) -> Result<()> {
    let bad = |what: &str| StorageError::Snapshot(format!("dump {basename} is damaged: {what}"));
    let graph_path = dir.join(format!("{basename}.hnsw.graph"));
    let mut head = [0u8; 39];
    std::io::Read::read_exact(
        &mut std::fs::File::open(&graph_path).at(&graph_path)?,
        &mut head,
    )
    .map_err(|_| bad("the graph file is shorter than its description"))?;
    let word = |at: usize| u64::from_ne_bytes(head[at..at + 8].try_into().unwrap_or_default());
    if u32::from_ne_bytes([head[0], head[1], head[2], head[3]]) != DESCRIPTION_MAGIC
        || head[14] != DUMP_LAYERS
    {
        return Err(bad("the graph file's description is not hnsw_rs's"));
    }
    let (points, dimension) = (word(23), word(31));
    let data_path = dir.join(format!("{basename}.hnsw.data"));
    let file = std::fs::File::open(&data_path).at(&data_path)?;
    // SAFETY: as for the frozen layout: the tenant's own file, written once
    // under a fresh name and never written again.
    let data = unsafe { memmap2::Mmap::map(&file) }.at(&data_path)?;
    let u32_at = |at: usize| {
        data.get(at..at + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        data.get(at..at + 8)
            .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or_default()))
    };
    if u32_at(0) != Some(DATA_MAGIC) || u64_at(4) != Some(dimension) {
        return Err(bad("the data file's header does not match the graph"));
    }
    let vector_bytes = dimension.checked_mul(4).ok_or_else(|| bad("dimension"))?;
    let mut at = 12usize;
    for point in 0..points {
        if u32_at(at) != Some(DATA_MAGIC) || u64_at(at + 12) != Some(vector_bytes) {
            return Err(bad(&format!("point record {point} of {points}")));
        }
        at = at
            .checked_add(20)
            .and_then(|a| a.checked_add(usize::try_from(vector_bytes).ok()?))
            .unwrap_or(usize::MAX);
        if at > data.len() {
            return Err(bad(&format!(
                "the data file ends inside point {point} of {points}"
            )));
        }
    }
    if at != data.len() {
        return Err(bad("the data file holds more than the graph's points"));
    }
    Ok(())
}

/// The files of the snapshot `basename`: hnsw_rs's dump and the frozen
/// layout (which may not exist).
fn snapshot_files(basename: &str) -> [String; 3] {
    ["hnsw.graph", "hnsw.data", "frozen"].map(|ext| format!("{basename}.{ext}"))
}

/// Writes `bytes` to a new file at `path` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = std::fs::File::create(path).at(path)?;
    std::io::Write::write_all(&mut file, bytes).at(path)?;
    file.sync_all().at(path)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use anndists::dist::DistL2;

    use super::*;
    use crate::faults::FaultInjector;

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_snapshot_leaves_no_files_and_the_last_one_stands() {
        let tenant = tempfile::tempdir().unwrap();
        let dir = tenant.path().join("graph");
        let faults = Arc::new(FaultInjector::default());
        let snapshot = GraphSnapshot::new(dir.clone(), Some(Arc::clone(&faults)));
        // hnsw_rs dumps only graphs of its full 16 layers.
        let hnsw: Hnsw<f32, DistL2> = Hnsw::new(8, 100, 16, 32, DistL2 {});
        for i in 0..50usize {
            hnsw.insert_slice((&[i as f32, 1.0, 2.0, 3.0][..], i));
        }
        snapshot.save(&hnsw, 50, Some(&[7u8; 64])).unwrap();
        let before = files(&dir);
        assert_eq!(
            before.len(),
            4,
            "dump, frozen layout and manifest: {before:?}"
        );
        // The save's second check is the manifest's sync: everything but the
        // rename was written when it fails.
        faults.fail_once(2);
        assert!(snapshot.save(&hnsw, 50, Some(&[8u8; 64])).is_err());
        assert_eq!(
            files(&dir),
            before,
            "no file of the failed snapshot is left"
        );
        let loaded = snapshot.load(DistL2 {}).unwrap().unwrap();
        assert_eq!(loaded.covers_below, 50);
        assert_eq!(loaded.hnsw.get_nb_point(), 50);
    }

    #[test]
    fn a_damaged_dump_is_an_error_not_an_exit() {
        let tenant = tempfile::tempdir().unwrap();
        let dir = tenant.path().join("graph");
        let snapshot = GraphSnapshot::new(dir.clone(), None);
        let hnsw: Hnsw<f32, DistL2> = Hnsw::new(8, 100, 16, 32, DistL2 {});
        for i in 0..60usize {
            hnsw.insert_slice((&[i as f32, 1.0, 2.0][..], i));
        }
        snapshot.save(&hnsw, 60, None).unwrap();
        assert_eq!(
            snapshot
                .load(DistL2 {})
                .unwrap()
                .unwrap()
                .hnsw
                .get_nb_point(),
            60
        );
        let data = files(&dir)
            .into_iter()
            .find(|f| f.ends_with(".hnsw.data"))
            .unwrap();
        let path = dir.join(data);
        let whole = std::fs::read(&path).unwrap();
        // Truncated (hnsw_rs exits the process on this one), then a record
        // whose length field claims a gigabyte.
        std::fs::write(&path, &whole[..whole.len() - 7]).unwrap();
        let err = snapshot.load(DistL2 {}).err().unwrap().to_string();
        assert!(err.contains("damaged"), "{err}");
        let mut lying = whole.clone();
        lying[12 + 12..12 + 20].copy_from_slice(&(1u64 << 30).to_ne_bytes());
        std::fs::write(&path, &lying).unwrap();
        let err = snapshot.load(DistL2 {}).err().unwrap().to_string();
        assert!(err.contains("point record 0"), "{err}");
        std::fs::write(&path, &whole).unwrap();
        assert!(snapshot.load(DistL2 {}).unwrap().is_some());
    }
}
