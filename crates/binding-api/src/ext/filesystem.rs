//! Filesystem vocabulary: a request for a file, and what the file server answers.
//!
//! An http-filesystem proxy opens a stream to a filesystem server with
//! [`FileSystemBeginEx`] naming the `path` (relative to the server's `location`, still
//! percent-encoded as it came in the URL), whether the bytes are wanted (`read_payload`:
//! GET yes, HEAD no) and the client's cached `tag` (`If-None-Match`).
//!
//! The server answers with a reply begin carrying the file's `path`, `content_type`, `size`
//! and `tag` (its ETag). When the request's `tag` equals the file's, or `read_payload` is
//! false, the reply ends with no data; else the file's bytes follow as data frames. A file
//! that is not there, or a path that leads outside `location`, is refused (reset and abort
//! with reason `no-route`), which an http server answers 404.

/// Begin extension of a filesystem request or its reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSystemBeginEx {
    /// Request: the path asked for; reply: the path served (relative, `/`-separated).
    pub path: String,
    /// Request: whether the file's bytes are wanted (false for HEAD).
    pub read_payload: bool,
    /// Reply: the media type, from the file's extension.
    pub content_type: Option<String>,
    /// Reply: the file's size in bytes.
    pub size: Option<u64>,
    /// Request: the tag the client holds; reply: the file's current tag.
    pub tag: Option<String>,
}

impl FileSystemBeginEx {
    /// Whether a reply means "not modified": the client's tag is the file's.
    pub fn not_modified(request: &FileSystemBeginEx, reply: &FileSystemBeginEx) -> bool {
        request.tag.is_some() && request.tag == reply.tag
    }
}
