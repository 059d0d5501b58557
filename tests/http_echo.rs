//! `tcp → http → echo` run by the real binary and driven by the real `curl`, over HTTP/1.1,
//! HTTP/2 with prior knowledge (h2c) and HTTP/2 by `Upgrade: h2c`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e_tests::zilla::Zilla;

const CONFIG: &str = "tests/configs/http.echo.yaml";

/// Runs curl with `args`; returns the body and the `status version` line curl wrote last.
fn curl(args: &[&str]) -> (Vec<u8>, String) {
    let output = Command::new("curl")
        .args(["-sS", "-m", "20", "-w", "\n%{http_code} %{http_version}"])
        .args(args)
        .output()
        .expect("curl must be installed");
    assert!(
        output.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut out = output.stdout;
    let at = out
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("curl wrote the status line");
    let status = String::from_utf8_lossy(&out[at + 1..]).into_owned();
    out.truncate(at);
    (out, status)
}

#[test]
fn curl_posts_and_gets_its_body_back_over_h1_h2c_and_upgrade() {
    let port = e2e_tests::free_port();
    let port_text = port.to_string();
    let zilla = Zilla::start(Path::new(CONFIG), &[("HTTP_PORT", &port_text)]);
    let url = format!("http://127.0.0.1:{port}/echo");

    let (body, status) = curl(&["--http1.1", "-d", "hello, h1", &url]);
    assert_eq!(
        (body.as_slice(), status.as_str()),
        (&b"hello, h1"[..], "200 1.1")
    );

    let (body, status) = curl(&["--http2-prior-knowledge", "-d", "hello, h2c", &url]);
    assert_eq!(
        (body.as_slice(), status.as_str()),
        (&b"hello, h2c"[..], "200 2")
    );

    // Upgrade: a GET switches to HTTP/2 after 101 and is answered on stream 1.
    let (body, status) = curl(&["--http2", &url]);
    assert_eq!((body.as_slice(), status.as_str()), (&b""[..], "200 2"));
    // A POST with a body keeps HTTP/1.1 (the upgrade is ignored), and still echoes.
    let (body, status) = curl(&["--http2", "-d", "hello, upgrade", &url]);
    assert_eq!(body, b"hello, upgrade");
    assert!(status.starts_with("200 "), "{status}");

    // A large body, larger than every window on the way, comes back intact on each version.
    let dir = std::env::temp_dir().join(format!("zilla-http-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("big.bin");
    let big: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&file, &big).expect("write the body");
    let data = format!("@{}", file.display());
    for version in ["--http1.1", "--http2-prior-knowledge"] {
        let (body, status) = curl(&[version, "--data-binary", &data, &url]);
        assert!(status.starts_with("200"), "{version}: {status}");
        assert!(
            body == big,
            "{version}: echoed body differs ({} bytes)",
            body.len()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    // No route: 404, on both versions.
    let other = format!("http://127.0.0.1:{port}/other");
    let (_, status) = curl(&["--http1.1", &other]);
    assert_eq!(status, "404 1.1");
    let (_, status) = curl(&["--http2-prior-knowledge", &other]);
    assert_eq!(status, "404 2");

    let (status, elapsed) = zilla.terminate();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}
