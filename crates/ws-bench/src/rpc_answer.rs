//! `Answer`: the results of the bench's RPC methods as a typed value that every RPC
//! contender decodes straight into, as their users do with a typed request (ws-client's
//! `request::<T>`, jsonrpsee's `request::<T, _>`, serde into a struct for the baseline):
//! no `serde_json::Value` between the answer and the caller.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The result of `add` (`{"result": n}`) or of `echo` with two integers (`[a, b]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Sum(i64),
    Pair(i64, i64),
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Sum(n) => write!(f, r#"{{"result":{n}}}"#),
            Answer::Pair(a, b) => write!(f, "[{a},{b}]"),
        }
    }
}

/// The one member name of a sum, matched by serde's field-identifier derive (escaped
/// names included) without allocating.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Member {
    Result,
}

/// Written by hand rather than `#[serde(untagged)]`: an untagged enum buffers every answer
/// in serde's own tree before trying each variant, which costs more than the `Value` it
/// would replace.
impl<'de> Deserialize<'de> for Answer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AnswerVisitor)
    }
}

struct AnswerVisitor;

impl<'de> Visitor<'de> for AnswerVisitor {
    type Value = Answer;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"{"result": integer} or [integer, integer]"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Answer, A::Error> {
        let mut sum = None;
        while let Some(Member::Result) = map.next_key()? {
            if sum.replace(map.next_value::<i64>()?).is_some() {
                return Err(de::Error::duplicate_field("result"));
            }
        }
        sum.map(Answer::Sum)
            .ok_or_else(|| de::Error::missing_field("result"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Answer, A::Error> {
        let mut next = |at| {
            seq.next_element::<i64>()?
                .ok_or_else(|| de::Error::invalid_length(at, &PAIR))
        };
        let pair = Answer::Pair(next(0)?, next(1)?);
        match seq.next_element::<IgnoredAny>()? {
            None => Ok(pair),
            Some(_) => Err(de::Error::invalid_length(3, &PAIR)),
        }
    }
}

/// What a pair must be, for the length errors.
const PAIR: &str = "two integers";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_as_test_servers_writes_them() {
        let read = |text: &str| serde_json::from_str::<Answer>(text);
        assert_eq!(read(r#"{"result":3}"#).unwrap(), Answer::Sum(3));
        assert_eq!(read(r#"{"res\u0075lt":-4}"#).unwrap(), Answer::Sum(-4));
        assert_eq!(read("[1,2]").unwrap(), Answer::Pair(1, 2));
        for wrong in [
            r#"{"result":3,"result":4}"#,
            r#"{"sum":3}"#,
            "{}",
            "[1]",
            "[1,2,3]",
            r#"["1",2]"#,
            "3",
        ] {
            assert!(read(wrong).is_err(), "{wrong}");
        }
        assert_eq!(Answer::Sum(3).to_string(), r#"{"result":3}"#);
        assert_eq!(Answer::Pair(1, 2).to_string(), "[1,2]");
    }
}
