//! The JSON payloads `compression` sends: deterministic, varied records (ids, names, cities,
//! prices, quantities, time stamps, tags) of exactly the requested size, a pool of distinct
//! ones cycled through so that no message repeats within deflate's 32 KiB window.

use std::fmt::Write as _;

/// Smallest payload the generator can fill exactly (one record and the padding field).
pub(crate) const MIN_SIZE: usize = 64;
/// About how many bytes a pool holds (fewer messages for larger sizes).
const POOL_BYTES: usize = 1 << 20;
/// Most and fewest messages in a pool.
const POOL_MAX: usize = 256;
const POOL_MIN: usize = 8;

const FIRST: [&str; 16] = [
    "Alice", "Bruno", "Chen", "Dagny", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Jun", "Kofi",
    "Lena", "Mateo", "Nadia", "Oskar", "Priya",
];
const LAST: [&str; 16] = [
    "Moreau", "Silva", "Wang", "Berg", "Okafor", "Haddad", "Petrov", "Sato", "Novak", "Kim",
    "Mensah", "Fischer", "Rossi", "Karimi", "Lund", "Iyer",
];
const CITIES: [&str; 12] = [
    "Lyon", "Porto", "Osaka", "Bergen", "Lagos", "Tunis", "Split", "Kyoto", "Brno", "Busan",
    "Accra", "Pune",
];
const TAGS: [&str; 10] = [
    "new",
    "priority",
    "gift",
    "returned",
    "bulk",
    "express",
    "fragile",
    "wholesale",
    "promo",
    "backorder",
];
const WORDS: [&str; 12] = [
    "shipped",
    "awaiting",
    "payment",
    "confirmed",
    "warehouse",
    "north",
    "south",
    "partial",
    "customer",
    "requested",
    "delivery",
    "window",
];

/// splitmix64: small, fast and the same on every platform.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// How many distinct payloads of `size` bytes a pool holds.
pub(crate) fn pool_len(size: usize) -> usize {
    (POOL_BYTES / size.max(1)).clamp(POOL_MIN, POOL_MAX)
}

/// The pool for `size` (at least [`MIN_SIZE`]): [`pool_len`] distinct JSON documents of
/// exactly `size` bytes each, the same on every run.
pub(crate) fn pool(size: usize) -> Vec<Vec<u8>> {
    (0..pool_len(size))
        .map(|index| document(size, index as u64))
        .collect()
}

/// One JSON document of exactly `size` bytes: an object with a sequence number, as many
/// whole order records as fit, and a `note` of words padding it to the size.
pub(crate) fn document(size: usize, index: u64) -> Vec<u8> {
    assert!(size >= MIN_SIZE, "payloads start at {MIN_SIZE} bytes");
    let mut rng = Rng(index.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ size as u64);
    let mut text = format!("{{\"seq\":{index},\"orders\":[");
    // The closing `],"note":"` and `"}` take 12 bytes.
    const TAIL: usize = 12;
    let mut id = 100_000 + rng.below(900_000);
    let mut time = 1_700_000_000 + rng.below(10_000_000);
    let mut first = true;
    loop {
        id += 1 + rng.below(40);
        time += rng.below(600);
        let record = record(&mut rng, id, time);
        let comma = usize::from(!first);
        if text.len() + comma + record.len() + TAIL > size {
            break;
        }
        if !first {
            text.push(',');
        }
        text.push_str(&record);
        first = false;
    }
    text.push_str("],\"note\":\"");
    let room = size - text.len() - 2;
    let mut note = String::with_capacity(room + 16);
    while note.len() < room {
        if !note.is_empty() {
            note.push(' ');
        }
        note.push_str(rng.pick(&WORDS));
    }
    note.truncate(room);
    text.push_str(&note);
    text.push_str("\"}");
    debug_assert_eq!(text.len(), size);
    text.into_bytes()
}

/// One order record, e.g. `{"id":123457,"name":"Hana Okafor","city":"Lyon",...}`.
fn record(rng: &mut Rng, id: u64, time: u64) -> String {
    let mut out = String::with_capacity(192);
    let price = rng.below(500_000);
    let _ = write!(
        out,
        "{{\"id\":{id},\"name\":\"{} {}\",\"city\":\"{}\",\"price\":{}.{:02},\"qty\":{},\
         \"ts\":{time},\"active\":{},\"tags\":[",
        rng.pick(&FIRST),
        rng.pick(&LAST),
        rng.pick(&CITIES),
        price / 100,
        price % 100,
        1 + rng.below(50),
        rng.below(4) != 0,
    );
    for tag in 0..rng.below(3) {
        if tag > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{}\"", rng.pick(&TAGS));
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_json_of_the_exact_size_and_all_differ() {
        for size in [MIN_SIZE, 100, 1024, 65_536] {
            let pool = pool(size);
            assert_eq!(pool.len(), pool_len(size));
            for payload in &pool {
                assert_eq!(payload.len(), size);
                let value: serde_json::Value = serde_json::from_slice(payload).unwrap();
                assert!(value["orders"].is_array(), "{value}");
            }
            let mut sorted = pool.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), pool.len(), "size {size}: repeated payloads");
        }
        let value: serde_json::Value = serde_json::from_slice(&document(1024, 3)).unwrap();
        assert!(value["orders"].as_array().unwrap().len() >= 5, "{value}");
        assert_eq!(document(1024, 3), document(1024, 3), "not deterministic");
    }
}
