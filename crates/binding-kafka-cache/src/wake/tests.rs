use std::collections::{BTreeMap, BTreeSet};

use binding_api::ext::kafka::{Condition, Filter, KafkaHeader, matches_any};
use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn key(k: &str) -> Condition {
    Condition::Key(Bytes::copy_from_slice(k.as_bytes()))
}

fn header(name: &str, value: &str) -> Condition {
    Condition::Header {
        name: Bytes::copy_from_slice(name.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

fn filter(conditions: Vec<Condition>) -> Filter {
    Filter { conditions }
}

fn headers(pairs: &[(&str, &str)]) -> Vec<KafkaHeader> {
    pairs
        .iter()
        .map(|(n, v)| KafkaHeader {
            name: Bytes::copy_from_slice(n.as_bytes()),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
        })
        .collect()
}

#[test]
fn what_can_be_indexed() {
    assert_eq!(index_conditions(&[]), None, "no filter: every record");
    assert_eq!(index_conditions(&[filter(vec![])]), None);
    assert_eq!(
        index_conditions(&[filter(vec![header("tag", "a"), key("k")])]),
        Some(vec![key("k")]),
        "the key, when a filter has one"
    );
    assert_eq!(
        index_conditions(&[filter(vec![header("tag", "a")]), filter(vec![key("k")])]),
        Some(vec![header("tag", "a"), key("k")])
    );
    assert_eq!(
        index_conditions(&[filter(vec![key("k")]), filter(vec![])]),
        None
    );
}

#[test]
fn a_record_hits_only_whom_it_matches_and_each_once() {
    let mut index = WakeIndex::default();
    let a = index.park(&[filter(vec![key("a")])], "a").unwrap();
    let tagged = index
        .park(&[filter(vec![key("a"), header("tag", "x")])], "tagged")
        .unwrap();
    let either = index
        .park(
            &[filter(vec![key("b")]), filter(vec![header("tag", "x")])],
            "either",
        )
        .unwrap();
    let mut woken = Vec::new();
    let a_key = Bytes::from_static(b"a");
    index.append(0, 5, Some(&a_key), &headers(&[("tag", "y")]), &mut woken);
    assert_eq!(woken, ["a"], "the key matches, the tag does not");
    woken.clear();
    index.append(0, 6, Some(&a_key), &headers(&[("tag", "x")]), &mut woken);
    assert_eq!(woken, ["tagged", "either"], "a was hit already");
    woken.clear();
    index.append(1, 2, None, &headers(&[("tag", "x")]), &mut woken);
    assert!(woken.is_empty(), "hit already: no second wake");
    assert_eq!(index.unpark(a), BTreeMap::from([(0, 5)]));
    assert_eq!(index.unpark(tagged), BTreeMap::from([(0, 6)]));
    assert_eq!(index.unpark(either), BTreeMap::from([(0, 6), (1, 2)]));
    assert!(index.is_empty());
    assert!(
        index.by_condition.is_empty(),
        "entries go with their last subscriber"
    );
}

#[derive(Clone, Debug)]
enum Op {
    Park(usize, Vec<Vec<(bool, u8)>>),
    Unpark(usize),
    Append(i32, Option<u8>, Vec<(u8, u8)>),
}

fn op() -> impl Strategy<Value = Op> {
    let condition = (any::<bool>(), 0u8..4);
    let filters = proptest::collection::vec(proptest::collection::vec(condition, 1..3), 1..3);
    prop_oneof![
        (0usize..8, filters).prop_map(|(i, f)| Op::Park(i, f)),
        (0usize..8).prop_map(Op::Unpark),
        (
            0i32..3,
            proptest::option::of(0u8..4),
            proptest::collection::vec((0u8..2, 0u8..4), 0..3)
        )
            .prop_map(|(p, k, h)| Op::Append(p, k, h)),
    ]
}

fn to_filters(spec: &[Vec<(bool, u8)>]) -> Vec<Filter> {
    spec.iter()
        .map(|conditions| {
            filter(
                conditions
                    .iter()
                    .map(|&(is_key, v)| {
                        if is_key {
                            key(&v.to_string())
                        } else {
                            header(&format!("h{}", v % 2), &v.to_string())
                        }
                    })
                    .collect(),
            )
        })
        .collect()
}

/// A parked subscriber as the test models it: its id, its filters, what hit it.
type Modelled = (ParkId, Vec<Filter>, Hits);

proptest! {
    /// Under any sequence of parks, unparks and appends, a parked subscriber is woken exactly
    /// when a record matching its filters is appended (once, at the first), and learns the
    /// first matching offset of every partition: none missed, none extra.
    #[test]
    fn wakes_exactly_whom_records_match(ops in proptest::collection::vec(op(), 1..80)) {
        let mut index: WakeIndex<usize> = WakeIndex::default();
        // Subscriber → (its park id, its filters, what the model says hit it).
        let mut model: BTreeMap<usize, Modelled> = BTreeMap::new();
        let mut woken_total: BTreeSet<usize> = BTreeSet::new();
        let mut offset = 0i64;
        for op in ops {
            match op {
                Op::Park(i, spec) => {
                    if model.contains_key(&i) {
                        continue;
                    }
                    let filters = to_filters(&spec);
                    let id = index.park(&filters, i).expect("every filter has a condition");
                    model.insert(i, (id, filters, BTreeMap::new()));
                    woken_total.remove(&i);
                }
                Op::Unpark(i) => {
                    if let Some((id, _, expected)) = model.remove(&i) {
                        prop_assert_eq!(index.unpark(id), expected);
                    }
                }
                Op::Append(partition, k, hs) => {
                    offset += 1;
                    let k = k.map(|v| Bytes::from(v.to_string()));
                    let hs: Vec<KafkaHeader> = hs
                        .iter()
                        .map(|&(n, v)| KafkaHeader {
                            name: Bytes::from(format!("h{n}")),
                            value: Some(Bytes::from(v.to_string())),
                        })
                        .collect();
                    let mut woken = Vec::new();
                    index.append(partition, offset, k.as_ref(), &hs, &mut woken);
                    let mut expected_woken = Vec::new();
                    for (i, (_, filters, hits)) in &mut model {
                        if matches_any(filters, k.as_deref(), &hs) {
                            if hits.is_empty() {
                                expected_woken.push(*i);
                            }
                            hits.entry(partition).or_insert(offset);
                        }
                    }
                    woken.sort_unstable();
                    prop_assert_eq!(&woken, &expected_woken);
                    for i in woken {
                        prop_assert!(woken_total.insert(i), "woken twice while parked");
                    }
                }
            }
        }
        prop_assert_eq!(index.len(), model.len());
    }
}
