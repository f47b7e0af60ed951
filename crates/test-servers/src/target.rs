//! The request target of an upgrade request (`/source?count=5&size=8`), taken apart for the
//! modes that route on it, and close reasons kept within the 123 bytes a close frame allows.

/// Longest close reason in bytes (a close frame's payload is at most 125 bytes, 2 of them
/// for the code).
pub const MAX_CLOSE_REASON: usize = 123;

/// Splits a request target into its path and its query (empty when there is none).
pub fn split(target: &str) -> (&str, &str) {
    target.split_once('?').unwrap_or((target, ""))
}

/// The `key=value` pairs of a query, in order; a pair without `=` has an empty value.
/// Values are used as they are (no percent-decoding: the modes take numbers only).
pub fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// `reason`, cut at a character boundary so that it fits in a close frame.
pub fn close_reason(reason: &str) -> &str {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason;
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_path_and_query() {
        assert_eq!(
            split("/source?count=5&size=8"),
            ("/source", "count=5&size=8")
        );
        assert_eq!(split("/sink"), ("/sink", ""));
        assert_eq!(split("/?"), ("/", ""));
    }

    #[test]
    fn query_pairs_come_in_order() {
        let pairs: Vec<_> = query_pairs("count=5&&size=8&flag").collect();
        assert_eq!(pairs, [("count", "5"), ("size", "8"), ("flag", "")]);
        assert_eq!(query_pairs("").count(), 0);
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= MAX_CLOSE_REASON);
        assert!(long.starts_with(cut));
    }
}
