//! The request-to-file mapping and the response relay.

use std::sync::Arc;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::filesystem::FileSystemBeginEx;
use binding_api::ext::http::{Header, HttpBeginEx};
use binding_api::frame::{Begin, Data, End, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::route::{Pattern, Resolved, Route, Routes};
use binding_api::stream::{self, Acceptor, Reader, Writer};

/// Credit granted to the file server's reply, per request.
const WINDOW: u32 = 64 * 1024;

/// `with.path`: literal text and `${params.NAME}` captures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<(String, Option<String>)>,
}

impl Template {
    /// Parses `a${params.x}b…`.
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find("${") {
            let literal = rest[..at].to_owned();
            let after = &rest[at + 2..];
            let end = after.find('}').ok_or("an unclosed ${")?;
            let name = after[..end]
                .strip_prefix("params.")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("unknown expression ${{{}}}", &after[..end]))?;
            parts.push((literal, Some(name.to_owned())));
            rest = &after[end + 1..];
        }
        parts.push((rest.to_owned(), None));
        Ok(Template { parts })
    }

    /// The capture names used.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|(_, p)| p.as_deref())
    }

    fn resolve(&self, value: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for (literal, param) in &self.parts {
            out.push_str(literal);
            if let Some(name) = param {
                out.push_str(&value(name).unwrap_or_default());
            }
        }
        out
    }
}

/// An http-filesystem proxy binding.
pub struct HttpFileSystemProxy {
    name: String,
    routes: Routes<Pattern, Option<Template>>,
}

impl HttpFileSystemProxy {
    /// A proxy with `routes`, and `exit` for requests no route matches. A route's conditions
    /// are request path patterns; its `with` is the file path (`None` passes the request
    /// path).
    pub fn new(
        name: impl Into<String>,
        routes: Vec<Route<Pattern, Option<Template>>>,
        exit: Option<Arc<dyn Binding>>,
    ) -> Self {
        HttpFileSystemProxy {
            name: name.into(),
            routes: Routes::new(routes, exit),
        }
    }

    /// The file server and file path for a request path.
    fn map(&self, path: &str) -> Option<(&Arc<dyn Binding>, String)> {
        let resolved = self.routes.resolve_map(|p| p.path_captures(path))?;
        let file = match &resolved {
            Resolved::Route {
                with: Some(template),
                matched,
                ..
            } => template.resolve(|name| matched.as_ref()?.get(name).map(str::to_owned)),
            _ => {
                let bare = path.split('?').next().unwrap_or_default();
                bare.trim_start_matches('/').to_owned()
            }
        };
        Some((resolved.exit(), file))
    }
}

impl Binding for HttpFileSystemProxy {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let BeginEx::Http(head) = &stream.begin.ext else {
            stream.refuse(Reset::new(
                ReasonKind::Invalid,
                "http-filesystem takes http requests",
            ));
            return;
        };
        let method = head.method().unwrap_or_default().to_owned();
        let Some((exit, path)) = self.map(head.path().unwrap_or("/")) else {
            stream.refuse(Reset::new(ReasonKind::NoRoute, "no route for this path"));
            return;
        };
        if method != "GET" && method != "HEAD" {
            worker.spawn(answer_only(
                stream,
                405,
                vec![Header::new("allow", "GET, HEAD")],
            ));
            return;
        }
        let request = FileSystemBeginEx {
            path,
            read_payload: method == "GET",
            tag: head.get("if-none-match").map(str::to_owned),
            ..FileSystemBeginEx::default()
        };
        let (file, acceptor) = stream::open(Begin {
            ext: BeginEx::FileSystem(request.clone()),
        });
        exit.new_stream(acceptor, worker);
        worker.spawn(relay(stream, request, file.input, file.output));
    }
}

/// Answers with a status and no body.
async fn answer_only(stream: Acceptor, status: u16, headers: Vec<Header>) {
    let Acceptor {
        output: mut reply,
        input: initial,
        ..
    } = stream;
    let begin = Begin {
        ext: BeginEx::Http(HttpBeginEx::response(status, headers)),
    };
    if reply.begin(begin).is_ok() {
        let _ = reply.end(End::default());
    }
    drop(initial);
}

/// Passes the file server's answer on as the HTTP response.
async fn relay(
    stream: Acceptor,
    request: FileSystemBeginEx,
    mut file: Reader,
    mut file_request: Writer,
) {
    let Acceptor {
        output: mut reply,
        input: initial,
        ..
    } = stream;
    let _ = file_request.end(End::default());
    if file
        .window(Window {
            credit: WINDOW,
            padding: 0,
        })
        .is_err()
    {
        return;
    }
    while let Some(frame) = file.frame().await {
        match frame {
            Frame::Begin(begin) => {
                let BeginEx::FileSystem(answer) = begin.ext else {
                    let _ = reply.abort(Reason::new(ReasonKind::Invalid, "not a filesystem reply"));
                    return;
                };
                let (status, headers) = response_head(&request, &answer);
                let begin = Begin {
                    ext: BeginEx::Http(HttpBeginEx::response(status, headers)),
                };
                if reply.begin(begin).is_err() {
                    return;
                }
            }
            Frame::Data(data) => {
                if reply.ready(data.payload.len()).await.is_err()
                    || reply.data(Data::new(data.payload)).is_err()
                {
                    file.reset(Reset::new(ReasonKind::Dropped, "the client went away"));
                    return;
                }
                file.replenish();
            }
            Frame::Flush(_) => file.replenish(),
            Frame::End(_) => {
                let _ = reply.end(End::default());
                break;
            }
            Frame::Abort(abort) => {
                let _ = reply.abort(abort.reason);
                break;
            }
        }
    }
    drop(initial);
}

/// `200` with the file's metadata, or `304` when the client's tag is current.
fn response_head(request: &FileSystemBeginEx, answer: &FileSystemBeginEx) -> (u16, Vec<Header>) {
    let mut headers = Vec::new();
    if let Some(tag) = &answer.tag {
        headers.push(Header::new("etag", tag.clone()));
    }
    if FileSystemBeginEx::not_modified(request, answer) {
        return (304, headers);
    }
    if let Some(content_type) = &answer.content_type {
        headers.push(Header::new("content-type", content_type.clone()));
    }
    if let Some(size) = answer.size {
        headers.push(Header::new("content-length", size.to_string()));
    }
    (200, headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = Template::parse("${params.path}").expect("template");
        assert_eq!(t.params().collect::<Vec<_>>(), ["path"]);
        assert_eq!(t.resolve(|_| Some("a/b.html".into())), "a/b.html");
        let t = Template::parse("www/${params.x}.html").expect("template");
        assert_eq!(t.resolve(|_| Some("i".into())), "www/i.html");
        assert!(Template::parse("${guarded.x}").is_err());
        assert!(Template::parse("${params.x").is_err());
    }
}
