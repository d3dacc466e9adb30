use super::*;
use crate::tenant_store::{PointWrite, StoredPoint};

fn options(per_shelf: usize) -> StorageOptions {
    StorageOptions {
        tenants_per_shelf: per_shelf,
        ..StorageOptions::default()
    }
}

#[test]
fn shelves_are_bounded_and_hold_one_trust_class() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), options(2)).unwrap();
    let mut records = Vec::new();
    for (name, class) in [
        ("a1", "gold"),
        ("a2", "gold"),
        ("b1", "free"),
        ("a3", "gold"),
        ("a4", "gold"),
        ("a5", "gold"),
    ] {
        records.push(
            storage
                .create_tenant(name, class, vec![])
                .unwrap()
                .unwrap()
                .0,
        );
    }
    assert_eq!(
        storage.shelf_count(),
        4,
        "gold: 3 shelves of at most 2, free: 1"
    );
    for entry in storage.entries() {
        let classes: std::collections::HashSet<&str> = records
            .iter()
            .filter(|r| r.shelf == entry.id)
            .map(|r| r.trust_class.as_str())
            .collect();
        assert_eq!(classes.len(), 1);
        assert!(entry.members.lock().len() <= 2);
    }
    assert!(
        storage
            .create_tenant("a1", "gold", vec![])
            .unwrap()
            .is_none(),
        "names are unique"
    );
    // A dropped slot is reused before a new shelf is opened.
    storage.drop_tenant(&records[0]).unwrap();
    let again = storage
        .create_tenant("a6", "gold", vec![])
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(again.shelf, records[0].shelf);
    assert!(
        again.incarnation > records.iter().map(|r| r.incarnation).max().unwrap(),
        "incarnations are never reused"
    );
}

#[test]
fn points_survive_reopen_and_stay_in_their_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let point = |i: u64| StoredPoint {
        internal_id: i,
        vector: vec![i as f32, 1.0],
        payload: b"{}".to_vec(),
    };
    {
        let storage = Storage::open(dir.path(), options(100)).unwrap();
        let (_, a) = storage.create_tenant("a", "c", vec![1]).unwrap().unwrap();
        let (_, b) = storage.create_tenant("b", "c", vec![2]).unwrap().unwrap();
        a.commit(
            &[
                PointWrite::Put {
                    id: "x".into(),
                    point: point(0),
                    text: None,
                },
                PointWrite::Put {
                    id: "y".into(),
                    point: point(1),
                    text: Some("why".into()),
                },
            ],
            2,
        )
        .unwrap();
        b.commit(
            &[PointWrite::Put {
                id: "x".into(),
                point: point(7),
                text: Some("ex".into()),
            }],
            8,
        )
        .unwrap();
        a.commit(&[PointWrite::Delete { id: "y".into() }], 2)
            .unwrap();
    }
    let storage = Storage::open(dir.path(), options(100)).unwrap();
    let records = storage.tenants().unwrap();
    assert_eq!(records.len(), 2);
    let a = storage
        .open_tenant(&storage.tenant("a").unwrap().unwrap())
        .unwrap();
    let b = storage
        .open_tenant(&storage.tenant("b").unwrap().unwrap())
        .unwrap();
    assert_eq!(a.next_internal_id().unwrap(), 2);
    assert_eq!(a.get("x").unwrap(), Some(point(0)));
    assert_eq!(a.get("y").unwrap(), None);
    assert_eq!(b.get("x").unwrap(), Some(point(7)));
    assert_eq!(b.text("x").unwrap().as_deref(), Some("ex"));
    assert_eq!(a.text("x").unwrap(), None, "b's text is not a's");
    assert_eq!(a.text("y").unwrap(), None, "deleted with its point");
    let mut seen = Vec::new();
    a.for_each_point(|id, p| seen.push((id, p.internal_id)))
        .unwrap();
    assert_eq!(seen, [("x".to_string(), 0)]);
}

#[test]
fn leftovers_of_an_interrupted_create_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let incarnation = {
        let storage = Storage::open(dir.path(), options(100)).unwrap();
        let (record, store) = storage.create_tenant("half", "c", vec![]).unwrap().unwrap();
        store.commit(&[], 0).unwrap();
        // As if the process died before the meta record was committed.
        storage
            .meta
            .delete_tenant("half", record.incarnation)
            .unwrap();
        record.incarnation
    };
    let storage = Storage::open(dir.path(), options(100)).unwrap();
    assert!(!storage.layout.tenant_dir(incarnation).exists());
    for entry in storage.entries() {
        let shelf = storage.shelf(&entry).unwrap();
        assert!(!shelf.incarnations().contains(&incarnation));
    }
}

#[test]
fn shelves_open_on_first_use_and_close_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let point = StoredPoint {
        internal_id: 0,
        vector: vec![1.0],
        payload: b"{}".to_vec(),
    };
    {
        let storage = Storage::open(dir.path(), options(1)).unwrap();
        for name in ["a", "b"] {
            let (_, store) = storage.create_tenant(name, "c", vec![]).unwrap().unwrap();
            store
                .commit(
                    &[PointWrite::Put {
                        id: name.into(),
                        point: point.clone(),
                        text: None,
                    }],
                    1,
                )
                .unwrap();
        }
        storage.flush().unwrap();
    }
    let storage = Storage {
        options: StorageOptions {
            close_idle_shelf_after: Duration::ZERO,
            ..options(1)
        },
        ..Storage::open(dir.path(), options(1)).unwrap()
    };
    assert_eq!(storage.shelf_count(), 2);
    assert_eq!(storage.open_shelf_count(), 0, "nothing opens until used");
    let a = storage
        .open_tenant(&storage.tenant("a").unwrap().unwrap())
        .unwrap();
    assert_eq!(storage.open_shelf_count(), 1);
    assert_eq!(
        storage.close_idle_shelves().unwrap(),
        0,
        "a's store holds it"
    );
    assert_eq!(a.get("a").unwrap(), Some(point.clone()));
    drop(a);
    assert_eq!(storage.close_idle_shelves().unwrap(), 1);
    assert_eq!(storage.open_shelf_count(), 0);
    // Reopened on the next use, with its data; a drop of a tenant on a
    // closed shelf opens it to drop the column family.
    let a = storage
        .open_tenant(&storage.tenant("a").unwrap().unwrap())
        .unwrap();
    assert_eq!(a.get("a").unwrap(), Some(point));
    storage
        .drop_tenant(&storage.tenant("b").unwrap().unwrap())
        .unwrap();
    let b_shelf = storage
        .entries()
        .into_iter()
        .find(|e| e.members.lock().is_empty());
    let b_shelf = storage.shelf(&b_shelf.unwrap()).unwrap();
    assert!(b_shelf.incarnations().is_empty());
}

#[test]
fn a_missing_meta_database_refuses_to_open_and_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let incarnation = {
        let storage = Storage::open(dir.path(), options(100)).unwrap();
        let (record, store) = storage.create_tenant("kept", "c", vec![]).unwrap().unwrap();
        store.commit(&[], 0).unwrap();
        storage.flush().unwrap();
        record.incarnation
    };
    let meta = dir.path().join("meta");
    let saved = dir.path().join("meta.saved");
    std::fs::rename(&meta, &saved).unwrap();
    let err = Storage::open(dir.path(), options(100)).unwrap_err();
    assert!(matches!(err, StorageError::MetaMissing(_)), "{err}");
    assert!(err.to_string().contains("Restore meta/"), "{err}");
    let tenant_dir = Layout::new(dir.path()).tenant_dir(incarnation);
    assert!(tenant_dir.exists(), "the tenant's folder is still there");
    assert!(!meta.exists(), "no empty meta was created");
    // An empty meta where one was lost is refused alike.
    MetaStore::open(&meta).unwrap();
    let err = Storage::open(dir.path(), options(100)).unwrap_err();
    assert!(matches!(err, StorageError::MetaMissing(_)), "{err}");
    assert!(tenant_dir.exists());
    // Restored, the node opens with its tenant.
    std::fs::remove_dir_all(&meta).unwrap();
    std::fs::rename(&saved, &meta).unwrap();
    let storage = Storage::open(dir.path(), options(100)).unwrap();
    assert!(storage.tenant("kept").unwrap().is_some());
    assert!(tenant_dir.exists());
}
