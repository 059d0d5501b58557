use std::sync::Arc;

use proptest::prelude::*;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::*;

/// The first flight of a real rustls client: its ClientHello records.
fn rustls_hello(name: &str, alpn: &[&[u8]]) -> Vec<u8> {
    let mut config = ClientConfig::builder_with_provider(crate::keys::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(name.to_owned()).expect("name");
    let mut conn = ClientConnection::new(Arc::new(config), name).expect("client");
    let mut out = Vec::new();
    conn.write_tls(&mut out).expect("hello");
    out
}

/// The same handshake message re-split into records of the given sizes.
fn resplit(records: &[u8], sizes: &[usize]) -> Vec<u8> {
    let message = &records[RECORD_HEADER..];
    let mut out = Vec::new();
    let mut at = 0;
    let mut sizes = sizes.iter().cycle();
    while at < message.len() {
        let n = (*sizes.next().expect("sizes")).min(message.len() - at);
        out.extend_from_slice(&[CONTENT_HANDSHAKE, 3, 1]);
        out.extend_from_slice(&u16::try_from(n).expect("small").to_be_bytes());
        out.extend_from_slice(&message[at..at + n]);
        at += n;
    }
    out
}

fn expected() -> Hello {
    Hello {
        server_name: Some("example.com".into()),
        alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    }
}

#[test]
fn a_rustls_hello_at_every_split() {
    let bytes = rustls_hello("example.com", &[b"h2", b"http/1.1"]);
    for cut in 0..bytes.len() {
        match parse(&bytes[..cut]) {
            Ok(Parsed::Incomplete { need }) => {
                assert!(need > cut && need <= bytes.len(), "cut {cut}: need {need}");
            }
            other => panic!("cut {cut}: {other:?}"),
        }
    }
    let mut more = bytes.clone();
    more.extend_from_slice(b"\x14\x03\x03\x00\x01\x01");
    for input in [&bytes, &more] {
        assert_eq!(
            parse(input),
            Ok(Parsed::Complete {
                hello: expected(),
                len: bytes.len()
            })
        );
    }
}

#[test]
fn no_name_no_alpn_and_an_ip_address() {
    let bytes = rustls_hello("127.0.0.1", &[]);
    let Ok(Parsed::Complete { hello, .. }) = parse(&bytes) else {
        panic!("complete hello expected");
    };
    assert_eq!(hello, Hello::default());
}

#[test]
fn not_a_hello() {
    assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(HelloError::NotTls));
    assert_eq!(parse(&[0x16, 0x02]), Err(HelloError::NotTls));
    assert_eq!(parse(&[0x16, 3, 1, 0, 0]), Err(HelloError::RecordLength));
    assert_eq!(parse(&[0x16, 3, 1, 0x48, 1]), Err(HelloError::RecordLength));
    assert_eq!(
        parse(&[0x16, 3, 1, 0, 4, 2]),
        Err(HelloError::NotClientHello)
    );
    assert_eq!(
        parse(&[0x16, 3, 1, 0, 4, 1, 0x01, 0, 1]),
        Err(HelloError::TooLarge)
    );
    assert_eq!(
        parse(&[0x16, 3, 1, 0, 4, 1, 0, 0, 0]),
        Err(HelloError::Malformed)
    );
    let bytes = rustls_hello("example.com", &[b"h2"]);
    assert_eq!(parse(&resplit(&bytes, &[1])), Err(HelloError::TooLarge));
}

#[test]
fn repeated_or_empty_extensions_are_refused() {
    // A server_name list with two host names.
    let sni = [0, 12, 0, 0, 3, b'a', b'.', b'b', 0, 0, 3, b'c', b'.', b'd'];
    assert_eq!(server_name(&sni), Err(HelloError::BadExtension));
    assert_eq!(
        server_name(&[0, 4, 0, 0, 1, b' ']),
        Err(HelloError::BadExtension)
    );
    assert_eq!(alpn(&[0, 0]), Err(HelloError::BadExtension));
    assert_eq!(alpn(&[0, 1, 0]), Err(HelloError::BadExtension));
    assert_eq!(alpn(&[0, 3, 2, b'h', b'2']), Ok(vec![b"h2".to_vec()]));
}

proptest! {
    #[test]
    fn records_of_any_size_read_the_same(sizes in proptest::collection::vec(40usize..2000, 1..4)) {
        let bytes = resplit(&rustls_hello("example.com", &[b"h2", b"http/1.1"]), &sizes);
        let parsed = parse(&bytes);
        prop_assert_eq!(parsed, Ok(Parsed::Complete { hello: expected(), len: bytes.len() }));
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&bytes);
        let mut framed = vec![CONTENT_HANDSHAKE, 3, 3];
        framed.extend_from_slice(&u16::try_from(bytes.len() + 4).unwrap_or(0).to_be_bytes());
        framed.extend_from_slice(&[HANDSHAKE_CLIENT_HELLO, 0]);
        framed.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(0).to_be_bytes());
        framed.extend_from_slice(&bytes);
        let _ = parse(&framed);
    }

    #[test]
    fn a_mutated_hello_never_panics(at in 0usize..400, byte in any::<u8>(), cut in 0usize..600) {
        let mut bytes = rustls_hello("example.com", &[b"h2"]);
        if let Some(b) = bytes.get_mut(at) {
            *b = byte;
        }
        bytes.truncate(cut.max(1));
        if let Ok(Parsed::Incomplete { need }) = parse(&bytes) {
            prop_assert!(need > bytes.len());
        }
    }
}
