//! Method params as they arrived, read without building a value tree. JSON params stay
//! the client's text ([`RawValue`]): a method reads the one member it needs, `sum` folds
//! the numbers as it reads them, `echo` and `sleep` hand the text back. Parsing a 16 MiB
//! array of small numbers into `Value`s would take about 16 times its size.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};
use serde_json::value::RawValue;
use serde_json::{Number, Value};

use crate::rpc::protocol::{Output, RpcFailure};

/// The params of one call.
#[derive(Debug, Clone)]
pub enum Params<'a> {
    /// No `params` member.
    Absent,
    /// An array or object, as JSON text (checked by serde_json, not parsed).
    Json(&'a RawValue),
    /// An array or object decoded from MessagePack.
    Value(Value),
}

impl Params<'_> {
    /// Member `key` of an object, or position `index` of an array, read as a `T`; `None`
    /// when there is none or it is not a `T`.
    pub fn member<T: DeserializeOwned>(&self, key: &str, index: usize) -> Option<T> {
        match self {
            Params::Absent => None,
            Params::Json(raw) => {
                let mut reader = serde_json::Deserializer::from_str(raw.get());
                let member = Member {
                    key,
                    index,
                    wanted: PhantomData,
                };
                reader.deserialize_any(member).ok().flatten()
            }
            Params::Value(value) => {
                let member = match value {
                    Value::Object(map) => map.get(key),
                    Value::Array(items) => items.get(index),
                    _ => None,
                }?;
                T::deserialize(member).ok()
            }
        }
    }

    /// Like [`member`](Self::member), kept as it is (JSON text stays text).
    pub fn member_output(&self, key: &str, index: usize) -> Option<Output> {
        match self {
            Params::Json(_) => self.member::<Box<RawValue>>(key, index).map(Output::Raw),
            _ => self.member::<Value>(key, index).map(Output::Value),
        }
    }

    /// The params as they arrived, to answer with (`null` when absent).
    pub fn into_output(self) -> Output {
        match self {
            Params::Absent => Output::Value(Value::Null),
            Params::Json(raw) => Output::Raw(raw.to_owned()),
            Params::Value(value) => Output::Value(value),
        }
    }

    /// The params as JSON text, the most compact form to keep while a slow call waits.
    pub fn into_text(self) -> Box<RawValue> {
        let tree = match self {
            Params::Json(raw) => return raw.to_owned(),
            Params::Absent => Value::Null,
            Params::Value(value) => value,
        };
        // Serializing a serde_json::Value into memory cannot fail.
        serde_json::value::to_raw_value(&tree).unwrap_or_else(|_| RawValue::NULL.to_owned())
    }

    /// Folds `step` over the params, which must be an array of numbers; the first error
    /// (from `step`, or `not_numbers` for anything else) is returned.
    pub fn fold_numbers(
        &self,
        init: Number,
        step: impl FnMut(&Number, &Number) -> Result<Number, RpcFailure>,
        not_numbers: impl Fn() -> RpcFailure,
    ) -> Result<Number, RpcFailure> {
        let mut fold = Fold {
            total: Ok(init),
            step,
        };
        match self {
            Params::Json(raw) if raw.get().starts_with('[') => {
                let mut reader = serde_json::Deserializer::from_str(raw.get());
                match reader.deserialize_seq(&mut fold) {
                    Ok(()) => fold.total,
                    Err(_) => Err(not_numbers()),
                }
            }
            Params::Value(Value::Array(items)) => {
                for item in items {
                    let Value::Number(n) = item else {
                        return Err(not_numbers());
                    };
                    fold.add(n);
                }
                fold.total
            }
            _ => Err(not_numbers()),
        }
    }
}

/// Reads one member of an object or array, skipping the others without keeping them.
struct Member<'k, T> {
    key: &'k str,
    index: usize,
    wanted: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> de::Visitor<'de> for Member<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array or an object")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let mut position = 0;
        loop {
            if position == self.index {
                found = seq.next_element::<T>()?;
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(found);
            }
            position += 1;
            if position > self.index && found.is_none() {
                // The array ended before `index`, or the member was not a T.
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(None);
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_key) = map.next_key_seed(KeyIs(self.key))? {
            if is_key {
                // The last of duplicate members wins, as in a parsed object.
                found = Some(map.next_value::<T>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// An object key, compared with the wanted one without keeping it.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> de::Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// The running total of [`Params::fold_numbers`].
struct Fold<F> {
    total: Result<Number, RpcFailure>,
    step: F,
}

impl<F: FnMut(&Number, &Number) -> Result<Number, RpcFailure>> Fold<F> {
    fn add(&mut self, n: &Number) {
        if let Ok(total) = &self.total {
            self.total = (self.step)(total, n);
        }
    }
}

impl<'de, F: FnMut(&Number, &Number) -> Result<Number, RpcFailure>> de::Visitor<'de>
    for &mut Fold<F>
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(n) = seq.next_element::<Number>()? {
            self.add(&n);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.into()).unwrap()
    }

    #[test]
    fn members_are_read_by_name_or_position_from_text_and_trees() {
        let named = raw(r#"{"b": [1, {"x": 2}], "a": 5, "a\u0062": 6}"#);
        let named = Params::Json(&named);
        assert_eq!(named.member::<i64>("a", 0), Some(5));
        assert_eq!(named.member::<i64>("ab", 0), Some(6));
        assert_eq!(named.member::<i64>("b", 0), None, "not a number");
        assert_eq!(named.member::<i64>("c", 0), None);
        let positional = raw("[7, [8], 9]");
        let positional = Params::Json(&positional);
        assert_eq!(positional.member::<u64>("ms", 0), Some(7));
        assert_eq!(positional.member::<u64>("ms", 2), Some(9));
        assert_eq!(positional.member::<u64>("ms", 1), None);
        assert_eq!(positional.member::<u64>("ms", 3), None);
        assert_eq!(
            positional.member_output("x", 1),
            Some(Output::Raw(raw("[8]")))
        );
        let tree = Params::Value(json!({"a": 5}));
        assert_eq!(tree.member::<i64>("a", 0), Some(5));
        assert_eq!(Params::Absent.member::<i64>("a", 0), None);
    }

    #[test]
    fn numbers_fold_as_they_are_read() {
        let add = |a: &Number, b: &Number| -> Result<Number, RpcFailure> {
            Ok(Number::from(a.as_i64().unwrap() + b.as_i64().unwrap()))
        };
        let bad = || RpcFailure::invalid_params("numbers");
        let numbers = raw("[1, 2, 4]");
        assert_eq!(
            Params::Json(&numbers).fold_numbers(0.into(), add, bad),
            Ok(7.into())
        );
        let mixed = raw(r#"[1, "2"]"#);
        assert_eq!(
            Params::Json(&mixed).fold_numbers(0.into(), add, bad),
            Err(bad())
        );
        let object = raw(r#"{"a": 1}"#);
        assert!(
            Params::Json(&object)
                .fold_numbers(0.into(), add, bad)
                .is_err()
        );
        assert_eq!(
            Params::Value(json!([3, 4])).fold_numbers(0.into(), add, bad),
            Ok(7.into())
        );
    }

    #[test]
    fn params_go_back_as_they_came() {
        let text = raw(r#"{ "ms": 5,  "tag": [1,2] }"#);
        assert_eq!(Params::Json(&text).into_text().get(), text.get());
        assert_eq!(
            Params::Value(json!({"ms": 5})).into_text().get(),
            r#"{"ms":5}"#
        );
        assert_eq!(Params::Absent.into_output(), Output::Value(Value::Null));
    }
}
