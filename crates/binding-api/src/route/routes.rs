//! Zilla's routes: in order, the first that matches wins, else the binding's `exit`.

use std::convert::Infallible;
use std::ops::Index;
use std::slice;
use std::sync::Arc;

use crate::binding::Binding;

/// One entry of a binding's `routes`: `W` is the binding's condition (one `when` entry), `T`
/// its per-route parameters (`with`).
pub struct Route<W, T = ()> {
    /// The conditions, OR-ed; a route without any matches everything.
    pub when: Vec<W>,
    /// Where matching streams go.
    pub exit: Arc<dyn Binding>,
    /// The route's parameters.
    pub with: T,
}

/// A binding's routes and its top-level `exit`, the fallback when no route matches.
pub struct Routes<W, T = ()> {
    routes: Vec<Route<W, T>>,
    fallback: Option<Arc<dyn Binding>>,
}

/// Where [`Routes`] send a stream.
pub enum Resolved<'a, T, M> {
    /// A route matched.
    Route {
        /// Its position in the routes, to find it again: `routes[index]`.
        index: usize,
        /// Its exit.
        exit: &'a Arc<dyn Binding>,
        /// Its parameters.
        with: &'a T,
        /// What the matching `when` entry gave; `None` for a route without `when`.
        matched: Option<M>,
    },
    /// No route matched: the binding's top-level `exit`.
    Fallback(&'a Arc<dyn Binding>),
}

impl<'a, T, M> Resolved<'a, T, M> {
    /// The exit, whether a route's or the fallback.
    pub fn exit(&self) -> &'a Arc<dyn Binding> {
        match self {
            Resolved::Route { exit, .. } | Resolved::Fallback(exit) => exit,
        }
    }
}

impl<W, T> Routes<W, T> {
    /// `routes` in order, then `fallback` (the binding's `exit`), if any.
    pub fn new(routes: Vec<Route<W, T>>, fallback: Option<Arc<dyn Binding>>) -> Self {
        Routes { routes, fallback }
    }

    /// The first route without `when` or with a `when` entry that `matches` accepts, else the
    /// fallback, else `None`. A matched route reports the entry that matched.
    pub fn resolve(&self, mut matches: impl FnMut(&W) -> bool) -> Option<Resolved<'_, T, &W>> {
        self.resolve_map(|when| matches(when).then_some(when))
    }

    /// Like [`Routes::resolve`] where matching an entry gives something (say, captures):
    /// `matches` returns `Some` for an entry that matches, and the first `Some` is reported.
    pub fn resolve_map<'a, M>(
        &'a self,
        matches: impl FnMut(&'a W) -> Option<M>,
    ) -> Option<Resolved<'a, T, M>> {
        self.resolve_admitted(matches, |_| Ok::<(), Infallible>(()))
            .ok()
    }

    /// Like [`Routes::resolve_map`] for routes that may refuse a stream that matches them
    /// (Zilla's `guarded`): a matching route is taken only when `admit` accepts its
    /// parameters, else the next routes are tried, then the fallback, as in Zilla. When none
    /// takes the stream, `Err` holds the refusal of the first matching route that refused
    /// it, `None` when no route matched.
    pub fn resolve_admitted<'a, M, E>(
        &'a self,
        mut matches: impl FnMut(&'a W) -> Option<M>,
        mut admit: impl FnMut(&'a T) -> Result<(), E>,
    ) -> Result<Resolved<'a, T, M>, Option<E>> {
        let mut refused = None;
        for (index, route) in self.routes.iter().enumerate() {
            let matched = route.when.iter().find_map(&mut matches);
            if matched.is_none() && !route.when.is_empty() {
                continue;
            }
            match admit(&route.with) {
                Ok(()) => {
                    return Ok(Resolved::Route {
                        index,
                        exit: &route.exit,
                        with: &route.with,
                        matched,
                    });
                }
                Err(refusal) => {
                    refused.get_or_insert(refusal);
                }
            }
        }
        self.fallback
            .as_ref()
            .map(Resolved::Fallback)
            .ok_or(refused)
    }

    /// The routes, in order.
    pub fn iter(&self) -> slice::Iter<'_, Route<W, T>> {
        self.routes.iter()
    }

    /// The binding's top-level `exit`.
    pub fn fallback(&self) -> Option<&Arc<dyn Binding>> {
        self.fallback.as_ref()
    }
}

impl<W, T> Index<usize> for Routes<W, T> {
    type Output = Route<W, T>;

    fn index(&self, index: usize) -> &Route<W, T> {
        &self.routes[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::Worker;
    use crate::stream::Acceptor;
    use proptest::prelude::*;

    struct Named(String);

    impl Binding for Named {
        fn name(&self) -> &str {
            &self.0
        }

        fn new_stream(&self, _stream: Acceptor, _worker: &Worker) {}
    }

    fn exit(name: &str) -> Arc<dyn Binding> {
        Arc::new(Named(name.to_owned()))
    }

    /// Routes whose `with` is their index, named `route{index}`.
    fn routes(when: Vec<Vec<u8>>, fallback: bool) -> Routes<u8, usize> {
        let routes = when
            .into_iter()
            .enumerate()
            .map(|(index, when)| Route {
                when,
                exit: exit(&format!("route{index}")),
                with: index,
            })
            .collect();
        Routes::new(routes, fallback.then(|| exit("fallback")))
    }

    fn name<M>(resolved: Option<Resolved<'_, usize, M>>) -> Option<String> {
        resolved.map(|r| r.exit().name().to_owned())
    }

    #[test]
    fn first_match_wins() {
        let table = routes(vec![vec![1, 2], vec![2, 3], vec![]], false);
        assert_eq!(name(table.resolve(|&c| c == 2)).as_deref(), Some("route0"));
        assert_eq!(name(table.resolve(|&c| c == 3)).as_deref(), Some("route1"));
        assert_eq!(
            name(table.resolve(|&c| c == 9)).as_deref(),
            Some("route2"),
            "a route without when matches everything"
        );
    }

    #[test]
    fn reports_the_matching_entry_and_parameters() {
        let table = routes(vec![vec![1, 2, 3]], true);
        let Some(Resolved::Route {
            index,
            with,
            matched,
            ..
        }) = table.resolve(|&c| c >= 2)
        else {
            panic!("expected the route");
        };
        assert_eq!((index, *with, matched), (0, 0, Some(&2)));
        assert_eq!(table[index].exit.name(), "route0");
        let resolved = table.resolve_map(|&c| (c == 3).then_some(c * 10));
        assert!(matches!(
            resolved,
            Some(Resolved::Route {
                matched: Some(30),
                ..
            })
        ));
    }

    #[test]
    fn fallback_else_nothing() {
        let table = routes(vec![vec![1]], true);
        let resolved = table.resolve(|&c| c == 2);
        assert_eq!(name(resolved).as_deref(), Some("fallback"));
        assert!(matches!(
            table.resolve(|&c| c == 2),
            Some(Resolved::Fallback(_))
        ));
        assert_eq!(
            table.fallback().map(|f| f.name().to_owned()).as_deref(),
            Some("fallback")
        );
        let table = routes(vec![vec![1]], false);
        assert!(table.resolve(|&c| c == 2).is_none());
        assert!(table.fallback().is_none());
        assert_eq!(table.iter().count(), 1);
    }

    #[test]
    fn refused_routes_are_skipped_and_the_first_refusal_reported() {
        // `with` is the route's index: routes 0 and 1 refuse, with their index.
        let admit = |with: &usize| if *with < 2 { Err(*with) } else { Ok(()) };
        let table = routes(vec![vec![1], vec![1, 2], vec![2]], false);
        let taken = table.resolve_admitted(|&c| (c == 2).then_some(c), admit);
        assert!(matches!(taken, Ok(Resolved::Route { index: 2, .. })));
        let refused = table.resolve_admitted(|&c| (c == 1).then_some(c), admit);
        assert!(matches!(refused, Err(Some(0))));
        let unmatched = table.resolve_admitted(|&c| (c == 9).then_some(c), admit);
        assert!(matches!(unmatched, Err(None)));
        let with_fallback = routes(vec![vec![1]], true);
        let fallback = with_fallback.resolve_admitted(|&c| (c == 1).then_some(c), admit);
        assert!(matches!(fallback, Ok(Resolved::Fallback(_))));
    }

    proptest! {
        #[test]
        fn resolves_the_first_matching_route_else_the_fallback(
            when in prop::collection::vec(prop::collection::vec(0u8..6, 0..3), 0..6),
            accepted in prop::collection::vec(0u8..6, 0..4),
            fallback: bool,
        ) {
            let table = routes(when.clone(), fallback);
            let first = when
                .iter()
                .position(|w| w.is_empty() || w.iter().any(|c| accepted.contains(c)));
            let resolved = table.resolve(|c| accepted.contains(c));
            match (first, resolved) {
                (Some(first), Some(Resolved::Route { index, with, matched, .. })) => {
                    prop_assert_eq!((index, *with), (first, first));
                    prop_assert_eq!(matched, when[first].iter().find(|c| accepted.contains(c)));
                }
                (None, Some(Resolved::Fallback(exit))) => {
                    prop_assert!(fallback);
                    prop_assert_eq!(exit.name(), "fallback");
                }
                (None, None) => prop_assert!(!fallback),
                (first, resolved) => {
                    prop_assert!(false, "expected {:?}, got {:?}", first, name(resolved));
                }
            }
        }
    }
}
