//! http-filesystem in front of a filesystem server over a temporary directory: GET, HEAD,
//! ETag and 304, 404, 405, and a list of traversal attempts (including a symbolic link that
//! points outside) that all get 404.

use std::path::PathBuf;
use std::sync::Arc;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::http::{Header, HttpBeginEx};
use binding_api::frame::{Begin, Frame, ReasonKind, Window};
use binding_api::route::{Pattern, Route};
use binding_api::stream;
use binding_filesystem::{FileSystemServer, Symlinks};
use binding_http_filesystem::{HttpFileSystemProxy, Template};
use tokio_util::sync::CancellationToken;

/// A site of its own for each test (`name`): tests run side by side, and one rewriting
/// `index.html` under another would change the file's tag between its requests.
fn site(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("http-fs-{}-{name}", std::process::id()));
    let www = root.join("www");
    std::fs::create_dir_all(www.join("css")).expect("dirs");
    std::fs::write(www.join("index.html"), "<h1>hi</h1>").expect("index");
    std::fs::write(www.join("css/site.css"), "body{}").expect("css");
    std::fs::write(root.join("secret.txt"), "secret").expect("secret");
    #[cfg(unix)]
    {
        let link = www.join("escape.txt");
        if !link.exists() {
            std::os::unix::fs::symlink(root.join("secret.txt"), link).expect("symlink");
        }
    }
    www
}

/// What a request got: status (or the refusal's reason), headers and body.
#[derive(Debug)]
enum Got {
    Response(u16, HttpBeginEx, Vec<u8>),
    Refused(ReasonKind),
}

async fn request(
    proxy: &dyn Binding,
    worker: &Worker,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> Got {
    let mut headers = vec![
        Header::new(":method", method.to_owned()),
        Header::new(":path", path.to_owned()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(n, v)| Header::new(n.to_string(), v.to_string())),
    );
    let (mut client, acceptor) = stream::open(Begin {
        ext: BeginEx::Http(HttpBeginEx::new(headers)),
    });
    proxy.new_stream(acceptor, worker);
    client
        .input
        .window(Window {
            credit: 1 << 20,
            padding: 0,
        })
        .expect("window");
    let mut head = None;
    let mut body = Vec::new();
    while let Some(frame) = client.input.frame().await {
        match frame {
            Frame::Begin(begin) => {
                let BeginEx::Http(h) = begin.ext else {
                    panic!("http reply expected")
                };
                head = Some(h);
            }
            Frame::Data(data) => body.extend_from_slice(&data.payload),
            Frame::End(_) => break,
            Frame::Abort(abort) => return Got::Refused(abort.reason.kind),
            Frame::Flush(_) => {}
        }
    }
    let head = head.expect("a response");
    Got::Response(head.status().expect("status"), head, body)
}

fn proxy(www: PathBuf) -> HttpFileSystemProxy {
    let server = FileSystemServer::new("files", www, Symlinks::Follow);
    server.prepare().expect("location");
    let route = Route {
        when: vec![Pattern::new("/{path}").expect("pattern")],
        exit: Arc::new(server),
        with: Some(Template::parse("${params.path}").expect("template")),
    };
    HttpFileSystemProxy::new("mapping", vec![route], None)
}

fn run(test: impl AsyncFnOnce(Worker)) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, test(Worker::new(0, 1, CancellationToken::new())));
}

#[test]
fn get_head_etag_and_errors() {
    let proxy = proxy(site("get_head_etag_and_errors"));
    run(async |worker| {
        let Got::Response(200, head, body) =
            request(&proxy, &worker, "GET", "/index.html", &[]).await
        else {
            panic!("200 expected")
        };
        assert_eq!(body, b"<h1>hi</h1>");
        assert_eq!(head.get("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(head.get("content-length"), Some("11"));
        let etag = head.get("etag").expect("etag").to_owned();
        let Got::Response(304, head, body) = request(
            &proxy,
            &worker,
            "GET",
            "/index.html",
            &[("if-none-match", &etag)],
        )
        .await
        else {
            panic!("304 expected")
        };
        assert!(body.is_empty());
        assert_eq!(head.get("etag"), Some(etag.as_str()));
        let Got::Response(200, _, body) = request(
            &proxy,
            &worker,
            "GET",
            "/index.html",
            &[("if-none-match", "\"stale\"")],
        )
        .await
        else {
            panic!("200 expected")
        };
        assert_eq!(body.len(), 11);
        let Got::Response(200, head, body) =
            request(&proxy, &worker, "HEAD", "/css/site.css?v=2", &[]).await
        else {
            panic!("200 expected")
        };
        assert!(body.is_empty());
        assert_eq!(head.get("content-length"), Some("6"));
        assert_eq!(head.get("content-type"), Some("text/css; charset=utf-8"));
        assert!(matches!(
            request(&proxy, &worker, "GET", "/missing.html", &[]).await,
            Got::Refused(ReasonKind::NoRoute)
        ));
        let Got::Response(405, head, _) =
            request(&proxy, &worker, "POST", "/index.html", &[]).await
        else {
            panic!("405 expected")
        };
        assert_eq!(head.get("allow"), Some("GET, HEAD"));
    });
}

#[test]
fn traversal_attempts_are_not_found() {
    let proxy = proxy(site("traversal_attempts_are_not_found"));
    run(async |worker| {
        for attempt in [
            "/../secret.txt",
            "/css/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E%2Fsecret.txt",
            "/..%2fsecret.txt",
            "/css/%2e%2e/%2e%2e/secret.txt",
            "/..%5csecret.txt",
            "/index.html%00.png",
            "/%c0%ae%c0%ae/secret.txt",
            "/escape.txt",
            "//etc/passwd",
            "/%2fetc%2fpasswd",
        ] {
            let got = request(&proxy, &worker, "GET", attempt, &[]).await;
            assert!(
                matches!(got, Got::Refused(ReasonKind::NoRoute)),
                "{attempt}: {got:?}"
            );
        }
    });
}
