"""TenantClient against a real server: every data-plane call, filters in
both forms, errors as exceptions with the server's message, and the tenant
bound to the client."""

from __future__ import annotations

import inspect

import pytest

from bulkhead import (
    InvalidArgument,
    PermissionDenied,
    Point,
    TenantClient,
    Unauthenticated,
)
from bulkhead.filters import to_proto

POINTS = [
    Point(id="a", vector=[1, 0, 0, 0], payload={"lang": "en", "year": 2020, "tags": ["x", "y"]}, text="alpha"),
    Point(id="b", vector=[0.9, 0.1, 0, 0], payload={"lang": "de", "year": 2022}, text="beta"),
    Point(id="c", vector=[0, 1, 0, 0], payload={"lang": "en", "year": 2024, "deleted": True}),
    Point(id="d", vector=[0, 0, 1, 0], payload={"lang": "fr", "meta": {"stars": 5}}),
]


def test_points_round_trip(make_tenant) -> None:
    client = make_tenant(4)
    assert client.upsert(POINTS) == 4
    assert client.count() == 4
    got = {p.id: p for p in client.get(["a", "d", "missing"], with_vector=True)}
    assert set(got) == {"a", "d"}
    assert got["a"].payload == {"lang": "en", "year": 2020, "tags": ["x", "y"]}
    assert isinstance(got["a"].payload["year"], int)
    assert got["a"].text == "alpha" and got["d"].text is None
    assert got["a"].vector == [1.0, 0.0, 0.0, 0.0]
    assert got["d"].payload == {"lang": "fr", "meta": {"stars": 5}}

    hits = client.search([1, 0, 0, 0], k=2)
    assert [h.id for h in hits] == ["a", "b"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].payload["lang"] == "en" and hits[0].vector == []

    # Replacing by id, then deleting by id and by filter.
    client.upsert([{"id": "a", "vector": [0, 0, 0, 1], "payload": {"lang": "xx"}}])
    assert client.get(["a"])[0].payload == {"lang": "xx"}
    assert client.delete(["a", "nope"]) == 1
    assert client.delete(filter={"lang": "fr"}) == 1
    assert sorted(p.id for p in client.scroll_all()) == ["b", "c"]


def test_filters_in_both_forms(make_tenant) -> None:
    client = make_tenant(4)
    client.upsert(POINTS)
    cases = [
        ({"lang": "en"}, {"a", "c"}),
        ({"lang": {"$ne": "en"}}, {"b", "d"}),
        ({"lang": ["de", "fr"]}, {"b", "d"}),
        ({"year": {"$gte": 2021, "$lt": 2024}}, {"b"}),
        ({"tags": "y"}, {"a"}),
        ({"deleted": {"$exists": False}}, {"a", "b", "d"}),
        ({"meta.stars": 5}, {"d"}),
        ({"$or": [{"lang": "de"}, {"year": 2024}]}, {"b", "c"}),
        ({"$and": [{"lang": "en"}, {"year": {"$lte": 2020}}]}, {"a"}),
        (
            {
                "must": [{"key": "lang", "match": {"value": "en"}}],
                "must_not": [{"has_field": "deleted"}],
            },
            {"a"},
        ),
        ({"should": [{"key": "year", "range": {"gt": 2021}}]}, {"b", "c"}),
        ({"must": [{"should": [{"key": "lang", "match": {"any": ["fr"]}}]}]}, {"d"}),
    ]
    for f, expected in cases:
        assert {p.id for p in client.scroll_all(filter=f)} == expected, f
        assert client.count(filter=f) == len(expected), f
        hits = client.search([1, 1, 1, 1], k=10, filter=f)
        assert {h.id for h in hits} == expected, f


def test_scroll_pages_with_cursors(make_tenant) -> None:
    client = make_tenant(4)
    client.upsert(Point(id=f"p{i:03}", vector=[1, i, 0, 0]) for i in range(25))
    seen, cursor, pages = [], None, 0
    while True:
        page = client.scroll(limit=10, cursor=cursor, with_payload=False)
        seen += [p.id for p in page.points]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert seen == [f"p{i:03}" for i in range(25)]


def test_bad_input_raises_the_servers_message(make_tenant) -> None:
    client = make_tenant(4)
    with pytest.raises(InvalidArgument) as e:
        client.upsert([Point(id="x", vector=[1, 2, 3])])
    assert "dimension" in e.value.message
    assert client.count() == 0, "a refused batch writes nothing"
    with pytest.raises(InvalidArgument):
        client.search([1, 2, 3, 4], k=100_000)
    # A cursor of another tenant and a malformed one are refused alike.
    with pytest.raises(PermissionDenied, match="cursor"):
        client.scroll(cursor="not-a-cursor")
    # Refused before sending, saying what to fix.
    with pytest.raises(ValueError, match="match strings, integers and booleans"):
        client.count(filter={"score": 0.5})
    with pytest.raises(ValueError, match="unknown operator"):
        client.count(filter={"lang": {"$like": "e%"}})
    with pytest.raises(ValueError, match="JSON values"):
        client.upsert([Point(id="x", vector=[1, 2, 3, 4], payload={"when": object()})])


def test_the_tenant_is_bound_to_the_client(server, make_tenant) -> None:
    with pytest.raises(ValueError, match="tenant is required"):
        TenantClient(server.addr, tenant="", token="bht_x")
    with pytest.raises(ValueError, match="token is required"):
        TenantClient(server.addr, tenant="acme", token="")
    mine = make_tenant(4)
    with pytest.raises(AttributeError):
        mine.tenant = "other"  # type: ignore[misc]
    # No data-plane call takes a tenant.
    for name, method in inspect.getmembers(TenantClient, inspect.isfunction):
        if not name.startswith("_"):
            assert "tenant" not in inspect.signature(method).parameters, name


def test_one_tenants_token_reaches_nothing_of_another(server, admin, make_tenant) -> None:
    a, b = make_tenant(4), make_tenant(4)
    a.upsert(POINTS)
    token_b = admin.issue_token(b.tenant)
    intruder = TenantClient(server.addr, tenant=a.tenant, token=token_b)
    nowhere = TenantClient(server.addr, tenant="no-such-tenant", token=token_b)
    for call in (
        lambda c: c.get(["a"]),
        lambda c: c.search([1, 0, 0, 0]),
        lambda c: c.count(),
        lambda c: c.scroll(),
        lambda c: c.delete(["a"]),
    ):
        with pytest.raises(PermissionDenied) as foreign:
            call(intruder)
        with pytest.raises(PermissionDenied) as absent:
            call(nowhere)
        # A foreign tenant looks exactly like one that does not exist.
        assert foreign.value.message == absent.value.message
        assert a.tenant not in foreign.value.message
    assert a.count() == 4
    with pytest.raises(Unauthenticated):
        TenantClient(server.addr, tenant=a.tenant, token="bht_forged").count()
    intruder.close()
    nowhere.close()


def test_texts_are_embedded_by_the_servers_model(make_tenant) -> None:
    client = make_tenant(384)
    ids = client.upsert_texts(
        [
            "The cat sat on the warm windowsill.",
            "Quarterly revenue grew by twelve percent.",
            "Rust guarantees memory safety without a garbage collector.",
        ],
        payloads=[{"topic": "pets"}, {"topic": "finance"}, {"topic": "code"}],
    )
    assert len(ids) == 3 and client.count() == 3
    hits = client.search(text="Which programming language is memory safe?", k=1)
    assert hits[0].payload == {"topic": "code"}
    assert hits[0].text.startswith("Rust")
    vectors = client.embed(["hello"])
    assert len(vectors) == 1 and len(vectors[0]) == 384
    # The default model's lineage is public data only: not this tenant's.
    assert client.lineage() == []


def test_filter_conversion_refuses_what_it_cannot_express() -> None:
    assert to_proto(None) is None and to_proto({}) is None
    for bad, message in [
        ({"must": "x"}, "must be a list"),
        ({"must": [{"key": "a"}]}, "needs match, range"),
        ({"must": [], "filter": 1}, "unknown key"),
        ({"$not": {}}, "unknown filter operator"),
        ({"a": {"$gt": "1"}}, "must be a number"),
        ([1], "a filter is a dict"),
    ]:
        with pytest.raises(ValueError, match=message):
            to_proto(bad)  # type: ignore[arg-type]


def test_the_access_log_names_the_calls_of_the_tenant(admin, make_tenant) -> None:
    client = make_tenant()
    client.upsert([Point(id="a", vector=[0.1, 0.2, 0.3, 0.4])])
    client.search([0.1, 0.2, 0.3, 0.4], k=1)
    page = client.access_log()
    calls = {(e.rpc, e.code): (e.calls, e.items) for e in page.entries}
    assert calls == {("Upsert", "OK"): (1, 1), ("Search", "OK"): (1, 1)}
    # From the page's cursor: exactly what came since (that read itself).
    tail = client.access_log(cursor=page.next_cursor)
    assert [(e.rpc, e.calls) for e in tail.entries] == [("AccessLog", 1)]
    # The admin sees the same entries, and now the tenant's two reads.
    seen = admin.access_log(client.tenant, limit=1)
    assert len(seen.entries) == 1 and seen.next_cursor is not None
    rest = admin.access_log(client.tenant, cursor=seen.next_cursor)
    rpcs = sorted(e.rpc for e in seen.entries + rest.entries)
    assert rpcs == ["AccessLog", "AccessLog", "Search", "Upsert"]
