//! Producing to the baseline: one long-lived `POST /publish-stream` with a chunked body of
//! `k<n>\t<payload>\n` lines, one chunk per batch.

use std::io::Write as _;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Batch, ProduceError};
use crate::template::UrlTemplate;

/// An open publish stream.
pub struct Producer {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Producer {
    /// Connects and sends the request head.
    pub async fn connect(url: &str) -> Result<Self, ProduceError> {
        let template =
            UrlTemplate::parse(url).map_err(|e| ProduceError::Protocol(e.to_string()))?;
        let stream = TcpStream::connect((template.host.as_str(), template.port))
            .await
            .map_err(|e| ProduceError::Io("connecting to the publish stream", e))?;
        let _ = stream.set_nodelay(true);
        let mut producer = Self {
            stream,
            buf: Vec::new(),
        };
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
            template.path("", 0),
            template.authority
        );
        producer.write(head.as_bytes()).await?;
        Ok(producer)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ProduceError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| ProduceError::Io("writing the publish stream", e))
    }

    /// Sends one batch as one chunk.
    pub async fn send(&mut self, batch: &Batch) -> Result<(), ProduceError> {
        let mut body = std::mem::take(&mut self.buf);
        body.clear();
        // Room for the chunk size line, filled in below.
        body.extend_from_slice(b"0000000000\r\n");
        for (key, payload) in batch.iter() {
            let _ = write!(body, "k{key}\t");
            body.extend_from_slice(payload);
            body.push(b'\n');
        }
        let len = body.len() - 12;
        let size = format!("{len:010x}");
        body[..10].copy_from_slice(size.as_bytes());
        body.extend_from_slice(b"\r\n");
        let result = self.write(&body).await;
        self.buf = body;
        result
    }

    /// Ends the body and checks the answer.
    pub async fn finish(mut self) -> Result<(), ProduceError> {
        self.write(b"0\r\n\r\n").await?;
        let mut answer = [0u8; 512];
        let n = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            self.stream.read(&mut answer),
        )
        .await
        .map_err(|_| ProduceError::Protocol("no answer to the publish stream".into()))?
        .map_err(|e| ProduceError::Io("reading the publish stream's answer", e))?;
        let answer = String::from_utf8_lossy(&answer[..n]);
        if answer.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(ProduceError::Protocol(format!(
                "publish stream answered: {}",
                answer.lines().next().unwrap_or("nothing")
            )))
        }
    }
}
