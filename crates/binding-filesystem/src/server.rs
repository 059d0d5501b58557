//! `kind: server`: answers filesystem streams with files under `location`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

use binding_api::binding::{Binding, StartError, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::filesystem::FileSystemBeginEx;
use binding_api::frame::{Begin, Data, End, ReasonKind, Reset};
use binding_api::stream::Acceptor;

use crate::mime::content_type;
use crate::path::normalize;

/// Largest data frame of file bytes.
const MAX_FRAME: u64 = 64 * 1024;

/// `options.symlinks`: how symbolic links under the location are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Symlinks {
    /// A path through a symbolic link is not served (Zilla's default).
    #[default]
    Ignore,
    /// Links are followed, as long as the file they lead to is under the location.
    Follow,
}

/// A filesystem server binding.
#[derive(Debug)]
pub struct FileSystemServer {
    name: String,
    location: PathBuf,
    symlinks: Symlinks,
    canonical: OnceLock<PathBuf>,
}

impl FileSystemServer {
    /// A server of the files under `location` (resolved at start, or at the first request
    /// after it appeared), treating symbolic links as `symlinks` says.
    pub fn new(name: impl Into<String>, location: impl Into<PathBuf>, symlinks: Symlinks) -> Self {
        FileSystemServer {
            name: name.into(),
            location: location.into(),
            symlinks,
            canonical: OnceLock::new(),
        }
    }

    /// The canonical location, found once it is a readable directory.
    fn location(&self) -> Option<PathBuf> {
        if let Some(canonical) = self.canonical.get() {
            return Some(canonical.clone());
        }
        let canonical = self.location.canonicalize().ok().filter(|p| p.is_dir())?;
        Some(self.canonical.get_or_init(|| canonical).clone())
    }
}

impl Binding for FileSystemServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self) -> Result<(), StartError> {
        if self.location().is_none() {
            // As Zilla: not a start-up error. Requests are answered 404 until it exists.
            tracing::warn!(
                event = "filesystem_location_missing",
                binding = %self.name,
                location = %self.location.display(),
                "location is not a readable directory: every request gets 404 until it is"
            );
        }
        Ok(())
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let Some(location) = self.location() else {
            stream.refuse(Reset::new(
                ReasonKind::NoRoute,
                format!("location '{}' is not a directory", self.location.display()),
            ));
            return;
        };
        let BeginEx::FileSystem(request) = &stream.begin.ext else {
            stream.refuse(Reset::new(
                ReasonKind::Invalid,
                "a filesystem server takes filesystem streams",
            ));
            return;
        };
        let request = request.clone();
        match resolve(&location, &request.path, self.symlinks) {
            Ok(file) => worker.spawn(serve(stream, request, file)),
            Err(why) => {
                tracing::debug!(binding = %self.name, path = %request.path, why, "not served");
                stream.refuse(Reset::new(ReasonKind::NoRoute, why));
            }
        }
    }
}

/// The file a request names, if it is a regular file under `location` (which is
/// canonical). A directory serves its `index.html`. With [`Symlinks::Ignore`] a path through
/// a symbolic link is refused; with [`Symlinks::Follow`] the file the links lead to must
/// still be under `location`.
pub fn resolve(
    location: &Path,
    requested: &str,
    symlinks: Symlinks,
) -> Result<PathBuf, &'static str> {
    let relative = normalize(requested).map_err(|_| "refused path")?;
    let mut path = location.to_path_buf();
    for part in relative.components() {
        path.push(part);
        refuse_link(&path, symlinks)?;
    }
    if path.is_dir() {
        path.push("index.html");
        refuse_link(&path, symlinks)?;
    }
    let canonical = path.canonicalize().map_err(|_| "no such file")?;
    if !canonical.starts_with(location) {
        return Err("outside the location");
    }
    if !canonical.is_file() {
        return Err("not a file");
    }
    Ok(canonical)
}

fn refuse_link(path: &Path, symlinks: Symlinks) -> Result<(), &'static str> {
    let link = path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink());
    if link && symlinks == Symlinks::Ignore {
        return Err("a symbolic link (symlinks: ignore)");
    }
    Ok(())
}

/// The file's tag: size and modification time, quoted as an ETag.
fn tag(metadata: &std::fs::Metadata) -> String {
    let modified = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{:x}-{:x}\"", metadata.len(), modified)
}

async fn serve(stream: Acceptor, request: FileSystemBeginEx, path: PathBuf) {
    let Acceptor {
        input: initial,
        output: mut reply,
        ..
    } = stream;
    let opened = File::open(&path).and_then(|file| Ok((file.metadata()?, file)));
    let (metadata, mut file) = match opened {
        Ok(opened) => opened,
        Err(err) => {
            let mut initial = initial;
            initial.reset(Reset::new(ReasonKind::NoRoute, err.to_string()));
            let _ = reply.abort(binding_api::frame::Reason::new(
                ReasonKind::NoRoute,
                err.to_string(),
            ));
            return;
        }
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let answer = FileSystemBeginEx {
        path: request.path.clone(),
        read_payload: request.read_payload,
        content_type: Some(content_type(&name).to_owned()),
        size: Some(metadata.len()),
        tag: Some(tag(&metadata)),
    };
    let skip = !request.read_payload || FileSystemBeginEx::not_modified(&request, &answer);
    if reply
        .begin(Begin {
            ext: BeginEx::FileSystem(answer),
        })
        .is_err()
    {
        return;
    }
    if !skip {
        loop {
            if reply.ready(1).await.is_err() {
                return;
            }
            let room = reply.credit().saturating_sub(u64::from(reply.padding()));
            let mut buf = vec![0; room.clamp(1, MAX_FRAME) as usize];
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if reply.data(Data::new(buf)).is_err() {
                        return;
                    }
                }
                Err(err) => {
                    let _ = reply.abort(binding_api::frame::Reason::new(
                        ReasonKind::ConnectionLost,
                        err.to_string(),
                    ));
                    return;
                }
            }
        }
    }
    let _ = reply.end(End::default());
    drop(initial);
}

#[cfg(test)]
mod tests {
    use super::*;
    use binding_api::frame::Frame;
    use binding_api::stream;
    use tokio_util::sync::CancellationToken;

    /// Asks `server` for `path` (HEAD); the reply's begin, or `None` when refused.
    async fn head(server: &FileSystemServer, worker: &Worker, path: &str) -> Option<Begin> {
        let (mut initiator, acceptor) = stream::open(Begin {
            ext: BeginEx::FileSystem(FileSystemBeginEx {
                path: path.to_owned(),
                ..FileSystemBeginEx::default()
            }),
        });
        server.new_stream(acceptor, worker);
        match initiator.input.frame().await {
            Some(Frame::Begin(begin)) => Some(begin),
            _ => None,
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_ignored_by_default_followed_on_request_never_out_of_the_location() {
        let root = std::env::temp_dir().join(format!("zilla-fs-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let www = root.join("www");
        std::fs::create_dir_all(www.join("real")).unwrap();
        std::fs::write(www.join("real/page.html"), "page").unwrap();
        std::fs::write(root.join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(www.join("real/page.html"), www.join("link.html")).unwrap();
        std::os::unix::fs::symlink(www.join("real"), www.join("dir")).unwrap();
        std::os::unix::fs::symlink(root.join("secret.txt"), www.join("out.txt")).unwrap();
        let www = www.canonicalize().unwrap();
        let page = www.join("real/page.html");

        for symlinks in [Symlinks::Ignore, Symlinks::Follow] {
            assert_eq!(resolve(&www, "real/page.html", symlinks), Ok(page.clone()));
            assert!(resolve(&www, "out.txt", symlinks).is_err(), "{symlinks:?}");
        }
        assert!(resolve(&www, "link.html", Symlinks::Ignore).is_err());
        assert!(resolve(&www, "dir/page.html", Symlinks::Ignore).is_err());
        assert_eq!(
            resolve(&www, "link.html", Symlinks::Follow),
            Ok(page.clone())
        );
        assert_eq!(resolve(&www, "dir/page.html", Symlinks::Follow), Ok(page));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_missing_location_starts_and_serves_once_it_appears() {
        let dir = std::env::temp_dir().join(format!("zilla-fs-later-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let server = FileSystemServer::new("fs", &dir, Symlinks::Ignore);
        assert!(server.prepare().is_ok(), "not a start-up error");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            let worker = Worker::new(0, 1, CancellationToken::new());
            assert!(head(&server, &worker, "index.html").await.is_none());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("index.html"), "<html></html>").unwrap();
            let begin = head(&server, &worker, "index.html").await.expect("served");
            let BeginEx::FileSystem(reply) = begin.ext else {
                panic!("{begin:?}");
            };
            assert_eq!(reply.size, Some(13));
            assert!(
                reply
                    .content_type
                    .is_some_and(|t| t.starts_with("text/html"))
            );
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
