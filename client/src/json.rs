//! JSON objects to protobuf `Struct` and back (payloads travel as Struct).

use prost_types::value::Kind;
use serde_json::{Map, Number, Value};

/// A JSON object as a protobuf Struct.
pub fn to_struct(object: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: object
            .iter()
            .map(|(k, v)| (k.clone(), to_value(v)))
            .collect(),
    }
}

fn to_value(value: &Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(to_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A protobuf Struct as a JSON object. Struct numbers are doubles: integral
/// ones within ±2^53 become JSON integers. Errors name the offending path
/// (rooted at `path`) when a number is not finite.
pub fn from_struct(s: prost_types::Struct, path: &str) -> Result<Map<String, Value>, String> {
    s.fields
        .into_iter()
        .map(|(k, v)| {
            let here = format!("{path}.{k}");
            Ok((k, from_value(v, &here)?))
        })
        .collect()
}

fn from_value(value: prost_types::Value, path: &str) -> Result<Value, String> {
    Ok(match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::NumberValue(n)) if !n.is_finite() => {
            return Err(format!("{path} is {n}: only finite numbers are allowed"));
        }
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => {
            Value::Number(Number::from(n as i64))
        }
        Some(Kind::NumberValue(n)) => Number::from_f64(n).map_or(Value::Null, Value::Number),
        Some(Kind::StructValue(s)) => Value::Object(from_struct(s, path)?),
        Some(Kind::ListValue(list)) => Value::Array(
            list.values
                .into_iter()
                .enumerate()
                .map(|(i, v)| from_value(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_keeps_integers_integers() {
        let v = json!({"a": 1, "b": 1.5, "c": [true, null, "x"], "d": {"e": -7}});
        let back = from_struct(to_struct(v.as_object().unwrap()), "payload").unwrap();
        assert_eq!(Value::Object(back), v);
        let bad = prost_types::Struct {
            fields: [(
                "n".to_string(),
                prost_types::Value {
                    kind: Some(Kind::NumberValue(f64::NAN)),
                },
            )]
            .into(),
        };
        assert_eq!(
            from_struct(bad, "payload").unwrap_err(),
            "payload.n is NaN: only finite numbers are allowed"
        );
    }
}
