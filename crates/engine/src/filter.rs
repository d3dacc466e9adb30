//! Payload filters, shaped like Qdrant's: `must`, `should` and `must_not`
//! lists of conditions, evaluated against a point's payload inside the
//! tenant's own search.
//!
//! JSON form:
//! ```json
//! {"must": [{"key": "color", "match": {"value": "red"}},
//!           {"key": "year", "range": {"gte": 2020, "lt": 2024}}],
//!  "should": [{"key": "tags", "match": {"any": ["a", "b"]}}],
//!  "must_not": [{"has_field": "deleted"}]}
//! ```
//! A key may be a dotted path (`"a.b"`). When the payload value is an array,
//! a condition holds if it holds for any element.

use std::collections::HashSet;

use serde_json::Value;

use super::error::{EngineError, Result};
use super::point::Payload;

const MAX_DEPTH: usize = 8;
const MAX_CONDITIONS: usize = 1_024;
/// Values of all `match.any` lists of one filter together. Each is one
/// hash lookup per payload value, but the list is parsed, copied and sent
/// whole: a bound keeps one request's filter from costing every tenant.
pub const MAX_MATCH_ANY_VALUES: usize = 4_096;

/// A boolean combination of conditions. An empty filter matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// All must hold.
    pub must: Vec<Condition>,
    /// At least one must hold, when there are any.
    pub should: Vec<Condition>,
    /// None may hold.
    pub must_not: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The field equals the value (keyword, integer or bool).
    Match { key: String, value: MatchValue },
    /// The field equals one of the values.
    MatchAny { key: String, any: MatchSet },
    /// The field is a number within the range.
    Range { key: String, range: Range },
    /// The field exists and is not null.
    HasField { key: String },
    /// A nested filter.
    Nested(Filter),
}

#[derive(Debug, Clone, PartialEq)]
pub enum MatchValue {
    Keyword(String),
    Integer(i64),
    Bool(bool),
}

/// The values of a `match.any`, in request order, with sets for the
/// lookups (a payload value is checked in O(1), not against every value).
#[derive(Debug, Clone, Default)]
pub struct MatchSet {
    values: Vec<MatchValue>,
    keywords: HashSet<String>,
    integers: HashSet<i64>,
    bools: [bool; 2],
}

impl MatchSet {
    pub fn new(values: Vec<MatchValue>) -> MatchSet {
        let mut set = MatchSet::default();
        for value in &values {
            match value {
                MatchValue::Keyword(k) => {
                    set.keywords.insert(k.clone());
                }
                MatchValue::Integer(i) => {
                    set.integers.insert(*i);
                }
                MatchValue::Bool(b) => set.bools[usize::from(*b)] = true,
            }
        }
        set.values = values;
        set
    }

    /// The values in request order.
    pub fn iter(&self) -> impl Iterator<Item = &MatchValue> {
        self.values.iter()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn contains(&self, value: &Value) -> bool {
        match value {
            Value::String(s) => self.keywords.contains(s.as_str()),
            Value::Number(n) => n.as_i64().is_some_and(|i| self.integers.contains(&i)),
            Value::Bool(b) => self.bools[usize::from(*b)],
            _ => false,
        }
    }
}

impl PartialEq for MatchSet {
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Range {
    pub gt: Option<f64>,
    pub gte: Option<f64>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
}

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::invalid(format!("invalid filter: {}", msg.into()))
}

impl Filter {
    /// Parses the JSON form, with a message that says what to fix.
    pub fn from_json(value: &Value) -> Result<Filter> {
        let mut budget = Budget {
            conditions: MAX_CONDITIONS,
            any_values: MAX_MATCH_ANY_VALUES,
        };
        parse_filter(value, 0, &mut budget)
    }

    pub fn matches(&self, payload: &Payload) -> bool {
        self.must.iter().all(|c| c.matches(payload))
            && (self.should.is_empty() || self.should.iter().any(|c| c.matches(payload)))
            && !self.must_not.iter().any(|c| c.matches(payload))
    }
}

/// What is left of one filter's bounds while it is parsed.
struct Budget {
    conditions: usize,
    any_values: usize,
}

fn parse_filter(value: &Value, depth: usize, budget: &mut Budget) -> Result<Filter> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("filters nest at most {MAX_DEPTH} levels deep")));
    }
    let Value::Object(map) = value else {
        return Err(bad(
            "a filter is a JSON object with must, should and must_not lists",
        ));
    };
    let mut filter = Filter::default();
    for (name, list) in map {
        let target = match name.as_str() {
            "must" => &mut filter.must,
            "should" => &mut filter.should,
            "must_not" => &mut filter.must_not,
            other => {
                return Err(bad(format!(
                    "unknown clause {other:?}: use must, should or must_not"
                )));
            }
        };
        let Value::Array(items) = list else {
            return Err(bad(format!("{name} must be a list of conditions")));
        };
        for item in items {
            if budget.conditions == 0 {
                return Err(bad(format!(
                    "a filter has at most {MAX_CONDITIONS} conditions"
                )));
            }
            budget.conditions -= 1;
            target.push(parse_condition(item, depth, budget)?);
        }
    }
    Ok(filter)
}

fn parse_condition(value: &Value, depth: usize, budget: &mut Budget) -> Result<Condition> {
    let Value::Object(map) = value else {
        return Err(bad("a condition is a JSON object"));
    };
    if ["must", "should", "must_not"]
        .iter()
        .any(|k| map.contains_key(*k))
    {
        return Ok(Condition::Nested(parse_filter(value, depth + 1, budget)?));
    }
    if let Some(key) = map.get("has_field") {
        return Ok(Condition::HasField {
            key: parse_key(Some(key))?,
        });
    }
    let key = parse_key(map.get("key"))?;
    if let Some(m) = map.get("match") {
        let Value::Object(m) = m else {
            return Err(bad(format!(
                "match on {key:?} must be {{\"value\": ...}} or {{\"any\": [...]}}"
            )));
        };
        if let Some(v) = m.get("value") {
            return Ok(Condition::Match {
                value: parse_match_value(&key, v)?,
                key,
            });
        }
        if let Some(Value::Array(any)) = m.get("any") {
            if any.len() > budget.any_values {
                return Err(bad(format!(
                    "the match.any lists of a filter hold at most {MAX_MATCH_ANY_VALUES} values in all; split the request or match a coarser field"
                )));
            }
            budget.any_values -= any.len();
            let any = any
                .iter()
                .map(|v| parse_match_value(&key, v))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Condition::MatchAny {
                key,
                any: MatchSet::new(any),
            });
        }
        return Err(bad(format!(
            "match on {key:?} must be {{\"value\": ...}} or {{\"any\": [...]}}"
        )));
    }
    if let Some(r) = map.get("range") {
        let Value::Object(r) = r else {
            return Err(bad(format!(
                "range on {key:?} must be an object of gt, gte, lt, lte"
            )));
        };
        let mut range = Range::default();
        for (bound, v) in r {
            let Some(n) = v.as_f64() else {
                return Err(bad(format!(
                    "range bound {bound} on {key:?} must be a number"
                )));
            };
            match bound.as_str() {
                "gt" => range.gt = Some(n),
                "gte" => range.gte = Some(n),
                "lt" => range.lt = Some(n),
                "lte" => range.lte = Some(n),
                other => {
                    return Err(bad(format!(
                        "unknown range bound {other:?}: use gt, gte, lt or lte"
                    )));
                }
            }
        }
        return Ok(Condition::Range { key, range });
    }
    Err(bad(format!(
        "condition on {key:?} needs \"match\" or \"range\" (or use {{\"has_field\": key}})"
    )))
}

fn parse_key(value: Option<&Value>) -> Result<String> {
    match value {
        Some(Value::String(k)) if !k.is_empty() && k.len() <= 256 => Ok(k.clone()),
        _ => Err(bad(
            "a condition needs \"key\": a field name of 1-256 bytes",
        )),
    }
}

fn parse_match_value(key: &str, value: &Value) -> Result<MatchValue> {
    match value {
        Value::String(s) => Ok(MatchValue::Keyword(s.clone())),
        Value::Bool(b) => Ok(MatchValue::Bool(*b)),
        Value::Number(n) if n.as_i64().is_some() => {
            Ok(MatchValue::Integer(n.as_i64().unwrap_or_default()))
        }
        _ => Err(bad(format!(
            "match on {key:?} takes a string, an integer or a bool (use range for other numbers)"
        ))),
    }
}

/// The value at a dotted path, if any.
fn lookup<'a>(payload: &'a Payload, key: &str) -> Option<&'a Value> {
    if let Some(v) = payload.get(key) {
        return Some(v);
    }
    let mut parts = key.split('.');
    let mut current = payload.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// Applies `test` to the value, or to each element of an array value.
fn any_value(value: &Value, test: impl Fn(&Value) -> bool) -> bool {
    match value {
        Value::Array(items) => items.iter().any(test),
        other => test(other),
    }
}

impl MatchValue {
    fn equals(&self, value: &Value) -> bool {
        match (self, value) {
            (MatchValue::Keyword(k), Value::String(s)) => k == s,
            (MatchValue::Integer(i), Value::Number(n)) => n.as_i64() == Some(*i),
            (MatchValue::Bool(b), Value::Bool(v)) => b == v,
            _ => false,
        }
    }
}

impl Range {
    fn contains(&self, x: f64) -> bool {
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }
}

impl Condition {
    pub fn matches(&self, payload: &Payload) -> bool {
        match self {
            Condition::Match { key, value } => {
                lookup(payload, key).is_some_and(|v| any_value(v, |x| value.equals(x)))
            }
            Condition::MatchAny { key, any } => {
                lookup(payload, key).is_some_and(|v| any_value(v, |x| any.contains(x)))
            }
            Condition::Range { key, range } => lookup(payload, key)
                .is_some_and(|v| any_value(v, |x| x.as_f64().is_some_and(|n| range.contains(n)))),
            Condition::HasField { key } => lookup(payload, key).is_some_and(|v| !v.is_null()),
            Condition::Nested(filter) => filter.matches(payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(v: Value) -> Payload {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn clauses_combine_like_qdrant() {
        let f = Filter::from_json(&json!({
            "must": [{"key": "color", "match": {"value": "red"}},
                     {"key": "n", "range": {"gte": 2, "lt": 5}}],
            "should": [{"key": "tags", "match": {"any": ["x", "y"]}}, {"key": "vip", "match": {"value": true}}],
            "must_not": [{"has_field": "meta.deleted"}]
        }))
        .unwrap();
        assert!(f.matches(&payload(
            json!({"color": "red", "n": 2, "tags": ["a", "y"]})
        )));
        assert!(f.matches(&payload(json!({"color": "red", "n": 4.5, "vip": true}))));
        assert!(!f.matches(&payload(json!({"color": "red", "n": 5, "vip": true}))));
        assert!(!f.matches(&payload(json!({"color": "blue", "n": 3, "vip": true}))));
        assert!(!f.matches(&payload(json!({"color": "red", "n": 3}))));
        assert!(!f.matches(&payload(
            json!({"color": "red", "n": 3, "vip": true, "meta": {"deleted": 1}})
        )));
        assert!(f.matches(&payload(
            json!({"color": "red", "n": 3, "vip": true, "meta": {"deleted": null}})
        )));
    }

    #[test]
    fn integer_match_is_exact_and_nested_filters_work() {
        let f = Filter::from_json(&json!({"must": [{"should": [
            {"key": "k", "match": {"value": 7}}, {"key": "k", "match": {"value": "7"}}]}]}))
        .unwrap();
        assert!(f.matches(&payload(json!({"k": 7}))));
        assert!(f.matches(&payload(json!({"k": "7"}))));
        assert!(!f.matches(&payload(json!({"k": 7.5}))));
        assert!(!f.matches(&payload(json!({}))));
    }

    #[test]
    fn bad_filters_say_what_to_fix() {
        for (input, needle) in [
            (json!([]), "JSON object"),
            (json!({"mus": []}), "unknown clause"),
            (
                json!({"must": [{"key": "a"}]}),
                "needs \"match\" or \"range\"",
            ),
            (
                json!({"must": [{"key": "a", "match": {"value": 1.5}}]}),
                "use range",
            ),
            (
                json!({"must": [{"key": "a", "range": {"gte": "x"}}]}),
                "must be a number",
            ),
            (json!({"must": [{"match": {"value": 1}}]}), "needs \"key\""),
        ] {
            let err = Filter::from_json(&input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
        let mut deep = json!({"must": []});
        for _ in 0..20 {
            deep = json!({"must": [deep]});
        }
        assert!(
            Filter::from_json(&deep)
                .unwrap_err()
                .to_string()
                .contains("nest")
        );
    }

    #[test]
    fn match_any_is_bounded_per_filter_and_matches_by_type() {
        let any = |n: usize| json!((0..n).map(|i| format!("v{i}")).collect::<Vec<_>>());
        let two = |a: usize, b: usize| {
            json!({"must": [
                {"key": "k", "match": {"any": any(a)}},
                {"key": "k", "match": {"any": any(b)}},
            ]})
        };
        assert!(Filter::from_json(&two(MAX_MATCH_ANY_VALUES, 0)).is_ok());
        for (a, b) in [(MAX_MATCH_ANY_VALUES + 1, 0), (MAX_MATCH_ANY_VALUES, 1)] {
            let err = Filter::from_json(&two(a, b)).unwrap_err().to_string();
            assert!(err.contains("at most 4096 values"), "{err}");
        }
        let f = Filter::from_json(&json!({"must": [
            {"key": "k", "match": {"any": ["1", 2, true]}}
        ]}))
        .unwrap();
        for (value, expected) in [
            (json!("1"), true),
            (json!(1), false),
            (json!(2), true),
            (json!("2"), false),
            (json!(2.5), false),
            (json!(true), true),
            (json!(false), false),
            (json!(["x", 2]), true),
            (json!(null), false),
        ] {
            assert_eq!(
                f.matches(&payload(json!({ "k": value.clone() }))),
                expected,
                "{value}"
            );
        }
    }
}
