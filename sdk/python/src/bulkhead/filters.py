"""Payload filters, from the forms Python users already write.

Three forms are accepted wherever a call takes ``filter=``:

* Bulkhead's own JSON form (the server's, shaped like Qdrant's)::

    {"must": [{"key": "color", "match": {"value": "red"}},
              {"key": "year", "range": {"gte": 2020}}],
     "should": [{"key": "tags", "match": {"any": ["a", "b"]}}],
     "must_not": [{"has_field": "deleted"}]}

* The shorthand of LangChain's vector stores (Chroma, PGVector): keys to
  values, all of which must match, with ``$eq $ne $in $nin $gt $gte $lt
  $lte $exists`` operators and ``$and`` / ``$or``::

    {"color": "red", "year": {"$gte": 2020}, "tags": {"$in": ["a", "b"]}}

* A ``bulkhead.v1.filter_pb2.Filter`` message, passed through.

A key may be a dotted path (``"a.b"``); when the payload holds a list, a
condition holds if it holds for any element. Matching is on strings,
integers and booleans; use a range for other numbers.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Optional, Union

from bulkhead.v1 import filter_pb2

FilterLike = Union[Mapping[str, Any], filter_pb2.Filter, None]

_CLAUSES = ("must", "should", "must_not")
_RANGE = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}

__all__ = [
    "FilterLike",
    "match_any_condition",
    "match_condition",
    "range_condition",
    "to_proto",
]


def to_proto(filter: FilterLike) -> Optional[filter_pb2.Filter]:
    """The wire filter for ``filter``, or None for no filter.

    Raises ValueError, saying what to fix, for a filter it cannot express.
    """
    if filter is None:
        return None
    if isinstance(filter, filter_pb2.Filter):
        return filter
    if not isinstance(filter, Mapping):
        raise ValueError(
            f"a filter is a dict or a bulkhead.v1.filter_pb2.Filter, not {type(filter).__name__}"
        )
    if not filter:
        return None
    if any(k in filter for k in _CLAUSES):
        return _native(filter, "filter")
    return _shorthand(filter)


def _native(f: Mapping[str, Any], where: str) -> filter_pb2.Filter:
    unknown = set(f) - set(_CLAUSES)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {sorted(unknown)}; a filter has must, should and must_not"
        )
    out = filter_pb2.Filter()
    for clause in _CLAUSES:
        conditions = f.get(clause) or []
        if not isinstance(conditions, (list, tuple)):
            raise ValueError(f"{where}.{clause} must be a list of conditions")
        getattr(out, clause).extend(
            _native_condition(c, f"{where}.{clause}[{i}]") for i, c in enumerate(conditions)
        )
    return out


def _native_condition(c: Any, where: str) -> filter_pb2.Condition:
    if not isinstance(c, Mapping):
        raise ValueError(f"{where} must be an object")
    if any(k in c for k in _CLAUSES):
        return filter_pb2.Condition(filter=_native(c, where))
    if "has_field" in c:
        return filter_pb2.Condition(has_field=_key(c["has_field"], where))
    key = _key(c.get("key"), where)
    if "match" in c:
        m = c["match"]
        if isinstance(m, Mapping) and "value" in m:
            return match_condition(key, m["value"], where)
        if isinstance(m, Mapping) and "any" in m:
            return match_any_condition(key, m["any"], where)
        raise ValueError(f'{where}.match needs "value" or "any"')
    if "range" in c:
        r = c["range"]
        if not isinstance(r, Mapping) or not r or set(r) - {"gt", "gte", "lt", "lte"}:
            raise ValueError(f"{where}.range takes gt, gte, lt and lte")
        return range_condition(key, {k: r[k] for k in r}, where)
    raise ValueError(f"{where} needs match, range, has_field or a nested filter")


def _shorthand(f: Mapping[str, Any]) -> filter_pb2.Filter:
    out = filter_pb2.Filter()
    for key, value in f.items():
        if key == "$and":
            out.must.extend(_nested(v, "$and") for v in _list(value, "$and"))
        elif key == "$or":
            out.must.append(
                filter_pb2.Condition(
                    filter=filter_pb2.Filter(should=[_nested(v, "$or") for v in _list(value, "$or")])
                )
            )
        elif key.startswith("$"):
            raise ValueError(f"unknown filter operator {key}; top level takes $and and $or")
        else:
            must, must_not = _field(key, value)
            out.must.extend(must)
            out.must_not.extend(must_not)
    return out


def _nested(v: Any, where: str) -> filter_pb2.Condition:
    if not isinstance(v, Mapping):
        raise ValueError(f"{where} takes a list of filters")
    return filter_pb2.Condition(filter=_shorthand(v))


def _list(v: Any, where: str) -> List[Any]:
    if not isinstance(v, (list, tuple)) or not v:
        raise ValueError(f"{where} takes a non-empty list")
    return list(v)


def _field(key: str, value: Any):
    must: List[filter_pb2.Condition] = []
    must_not: List[filter_pb2.Condition] = []
    if not isinstance(value, Mapping):
        if isinstance(value, (list, tuple)):
            must.append(match_any_condition(key, value, key))
        else:
            must.append(match_condition(key, value, key))
        return must, must_not
    bounds = {}
    for op, operand in value.items():
        where = f"{key}.{op}"
        if op == "$eq":
            must.append(match_condition(key, operand, where))
        elif op == "$ne":
            must_not.append(match_condition(key, operand, where))
        elif op == "$in":
            must.append(match_any_condition(key, operand, where))
        elif op == "$nin":
            must_not.append(match_any_condition(key, operand, where))
        elif op in _RANGE:
            bounds[_RANGE[op]] = operand
        elif op == "$exists":
            (must if operand else must_not).append(filter_pb2.Condition(has_field=key))
        else:
            raise ValueError(
                f"unknown operator {op} on {key!r}; use $eq $ne $in $nin $gt $gte $lt $lte $exists"
            )
    if bounds:
        must.append(range_condition(key, bounds, key))
    return must, must_not


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"{where}: the key must be a non-empty string")
    return key


def _value(v: Any, where: str) -> filter_pb2.MatchValue:
    if isinstance(v, bool):
        return filter_pb2.MatchValue(boolean=v)
    if isinstance(v, int):
        return filter_pb2.MatchValue(integer=v)
    if isinstance(v, float) and v.is_integer():
        return filter_pb2.MatchValue(integer=int(v))
    if isinstance(v, str):
        return filter_pb2.MatchValue(keyword=v)
    raise ValueError(
        f"{where}: cannot match {v!r}; match strings, integers and booleans, or use a range"
    )


def match_condition(key: str, v: Any, where: str) -> filter_pb2.Condition:
    return filter_pb2.Condition(
        field=filter_pb2.FieldCondition(key=key, match=_value(v, where))
    )


def match_any_condition(key: str, values: Iterable[Any], where: str) -> filter_pb2.Condition:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{where}: expected a list of values")
    return filter_pb2.Condition(
        field=filter_pb2.FieldCondition(
            key=key,
            match_any=filter_pb2.MatchAny(values=[_value(v, where) for v in values]),
        )
    )


def range_condition(key: str, bounds: Mapping[str, Any], where: str) -> filter_pb2.Condition:
    r = filter_pb2.Range()
    for name, bound in bounds.items():
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise ValueError(f"{where}: range bound {name} must be a number, got {bound!r}")
        setattr(r, name, float(bound))
    return filter_pb2.Condition(field=filter_pb2.FieldCondition(key=key, range=r))
