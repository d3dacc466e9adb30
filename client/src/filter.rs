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
