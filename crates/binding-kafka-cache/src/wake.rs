//! Where caught-up filtered subscribers wait, so that an appended record wakes only those it
//! can concern: no tokio, no clock.
//!
//! A subscriber whose every filter has a key condition, or a header condition, is *indexable*:
//! once it has read everything the topic holds it parks here under one condition of each of
//! its filters (the key when the filter has one, else its first header). Each appended record
//! is looked up by its key and by each of its headers; a parked subscriber found that way is
//! hit only when one of its filters matches the record in full, and is told the offset of the
//! first such record in each partition. Every other record appended while it was parked did
//! not match, so on waking it moves its cursors past them without reading them: to the first
//! hit in a partition, or to the partition's end.
//!
//! A subscriber with an unindexable filter (no conditions: every record) is never parked and
//! reads every record, as before.

use std::collections::{BTreeMap, HashMap};

use binding_api::ext::kafka::{Condition, Filter, KafkaHeader, matches_any};
use bytes::Bytes;

/// A parked subscriber's handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParkId(u64);

/// What an unparked subscriber learns: per partition, the first offset appended while it was
/// parked that matches its filters (partitions absent had no match).
pub type Hits = BTreeMap<i32, i64>;

struct Parked<W> {
    filters: Vec<Filter>,
    /// The conditions it is listed under, one per filter (duplicates removed).
    conditions: Vec<Condition>,
    hits: Hits,
    waker: W,
}

/// The parked subscribers of one topic, by condition. `W` is what wakes one (a notifier).
pub struct WakeIndex<W> {
    by_condition: HashMap<Condition, Vec<ParkId>>,
    parked: HashMap<ParkId, Parked<W>>,
    next: u64,
}

impl<W> std::fmt::Debug for WakeIndex<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeIndex")
            .field("parked", &self.parked.len())
            .field("conditions", &self.by_condition.len())
            .finish()
    }
}

impl<W> Default for WakeIndex<W> {
    fn default() -> Self {
        WakeIndex {
            by_condition: HashMap::new(),
            parked: HashMap::new(),
            next: 0,
        }
    }
}

/// The condition each of `filters` is indexed under, or `None` when one of them has no key
/// or header condition (it matches every record, so its subscriber must see every record).
pub fn index_conditions(filters: &[Filter]) -> Option<Vec<Condition>> {
    if filters.is_empty() {
        return None;
    }
    let mut conditions: Vec<Condition> = Vec::with_capacity(filters.len());
    for filter in filters {
        let key = filter
            .conditions
            .iter()
            .find(|c| matches!(c, Condition::Key(_)));
        let condition = key.or_else(|| filter.conditions.first())?;
        if !conditions.contains(condition) {
            conditions.push(condition.clone());
        }
    }
    Some(conditions)
}

impl<W: Clone> WakeIndex<W> {
    /// Parks a subscriber with `filters` (indexable ones: see [`index_conditions`]); `None`
    /// when they are not.
    pub fn park(&mut self, filters: &[Filter], waker: W) -> Option<ParkId> {
        let conditions = index_conditions(filters)?;
        let id = ParkId(self.next);
        self.next += 1;
        for condition in &conditions {
            self.by_condition
                .entry(condition.clone())
                .or_default()
                .push(id);
        }
        self.parked.insert(
            id,
            Parked {
                filters: filters.to_vec(),
                conditions,
                hits: Hits::new(),
                waker,
            },
        );
        Some(id)
    }

    /// Removes a parked subscriber; returns what hit it while parked.
    pub fn unpark(&mut self, id: ParkId) -> Hits {
        let Some(parked) = self.parked.remove(&id) else {
            return Hits::new();
        };
        for condition in &parked.conditions {
            if let Some(ids) = self.by_condition.get_mut(condition) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.by_condition.remove(condition);
                }
            }
        }
        parked.hits
    }

    /// A record was appended: notes it for each parked subscriber one of whose filters
    /// matches it, and adds to `woken` the wakers of those it hit first.
    pub fn append(
        &mut self,
        partition: i32,
        offset: i64,
        key: Option<&Bytes>,
        headers: &[KafkaHeader],
        woken: &mut Vec<W>,
    ) {
        if self.parked.is_empty() {
            return;
        }
        let by_key = key.and_then(|k| self.by_condition.get(&Condition::Key(k.clone())));
        let by_header = headers.iter().filter_map(|h| {
            let value = h.value.clone()?;
            self.by_condition.get(&Condition::Header {
                name: h.name.clone(),
                value,
            })
        });
        let candidates: Vec<ParkId> = by_key
            .into_iter()
            .chain(by_header)
            .flatten()
            .copied()
            .collect();
        for id in candidates {
            let Some(parked) = self.parked.get_mut(&id) else {
                continue;
            };
            if parked.hits.contains_key(&partition)
                || !matches_any(&parked.filters, key.map(|k| &k[..]), headers)
            {
                continue;
            }
            if parked.hits.is_empty() {
                woken.push(parked.waker.clone());
            }
            parked.hits.insert(partition, offset);
        }
    }

    /// Wakes every parked subscriber (the topic's status changed), hits or not.
    pub fn wake_all(&self, woken: &mut Vec<W>) {
        woken.extend(self.parked.values().map(|p| p.waker.clone()));
    }

    /// Subscribers parked now.
    pub fn len(&self) -> usize {
        self.parked.len()
    }

    /// Whether none is parked.
    pub fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }
}

#[cfg(test)]
mod tests;
