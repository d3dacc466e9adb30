use bulkhead::engine::{Metric, PointInput, SearchRequest};
use serde_json::json;

use crate::common::{open, points, spec};
use crate::restart::walk;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn invariant_5_drop_leaves_no_byte_of_vectors_or_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path());
    // A neighbour on the same shelf keeps writing: its memtable and WAL are
    // shared with the dropped tenant's.
    let neighbour = reg.create_tenant("neighbour", spec(4, Metric::L2)).unwrap();
    neighbour.upsert(&points(5, "n", 50, 4)).unwrap();
    let victim = reg.create_tenant("victim", spec(4, Metric::L2)).unwrap();
    // Unique patterns: one in the payload, one in the vector's bytes.
    let payload_canary = "CANARY-7f3a9c1e-payload-5d2b";
    let text_canary = "CANARY-41c0ffee-document-text";
    let vector = vec![1234.5f32, -8765.25, 3.75, 2.125];
    let vector_canary: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut batch = points(6, "v", 300, 4);
    batch.push(
        PointInput::new("canary", vector.clone())
            .with_payload(json!({"secret": payload_canary}))
            .with_text(text_canary),
    );
    victim.upsert(&batch).unwrap();
    victim.wait_for_maintenance();
    reg.close().unwrap(); // flushes: the canary reaches SST files and a snapshot
    // Written after the flush, the canary also sits in the shelf's shared WAL,
    // interleaved with the neighbour's writes, and in no SST file.
    victim
        .upsert(&[PointInput::new("canary-2", vector.clone())
            .with_payload(json!({"secret": payload_canary}))
            .with_text(text_canary)])
        .unwrap();
    neighbour.upsert(&points(7, "m", 10, 4)).unwrap();

    let all_bytes = |root: &std::path::Path| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        walk(root)
            .into_iter()
            .filter_map(|p| fs_err::read(&p).ok().map(|b| (p, b)))
            .collect()
    };
    let before = all_bytes(dir.path());
    assert!(
        before
            .iter()
            .any(|(_, b)| contains(b, payload_canary.as_bytes())
                && contains(b, text_canary.as_bytes())),
        "canary written"
    );
    assert!(
        before.iter().any(|(_, b)| contains(b, &vector_canary)),
        "vector written"
    );

    let no_canary_left = |when: &str| {
        for (path, bytes) in all_bytes(dir.path()) {
            let shown = path.display();
            assert!(
                !contains(&bytes, text_canary.as_bytes()),
                "{when}: text canary in {shown}"
            );
            assert!(
                !contains(&bytes, payload_canary.as_bytes()),
                "{when}: payload canary in {shown}"
            );
            assert!(
                !contains(&bytes, &vector_canary),
                "{when}: vector canary in {shown}"
            );
        }
    };
    reg.drop_tenant("victim").unwrap();
    no_canary_left("right after drop returned");
    reg.compact().unwrap();
    no_canary_left("after compaction");

    // The neighbour lost nothing; the recreated name is empty.
    assert_eq!(neighbour.count(None).unwrap(), 60);
    let again = reg.create_tenant("victim", spec(4, Metric::L2)).unwrap();
    assert_eq!(again.count(None).unwrap(), 0);
    assert!(
        again
            .get(&["canary".into()], true, true)
            .unwrap()
            .is_empty()
    );
    assert!(
        again
            .search(&SearchRequest::new(vector, 5))
            .unwrap()
            .is_empty()
    );
    drop((again, victim, neighbour, reg)); // handles keep the shelves open
    let reg = open(dir.path());
    assert_eq!(reg.tenant("victim").unwrap().count(None).unwrap(), 0);
    assert_eq!(reg.tenant("neighbour").unwrap().count(None).unwrap(), 60);
}
