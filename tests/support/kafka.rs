//! A real Apache Kafka broker for the end-to-end tests, and the Kafka console tools to
//! talk to it as an independent client would.
//!
//! [`bootstrap`] gives the broker's address: `KAFKA_BOOTSTRAP` when that is set (a broker
//! that CI or a developer started, e.g. with `scripts/kafka start`), else a broker of this
//! test process, started on first use with `scripts/kafka start` and stopped by that
//! script's watchdog once the test process has exited.
//!
//! The other helpers run the Java tools through `scripts/kafka`: [`create_topic`] uses
//! `TopicCommand`, [`produce`] the `ConsoleProducer` and [`consume`] /
//! [`consume_records`] the `ConsoleConsumer`. Each of them starts a JVM (about a second).
//!
//! Keys, values and headers travel as UTF-8 text. Records are framed with ASCII control
//! characters, so keys, values and headers must not contain any of `\x18`, `\x1c`..=`\x1f`,
//! nor (to be produced) `\r` or `\n`; header keys must not contain `:`.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable that names an already running broker (`host:port`).
pub const BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP";

/// How long `scripts/kafka start` may take, the first download of Kafka included.
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a tool other than the consumer may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// How much longer than its `--timeout-ms` the console consumer may take (JVM start, group join).
const CONSUME_SLACK: Duration = Duration::from_secs(60);

// Framing between the Rust side and the console tools.
const NULL_MARKER: &str = "\x18";
const KEY_SEPARATOR: &str = "\x1c";
const HEADERS_SEPARATOR: &str = "\x1d";
const RECORD_SEPARATOR: &str = "\x1e";
const HEADER_KEY_SEPARATOR: &str = "\x1f";
const FORBIDDEN: [char; 7] = ['\x18', '\x1c', '\x1d', '\x1e', '\x1f', '\r', '\n'];

/// A Kafka record as the console tools see it: text key, value and headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The key; `None` for a record without key.
    pub key: Option<String>,
    /// The value; `None` for a tombstone.
    pub value: Option<String>,
    /// The headers, in order. A header with a null value reads back with an empty one.
    pub headers: Vec<(String, String)>,
}

impl Record {
    /// A record with this value, no key and no headers.
    pub fn new(value: impl Into<String>) -> Self {
        Record {
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
        }
    }

    /// A tombstone (null value) for this key.
    pub fn tombstone(key: impl Into<String>) -> Self {
        Record {
            key: Some(key.into()),
            value: None,
            headers: Vec::new(),
        }
    }

    /// This record with the given key.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// This record with one more header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl From<&str> for Record {
    fn from(value: &str) -> Self {
        Record::new(value)
    }
}

impl From<String> for Record {
    fn from(value: String) -> Self {
        Record::new(value)
    }
}

/// The path of `scripts/kafka`.
pub fn script() -> PathBuf {
    crate::repo_root().join("scripts").join("kafka")
}

/// The bootstrap address (`host:port`) of the Kafka broker for this test process.
///
/// Returns `KAFKA_BOOTSTRAP` when it is set. Otherwise the first call starts a fresh broker
/// with `scripts/kafka start` (with `KAFKA_OWNER_PID` set to this process, so the broker
/// and its data go away once the process has exited); later calls, from any thread, get
/// the same address.
///
/// # Panics
///
/// When the broker cannot be started; every later call panics with the same message.
pub fn bootstrap() -> &'static str {
    static BOOTSTRAP: OnceLock<Result<String, String>> = OnceLock::new();
    let result = BOOTSTRAP.get_or_init(|| match std::env::var(BOOTSTRAP_ENV) {
        Ok(address) if !address.trim().is_empty() => Ok(address.trim().to_owned()),
        _ => start_broker(),
    });
    match result {
        Ok(address) => address,
        Err(message) => panic!("{message}"),
    }
}

fn start_broker() -> Result<String, String> {
    let mut command = Command::new(script());
    command
        .arg("start")
        .env("KAFKA_OWNER_PID", std::process::id().to_string());
    let output = run(command, None, START_TIMEOUT)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "`scripts/kafka start` failed ({}):\n{stderr}",
            output.status
        ));
    }
    let address = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .ok_or_else(|| format!("`scripts/kafka start` printed no address:\n{stderr}"))?;
    // Shown with the output of a failing test only.
    eprint!("{stderr}");
    Ok(address.to_owned())
}

/// The broker's SSL listener (`scripts/kafka` puts one on the broker port + 3) and the CA
/// certificate (PEM) that signed its certificate, for `localhost` and `127.0.0.1`.
///
/// # Panics
///
/// When the broker has no SSL listener (a `KAFKA_BOOTSTRAP` broker not started by this
/// version of `scripts/kafka`).
#[track_caller]
pub fn ssl() -> (String, PathBuf) {
    let address = bootstrap();
    let (host, port) = address
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
        .unwrap_or_else(|| panic!("bootstrap address {address:?} is not HOST:PORT"));
    let ca = tool(&["ca", address]);
    (format!("{host}:{}", port + 3), PathBuf::from(ca.trim()))
}

/// How many Fetch requests the broker has served (all versions), from its JMX metrics
/// through `scripts/kafka fetch-requests`.
///
/// # Panics
///
/// When the broker has no JMX port (not started by this version of `scripts/kafka`).
#[track_caller]
pub fn fetch_requests() -> u64 {
    let out = tool(&["fetch-requests", bootstrap()]);
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("fetch-requests printed {out:?}"))
}

/// A topic name that no other test (in this or another process) uses.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `scripts/kafka ARGS...` (e.g. `["topics", "--bootstrap-server", ..., "--list"]`, or
/// `["run", CLASS, ...]`) and returns its standard output.
///
/// # Panics
///
/// When the tool fails or takes longer than two minutes.
#[track_caller]
pub fn tool(args: &[&str]) -> String {
    tool_with_input(args, None)
}

#[track_caller]
fn tool_with_input(args: &[&str], stdin: Option<Vec<u8>>) -> String {
    let mut command = Command::new(script());
    command.args(args);
    let output = run(command, stdin, TOOL_TIMEOUT).unwrap_or_else(|message| panic!("{message}"));
    if !output.status.success() {
        panic!(
            "`scripts/kafka {}` failed ({}):\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Creates a topic with this many partitions (replication factor 1) and topic configs,
/// e.g. `&[("cleanup.policy", "compact")]`.
///
/// # Panics
///
/// When the topic cannot be created (for one, when it exists already).
#[track_caller]
pub fn create_topic(name: &str, partitions: u32, configs: &[(&str, &str)]) {
    let partitions = partitions.to_string();
    let configs: Vec<String> = configs
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let mut args = vec![
        "topics",
        "--bootstrap-server",
        bootstrap(),
        "--create",
        "--topic",
        name,
        "--partitions",
        &partitions,
        "--replication-factor",
        "1",
    ];
    for config in &configs {
        args.extend(["--config", config]);
    }
    tool(&args);
}

/// The topic `events` with one partition, created unless it exists: the seed's topic, which
/// tests of the seed's configuration and its example share.
pub fn ensure_events_topic() {
    tool(&[
        "topics",
        "--bootstrap-server",
        bootstrap(),
        "--create",
        "--if-not-exists",
        "--topic",
        "events",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
}

/// `kafka:29092` (the seed's broker) → this broker's address, as `zilla start --resolve`
/// wants it (an IP address).
pub fn resolve_seed_broker() -> String {
    let broker = bootstrap();
    let addr = std::net::ToSocketAddrs::to_socket_addrs(broker)
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("cannot resolve the broker {broker}"));
    format!("kafka:29092:{addr}")
}

/// Produces these records, in order, with the console producer (synchronously, acks=all).
///
/// Accepts [`Record`]s or plain values (`&str`, `String`).
///
/// # Panics
///
/// When a record contains a character that the framing reserves, or producing fails
/// (for one, when the topic does not exist: the broker does not create topics).
#[track_caller]
pub fn produce<I>(topic: &str, records: I)
where
    I: IntoIterator,
    I::Item: Into<Record>,
{
    let mut input = String::new();
    for record in records {
        let record: Record = record.into();
        check_framing(&record);
        if record.headers.is_empty() {
            input.push_str(NULL_MARKER);
        } else {
            for (index, (name, value)) in record.headers.iter().enumerate() {
                if index > 0 {
                    input.push_str(HEADERS_SEPARATOR);
                }
                let _ = write!(input, "{name}{HEADER_KEY_SEPARATOR}{value}");
            }
        }
        input.push_str(RECORD_SEPARATOR);
        input.push_str(record.key.as_deref().unwrap_or(NULL_MARKER));
        input.push_str(KEY_SEPARATOR);
        input.push_str(record.value.as_deref().unwrap_or(NULL_MARKER));
        input.push('\n');
    }
    let properties = [
        "parse.key=true".to_owned(),
        "parse.headers=true".to_owned(),
        format!("key.separator={KEY_SEPARATOR}"),
        format!("headers.delimiter={RECORD_SEPARATOR}"),
        format!("headers.separator={HEADERS_SEPARATOR}"),
        format!("headers.key.separator={HEADER_KEY_SEPARATOR}"),
        format!("null.marker={NULL_MARKER}"),
    ];
    let mut args = vec![
        "produce",
        "--bootstrap-server",
        bootstrap(),
        "--topic",
        topic,
        "--sync",
        "--timeout",
        "0",
        "--max-block-ms",
        "15000",
        // A broker just restarted answers NOT_LEADER_OR_FOLLOWER until it leads its
        // partitions again (tens of seconds on a loaded machine): retry, as producers do.
        "--message-send-max-retries",
        "60",
        "--retry-backoff-ms",
        "500",
    ];
    for property in &properties {
        args.extend(["--property", property]);
    }
    tool_with_input(&args, Some(input.into_bytes()));
}

#[track_caller]
fn check_framing(record: &Record) {
    let mut fields: Vec<&str> = record
        .key
        .iter()
        .chain(&record.value)
        .map(String::as_str)
        .collect();
    for (name, value) in &record.headers {
        assert!(
            !name.is_empty() && !name.contains(':'),
            "header name {name:?} of {record:?}: must be non-empty and without ':'"
        );
        fields.extend([name.as_str(), value.as_str()]);
    }
    for field in fields {
        assert!(
            !field.contains(FORBIDDEN),
            "{field:?} of {record:?} contains a character reserved by the framing: {FORBIDDEN:?}"
        );
    }
    assert!(
        record.key.as_deref() != Some(NULL_MARKER),
        "key of {record:?} is the null marker"
    );
}

/// The values of the first `n` records of a topic, read from the beginning by the console
/// consumer in a fresh consumer group. Fewer come back when the consumer saw no new record
/// for `timeout`. A tombstone reads as an empty value: see [`consume_records`].
///
/// # Panics
///
/// When the consumer fails for another reason than the timeout.
#[track_caller]
pub fn consume(topic: &str, n: usize, timeout: Duration) -> Vec<String> {
    consume_records(topic, n, timeout)
        .into_iter()
        .map(|record| record.value.unwrap_or_default())
        .collect()
}

/// The first `n` records (keys, values and headers) of a topic, read from the beginning by
/// the console consumer in a fresh consumer group, in the order it printed them (which is
/// the produce order within each partition). Fewer come back when the consumer saw no new
/// record for `timeout`.
///
/// # Panics
///
/// When the consumer fails for another reason than the timeout.
#[track_caller]
pub fn consume_records(topic: &str, n: usize, timeout: Duration) -> Vec<Record> {
    let max_messages = n.to_string();
    let timeout_ms = timeout.as_millis().max(1).to_string();
    let properties = [
        "print.key=true".to_owned(),
        "print.headers=true".to_owned(),
        "print.value=true".to_owned(),
        format!("key.separator={KEY_SEPARATOR}"),
        format!("headers.separator={HEADERS_SEPARATOR}"),
        format!("line.separator={RECORD_SEPARATOR}"),
        format!("null.literal={NULL_MARKER}"),
    ];
    let mut args = vec![
        "consume",
        "--bootstrap-server",
        bootstrap(),
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        &max_messages,
        "--timeout-ms",
        &timeout_ms,
    ];
    for property in &properties {
        args.extend(["--property", property]);
    }
    let mut command = Command::new(script());
    command.args(&args);
    let output =
        run(command, None, timeout + CONSUME_SLACK).unwrap_or_else(|message| panic!("{message}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && !stderr.contains("TimeoutException") {
        panic!("consuming {topic} failed ({}):\n{stderr}", output.status);
    }
    stdout
        .split(RECORD_SEPARATOR)
        .filter(|line| !line.is_empty())
        .map(|line| {
            parse_record(line).unwrap_or_else(|| panic!("unexpected consumer output {line:?}"))
        })
        .collect()
}

/// Parses `headers KEY_SEPARATOR key KEY_SEPARATOR value` as the console consumer prints it.
fn parse_record(line: &str) -> Option<Record> {
    let mut fields = line.splitn(3, KEY_SEPARATOR);
    let headers = fields.next()?;
    let key = fields.next()?;
    let value = fields.next()?;
    let nullable = |field: &str| (field != NULL_MARKER).then(|| field.to_owned());
    let headers = if headers == "NO_HEADERS" {
        Vec::new()
    } else {
        headers
            .split(HEADERS_SEPARATOR)
            .map(|header| {
                let (name, value) = header.split_once(':')?;
                Some((name.to_owned(), nullable(value).unwrap_or_default()))
            })
            .collect::<Option<Vec<_>>>()?
    };
    Some(Record {
        key: nullable(key),
        value: nullable(value),
        headers,
    })
}

struct Output {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs a command with this standard input, collecting its output; kills it after `timeout`.
fn run(mut command: Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Result<Output, String> {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run {description}: {error}"))?;
    let writer = child.stdin.take().zip(stdin).map(|(mut pipe, input)| {
        thread::spawn(move || {
            // The tool may exit early (on an error it reports itself): ignore a broken pipe.
            let _ = pipe.write_all(&input);
        })
    });
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(error) => return Err(format!("cannot wait for {description}: {error}")),
        }
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let collect = |reader: Option<thread::JoinHandle<Vec<u8>>>| {
        reader
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default()
    };
    let stdout = collect(stdout);
    let stderr = collect(stderr);
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(format!(
            "{description} took longer than {timeout:?}; killed it. Its stderr:\n{}",
            String::from_utf8_lossy(&stderr)
        )),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = pipe.read_to_end(&mut buffer);
        buffer
    })
}

/// Runs `scripts/kafka ARGS` (brokers it starts stop with this process) and returns its
/// stdout.
///
/// # Panics
///
/// When the script fails: with its stderr.
pub fn script_output(args: &[&str]) -> String {
    let output = Command::new(script())
        .args(args)
        .env("KAFKA_OWNER_PID", std::process::id().to_string())
        .output()
        .expect("scripts/kafka runs");
    assert!(
        output.status.success(),
        "scripts/kafka {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_console_consumer_prints() {
        let line = "a:1\x1db:\x18\x1ckey\x1cvalue\x1cwith separator";
        assert_eq!(
            parse_record(line),
            Some(Record {
                key: Some("key".into()),
                value: Some("value\x1cwith separator".into()),
                headers: vec![("a".into(), "1".into()), ("b".into(), String::new())],
            })
        );
        assert_eq!(
            parse_record("NO_HEADERS\x1c\x18\x1c\x18"),
            Some(Record::default())
        );
        assert_eq!(parse_record("garbage"), None);
    }

    #[test]
    fn topic_names_are_unique() {
        assert_ne!(unique_topic("t"), unique_topic("t"));
    }
}
