//! Label values that come from requests (a method, a path, a topic), kept bounded.
//!
//! Each source of a binding has one [`ValueTable`] shared by the workers: the first `cap`
//! distinct values each get an id, every later one is [`OTHER`]. Each worker keeps a
//! [`ValueCache`] of the ids it has looked up, so a known value costs a hash lookup and no
//! lock. A worker takes the table's lock only for a value it has not seen, and at most
//! `cap + 1` times in all: each lock either adds a value to its cache or, once the table
//! is full, copies the whole table, after which an unknown value is `OTHER` without asking.

use std::collections::HashMap;
use std::sync::Mutex;

/// The id of the series that folds every value past a source's cap.
pub(crate) const OTHER: u16 = u16::MAX;

/// The label value of that series.
pub const OTHER_VALUE: &str = "other";

/// Longest value kept as itself, in bytes; longer ones are counted under [`OTHER_VALUE`].
pub const MAX_VALUE_LEN: usize = 128;

/// One source's values on one binding, in the order first seen.
#[derive(Debug)]
pub(crate) struct ValueTable {
    cap: usize,
    values: Vec<Box<str>>,
}

impl ValueTable {
    /// A table that keeps at most `cap` values (below [`OTHER`]).
    pub(crate) fn new(cap: u16) -> Self {
        ValueTable {
            cap: usize::from(cap.min(OTHER - 1)),
            values: Vec::new(),
        }
    }

    /// The id of `value`, given one if there is room, else [`OTHER`].
    fn intern(&mut self, value: &str) -> u16 {
        if let Some(id) = self.values.iter().position(|v| &**v == value) {
            return id as u16;
        }
        if self.values.len() < self.cap {
            self.values.push(value.into());
            return (self.values.len() - 1) as u16;
        }
        OTHER
    }

    fn full(&self) -> bool {
        self.values.len() >= self.cap
    }

    /// The value with id `id`.
    pub(crate) fn value(&self, id: u16) -> &str {
        self.values
            .get(usize::from(id))
            .map_or(OTHER_VALUE, |v| &**v)
    }
}

/// Locks a table; a panic elsewhere cannot leave it inconsistent (every change is one push).
pub(crate) fn lock(table: &Mutex<ValueTable>) -> std::sync::MutexGuard<'_, ValueTable> {
    table.lock().unwrap_or_else(|e| e.into_inner())
}

/// A worker's ids for one table.
#[derive(Debug, Default)]
pub(crate) struct ValueCache {
    ids: HashMap<Box<str>, u16>,
    /// The table is full and every value of it is in `ids`.
    complete: bool,
    /// Times the table was locked, for tests.
    #[cfg(test)]
    locks: usize,
}

impl ValueCache {
    /// The id of `value` in `table`.
    pub(crate) fn id(&mut self, value: &str, table: &Mutex<ValueTable>) -> u16 {
        if value == OTHER_VALUE || value.len() > MAX_VALUE_LEN {
            return OTHER;
        }
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        if self.complete {
            return OTHER;
        }
        #[cfg(test)]
        {
            self.locks += 1;
        }
        let mut table = lock(table);
        let id = table.intern(value);
        if id != OTHER {
            self.ids.insert(value.into(), id);
        }
        if table.full() {
            for (index, known) in table.values.iter().enumerate() {
                self.ids.entry(known.clone()).or_insert(index as u16);
            }
            self.complete = true;
        }
        id
    }

    #[cfg(test)]
    pub(crate) fn locks(&self) -> usize {
        self.locks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_past_the_cap_are_other() {
        let table = Mutex::new(ValueTable::new(2));
        let mut cache = ValueCache::default();
        assert_eq!(cache.id("GET", &table), 0);
        assert_eq!(cache.id("POST", &table), 1);
        assert_eq!(cache.id("PUT", &table), OTHER);
        assert_eq!(cache.id("GET", &table), 0);
        assert_eq!(cache.id(OTHER_VALUE, &table), OTHER);
        assert_eq!(cache.id(&"x".repeat(MAX_VALUE_LEN + 1), &table), OTHER);
        assert_eq!(lock(&table).value(1), "POST");
        assert_eq!(lock(&table).value(OTHER), OTHER_VALUE);
        // Full after POST: PUT and anything later need no lock.
        let locks = cache.locks();
        assert_eq!(cache.id("DELETE", &table), OTHER);
        assert_eq!(cache.locks(), locks);
    }

    proptest! {
        /// However the workers' lookups interleave, a value has one id everywhere, at most
        /// `cap` values have an id of their own, and no worker locks more than `cap + 1` times.
        #[test]
        fn ids_agree_across_workers_and_stay_bounded(
            cap in 0u16..6,
            lookups in proptest::collection::vec((0usize..3, 0u8..12), 0..200),
        ) {
            let table = Mutex::new(ValueTable::new(cap));
            let mut caches: Vec<ValueCache> = (0..3).map(|_| ValueCache::default()).collect();
            let mut seen: HashMap<String, u16> = HashMap::new();
            for (worker, value) in lookups {
                let value = format!("v{value}");
                let id = caches[worker].id(&value, &table);
                let first = *seen.entry(value.clone()).or_insert(id);
                prop_assert_eq!(first, id, "{} changed id", value);
            }
            let own: std::collections::HashSet<u16> =
                seen.values().copied().filter(|&id| id != OTHER).collect();
            prop_assert!(own.len() <= usize::from(cap));
            for cache in &caches {
                prop_assert!(cache.locks() <= usize::from(cap) + 1, "{} locks", cache.locks());
            }
        }
    }
}
