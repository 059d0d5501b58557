//! `examples/tcp.echo` run by the real binary, driven by the real `nc`, stopped by signals.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e_tests::zilla::Zilla;

const EXAMPLE: &str = "examples/tcp.echo/zilla.yaml";
const PORT: u16 = 12345;

/// Sends `input` through `nc`, which closes its write side at the end of its input
/// (`-N`), and returns what came back.
fn nc(input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("nc")
        .args(["-N", "127.0.0.1", &PORT.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nc (netcat-openbsd) must be installed");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&input).expect("write to nc");
    });
    let output = child.wait_with_output().expect("nc output");
    writer.join().expect("writer thread");
    assert!(output.status.success(), "nc failed: {:?}", output.status);
    output.stdout
}

#[test]
fn echoes_with_nc_and_stops_on_sigterm() {
    let zilla = Zilla::start(Path::new(EXAMPLE), &[]);

    assert_eq!(nc(b"hello, zilla\n"), b"hello, zilla\n");

    // Four MiB of varied bytes, larger than every window on the way, come back intact.
    let big: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    let echoed = nc(&big);
    assert_eq!(echoed.len(), big.len());
    assert!(echoed == big, "echoed bytes differ");

    // An idle connection is ended cleanly on SIGTERM, and the process exits 0 within 5 s.
    let mut idle = TcpStream::connect(("127.0.0.1", PORT)).expect("connect");
    idle.write_all(b"ping").expect("write");
    let mut pong = [0u8; 4];
    idle.read_exact(&mut pong).expect("read");
    assert_eq!(&pong, b"ping");

    let (status, elapsed) = zilla.terminate();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");

    idle.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut rest = Vec::new();
    let read = idle.read_to_end(&mut rest);
    assert!(
        read.is_ok(),
        "the connection was closed cleanly (EOF), not reset: {read:?}"
    );
    assert!(rest.is_empty());
    let _ = idle.shutdown(Shutdown::Both);
    assert!(
        TcpStream::connect(("127.0.0.1", PORT)).is_err(),
        "nothing listens after exit"
    );
}

#[test]
fn stops_on_sigint() {
    let config = std::env::temp_dir().join(format!("zilla-sigint-{}.yaml", std::process::id()));
    let text = std::fs::read_to_string(e2e_tests::repo_root().join(EXAMPLE))
        .expect("example")
        .replace("port: 12345", "port: 12399");
    std::fs::write(&config, text).expect("write config");
    let zilla = Zilla::start(&config, &[]);
    let (status, elapsed) = zilla.interrupt();
    let _ = std::fs::remove_file(&config);
    assert_eq!(status.code(), Some(0));
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}
