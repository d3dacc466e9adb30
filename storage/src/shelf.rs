//! A shelf: one RocksDB instance holding the column families of at most a
//! bounded number of tenants, all of one trust class.
//!
//! RocksDB rewrites and re-parses its whole OPTIONS file on every column
//! family create and drop (facebook/rocksdb#12888), so the cost of a create
//! or drop grows with the column families of its instance. Shelves bound it.
//! Tenants of one shelf share its WAL, memtable flushes and compactions;
//! tenants of two trust classes never do.

use std::collections::BTreeSet;
use std::path::Path;

use parking_lot::Mutex;
use rocksdb::{
    BlockBasedOptions, Cache, DBWithThreadMode, FlushOptions, MultiThreaded, Options,
    WriteBufferManager, WriteOptions,
};

use crate::error::Result;
use crate::layout::{column_family, incarnation_of};
use crate::meta::ShelfId;

pub(crate) type ShelfDb = DBWithThreadMode<MultiThreaded>;

pub(crate) struct Shelf {
    pub(crate) id: ShelfId,
    pub(crate) trust_class: String,
    pub(crate) db: ShelfDb,
    /// What this shelf shares with the other shelves of its trust class.
    memory: ClassMemory,
    /// Incarnations whose column family exists on this shelf.
    tenants: Mutex<BTreeSet<u64>>,
}

impl std::fmt::Debug for Shelf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shelf")
            .field("id", &self.id)
            .field("trust_class", &self.trust_class)
            .finish_non_exhaustive()
    }
}

/// What the shelves of one trust class share, and nothing else does: one
/// block cache (which also holds their index and filter blocks) and one
/// memtable budget. Two trust classes never share either.
#[derive(Clone)]
pub(crate) struct ClassMemory {
    cache: Cache,
    write_buffers: WriteBufferManager,
}

impl std::fmt::Debug for ClassMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassMemory").finish_non_exhaustive()
    }
}

impl ClassMemory {
    pub(crate) fn new() -> Self {
        ClassMemory {
            cache: Cache::new_lru_cache(BLOCK_CACHE_BYTES),
            write_buffers: WriteBufferManager::new_write_buffer_manager(WRITE_BUFFER_BYTES, false),
        }
    }
}

/// Bytes of one trust class's block cache.
const BLOCK_CACHE_BYTES: usize = 32 << 20;

/// Bytes of memtables one trust class's shelves may hold before the
/// largest are flushed (each column family's own limit is
/// `cf_options`'s write buffer).
const WRITE_BUFFER_BYTES: usize = 64 << 20;

/// WAL bytes a shelf keeps before it flushes the column families that
/// hold the oldest WAL file: an idle tenant's few writes do not pin WAL
/// files (and their bytes) forever.
const MAX_WAL_BYTES: u64 = 64 << 20;

fn db_options(memory: &ClassMemory) -> Options {
    let mut opts = Options::default();
    opts.set_write_buffer_manager(&memory.write_buffers);
    opts.set_max_total_wal_size(MAX_WAL_BYTES);
    // Opening a shelf should not read every table file's properties.
    opts.set_skip_stats_update_on_db_open(true);
    // No periodic statistics work across hundreds of instances.
    opts.set_stats_dump_period_sec(0);
    opts.set_stats_persist_period_sec(0);
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_keep_log_file_num(2);
    opts.set_max_log_file_size(1 << 20);
    // A dropped tenant's bytes must not linger in recycled WAL files.
    opts.set_recycle_log_file_num(0);
    opts.set_wal_ttl_seconds(0);
    opts.set_wal_size_limit_mb(0);
    // Each tenant's column family has its own table files; unbounded, a
    // node of 10,000 tenants held more than 20,000 of them open and hit the
    // process's file limit. Files past this are reopened on demand.
    opts.set_max_open_files(MAX_OPEN_FILES);
    opts
}

/// Table files a shelf keeps open at most (100 shelves: 6,400).
const MAX_OPEN_FILES: i32 = 64;

/// A tenant column family's options. Its table files' index and filter
/// blocks live in the trust class's block cache, bounded: RocksDB's default
/// gives every column family its own cache and pins those blocks outside
/// it, which cost ~80 KiB per idle tenant at 3,000 tenants. Memtables are
/// small and grow in small arena blocks (the default block is 1/8 of the
/// write buffer, paid by a tenant's first write).
fn cf_options(memory: &ClassMemory) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&memory.cache);
    table.set_cache_index_and_filter_blocks(true);
    let mut opts = Options::default();
    opts.set_write_buffer_size(4 << 20);
    opts.set_arena_block_size(64 << 10);
    opts.set_block_based_table_factory(&table);
    opts
}

impl Shelf {
    pub(crate) fn open(
        id: ShelfId,
        trust_class: &str,
        path: &Path,
        memory: &ClassMemory,
    ) -> Result<Self> {
        let opts = db_options(memory);
        let existing = if path.join("CURRENT").exists() {
            ShelfDb::list_cf(&opts, path)?
        } else {
            vec![rocksdb::DEFAULT_COLUMN_FAMILY_NAME.to_string()]
        };
        let tenants = existing
            .iter()
            .filter_map(|cf| incarnation_of(cf))
            .collect::<BTreeSet<_>>();
        let descriptors = existing
            .iter()
            .map(|name| rocksdb::ColumnFamilyDescriptor::new(name, cf_options(memory)));
        let db = ShelfDb::open_cf_descriptors(&opts, path, descriptors)?;
        Ok(Shelf {
            id,
            trust_class: trust_class.to_string(),
            db,
            memory: memory.clone(),
            tenants: Mutex::new(tenants),
        })
    }

    pub(crate) fn incarnations(&self) -> Vec<u64> {
        self.tenants.lock().iter().copied().collect()
    }

    pub(crate) fn create_tenant(&self, incarnation: u64) -> Result<()> {
        self.db
            .create_cf(column_family(incarnation), &cf_options(&self.memory))?;
        self.tenants.lock().insert(incarnation);
        Ok(())
    }

    /// Drops the tenant's column family and makes sure none of its bytes stay
    /// in this shelf's files: its SST files go with the column family, and its
    /// writes in the shared WAL go once every other column family of the shelf
    /// has flushed the memtables that still pin that WAL.
    pub(crate) fn drop_tenant(&self, incarnation: u64) -> Result<()> {
        let name = column_family(incarnation);
        if self.db.cf_handle(&name).is_some() {
            self.db.drop_cf(&name)?;
        }
        self.tenants.lock().remove(&incarnation);
        // A write to the default column family forces a memtable switch to a
        // new WAL even when every other memtable is empty; column families with
        // empty memtables then move past the old WAL, which becomes obsolete.
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.db
            .put_opt(b"last-drop", incarnation.to_be_bytes(), &sync)?;
        self.flush_all()
    }

    /// Flushes every memtable of the shelf and waits for it.
    pub(crate) fn flush_all(&self) -> Result<()> {
        let mut fo = FlushOptions::default();
        fo.set_wait(true);
        let mut names = vec![rocksdb::DEFAULT_COLUMN_FAMILY_NAME.to_string()];
        names.extend(self.incarnations().into_iter().map(column_family));
        let handles: Vec<_> = names.iter().filter_map(|n| self.db.cf_handle(n)).collect();
        let refs: Vec<_> = handles.iter().collect();
        self.db.flush_cfs_opt(&refs[..], &fo)?;
        Ok(())
    }

    pub(crate) fn compact_all(&self) -> Result<()> {
        let mut names = vec![rocksdb::DEFAULT_COLUMN_FAMILY_NAME.to_string()];
        names.extend(self.incarnations().into_iter().map(column_family));
        for name in names {
            if let Some(cf) = self.db.cf_handle(&name) {
                self.db.compact_range_cf(&cf, None::<&[u8]>, None::<&[u8]>);
            }
        }
        Ok(())
    }
}
