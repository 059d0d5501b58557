//! Choosing where a request goes: routes on `when[].headers`, 404 and 405.

use std::sync::Arc;

use binding_api::binding::Binding;
use binding_api::route::Captures;

use crate::config::Condition;
use crate::overrides::Overrides;
use crate::request::RequestHead;

/// A route of an http server.
pub struct HttpRoute {
    /// Conditions, OR-ed; an empty list matches every request.
    pub when: Vec<Condition>,
    /// Where matching requests go.
    pub exit: Arc<dyn Binding>,
    /// `with.headers.overrides`: request headers set towards the exit (after the binding's
    /// `options.overrides`).
    pub overrides: Overrides,
}

/// The exit a request goes to, and the request headers to override on its way.
pub struct Target<'a> {
    /// The exit.
    pub exit: &'a Arc<dyn Binding>,
    /// The overrides.
    pub overrides: &'a Overrides,
    /// What the matched condition's `:path` captured, when the overrides use it.
    pub params: Option<Captures<'a>>,
}

/// Where a request goes.
pub enum Resolved<'a> {
    /// To this exit.
    Exit(Target<'a>),
    /// Nowhere: 404.
    NotFound,
    /// A route serves the path but not the method: 405 with these methods in `Allow`.
    MethodNotAllowed(Vec<String>),
}

/// The routes, then the binding's `exit`.
pub struct RouteTable {
    /// Routes in order; the first that matches wins.
    pub routes: Vec<HttpRoute>,
    /// Where requests no route matches go (else 404).
    pub exit: Option<Arc<dyn Binding>>,
    /// The overrides of requests going to `exit`.
    pub exit_overrides: Overrides,
}

impl Condition {
    /// Whether every header of the condition matches; `skip_method` ignores `:method`.
    fn matches(&self, head: &RequestHead, skip_method: bool) -> bool {
        self.headers.iter().all(|(name, pattern)| {
            if skip_method && name == ":method" {
                return true;
            }
            match head.value(name) {
                Some(value) if name == ":path" => pattern.matches_path(value),
                Some(value) => pattern.matches(value),
                None => false,
            }
        })
    }

    fn path_captures<'a>(&'a self, head: &'a RequestHead) -> Option<Captures<'a>> {
        self.headers
            .iter()
            .find(|(name, _)| name == ":path")
            .and_then(|(_, pattern)| pattern.path_captures(&head.path))
    }

    fn method(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| name == ":method")
            .map(|(_, p)| p.as_str())
    }
}

impl RouteTable {
    /// Resolves a request: the first route one of whose conditions matches; else the
    /// binding's exit. When no route matches but some condition matches everything except
    /// `:method`, and there is no binding exit, the answer is 405 listing those methods.
    pub fn resolve<'a>(&'a self, head: &'a RequestHead) -> Resolved<'a> {
        for route in &self.routes {
            let matched = route.when.iter().find(|c| c.matches(head, false));
            if route.when.is_empty() || matched.is_some() {
                let params = matched
                    .filter(|_| route.overrides.uses_params())
                    .and_then(|c| c.path_captures(head));
                return Resolved::Exit(Target {
                    exit: &route.exit,
                    overrides: &route.overrides,
                    params,
                });
            }
        }
        if let Some(exit) = &self.exit {
            return Resolved::Exit(Target {
                exit,
                overrides: &self.exit_overrides,
                params: None,
            });
        }
        let mut allow: Vec<String> = Vec::new();
        for condition in self.routes.iter().flat_map(|r| &r.when) {
            if let Some(method) = condition.method()
                && condition.matches(head, true)
                && !allow.iter().any(|m| m == method)
            {
                allow.push(method.to_owned());
            }
        }
        if allow.is_empty() {
            Resolved::NotFound
        } else {
            Resolved::MethodNotAllowed(allow)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use binding_api::binding::Worker;
    use binding_api::route::Pattern;
    use binding_api::stream::Acceptor;

    struct Named(&'static str);

    impl Binding for Named {
        fn name(&self) -> &str {
            self.0
        }

        fn new_stream(&self, _stream: Acceptor, _worker: &Worker) {}
    }

    fn condition(pairs: &[(&str, &str)]) -> Condition {
        Condition {
            headers: pairs
                .iter()
                .map(|(n, p)| ((*n).to_owned(), Pattern::new(p).unwrap()))
                .collect(),
        }
    }

    fn head(method: &str, path: &str) -> RequestHead {
        RequestHead {
            method: method.into(),
            scheme: "http".into(),
            authority: "a".into(),
            path: path.into(),
            headers: Vec::new(),
            h1_minor: Some(1),
            keep_alive: true,
            expect_continue: false,
            h2c_settings: None,
            has_body: false,
        }
    }

    fn outcome(table: &RouteTable, method: &str, path: &str) -> String {
        match table.resolve(&head(method, path)) {
            Resolved::Exit(target) => target.exit.name().to_owned(),
            Resolved::NotFound => "404".into(),
            Resolved::MethodNotAllowed(allow) => format!("405 {}", allow.join(",")),
        }
    }

    #[test]
    fn routes_404_and_405() {
        let table = RouteTable {
            routes: vec![
                HttpRoute {
                    when: vec![
                        condition(&[(":method", "GET"), (":path", "/events")]),
                        condition(&[(":method", "HEAD"), (":path", "/events")]),
                    ],
                    exit: Arc::new(Named("sse")),
                    overrides: Overrides::default(),
                },
                HttpRoute {
                    when: vec![condition(&[(":path", "/static/*")])],
                    exit: Arc::new(Named("files")),
                    overrides: Overrides::default(),
                },
            ],
            exit: None,
            exit_overrides: Overrides::default(),
        };
        assert_eq!(outcome(&table, "GET", "/events?lastEventId=1"), "sse");
        assert_eq!(outcome(&table, "HEAD", "/events"), "sse");
        assert_eq!(outcome(&table, "POST", "/events"), "405 GET,HEAD");
        assert_eq!(outcome(&table, "DELETE", "/static/a.js"), "files");
        assert_eq!(outcome(&table, "GET", "/other"), "404");
        let fallback = RouteTable {
            exit: Some(Arc::new(Named("fallback"))),
            ..table
        };
        assert_eq!(outcome(&fallback, "POST", "/events"), "fallback");
    }
}
