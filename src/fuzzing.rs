//! Entry points of the fuzz targets in `fuzz/` (cargo-fuzz builds this
//! module under `cfg(fuzzing)`; the unit tests below replay the committed
//! corpus through it on every `cargo test`). Each entry takes the fuzzer's
//! bytes, runs the code that the wire reaches, and asserts what must hold
//! for any input, beyond "does not panic".

use std::sync::{Arc, OnceLock};

use prost::Message;
use serde_json::Value;
use tonic::{Code, Request, Status};

use crate::api::status::{Plane, to_status};
use crate::api::{AdmissionLimits, Embedders, PointsApi, convert};
use crate::engine::{
    self, EngineConfig, EngineError, Filter, Metric, PointInput, Quotas, Registry, TenantName,
    TenantSpec, TrustClass, cursor,
};
use crate::proto;
use crate::proto::points_service_server::PointsService;

/// JSON filters (the form the SDKs' helpers and the CLI send): parsing
/// either fails with INVALID_ARGUMENT or yields a filter whose wire form
/// converts back to the same filter and that evaluates on any payload.
pub fn filter_json(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match Filter::from_json(&value) {
        Ok(filter) => {
            let wire = convert::filter_to_proto(&filter);
            let back = convert::filter(wire)
                .unwrap_or_else(|e| panic!("{filter:?}: its wire form is refused: {e:?}"));
            assert_eq!(back, filter, "the wire round trip changed the filter");
            for payload in objects_in(&value) {
                let _ = filter.matches(payload);
            }
        }
        Err(e) => assert_invalid_argument(e),
    }
}

/// Every JSON object in `value` (at most 64), to evaluate a filter on
/// payloads that share its keys.
fn objects_in(value: &Value) -> Vec<&serde_json::Map<String, Value>> {
    let mut out = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        if out.len() == 64 {
            break;
        }
        match v {
            Value::Object(map) => {
                out.push(map);
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}

/// The engine's refusal reaches the caller as INVALID_ARGUMENT with a
/// message.
fn assert_invalid_argument(e: EngineError) {
    assert_clear_invalid_argument(&to_status(e, Plane::Data));
}

/// Tenant names, trust classes and scroll cursors from arbitrary text: a
/// name that parses is one that is safe in a path and a column family; a
/// cursor decodes only for the tenant it was issued to, and decodes to the
/// id it was encoded from.
pub fn names_and_cursors(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for candidate in [text.as_ref(), text.trim()] {
        if let Ok(name) = TenantName::parse(candidate) {
            assert_safe_name(name.as_str());
        }
        if let Ok(class) = TrustClass::parse(candidate) {
            assert_safe_name(class.as_str());
        }
    }

    let secret = [7u8; 32];
    let mine = cursor::CursorKey::new(&secret, 1);
    let other = cursor::CursorKey::new(&secret, 2);
    if let Ok(id) = cursor::decode(&mine, &text) {
        assert_eq!(
            cursor::encode(&mine, &id),
            text,
            "a cursor that decodes is the encoding of what it decodes to"
        );
        assert!(
            cursor::decode(&other, &text).is_err(),
            "a cursor decoded for another tenant"
        );
    }
    if !text.is_empty() && text.len() <= engine::MAX_ID_BYTES {
        let encoded = cursor::encode(&mine, &text);
        assert_eq!(
            cursor::decode(&mine, &encoded).ok().as_deref(),
            Some(&*text)
        );
        assert!(cursor::decode(&other, &encoded).is_err());
    }
}

fn assert_safe_name(name: &str) {
    assert!((1..=64).contains(&name.len()), "{name:?}");
    assert!(name.as_bytes()[0].is_ascii_lowercase(), "{name:?}");
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'),
        "{name:?}"
    );
}

/// Decoded wire messages to engine operations, without a server: points
/// (and the batch validation a tenant runs before writing), filters, and
/// tenant creation. The first byte picks the message.
pub fn convert(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            let Ok(request) = proto::UpsertRequest::decode(body) else {
                return;
            };
            let points: Result<Vec<PointInput>, Status> = request
                .points
                .into_iter()
                .enumerate()
                .map(|(i, p)| convert::point_input(p, i))
                .collect();
            match points {
                Ok(points) => {
                    let spec = TenantSpec::new(4, Metric::Cosine);
                    if let Err(e) = engine::point::validate_batch(&spec, &points) {
                        assert_invalid_argument(e);
                    }
                }
                Err(status) => assert_clear_invalid_argument(&status),
            }
        }
        1 => {
            let Ok(wire) = proto::Filter::decode(body) else {
                return;
            };
            match convert::filter(wire) {
                Ok(filter) => {
                    let again = convert::filter(convert::filter_to_proto(&filter))
                        .unwrap_or_else(|e| panic!("{filter:?}: its wire form is refused: {e:?}"));
                    assert_eq!(again, filter);
                }
                Err(status) => assert_clear_invalid_argument(&status),
            }
        }
        _ => {
            let Ok(request) = proto::CreateTenantRequest::decode(body) else {
                return;
            };
            if let Ok(name) = TenantName::parse(&request.name) {
                assert_safe_name(name.as_str());
            }
            let _: Quotas = convert::quotas(request.quotas);
            match convert::tenant_spec(request.spec) {
                Ok(spec) => {
                    if let Err(e) = spec.validate() {
                        assert_invalid_argument(e);
                    }
                }
                Err(status) => assert_clear_invalid_argument(&status),
            }
        }
    }
}

fn assert_clear_invalid_argument(status: &Status) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(!status.message().is_empty(), "{status:?}");
}

/// The neighbour's marker: in its ids, payloads and texts. No answer to
/// the fuzzed tenant may carry it.
const NEIGHBOUR_SECRET: &str = "zq7-neighbour-secret";
const FUZZED: &str = "fuzz-a";
const NEIGHBOUR: &str = "fuzz-b";

struct World {
    runtime: tokio::runtime::Runtime,
    api: PointsApi,
    own_token: String,
    neighbour_token: String,
}

/// Where the registry of [`requests`] lives: one folder per process.
fn world_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("bulkhead-fuzz-{}", std::process::id()))
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = world_dir();
        let _ = fs_err::remove_dir_all(&dir);
        let config = EngineConfig {
            // Small thresholds, so short runs reach graphs, freezes and
            // rebuilds, not only exact scans.
            full_scan_points: 16,
            freeze_delta_points: 16,
            rebuild_min_dead: 16,
            snapshot_every_points: 64,
            memory_budget_bytes: 0,
            ..EngineConfig::default()
        };
        let registry = Arc::new(Registry::open(&dir, config).expect("open the registry"));
        let spec = TenantSpec::new(4, Metric::Cosine);
        let quotas = Quotas {
            max_points: 2_000,
            ..Quotas::default()
        };
        registry
            .create_tenant_with_quotas(FUZZED, spec.clone(), quotas)
            .expect("create the fuzzed tenant");
        let neighbour = registry
            .create_tenant(NEIGHBOUR, spec)
            .expect("create the neighbour");
        let secrets: Vec<PointInput> = (0..40)
            .map(|i| {
                let mut p = PointInput::new(
                    format!("{NEIGHBOUR_SECRET}-{i}"),
                    vec![1.0, i as f32, 0.5, -1.0],
                )
                .with_text(format!("{NEIGHBOUR_SECRET} text {i}"));
                p.payload
                    .insert("owner".into(), Value::String(NEIGHBOUR_SECRET.into()));
                p.payload.insert("n".into(), Value::from(i));
                p
            })
            .collect();
        neighbour.upsert(&secrets).expect("write the neighbour");
        let own_token = registry.issue_token(FUZZED).expect("token").token;
        let neighbour_token = registry.issue_token(NEIGHBOUR).expect("token").token;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        World {
            runtime,
            api: PointsApi::with_limits(
                registry,
                Arc::new(Embedders::none()),
                AdmissionLimits {
                    workers: 1,
                    ..AdmissionLimits::default()
                },
            ),
            own_token,
            neighbour_token,
        }
    })
}

/// Sequences of data-plane requests through the real `PointsService`
/// handlers, over a real registry (RocksDB in a temp dir), as the fuzzed
/// tenant `fuzz-a` beside a neighbour `fuzz-b` holding marked data.
///
/// Each step is `[op, flags, len_lo, len_hi, message...]`: op picks the RPC
/// (upsert, get, delete, count, scroll, search, embed), flags the token (the
/// fuzzed tenant's, the neighbour's, garbage, none) and whether the tenant
/// field is forced to `fuzz-a`. Checked for every step: no INTERNAL or
/// UNKNOWN answer (a panic in the engine's blocking task surfaces as
/// INTERNAL); nothing answered to the fuzzed tenant's token carries the
/// neighbour's marker; and a request naming any other tenant is answered
/// exactly as one naming a tenant that does not exist.
pub fn requests(data: &[u8]) {
    // The fuzzer could write the marker into the fuzzed tenant itself.
    if data
        .windows(NEIGHBOUR_SECRET.len())
        .any(|w| w == NEIGHBOUR_SECRET.as_bytes())
    {
        return;
    }
    let world = world();
    let mut rest = data;
    while rest.len() >= 4 {
        let (op, flags) = (rest[0], rest[1]);
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]]));
        let end = (4 + len).min(rest.len());
        let body = &rest[4..end];
        rest = &rest[end..];
        let token = match flags & 3 {
            0 => Some(world.own_token.as_str()),
            1 => Some(world.neighbour_token.as_str()),
            2 => Some("bht_not-a-real-token"),
            _ => None,
        };
        // The neighbour's token only ever names the fuzzed tenant: the
        // neighbour's marked data must stay as written.
        let force = flags & 4 != 0 || flags & 3 == 1;
        world.runtime.block_on(step(world, op, body, token, force));
    }
}

async fn step(world: &World, op: u8, body: &[u8], token: Option<&str>, force: bool) {
    let own = token == Some(world.own_token.as_str());
    let Some((tenant, answer)) = call(world, op, body, token, force.then_some(FUZZED)).await else {
        return;
    };
    if let Err(status) = &answer {
        assert!(
            !matches!(status.code(), Code::Internal | Code::Unknown),
            "op {op}: {status:?}"
        );
    }
    if own {
        let text = format!("{answer:?}");
        assert!(
            !text.contains(NEIGHBOUR_SECRET),
            "op {op}: the fuzzed tenant received the neighbour's data: {text}"
        );
        if tenant != FUZZED && TenantName::parse(&tenant).is_ok() {
            // Another tenant, whether it exists or not, looks the same.
            let (_, absent) = call(world, op, body, token, Some("no-such-tenant"))
                .await
                .expect("decoded once already");
            let outcome = |a: &Result<String, Status>| match a {
                Ok(_) => "an answer".to_string(),
                Err(s) => format!("{:?}: {}", s.code(), s.message()),
            };
            assert_eq!(
                outcome(&answer),
                outcome(&absent),
                "op {op}: tenant {tenant:?} is answered differently from a tenant that does not exist"
            );
        }
    }
}

/// Decodes `body` as op's request, with the tenant replaced when asked,
/// and calls the handler. None when the bytes are not that message.
async fn call(
    world: &World,
    op: u8,
    body: &[u8],
    token: Option<&str>,
    tenant: Option<&str>,
) -> Option<(String, Result<String, Status>)> {
    fn request<T>(
        mut message: T,
        token: Option<&str>,
        tenant: &mut String,
        over: Option<&str>,
    ) -> Request<T>
    where
        T: Tenanted,
    {
        if let Some(name) = over {
            *message.tenant_mut() = name.to_string();
        }
        tenant.clone_from(message.tenant_mut());
        let mut request = Request::new(message);
        if let Some(token) = token
            && let Ok(value) = format!("Bearer {token}").parse()
        {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }
    let api = &world.api;
    let mut name = String::new();
    let answer = match op % 7 {
        0 => {
            let m = proto::UpsertRequest::decode(body).ok()?;
            show(api.upsert(request(m, token, &mut name, tenant)).await)
        }
        1 => {
            let m = proto::GetRequest::decode(body).ok()?;
            show(api.get(request(m, token, &mut name, tenant)).await)
        }
        2 => {
            let m = proto::DeleteRequest::decode(body).ok()?;
            show(api.delete(request(m, token, &mut name, tenant)).await)
        }
        3 => {
            let m = proto::CountRequest::decode(body).ok()?;
            show(api.count(request(m, token, &mut name, tenant)).await)
        }
        4 => {
            let m = proto::ScrollRequest::decode(body).ok()?;
            show(api.scroll(request(m, token, &mut name, tenant)).await)
        }
        5 => {
            let m = proto::SearchRequest::decode(body).ok()?;
            show(api.search(request(m, token, &mut name, tenant)).await)
        }
        _ => {
            let m = proto::PointsServiceEmbedRequest::decode(body).ok()?;
            show(api.embed(request(m, token, &mut name, tenant)).await)
        }
    };
    Some((name, answer))
}

fn show<T: std::fmt::Debug>(answer: Result<tonic::Response<T>, Status>) -> Result<String, Status> {
    answer.map(|r| format!("{:?}", r.get_ref()))
}

trait Tenanted {
    fn tenant_mut(&mut self) -> &mut String;
}

macro_rules! tenanted {
    ($($t:ty),*) => {$(
        impl Tenanted for $t {
            fn tenant_mut(&mut self) -> &mut String {
                &mut self.tenant
            }
        }
    )*};
}

tenanted!(
    proto::UpsertRequest,
    proto::GetRequest,
    proto::DeleteRequest,
    proto::CountRequest,
    proto::ScrollRequest,
    proto::SearchRequest,
    proto::PointsServiceEmbedRequest
);

#[cfg(test)]
mod tests {
    //! The committed corpus (fuzz/corpus/TARGET) replayed through each
    //! entry: every input the fuzzer kept, and every crash it found once
    //! fixed, stays a regression test.

    use std::path::PathBuf;

    fn replay(target: &str, entry: fn(&[u8])) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut inputs = 0;
        for file in fs_err::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = file.unwrap().path();
            entry(&fs_err::read(&path).unwrap());
            inputs += 1;
        }
        assert!(inputs > 0, "{} holds no inputs", dir.display());
    }

    #[test]
    fn the_filter_corpus_replays() {
        replay("filter_json", super::filter_json);
    }

    #[test]
    fn the_name_and_cursor_corpus_replays() {
        replay("names_and_cursors", super::names_and_cursors);
    }

    #[test]
    fn the_conversion_corpus_replays() {
        replay("convert", super::convert);
    }

    #[test]
    fn the_request_corpus_replays() {
        replay("requests", super::requests);
        // RocksDB keeps its open files; the folder goes.
        let _ = fs_err::remove_dir_all(super::world_dir());
    }
}
