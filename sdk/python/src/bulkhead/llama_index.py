"""LlamaIndex vector store: ``BulkheadVectorStore``.

::

    from bulkhead import TenantClient
    from bulkhead.llama_index import BulkheadVectorStore
    from llama_index.core import StorageContext, VectorStoreIndex

    store = BulkheadVectorStore(client=TenantClient(addr, tenant="acme", token=token))
    index = VectorStoreIndex.from_documents(
        documents, storage_context=StorageContext.from_defaults(vector_store=store)
    )

Nodes are points of the client's tenant: the node id is the point id, the
node's text the point's text, and its metadata (with LlamaIndex's own
bookkeeping: ``_node_content``, ``ref_doc_id``) the payload. Queries take
``MetadataFilters`` (EQ, NE, GT, GTE, LT, LTE, IN, NIN, ANY, ALL, CONTAINS,
IS_EMPTY; AND, OR, NOT; nested).
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from bulkhead import filters as bh_filters
from bulkhead.client import Point, TenantClient
from bulkhead.v1 import filter_pb2

__all__ = ["BulkheadVectorStore", "to_bulkhead_filter"]


class BulkheadVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store over one Bulkhead tenant (the client's)."""

    stores_text: bool = True
    flat_metadata: bool = False
    batch_size: int = 256
    ef: Optional[int] = None

    _client: TenantClient = PrivateAttr()

    def __init__(
        self,
        client: Optional[TenantClient] = None,
        *,
        addr: Optional[str] = None,
        tenant: Optional[str] = None,
        token: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if client is None:
            if not (addr and tenant and token):
                raise ValueError("BulkheadVectorStore needs client=, or addr=, tenant= and token=")
            client = TenantClient(addr, tenant=tenant, token=token)
        if not isinstance(client, TenantClient):
            raise TypeError("client must be a bulkhead.TenantClient (it names the tenant)")
        self._client = client

    @classmethod
    def class_name(cls) -> str:
        return "BulkheadVectorStore"

    @property
    def client(self) -> TenantClient:
        return self._client

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> List[str]:
        points = []
        for node in nodes:
            embedding = node.get_embedding()
            points.append(
                Point(
                    id=node.node_id,
                    vector=list(embedding),
                    payload=node_to_metadata_dict(
                        node, remove_text=True, flat_metadata=self.flat_metadata
                    ),
                    text=node.get_content(metadata_mode=MetadataMode.NONE),
                )
            )
        self._client.upsert(points, batch_size=self.batch_size)
        return [p.id for p in points]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Deletes every node of the document ``ref_doc_id``."""
        self._client.delete(filter={"ref_doc_id": ref_doc_id})

    def delete_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
        **delete_kwargs: Any,
    ) -> None:
        if node_ids is not None and filters is not None:
            chosen = {n.node_id for n in self.get_nodes(node_ids=node_ids, filters=filters)}
            node_ids = [i for i in node_ids if i in chosen]
            filters = None
        if node_ids is not None:
            if node_ids:
                self._client.delete(node_ids)
        elif filters is not None:
            self._client.delete(filter=to_bulkhead_filter(filters))
        else:
            raise ValueError("delete_nodes takes node_ids or filters")

    def get_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
    ) -> List[BaseNode]:
        wire = to_bulkhead_filter(filters) if filters else None
        if node_ids is not None:
            points = self._client.get(node_ids, with_payload=True, with_vector=True)
            if wire is not None:
                keep = {
                    p.id for p in self._client.scroll_all(filter=wire, with_payload=False)
                }
                points = [p for p in points if p.id in keep]
        else:
            points = list(self._client.scroll_all(filter=wire, with_vector=True))
        return [self._node(p.payload, p.text, p.vector) for p in points]

    def clear(self) -> None:
        """Deletes every point of the tenant."""
        ids = [p.id for p in self._client.scroll_all(with_payload=False)]
        for start in range(0, len(ids), 1_000):
            self._client.delete(ids[start : start + 1_000])

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if query.mode != VectorStoreQueryMode.DEFAULT:
            raise ValueError(
                f"query mode {query.mode.value!r} is not supported; Bulkhead answers the default (dense) mode"
            )
        if query.query_embedding is None:
            raise ValueError("query_embedding is required: this store searches by vector")
        wire = to_bulkhead_filter(query.filters) if query.filters else filter_pb2.Filter()
        if query.doc_ids:
            wire.must.append(_any("ref_doc_id", query.doc_ids))
        if query.node_ids:
            raise ValueError("node_ids in a query are not supported; use get_nodes(node_ids=...)")
        hits = self._client.search(
            query.query_embedding,
            k=query.similarity_top_k,
            ef=kwargs.get("ef", self.ef),
            filter=wire if (wire.must or wire.should or wire.must_not) else None,
            with_payload=True,
        )
        return VectorStoreQueryResult(
            nodes=[self._node(h.payload, h.text) for h in hits],
            similarities=[h.score for h in hits],
            ids=[h.id for h in hits],
        )

    @staticmethod
    def _node(payload: dict, text: Optional[str], vector: Optional[List[float]] = None) -> BaseNode:
        node = metadata_dict_to_node(payload, text=text or "")
        if vector:
            node.embedding = vector
        return node


def _match(key: str, v: Any) -> filter_pb2.Condition:
    return bh_filters.match_condition(key, v, f"filter on {key!r}")


def _any(key: str, values: Any) -> filter_pb2.Condition:
    if not isinstance(values, (list, tuple, set)):
        raise ValueError(f"filter on {key!r}: expected a list of values, got {values!r}")
    return bh_filters.match_any_condition(key, values, f"filter on {key!r}")


def _range(key: str, bound: str, v: Any) -> filter_pb2.Condition:
    return bh_filters.range_condition(key, {bound: v}, f"filter on {key!r}")


def _condition(f: MetadataFilter) -> tuple[List[filter_pb2.Condition], List[filter_pb2.Condition]]:
    """(must, must_not) for one metadata filter."""
    op, key, v = f.operator, f.key, f.value
    if op == FilterOperator.EQ:
        return [_match(key, v)], []
    if op == FilterOperator.NE:
        return [], [_match(key, v)]
    ranges = {
        FilterOperator.GT: "gt",
        FilterOperator.GTE: "gte",
        FilterOperator.LT: "lt",
        FilterOperator.LTE: "lte",
    }
    if op in ranges:
        return [_range(key, ranges[op], v)], []
    if op in (FilterOperator.IN, FilterOperator.ANY):
        return [_any(key, v)], []
    if op == FilterOperator.NIN:
        return [], [_any(key, v)]
    if op == FilterOperator.CONTAINS:
        return [_match(key, v)], []
    if op == FilterOperator.ALL:
        if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple, set)):
            raise ValueError(f"filter on {key!r}: ALL takes a list of values")
        return [_match(key, x) for x in v], []
    if op == FilterOperator.IS_EMPTY:
        return [], [filter_pb2.Condition(has_field=key)]
    raise ValueError(
        f"filter operator {op.value!r} on {key!r} is not supported; use ==, !=, >, >=, <, <=, in, nin, any, all, contains or is_empty"
    )


def to_bulkhead_filter(filters: MetadataFilters) -> filter_pb2.Filter:
    """LlamaIndex ``MetadataFilters`` as a Bulkhead filter."""
    parts: List[filter_pb2.Filter] = []
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            parts.append(to_bulkhead_filter(f))
        else:
            must, must_not = _condition(f)
            parts.append(filter_pb2.Filter(must=must, must_not=must_not))
    nested = [filter_pb2.Condition(filter=p) for p in parts]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return filter_pb2.Filter(must=nested)
    if condition == FilterCondition.OR:
        return filter_pb2.Filter(should=nested)
    if condition == FilterCondition.NOT:
        return filter_pb2.Filter(must_not=[filter_pb2.Condition(filter=filter_pb2.Filter(must=nested))])
    raise ValueError(f"filter condition {condition!r} is not supported; use and, or or not")
