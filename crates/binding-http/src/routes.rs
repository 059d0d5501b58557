//! Choosing where a request goes: routes on `when[].headers`, 404 and 405.

use std::sync::Arc;

use binding_api::binding::Binding;
use binding_api::route::{Captures, Resolved, Routes};

use crate::config::Condition;
use crate::overrides::Overrides;
use crate::request::RequestHead;

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
pub enum Destination<'a> {
    /// To this exit.
    Exit(Target<'a>),
    /// Nowhere: 404.
    NotFound,
    /// A route serves the path but not the method: 405 with these methods in `Allow`.
    MethodNotAllowed(Vec<String>),
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

/// Resolves a request by `routes`, whose `with` are the overrides towards each route's exit;
/// `exit_overrides` go towards the binding's exit. When no route matches but some condition
/// matches everything except `:method`, and there is no binding exit, the answer is 405
/// listing those methods.
pub fn resolve<'a>(
    routes: &'a Routes<Condition, Overrides>,
    exit_overrides: &'a Overrides,
    head: &'a RequestHead,
) -> Destination<'a> {
    match routes.resolve(|condition| condition.matches(head, false)) {
        Some(Resolved::Route {
            exit,
            with: overrides,
            matched,
            ..
        }) => {
            let params = matched
                .filter(|_| overrides.uses_params())
                .and_then(|c| c.path_captures(head));
            return Destination::Exit(Target {
                exit,
                overrides,
                params,
            });
        }
        Some(Resolved::Fallback(exit)) => {
            return Destination::Exit(Target {
                exit,
                overrides: exit_overrides,
                params: None,
            });
        }
        None => {}
    }
    let mut allow: Vec<String> = Vec::new();
    for condition in routes.iter().flat_map(|r| &r.when) {
        if let Some(method) = condition.method()
            && condition.matches(head, true)
            && !allow.iter().any(|m| m == method)
        {
            allow.push(method.to_owned());
        }
    }
    if allow.is_empty() {
        Destination::NotFound
    } else {
        Destination::MethodNotAllowed(allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use binding_api::binding::Worker;
    use binding_api::route::{Pattern, Route};
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

    fn outcome(routes: &Routes<Condition, Overrides>, method: &str, path: &str) -> String {
        match resolve(routes, &Overrides::default(), &head(method, path)) {
            Destination::Exit(target) => target.exit.name().to_owned(),
            Destination::NotFound => "404".into(),
            Destination::MethodNotAllowed(allow) => format!("405 {}", allow.join(",")),
        }
    }

    #[test]
    fn routes_404_and_405() {
        let routes = || {
            vec![
                Route {
                    when: vec![
                        condition(&[(":method", "GET"), (":path", "/events")]),
                        condition(&[(":method", "HEAD"), (":path", "/events")]),
                    ],
                    exit: Arc::new(Named("sse")) as Arc<dyn Binding>,
                    with: Overrides::default(),
                },
                Route {
                    when: vec![condition(&[(":path", "/static/*")])],
                    exit: Arc::new(Named("files")),
                    with: Overrides::default(),
                },
            ]
        };
        let table = Routes::new(routes(), None);
        assert_eq!(outcome(&table, "GET", "/events?lastEventId=1"), "sse");
        assert_eq!(outcome(&table, "HEAD", "/events"), "sse");
        assert_eq!(outcome(&table, "POST", "/events"), "405 GET,HEAD");
        assert_eq!(outcome(&table, "DELETE", "/static/a.js"), "files");
        assert_eq!(outcome(&table, "GET", "/other"), "404");
        let fallback = Routes::new(routes(), Some(Arc::new(Named("fallback"))));
        assert_eq!(outcome(&fallback, "POST", "/events"), "fallback");
    }
}
