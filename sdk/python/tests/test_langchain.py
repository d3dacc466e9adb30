"""BulkheadVectorStore against LangChain's standard vector store suite
(langchain-tests), then what the suite does not cover: filters, MMR,
relevance scores, from_texts, and the server's own embedder."""

from __future__ import annotations

from typing import Iterator

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from bulkhead import TenantClient
from bulkhead.langchain import BulkheadVectorStore

from conftest import unique_name

SIZE = 6  # the suite's DeterministicFakeEmbedding size


class TestStandardSuite(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, server, admin) -> Iterator[BulkheadVectorStore]:  # type: ignore[override]
        name = unique_name("lc")
        admin.create_tenant(name, SIZE)
        client = TenantClient(server.addr, tenant=name, token=admin.issue_token(name))
        try:
            yield BulkheadVectorStore(client, embedding=self.get_embeddings())
        finally:
            client.close()
            admin.drop_tenant(name)


@pytest.fixture
def store(make_tenant) -> BulkheadVectorStore:
    return BulkheadVectorStore(make_tenant(SIZE), embedding=DeterministicFakeEmbedding(size=SIZE))


DOCS = [
    Document(page_content="apples", metadata={"kind": "fruit", "price": 3}),
    Document(page_content="pears", metadata={"kind": "fruit", "price": 5}),
    Document(page_content="carrots", metadata={"kind": "vegetable", "price": 2}),
    Document(page_content="apples", metadata={"kind": "fruit", "price": 4}),
]


def test_metadata_filters(store: BulkheadVectorStore) -> None:
    store.add_documents(DOCS, ids=["1", "2", "3", "4"])
    found = store.similarity_search("apples", k=10, filter={"kind": "fruit", "price": {"$gte": 4}})
    assert sorted(d.id for d in found) == ["2", "4"]
    found = store.similarity_search("apples", k=10, filter={"kind": {"$ne": "fruit"}})
    assert [d.id for d in found] == ["3"]
    store.delete(filter={"kind": "vegetable"})
    assert sorted(d.id for d in store.similarity_search("x", k=10)) == ["1", "2", "4"]


def test_scores_and_relevance(store: BulkheadVectorStore) -> None:
    store.add_documents(DOCS, ids=["1", "2", "3", "4"])
    scored = store.similarity_search_with_score("pears", k=4)
    assert scored[0][0].page_content == "pears"
    assert scored[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [s for _, s in scored] == sorted((s for _, s in scored), reverse=True)
    relevant = store.similarity_search_with_relevance_scores("pears", k=2)
    assert relevant[0][1] == pytest.approx(1.0, abs=1e-5)
    by_vector = store.similarity_search_by_vector(store.embeddings.embed_query("carrots"), k=1)
    assert by_vector[0].id == "3"


def test_max_marginal_relevance_skips_duplicates(store: BulkheadVectorStore) -> None:
    store.add_documents(DOCS, ids=["1", "2", "3", "4"])
    plain = store.similarity_search("apples", k=2)
    assert {d.id for d in plain} == {"1", "4"}  # the two identical texts
    diverse = store.max_marginal_relevance_search("apples", k=2, fetch_k=4, lambda_mult=0.1)
    assert diverse[0].page_content == "apples"
    assert diverse[1].page_content != "apples"


def test_from_texts_and_retriever(server, admin) -> None:
    name = unique_name("lc")
    admin.create_tenant(name, SIZE)
    try:
        store = BulkheadVectorStore.from_texts(
            ["one", "two", "three"],
            DeterministicFakeEmbedding(size=SIZE),
            metadatas=[{"n": 1}, {"n": 2}, {"n": 3}],
            addr=server.addr,
            tenant=name,
            token=admin.issue_token(name),
        )
        docs = store.as_retriever(search_kwargs={"k": 1}).invoke("two")
        assert docs == [Document(id=docs[0].id, page_content="two", metadata={"n": 2})]
        store.client.close()
    finally:
        admin.drop_tenant(name)


def test_the_servers_embedder_when_no_embedding_is_given(make_tenant) -> None:
    store = BulkheadVectorStore(make_tenant(384))
    store.add_texts(
        [
            "Invoices are due thirty days after delivery.",
            "The hiking trail climbs to a glacier lake.",
            "Our API rate limit is one hundred requests per minute.",
        ],
        metadatas=[{"doc": "billing"}, {"doc": "travel"}, {"doc": "api"}],
    )
    best = store.similarity_search("How many requests can I send to the API?", k=1)
    assert best[0].metadata == {"doc": "api"}
    mmr = store.max_marginal_relevance_search("payment terms", k=2, fetch_k=3)
    assert mmr[0].metadata == {"doc": "billing"}
