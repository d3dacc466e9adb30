//! Filter builders: `Filter::must([Condition::matches("lang", "en")])`.

use crate::proto;
use crate::proto::condition::Condition as C;
use crate::proto::field_condition::Condition as F;
use crate::proto::match_value::Value as V;

/// A payload filter: `must`, `should` and `must_not` lists of conditions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter(proto::Filter);

/// One condition on the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition(proto::Condition);

impl Filter {
    /// Every condition must hold.
    pub fn must(conditions: impl IntoIterator<Item = Condition>) -> Self {
        Filter::default().and_must(conditions)
    }

    /// At least one condition must hold.
    pub fn should(conditions: impl IntoIterator<Item = Condition>) -> Self {
        Filter::default().and_should(conditions)
    }

    /// No condition may hold.
    pub fn must_not(conditions: impl IntoIterator<Item = Condition>) -> Self {
        Filter::default().and_must_not(conditions)
    }

    pub fn and_must(mut self, conditions: impl IntoIterator<Item = Condition>) -> Self {
        self.0.must.extend(conditions.into_iter().map(|c| c.0));
        self
    }

    pub fn and_should(mut self, conditions: impl IntoIterator<Item = Condition>) -> Self {
        self.0.should.extend(conditions.into_iter().map(|c| c.0));
        self
    }

    pub fn and_must_not(mut self, conditions: impl IntoIterator<Item = Condition>) -> Self {
        self.0.must_not.extend(conditions.into_iter().map(|c| c.0));
        self
    }

    pub fn into_proto(self) -> proto::Filter {
        self.0
    }

    /// A filter from its JSON form, Qdrant's shape:
    /// `{"must": [{"key": "lang", "match": {"value": "en"}}, {"key": "year",
    /// "range": {"gte": 2020}}], "should": [{"key": "tags", "match": {"any":
    /// ["a", "b"]}}], "must_not": [{"has_field": "deleted"}]}`, conditions
    /// nesting as filters. Only the shape is checked here; the server checks
    /// keys, depth and sizes and answers INVALID_ARGUMENT saying what to fix.
    pub fn from_json(value: &serde_json::Value) -> Result<Filter, String> {
        let clauses = value
            .as_object()
            .ok_or("a filter is a JSON object with must, should and must_not lists")?;
        let mut filter = Filter::default();
        for (name, list) in clauses {
            let target = match name.as_str() {
                "must" => &mut filter.0.must,
                "should" => &mut filter.0.should,
                "must_not" => &mut filter.0.must_not,
                other => {
                    return Err(format!(
                        "unknown clause {other:?}: use must, should or must_not"
                    ));
                }
            };
            let items = list
                .as_array()
                .ok_or_else(|| format!("{name} must be a list of conditions"))?;
            for item in items {
                target.push(Condition::from_json(item)?.0);
            }
        }
        Ok(filter)
    }
}

impl From<proto::Filter> for Filter {
    fn from(f: proto::Filter) -> Self {
        Filter(f)
    }
}

fn field(key: impl Into<String>, condition: F) -> Condition {
    Condition(proto::Condition {
        condition: Some(C::Field(proto::FieldCondition {
            key: key.into(),
            condition: Some(condition),
        })),
    })
}

impl Condition {
    /// The field (a dotted path) equals a keyword, an integer or a bool.
    pub fn matches(key: impl Into<String>, value: impl Into<proto::MatchValue>) -> Self {
        field(key, F::Match(value.into()))
    }

    /// The field equals any of the values.
    pub fn matches_any<T: Into<proto::MatchValue>>(
        key: impl Into<String>,
        values: impl IntoIterator<Item = T>,
    ) -> Self {
        field(
            key,
            F::MatchAny(proto::MatchAny {
                values: values.into_iter().map(Into::into).collect(),
            }),
        )
    }

    /// The field is a number within the range (unset bounds are open).
    pub fn range(key: impl Into<String>, range: proto::Range) -> Self {
        field(key, F::Range(range))
    }

    /// The field exists and is not null.
    pub fn has_field(key: impl Into<String>) -> Self {
        Condition(proto::Condition {
            condition: Some(C::HasField(key.into())),
        })
    }

    /// A nested filter.
    pub fn nested(filter: Filter) -> Self {
        Condition(proto::Condition {
            condition: Some(C::Filter(filter.0)),
        })
    }

    /// One condition of a JSON filter (see [`Filter::from_json`]).
    fn from_json(value: &serde_json::Value) -> Result<Condition, String> {
        let map = value.as_object().ok_or("a condition is a JSON object")?;
        if ["must", "should", "must_not"]
            .iter()
            .any(|k| map.contains_key(*k))
        {
            return Ok(Condition::nested(Filter::from_json(value)?));
        }
        if let Some(key) = map.get("has_field") {
            let key = key.as_str().ok_or("has_field must name a key")?;
            return Ok(Condition::has_field(key));
        }
        let key = map
            .get("key")
            .and_then(|k| k.as_str())
            .ok_or("a condition needs a \"key\" (or is {\"has_field\": key} or a nested filter)")?;
        if let Some(m) = map.get("match") {
            if let Some(v) = m.get("value") {
                return Ok(Condition::matches(key, match_value(key, v)?));
            }
            if let Some(any) = m.get("any").and_then(|a| a.as_array()) {
                let values = any.iter().map(|v| match_value(key, v));
                return Ok(Condition::matches_any(
                    key,
                    values.collect::<Result<Vec<_>, _>>()?,
                ));
            }
            return Err(format!(
                "match on {key:?} must be {{\"value\": ...}} or {{\"any\": [...]}}"
            ));
        }
        if let Some(r) = map.get("range") {
            let bounds = r
                .as_object()
                .ok_or_else(|| format!("range on {key:?} must be an object of gt, gte, lt, lte"))?;
            let mut range = proto::Range::default();
            for (bound, v) in bounds {
                let n = v
                    .as_f64()
                    .ok_or_else(|| format!("range bound {bound} on {key:?} must be a number"))?;
                let slot = match bound.as_str() {
                    "gt" => &mut range.gt,
                    "gte" => &mut range.gte,
                    "lt" => &mut range.lt,
                    "lte" => &mut range.lte,
                    other => {
                        return Err(format!(
                            "unknown range bound {other:?}: use gt, gte, lt or lte"
                        ));
                    }
                };
                *slot = Some(n);
            }
            return Ok(Condition::range(key, range));
        }
        Err(format!(
            "condition on {key:?} needs \"match\" or \"range\" (or use {{\"has_field\": key}})"
        ))
    }
}

/// A keyword, an integer or a bool to match.
fn match_value(key: &str, v: &serde_json::Value) -> Result<proto::MatchValue, String> {
    match v {
        serde_json::Value::String(s) => Ok(s.as_str().into()),
        serde_json::Value::Bool(b) => Ok((*b).into()),
        serde_json::Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or_default().into()),
        _ => Err(format!(
            "match on {key:?} takes a string, an integer or a bool (use range for other numbers)"
        )),
    }
}

impl From<&str> for proto::MatchValue {
    fn from(s: &str) -> Self {
        proto::MatchValue {
            value: Some(V::Keyword(s.to_string())),
        }
    }
}

impl From<String> for proto::MatchValue {
    fn from(s: String) -> Self {
        proto::MatchValue {
            value: Some(V::Keyword(s)),
        }
    }
}

impl From<i64> for proto::MatchValue {
    fn from(i: i64) -> Self {
        proto::MatchValue {
            value: Some(V::Integer(i)),
        }
    }
}

impl From<bool> for proto::MatchValue {
    fn from(b: bool) -> Self {
        proto::MatchValue {
            value: Some(V::Boolean(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_filters_become_their_wire_form() {
        let parsed = Filter::from_json(&json!({
            "must": [{"key": "lang", "match": {"value": "en"}},
                     {"key": "year", "range": {"gte": 2020, "lt": 2024}}],
            "should": [{"key": "tags", "match": {"any": ["a", 7, true]}}],
            "must_not": [{"has_field": "deleted"}, {"should": [{"key": "n", "match": {"value": 1}}]}],
        }))
        .unwrap();
        let built = Filter::must([
            Condition::matches("lang", "en"),
            Condition::range(
                "year",
                proto::Range {
                    gte: Some(2020.0),
                    lt: Some(2024.0),
                    ..Default::default()
                },
            ),
        ])
        .and_should([Condition::matches_any(
            "tags",
            [proto::MatchValue::from("a"), 7i64.into(), true.into()],
        )])
        .and_must_not([
            Condition::has_field("deleted"),
            Condition::nested(Filter::should([Condition::matches("n", 1i64)])),
        ]);
        assert_eq!(parsed, built);
    }

    #[test]
    fn a_json_filter_of_the_wrong_shape_says_what_to_fix() {
        for (bad, says) in [
            (json!([]), "a filter is a JSON object"),
            (json!({"mus": []}), "unknown clause \"mus\""),
            (json!({"must": {}}), "must must be a list"),
            (
                json!({"must": [{"match": {"value": 1}}]}),
                "needs a \"key\"",
            ),
            (
                json!({"must": [{"key": "x", "match": {"value": 1.5}}]}),
                "use range",
            ),
            (
                json!({"must": [{"key": "x", "range": {"ge": 1}}]}),
                "unknown range bound",
            ),
            (
                json!({"must": [{"key": "x"}]}),
                "needs \"match\" or \"range\"",
            ),
        ] {
            let err = Filter::from_json(&bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
