//! Steps: what a peer does and expects, one at a time, in order.
//!
//! A step is a mapping with one action key and optional modifiers (`timeout`, `on`), or, for
//! an action that takes no argument, just its name: `- expect-eof`.

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use zilla_config::{ConfigError, ConfigErrorKind, Mark, Node, Value, from_node_at};

use crate::ext::{BeginExt, FrameExt};
use crate::value::{Bytes, Dur, Port, ReasonName};

/// One step of a peer's script.
#[derive(Clone, Debug)]
pub struct Step<A> {
    /// Position in the script, from 1.
    pub index: usize,
    /// Where the step is written.
    pub mark: Mark,
    /// The action's name as written (`expect`, `write`...).
    pub name: String,
    /// `timeout`: overrides the scenario's step timeout.
    pub timeout: Option<Duration>,
    /// `on`: the stream or connection the step applies to (default: the latest one).
    pub on: Option<String>,
    /// `ext`: the extension of the data, flush or end frame a `send` or `expect` step sends or
    /// matches.
    pub ext: Option<FrameExt>,
    /// What to do.
    pub action: A,
}

/// What a stream peer can do.
#[derive(Clone, Debug)]
pub enum StreamAction {
    /// Signals a barrier.
    Notify(String),
    /// Waits for a barrier.
    Await(String),
    /// Takes the next stream the binding under test opened towards this peer.
    Accept(AcceptArgs),
    /// Opens a stream into the binding under test.
    Open(OpenArgs),
    /// Sends a frame on the direction this peer writes.
    Send(SendFrame),
    /// Grants credit on the direction this peer reads.
    Window(WindowArgs),
    /// Resets the direction this peer reads.
    Reset(ReasonArgs),
    /// Refuses the stream as an acceptor does: resets the direction this peer reads and
    /// aborts the one it writes, in one step (the binding under test may react to the reset
    /// before a separate abort could be sent).
    Refuse(ReasonArgs),
    /// Waits for a frame (or a window or reset) and checks it.
    Expect(ExpectFrame),
    /// Checks that nothing arrives for a while.
    ExpectNothing(Dur),
    /// Checks that no more than some data bytes arrive for a while.
    ExpectAtMost(AtMostArgs),
}

/// What a network peer can do.
#[derive(Clone, Debug)]
pub enum NetworkAction {
    /// Signals a barrier.
    Notify(String),
    /// Waits for a barrier.
    Await(String),
    /// Connects to the binding under test.
    Connect(ConnectArgs),
    /// Listens, for the binding under test to connect to.
    Listen(ListenArgs),
    /// Accepts the next connection on the listener.
    Accept(NameArgs),
    /// Writes bytes.
    Write(Bytes),
    /// Reads exactly these bytes.
    Read(Bytes),
    /// Half-closes: sends FIN, keeps reading.
    ShutdownWrite,
    /// Closes the connection gracefully.
    Close,
    /// Closes the connection abruptly (RST).
    Reset,
    /// Expects a clean end of stream (FIN).
    ExpectEof,
    /// Expects the connection to be reset (RST).
    ExpectReset,
    /// Expects the connection to be closed, by FIN or RST.
    ExpectClosed,
    /// Checks that nothing arrives for a while.
    ExpectNothing(Dur),
    /// Checks that the writes started with `wait: false` are still not accepted after a while.
    ExpectWriteBlocked(Dur),
    /// An HTTP/2 client step on the connection.
    H2(crate::h2::H2Action),
    /// A TLS client handshake on the connection.
    Tls(crate::tls::TlsArgs),
}

/// `accept` of a stream peer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptArgs {
    /// Checks on the stream's begin extension.
    pub begin: Option<BeginExt>,
    /// A name for the stream, for `on`.
    #[serde(rename = "as")]
    pub name: Option<String>,
}

/// `open` of a stream peer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenArgs {
    /// The begin extension to send.
    pub begin: Option<BeginExt>,
    /// A name for the stream, for `on`.
    #[serde(rename = "as")]
    pub name: Option<String>,
}

/// A frame to send.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SendFrame {
    /// Begins the reply of an accepted stream.
    Begin(Option<BeginExt>),
    /// One data frame (waits for the credit it needs).
    Data(Bytes),
    /// A flush (costs credit like an empty data frame).
    Flush(Option<Empty>),
    /// Ends the direction.
    End(Option<Empty>),
    /// Aborts the direction.
    Abort(Option<ReasonArgs>),
}

/// A mapping that must be empty (the frame takes no fields yet).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `window`: credit to grant.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowArgs {
    /// Bytes of credit added.
    pub credit: u32,
    /// Per-frame padding (default 0).
    #[serde(default)]
    pub padding: u32,
}

/// A reason, for reset and abort.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonArgs {
    /// The reason's kind.
    pub reason: Option<ReasonName>,
}

/// What `expect` waits for.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpectFrame {
    /// A begin on the direction read (the reply of an opened stream).
    Begin(Option<BeginExt>),
    /// Data bytes, over one or more data frames.
    Data(Bytes),
    /// A flush.
    Flush(Option<Empty>),
    /// An end.
    End(Option<Empty>),
    /// An abort.
    Abort(Option<ReasonArgs>),
    /// Credit on the direction written.
    Window(Option<WindowExpect>),
    /// A reset of the direction written.
    Reset(Option<ReasonArgs>),
}

/// `expect: {window: ...}`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowExpect {
    /// At least this much credit available (default 1).
    pub credit: Option<u64>,
    /// Exactly this padding.
    pub padding: Option<u32>,
}

/// `expect-at-most`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtMostArgs {
    /// The most data bytes that may arrive.
    pub bytes: u64,
    /// For how long to watch.
    #[serde(rename = "for")]
    pub duration: Dur,
}

/// `connect`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectArgs {
    /// Host (default `127.0.0.1`).
    pub host: Option<String>,
    /// Port.
    pub port: Port,
    /// A name for the connection, for `on`.
    #[serde(rename = "as")]
    pub name: Option<String>,
}

/// `listen`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenArgs {
    /// Host (default `127.0.0.1`).
    pub host: Option<String>,
    /// Port.
    pub port: Port,
}

/// A step argument that only names what it creates.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameArgs {
    /// A name for the connection, for `on`.
    #[serde(rename = "as")]
    pub name: Option<String>,
}

/// Step names a stream peer knows.
pub const STREAM_ACTIONS: &[&str] = &[
    "notify",
    "await",
    "accept",
    "open",
    "send",
    "window",
    "reset",
    "refuse",
    "expect",
    "expect-nothing",
    "expect-at-most",
];

/// Step names a network peer knows.
pub const NETWORK_ACTIONS: &[&str] = &[
    "notify",
    "await",
    "connect",
    "listen",
    "accept",
    "write",
    "read",
    "shutdown-write",
    "close",
    "reset",
    "expect-eof",
    "expect-reset",
    "expect-closed",
    "expect-nothing",
    "expect-write-blocked",
    "h2",
    "tls",
];

/// A step split into its parts, before its argument is typed.
struct RawStep<'a> {
    name: &'a str,
    name_mark: Mark,
    arg: Cow<'a, Node>,
    timeout: Option<Duration>,
    on: Option<String>,
    ext: Option<FrameExt>,
}

fn split<'a>(node: &'a Node, path: &str) -> Result<RawStep<'a>, ConfigError> {
    let null = Node::new(node.mark, Value::Null);
    match &node.value {
        Value::Scalar(s) => Ok(RawStep {
            name: &s.text,
            name_mark: node.mark,
            arg: Cow::Owned(null),
            timeout: None,
            on: None,
            ext: None,
        }),
        Value::Map(entries) => {
            let mut action: Option<(&str, Mark, &Node)> = None;
            let mut timeout = None;
            let mut on = None;
            let mut ext = None;
            for (key, value) in entries {
                let key_path = format!("{path}.{}", key.as_str().unwrap_or("?"));
                match key.as_str() {
                    Some("timeout") => timeout = Some(from_node_at::<Dur>(value, &key_path)?.0),
                    Some("on") => on = Some(from_node_at::<String>(value, &key_path)?),
                    Some("ext") => ext = Some(from_node_at::<FrameExt>(value, &key_path)?),
                    Some(name) if action.is_none() => action = Some((name, key.mark, value)),
                    _ => {
                        return Err(ConfigError::at(
                            key.mark,
                            ConfigErrorKind::Custom(
                                "a step has one action; start another step with '-'".into(),
                            ),
                        ));
                    }
                }
            }
            let Some((name, name_mark, value)) = action else {
                return Err(ConfigError::at(
                    node.mark,
                    ConfigErrorKind::Custom("the step has no action".into()),
                ));
            };
            Ok(RawStep {
                name,
                name_mark,
                arg: Cow::Borrowed(value),
                timeout,
                on,
                ext,
            })
        }
        _ => Err(ConfigError::at(
            node.mark,
            ConfigErrorKind::InvalidType {
                found: node.describe(),
                expected: "a step: an action name, or a mapping `action: argument`".into(),
            },
        )),
    }
}

/// A scalar `x` as the mapping `x:`, so enum variants that take optional fields can be written
/// as just their name.
fn as_variant(node: &Node) -> Cow<'_, Node> {
    match &node.value {
        Value::Scalar(_) => Cow::Owned(Node::new(
            node.mark,
            Value::Map(vec![(node.clone(), Node::new(node.mark, Value::Null))]),
        )),
        _ => Cow::Borrowed(node),
    }
}

/// Types a step's argument.
fn arg<T: DeserializeOwned>(raw: &RawStep<'_>, path: &str) -> Result<T, ConfigError> {
    from_node_at(&raw.arg, &format!("{path}.{}", raw.name))
}

/// Types an argument whose fields are all optional: a missing argument means none of them.
fn optional<T: DeserializeOwned + Default>(
    raw: &RawStep<'_>,
    path: &str,
) -> Result<T, ConfigError> {
    if raw.arg.is_null() {
        return Ok(T::default());
    }
    arg(raw, path)
}

/// Types an argument that is an enum, written `name` or `name: value`.
fn variant<T: DeserializeOwned>(raw: &RawStep<'_>, path: &str) -> Result<T, ConfigError> {
    from_node_at(&as_variant(&raw.arg), &format!("{path}.{}", raw.name))
}

fn unknown(raw: &RawStep<'_>, allowed: &[&str]) -> ConfigError {
    ConfigError::at(
        raw.name_mark,
        ConfigErrorKind::UnknownVariant {
            value: raw.name.to_owned(),
            allowed: allowed.iter().map(|s| (*s).to_owned()).collect(),
        },
    )
}

fn no_arg(raw: &RawStep<'_>) -> Result<(), ConfigError> {
    if raw.arg.is_null() {
        Ok(())
    } else {
        Err(ConfigError::at(
            raw.arg.mark,
            ConfigErrorKind::Custom(format!("'{}' takes no argument", raw.name)),
        ))
    }
}

fn finish<A>(index: usize, node: &Node, raw: &RawStep<'_>, action: A) -> Step<A> {
    Step {
        index,
        mark: node.mark,
        name: raw.name.to_owned(),
        timeout: raw.timeout,
        on: raw.on.clone(),
        ext: raw.ext.clone(),
        action,
    }
}

/// Parses the steps of a stream peer.
pub fn stream_steps(items: &[Node], path: &str) -> Result<Vec<Step<StreamAction>>, ConfigError> {
    let mut steps = Vec::with_capacity(items.len());
    for (i, node) in items.iter().enumerate() {
        let path = format!("{path}[{i}]");
        let raw = split(node, &path)?;
        let action = match raw.name {
            "notify" => StreamAction::Notify(arg(&raw, &path)?),
            "await" => StreamAction::Await(arg(&raw, &path)?),
            "accept" => StreamAction::Accept(optional(&raw, &path)?),
            "open" => StreamAction::Open(optional(&raw, &path)?),
            "send" => StreamAction::Send(variant(&raw, &path)?),
            "window" => StreamAction::Window(arg(&raw, &path)?),
            "reset" => StreamAction::Reset(optional(&raw, &path)?),
            "refuse" => StreamAction::Refuse(optional(&raw, &path)?),
            "expect" => StreamAction::Expect(variant(&raw, &path)?),
            "expect-nothing" => StreamAction::ExpectNothing(arg(&raw, &path)?),
            "expect-at-most" => StreamAction::ExpectAtMost(arg(&raw, &path)?),
            _ => return Err(unknown(&raw, STREAM_ACTIONS)),
        };
        let framed = matches!(
            action,
            StreamAction::Send(SendFrame::Data(_) | SendFrame::Flush(_) | SendFrame::End(_))
                | StreamAction::Expect(
                    ExpectFrame::Data(_) | ExpectFrame::Flush(_) | ExpectFrame::End(_)
                )
        );
        if raw.ext.is_some() && !framed {
            return Err(ConfigError::at(
                node.mark,
                ConfigErrorKind::Custom(
                    "`ext` applies to sending or expecting data, flush or end".into(),
                ),
            ));
        }
        if let StreamAction::Send(SendFrame::Data(bytes))
        | StreamAction::Expect(ExpectFrame::Data(bytes)) = &action
            && bytes.wait.is_some()
        {
            return Err(ConfigError::at(
                raw.arg.mark,
                ConfigErrorKind::Custom("only a network peer's `write` takes `wait`".into()),
            ));
        }
        steps.push(finish(i + 1, node, &raw, action));
    }
    Ok(steps)
}

/// Parses the steps of a network peer.
pub fn network_steps(items: &[Node], path: &str) -> Result<Vec<Step<NetworkAction>>, ConfigError> {
    let mut steps = Vec::with_capacity(items.len());
    for (i, node) in items.iter().enumerate() {
        let path = format!("{path}[{i}]");
        let raw = split(node, &path)?;
        let action = match raw.name {
            "notify" => NetworkAction::Notify(arg(&raw, &path)?),
            "await" => NetworkAction::Await(arg(&raw, &path)?),
            "connect" => NetworkAction::Connect(arg(&raw, &path)?),
            "listen" => NetworkAction::Listen(arg(&raw, &path)?),
            "accept" => NetworkAction::Accept(optional(&raw, &path)?),
            "write" => NetworkAction::Write(arg(&raw, &path)?),
            "read" => {
                let bytes: Bytes = arg(&raw, &path)?;
                if bytes.wait.is_some() {
                    return Err(ConfigError::at(
                        raw.arg.mark,
                        ConfigErrorKind::Custom("only `write` takes `wait`".into()),
                    ));
                }
                NetworkAction::Read(bytes)
            }
            "shutdown-write" => no_arg(&raw).map(|()| NetworkAction::ShutdownWrite)?,
            "close" => no_arg(&raw).map(|()| NetworkAction::Close)?,
            "reset" => no_arg(&raw).map(|()| NetworkAction::Reset)?,
            "expect-eof" => no_arg(&raw).map(|()| NetworkAction::ExpectEof)?,
            "expect-reset" => no_arg(&raw).map(|()| NetworkAction::ExpectReset)?,
            "expect-closed" => no_arg(&raw).map(|()| NetworkAction::ExpectClosed)?,
            "expect-nothing" => NetworkAction::ExpectNothing(arg(&raw, &path)?),
            "expect-write-blocked" => NetworkAction::ExpectWriteBlocked(arg(&raw, &path)?),
            "h2" => NetworkAction::H2(variant(&raw, &path)?),
            "tls" => NetworkAction::Tls(arg(&raw, &path)?),
            _ => return Err(unknown(&raw, NETWORK_ACTIONS)),
        };
        if raw.ext.is_some() {
            return Err(ConfigError::at(
                node.mark,
                ConfigErrorKind::Custom("a network step takes no `ext`".into()),
            ));
        }
        steps.push(finish(i + 1, node, &raw, action));
    }
    Ok(steps)
}
