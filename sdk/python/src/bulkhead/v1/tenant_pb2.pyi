from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Metric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_UNSPECIFIED: _ClassVar[Metric]
    METRIC_COSINE: _ClassVar[Metric]
    METRIC_L2: _ClassVar[Metric]
    METRIC_DOT: _ClassVar[Metric]

class TrainingUse(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_USE_UNSPECIFIED: _ClassVar[TrainingUse]
    TRAINING_USE_NONE: _ClassVar[TrainingUse]
    TRAINING_USE_OWN: _ClassVar[TrainingUse]
    TRAINING_USE_POOLED: _ClassVar[TrainingUse]

class Telemetry(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TELEMETRY_UNSPECIFIED: _ClassVar[Telemetry]
    TELEMETRY_AGGREGATE: _ClassVar[Telemetry]
    TELEMETRY_NONE: _ClassVar[Telemetry]

class TenantState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TENANT_STATE_UNSPECIFIED: _ClassVar[TenantState]
    TENANT_STATE_ACTIVE: _ClassVar[TenantState]
    TENANT_STATE_COLD: _ClassVar[TenantState]
METRIC_UNSPECIFIED: Metric
METRIC_COSINE: Metric
METRIC_L2: Metric
METRIC_DOT: Metric
TRAINING_USE_UNSPECIFIED: TrainingUse
TRAINING_USE_NONE: TrainingUse
TRAINING_USE_OWN: TrainingUse
TRAINING_USE_POOLED: TrainingUse
TELEMETRY_UNSPECIFIED: Telemetry
TELEMETRY_AGGREGATE: Telemetry
TELEMETRY_NONE: Telemetry
TENANT_STATE_UNSPECIFIED: TenantState
TENANT_STATE_ACTIVE: TenantState
TENANT_STATE_COLD: TenantState

class IndexParams(_message.Message):
    __slots__ = ("m", "ef_construction")
    M_FIELD_NUMBER: _ClassVar[int]
    EF_CONSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    m: int
    ef_construction: int
    def __init__(self, m: _Optional[int] = ..., ef_construction: _Optional[int] = ...) -> None: ...

class TenantSpec(_message.Message):
    __slots__ = ("dimension", "metric", "index", "trust_class")
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TRUST_CLASS_FIELD_NUMBER: _ClassVar[int]
    dimension: int
    metric: Metric
    index: IndexParams
    trust_class: str
    def __init__(self, dimension: _Optional[int] = ..., metric: _Optional[_Union[Metric, str]] = ..., index: _Optional[_Union[IndexParams, _Mapping]] = ..., trust_class: _Optional[str] = ...) -> None: ...

class Quotas(_message.Message):
    __slots__ = ("max_points", "max_requests_per_second", "max_concurrent_searches", "max_payload_bytes", "max_embedding_tokens_per_minute")
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_SEARCHES_FIELD_NUMBER: _ClassVar[int]
    MAX_PAYLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_EMBEDDING_TOKENS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    max_points: int
    max_requests_per_second: int
    max_concurrent_searches: int
    max_payload_bytes: int
    max_embedding_tokens_per_minute: int
    def __init__(self, max_points: _Optional[int] = ..., max_requests_per_second: _Optional[int] = ..., max_concurrent_searches: _Optional[int] = ..., max_payload_bytes: _Optional[int] = ..., max_embedding_tokens_per_minute: _Optional[int] = ...) -> None: ...

class TenantContract(_message.Message):
    __slots__ = ("version", "training", "pool_with", "telemetry", "caching_scope", "retrieval_scope")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    POOL_WITH_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_FIELD_NUMBER: _ClassVar[int]
    CACHING_SCOPE_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_SCOPE_FIELD_NUMBER: _ClassVar[int]
    version: int
    training: TrainingUse
    pool_with: _containers.RepeatedScalarFieldContainer[str]
    telemetry: Telemetry
    caching_scope: str
    retrieval_scope: str
    def __init__(self, version: _Optional[int] = ..., training: _Optional[_Union[TrainingUse, str]] = ..., pool_with: _Optional[_Iterable[str]] = ..., telemetry: _Optional[_Union[Telemetry, str]] = ..., caching_scope: _Optional[str] = ..., retrieval_scope: _Optional[str] = ...) -> None: ...

class TenantInfo(_message.Message):
    __slots__ = ("name", "spec", "points", "graph_nodes", "created_unix_ms", "state", "last_used_unix_ms", "quotas", "pinned", "resident_bytes", "payload_bytes", "contract")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    GRAPH_NODES_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: TenantSpec
    points: int
    graph_nodes: int
    created_unix_ms: int
    state: TenantState
    last_used_unix_ms: int
    quotas: Quotas
    pinned: bool
    resident_bytes: int
    payload_bytes: int
    contract: TenantContract
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[TenantSpec, _Mapping]] = ..., points: _Optional[int] = ..., graph_nodes: _Optional[int] = ..., created_unix_ms: _Optional[int] = ..., state: _Optional[_Union[TenantState, str]] = ..., last_used_unix_ms: _Optional[int] = ..., quotas: _Optional[_Union[Quotas, _Mapping]] = ..., pinned: _Optional[bool] = ..., resident_bytes: _Optional[int] = ..., payload_bytes: _Optional[int] = ..., contract: _Optional[_Union[TenantContract, _Mapping]] = ...) -> None: ...

class AccessLogEntry(_message.Message):
    __slots__ = ("first_unix_ms", "last_unix_ms", "token_id", "rpc", "code", "calls", "items")
    FIRST_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    first_unix_ms: int
    last_unix_ms: int
    token_id: str
    rpc: str
    code: str
    calls: int
    items: int
    def __init__(self, first_unix_ms: _Optional[int] = ..., last_unix_ms: _Optional[int] = ..., token_id: _Optional[str] = ..., rpc: _Optional[str] = ..., code: _Optional[str] = ..., calls: _Optional[int] = ..., items: _Optional[int] = ...) -> None: ...
