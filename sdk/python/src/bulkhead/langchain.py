"""LangChain vector store: ``BulkheadVectorStore``.

The swap for an application that uses Chroma, PGVector or Qdrant today::

    from bulkhead import TenantClient
    from bulkhead.langchain import BulkheadVectorStore

    store = BulkheadVectorStore(
        TenantClient("127.0.0.1:50051", tenant="acme", token=os.environ["BULKHEAD_TOKEN"]),
        embedding=OpenAIEmbeddings(),  # or None: the server embeds texts
    )
    store.add_texts(["..."], metadatas=[{"lang": "en"}])
    store.similarity_search("...", k=4, filter={"lang": "en"})

The store is bound to the client's tenant; there is no argument that
reaches another one. Documents are points: ``page_content`` is the point's
text, ``metadata`` its payload, ``Document.id`` its id. Filters take
LangChain's usual shorthand (``{"lang": "en", "year": {"$gte": 2020}}``) or
Bulkhead's own form (see :mod:`bulkhead.filters`).

With ``embedding=None`` the server's embedder (the model of the tenant's
trust class) makes every vector, for documents and queries alike.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from bulkhead.client import Point, ScoredPoint, TenantClient
from bulkhead.filters import FilterLike

__all__ = ["BulkheadVectorStore"]

_METRICS = ("cosine", "dot", "l2")


class BulkheadVectorStore(VectorStore):
    """A LangChain ``VectorStore`` over one Bulkhead tenant.

    Args:
        client: the tenant's client (it fixes the tenant and the token).
        embedding: the embeddings model; None to let the server embed.
        metric: the tenant's metric (``cosine``, ``dot`` or ``l2``), for
            relevance scores.
        ef: the search beam (the server's default when None).
        batch_size: points per upsert call.
    """

    def __init__(
        self,
        client: TenantClient,
        embedding: Optional[Embeddings] = None,
        *,
        metric: str = "cosine",
        ef: Optional[int] = None,
        batch_size: int = 256,
    ) -> None:
        if not isinstance(client, TenantClient):
            raise TypeError("client must be a bulkhead.TenantClient (it names the tenant)")
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {_METRICS}, not {metric!r}")
        self._client = client
        self._embedding = embedding
        self._metric = metric
        self._ef = ef
        self._batch_size = batch_size

    @property
    def client(self) -> TenantClient:
        return self._client

    @property
    def embeddings(self) -> Optional[Embeddings]:
        return self._embedding

    # -- writing -----------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Optional[List[dict]] = None,
        *,
        ids: Optional[List[Optional[str]]] = None,
        **kwargs: Any,
    ) -> List[str]:
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"{len(metadatas)} metadatas for {len(texts)} texts")
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        ids = [i if i else str(uuid.uuid4()) for i in (ids or [None] * len(texts))]
        vectors: List[List[float]] = (
            self._embedding.embed_documents(texts) if self._embedding else [[] for _ in texts]
        )
        points = [
            Point(
                id=i,
                vector=list(v),
                payload=dict(metadatas[n] or {}) if metadatas else {},
                text=t,
            )
            for n, (i, t, v) in enumerate(zip(ids, texts, vectors))
        ]
        self._client.upsert(points, batch_size=kwargs.get("batch_size", self._batch_size))
        return ids

    def delete(self, ids: Optional[List[str]] = None, **kwargs: Any) -> Optional[bool]:
        """Deletes by ids, or by ``filter=`` when no ids are given. Missing
        ids are not an error."""
        filter = kwargs.get("filter")
        if ids is None and filter is None:
            raise ValueError("delete takes ids or filter=")
        if ids is not None:
            if ids:
                self._client.delete(ids)
        else:
            self._client.delete(filter=filter)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> List[Document]:
        return [self._document(p) for p in self._client.get(list(ids), with_payload=True)]

    # -- searching ---------------------------------------------------------

    def _query_vector(self, query: str) -> List[float]:
        if self._embedding is not None:
            return list(self._embedding.embed_query(query))
        vectors = self._client.embed([query])
        return vectors[0]

    def _search(
        self,
        vector: Optional[Sequence[float]],
        text: Optional[str],
        k: int,
        filter: FilterLike,
        with_vector: bool = False,
        ef: Optional[int] = None,
    ) -> List[ScoredPoint]:
        if k <= 0:
            return []
        return self._client.search(
            vector,
            text=text,
            k=k,
            ef=ef or self._ef,
            filter=filter,
            with_payload=True,
            with_vector=with_vector,
        )

    def _scored(
        self, query: str, k: int, filter: FilterLike, ef: Optional[int]
    ) -> List[ScoredPoint]:
        if self._embedding is not None:
            return self._search(self._embedding.embed_query(query), None, k, filter, ef=ef)
        return self._search(None, query, k, filter, ef=ef)

    def similarity_search(
        self, query: str, k: int = 4, filter: FilterLike = None, **kwargs: Any
    ) -> List[Document]:
        return [
            self._document(p) for p in self._scored(query, k, filter, kwargs.get("ef"))
        ]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: FilterLike = None, **kwargs: Any
    ) -> List[Tuple[Document, float]]:
        """Documents and the server's scores: cosine similarity or dot
        product (higher is closer), or Euclidean distance (lower is closer)."""
        return [
            (self._document(p), p.score)
            for p in self._scored(query, k, filter, kwargs.get("ef"))
        ]

    def similarity_search_by_vector(
        self, embedding: List[float], k: int = 4, filter: FilterLike = None, **kwargs: Any
    ) -> List[Document]:
        return [
            self._document(p)
            for p in self._search(embedding, None, k, filter, ef=kwargs.get("ef"))
        ]

    def similarity_search_with_score_by_vector(
        self, embedding: List[float], k: int = 4, filter: FilterLike = None, **kwargs: Any
    ) -> List[Tuple[Document, float]]:
        return [
            (self._document(p), p.score)
            for p in self._search(embedding, None, k, filter, ef=kwargs.get("ef"))
        ]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Scores to relevance in LangChain's sense (higher is more
        relevant), from the tenant's metric."""
        if self._metric == "l2":
            # Distance of unit vectors, 0..2, to 1..0 (clamped).
            return lambda d: max(0.0, 1.0 - d / math.sqrt(2))
        # Cosine similarity and dot product are already relevance-ordered.
        return lambda s: s

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: FilterLike = None,
        **kwargs: Any,
    ) -> List[Document]:
        return self.max_marginal_relevance_search_by_vector(
            self._query_vector(query), k, fetch_k, lambda_mult, filter, **kwargs
        )

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: List[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: FilterLike = None,
        **kwargs: Any,
    ) -> List[Document]:
        import numpy as np
        from langchain_core.vectorstores.utils import maximal_marginal_relevance

        candidates = self._search(
            embedding, None, max(fetch_k, k), filter, with_vector=True, ef=kwargs.get("ef")
        )
        if not candidates:
            return []
        chosen = maximal_marginal_relevance(
            np.array(embedding, dtype=np.float32),
            [p.vector for p in candidates],
            lambda_mult=lambda_mult,
            k=k,
        )
        return [self._document(candidates[i]) for i in chosen]

    # -- construction ------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: List[str],
        embedding: Optional[Embeddings],
        metadatas: Optional[List[dict]] = None,
        *,
        ids: Optional[List[str]] = None,
        client: Optional[TenantClient] = None,
        addr: Optional[str] = None,
        tenant: Optional[str] = None,
        token: Optional[str] = None,
        **kwargs: Any,
    ) -> "BulkheadVectorStore":
        """A store over an existing tenant (the admin creates tenants),
        given a client or ``addr``, ``tenant`` and ``token``, filled with
        ``texts``."""
        if client is None:
            if not (addr and tenant and token):
                raise ValueError("from_texts needs client=, or addr=, tenant= and token=")
            client = TenantClient(addr, tenant=tenant, token=token)
        store = cls(client, embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @staticmethod
    def _document(p: Any) -> Document:
        return Document(id=p.id, page_content=p.text or "", metadata=dict(p.payload))
