//! A tenant's own access log over real gRPC: who called, which RPC, with
//! what outcome, how many items; readable by the tenant and the admin,
//! holding nothing of the calls' content, of other tenants or of callers
//! its tokens did not admit; paged; erased with the tenant.

use bulkhead_client::proto::AccessLogEntry;
use bulkhead_client::{AdminClient, Point, TenantClient};

use crate::common::{ADMIN, TestServer};

/// The id part of a tenant token, `bht_<id>_<secret>`.
fn id_of(token: &str) -> String {
    token
        .strip_prefix("bht_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(id, _)| id.to_string())
        .unwrap()
}

fn find<'a>(
    entries: &'a [AccessLogEntry],
    token: &str,
    rpc: &str,
    code: &str,
) -> Option<&'a AccessLogEntry> {
    entries
        .iter()
        .find(|e| e.token_id == id_of(token) && e.rpc == rpc && e.code == code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_reads_who_called_it_and_nothing_else() {
    let server = TestServer::start().await;
    let first = server.tenant("ledger").await;
    let second = server.token("ledger").await;
    let neighbour = server.tenant("neighbour").await;
    let connect = |tenant: &str, token: &str| {
        TenantClient::with_channel(server.channel.clone(), tenant, token).unwrap()
    };
    let (a, b, n) = (
        connect("ledger", &first),
        connect("ledger", &second),
        connect("neighbour", &neighbour),
    );
    let points: Vec<Point> = (0..3)
        .map(|i| Point::new(format!("secret-id-{i}"), vec![i as f32, 1.0, 0.0, 0.0]))
        .collect();
    a.upsert(points.clone()).await.unwrap();
    for _ in 0..2 {
        a.search(vec![0.0, 1.0, 0.0, 0.0])
            .k(2)
            .send()
            .await
            .unwrap();
    }
    b.count(None).await.unwrap();
    assert!(b.search(vec![1.0]).k(1).send().await.is_err());
    n.upsert(points).await.unwrap();
    // The neighbour's token naming ledger: refused, and not ledger's call.
    assert!(connect("ledger", &neighbour).count(None).await.is_err());

    let page = a.access_log(None, 0, 0).await.unwrap();
    let entries = &page.entries;
    let upsert = find(entries, &first, "Upsert", "OK").expect("the upsert");
    assert_eq!((upsert.calls, upsert.items), (1, 3));
    let search = find(entries, &first, "Search", "OK").expect("the searches");
    assert_eq!((search.calls, search.items), (2, 4));
    let count = find(entries, &second, "Count", "OK").expect("the count");
    assert_eq!((count.calls, count.items), (1, 3));
    let refused = find(entries, &second, "Search", "INVALID_ARGUMENT").expect("the bad search");
    assert_eq!((refused.calls, refused.items), (1, 0));
    assert_eq!(entries.len(), 4, "{entries:?}");
    assert!(entries.iter().all(|e| e.first_unix_ms <= e.last_unix_ms));
    // Nothing of the neighbour's token, nothing of the content.
    let text = format!("{entries:?}");
    assert!(!text.contains(&id_of(&neighbour)), "{text}");
    assert!(!text.contains("secret-id"), "{text}");

    // From the page's cursor: exactly what came since, that read itself.
    let tail = a
        .access_log(Some(&page.next_cursor), 0, 0)
        .await
        .unwrap()
        .entries;
    assert_eq!(tail.len(), 1, "{tail:?}");
    assert_eq!((tail[0].rpc.as_str(), tail[0].calls), ("AccessLog", 1));

    // The admin reads the same log (and now the tenant's own reads of it).
    let admin = AdminClient::with_channel(server.channel.clone(), ADMIN).unwrap();
    let seen = admin
        .access_log("ledger", None, 0, 0)
        .await
        .unwrap()
        .entries;
    // Each read writes what was pending, so the two reads are two entries.
    let reads: u64 = seen
        .iter()
        .filter(|e| e.rpc == "AccessLog" && e.token_id == id_of(&first))
        .map(|e| e.calls)
        .sum();
    assert_eq!(reads, 2, "{seen:?}");
    assert_eq!(seen.len(), 6, "{seen:?}");

    // Pages: two at a time, in order, no entry twice.
    let mut cursor: Option<String> = None;
    let mut paged = Vec::new();
    loop {
        let page = admin
            .access_log("ledger", cursor.as_deref(), 0, 2)
            .await
            .unwrap();
        assert!(page.entries.len() <= 2);
        paged.extend(page.entries);
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = Some(page.next_cursor);
    }
    assert_eq!(paged, seen);
    // A cursor the server never gave is refused with what to do.
    let err = a.access_log(Some("not-a-cursor"), 0, 0).await.unwrap_err();
    assert!(err.to_string().contains("next_cursor"), "{err}");

    // A call refused by the tenant's rate quota is the tenant's too.
    let spec = bulkhead::proto::TenantSpec {
        dimension: 4,
        metric: bulkhead::proto::Metric::L2 as i32,
        ..Default::default()
    };
    let quotas = bulkhead::proto::Quotas {
        max_requests_per_second: 1,
        ..Default::default()
    };
    let slow = server.tenant_with_quotas("slow", spec, Some(quotas)).await;
    let throttled = connect("slow", &slow);
    let mut refused = 0;
    for _ in 0..5 {
        if throttled.count(None).await.is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0);
    let log = admin.access_log("slow", None, 0, 0).await.unwrap().entries;
    let limited = find(&log, &slow, "Count", "RESOURCE_EXHAUSTED").expect("the refusals");
    assert_eq!(limited.calls, refused, "{log:?}");

    // Dropped and created again, the name's log starts empty.
    admin.drop_tenant("ledger").await.unwrap();
    let again = server.tenant("ledger").await;
    let fresh = connect("ledger", &again)
        .access_log(None, 0, 0)
        .await
        .unwrap();
    assert!(fresh.entries.is_empty(), "{:?}", fresh.entries);
    server.stop().await;
}
