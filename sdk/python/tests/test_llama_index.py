"""BulkheadVectorStore for LlamaIndex against a real server: add, query with
MetadataFilters, delete by ref_doc_id, get_nodes, delete_nodes, clear, and
a VectorStoreIndex on top."""

from __future__ import annotations

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

from bulkhead.llama_index import BulkheadVectorStore


def node(id_: str, doc: str, vector, text: str, **metadata) -> TextNode:
    n = TextNode(id_=id_, text=text, embedding=list(vector), metadata=metadata)
    n.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc)
    return n


NODES = [
    node("n1", "doc-a", [1, 0, 0, 0], "alpha one", lang="en", year=2020),
    node("n2", "doc-a", [0.9, 0.1, 0, 0], "alpha two", lang="de", year=2022),
    node("n3", "doc-b", [0, 1, 0, 0], "beta one", lang="en", year=2024, tags=["x", "y"]),
    node("n4", "doc-c", [0, 0, 1, 0], "gamma one", lang="fr", year=2021),
]


@pytest.fixture
def store(make_tenant) -> BulkheadVectorStore:
    return BulkheadVectorStore(client=make_tenant(4))


def query(store, vector=(1, 1, 1, 1), k=10, filters=None, doc_ids=None):
    return store.query(
        VectorStoreQuery(
            query_embedding=list(vector), similarity_top_k=k, filters=filters, doc_ids=doc_ids
        )
    )


def test_add_and_query(store: BulkheadVectorStore) -> None:
    assert store.add(NODES) == ["n1", "n2", "n3", "n4"]
    result = query(store, (1, 0, 0, 0), k=2)
    assert result.ids == ["n1", "n2"]
    assert result.similarities[0] == pytest.approx(1.0, abs=1e-5)
    first = result.nodes[0]
    assert first.node_id == "n1" and first.get_content() == "alpha one"
    assert first.metadata == {"lang": "en", "year": 2020}
    assert first.ref_doc_id == "doc-a"


def test_metadata_filters(store: BulkheadVectorStore) -> None:
    store.add(NODES)

    def ids(*filters, condition=FilterCondition.AND):
        f = MetadataFilters(filters=list(filters), condition=condition)
        return sorted(query(store, filters=f).ids)

    F, Op = MetadataFilter, FilterOperator
    assert ids(F(key="lang", value="en")) == ["n1", "n3"]
    assert ids(F(key="lang", value="en", operator=Op.NE)) == ["n2", "n4"]
    assert ids(F(key="year", value=2021, operator=Op.GT)) == ["n2", "n3"]
    assert ids(F(key="year", value=2021, operator=Op.LTE)) == ["n1", "n4"]
    assert ids(F(key="lang", value=["de", "fr"], operator=Op.IN)) == ["n2", "n4"]
    assert ids(F(key="lang", value=["de", "fr"], operator=Op.NIN)) == ["n1", "n3"]
    assert ids(F(key="tags", value="y", operator=Op.CONTAINS)) == ["n3"]
    assert ids(F(key="tags", value=["x", "y"], operator=Op.ALL)) == ["n3"]
    assert ids(F(key="tags", value=None, operator=Op.IS_EMPTY)) == ["n1", "n2", "n4"]
    assert ids(F(key="lang", value="fr"), F(key="year", value=2024), condition=FilterCondition.OR) == ["n3", "n4"]
    nested = MetadataFilters(
        filters=[F(key="lang", value="en"), F(key="year", value=2020)], condition=FilterCondition.OR
    )
    assert ids(nested, F(key="year", value=2022, operator=Op.LT)) == ["n1"]
    assert ids(F(key="lang", value="en"), condition=FilterCondition.NOT) == ["n2", "n4"]
    assert sorted(query(store, doc_ids=["doc-a", "doc-c"]).ids) == ["n1", "n2", "n4"]
    with pytest.raises(ValueError, match="not supported"):
        ids(F(key="lang", value="e", operator=Op.TEXT_MATCH))


def test_delete_by_ref_doc_and_nodes(store: BulkheadVectorStore) -> None:
    store.add(NODES)
    store.delete("doc-a")
    assert sorted(query(store).ids) == ["n3", "n4"]
    got = store.get_nodes(node_ids=["n3", "n1"])
    assert [n.node_id for n in got] == ["n3"] and got[0].embedding == [0.0, 1.0, 0.0, 0.0]
    en = MetadataFilters(filters=[MetadataFilter(key="lang", value="en")])
    assert [n.node_id for n in store.get_nodes(filters=en)] == ["n3"]
    store.delete_nodes(filters=en)
    assert query(store).ids == ["n4"]
    store.clear()
    assert query(store).ids == []


def test_vector_store_index_end_to_end(make_tenant) -> None:
    store = BulkheadVectorStore(client=make_tenant(8))
    index = VectorStoreIndex.from_documents(
        [Document(text="Bulkhead keeps each tenant in its own partition.", id_="d1")],
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=MockEmbedding(embed_dim=8),
    )
    hits = index.as_retriever(similarity_top_k=1).retrieve("partition")
    assert len(hits) == 1 and "own partition" in hits[0].node.get_content()
    assert hits[0].node.ref_doc_id == "d1"
    index.delete_ref_doc("d1")
    assert store.client.count() == 0
