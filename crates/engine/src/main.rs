//! `zilla`: start or validate a Zilla-compatible configuration.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use engine::jwks_watch::JwksWatch;
use engine::prometheus::Exporter;
use engine::reload::{Live, Outcome};
use engine::telemetry::{self, StdoutExporter};
use engine::{Registry, load_file, runtime, scrape};
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use zilla_config::factory::RunOptions;
use zilla_config::resolve::Resolve;

/// Exit status for a configuration error.
const EXIT_CONFIG: u8 = 2;
/// Exit status for a failure to start.
const EXIT_START: u8 = 1;

/// How often the configuration file and the files it names are looked at for changes.
const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Parser)]
#[command(
    name = "zilla",
    version,
    about = "SSE–Kafka proxy that reads Zilla's zilla.yaml",
    after_help = "Examples:\n  \
        zilla start -c zilla.yaml\n  \
        zilla start -c zilla.yaml --resolve kafka:29092:127.0.0.1:9092   \
        (its kafka:29092 is the broker on 127.0.0.1:9092)\n  \
        zilla validate -c zilla.yaml\n  \
        zilla metrics -c zilla.yaml --binding north_tcp_server   \
        (the running engine's metrics, from its prometheus exporter)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the engine with a configuration.
    Start {
        /// Configuration file.
        #[arg(short = 'c', long = "config", default_value = "zilla.yaml")]
        config: PathBuf,
        /// Worker threads (default: one per core).
        #[arg(short = 'w', long = "workers")]
        workers: Option<usize>,
        /// Log more (debug level), as Zilla's -v.
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
        /// Accepted for compatibility with Zilla's `start -e` (errors are always shown).
        #[arg(short = 'e', long = "exception-traces", hide = true)]
        exceptions: bool,
        /// Connect to ADDRESS[:PORT] whenever a tcp client is asked for HOST:PORT, instead of
        /// looking HOST up (as curl's --resolve); repeatable. For a configuration written for
        /// another network, e.g. `--resolve kafka:29092:127.0.0.1:9092` for `servers: [kafka:29092]`.
        #[arg(long = "resolve", value_name = "HOST:PORT:ADDRESS[:PORT]")]
        resolve: Vec<Resolve>,
    },
    /// Check a configuration and exit: 0 when valid, 2 when not.
    Validate {
        /// Configuration file.
        #[arg(short = 'c', long = "config", default_value = "zilla.yaml")]
        config: PathBuf,
        /// Also print the bindings that `type: asyncapi` bindings expand to.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Print the metrics of the engine running with a configuration, scraped from its
    /// prometheus exporter.
    Metrics {
        /// Configuration file (it names the exporter's port and path).
        #[arg(short = 'c', long = "config", default_value = "zilla.yaml")]
        config: PathBuf,
        /// Only this namespace (a configuration's `name`).
        #[arg(long)]
        namespace: Option<String>,
        /// Only this binding.
        #[arg(long)]
        binding: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { config, verbose } => {
            init_logging(false);
            match load_file(&config, &Registry::builtin(), &RunOptions::default()) {
                Ok(built) => {
                    println!(
                        "{}: configuration '{}' is valid ({} bindings)",
                        config.display(),
                        built.name,
                        built.bindings.len()
                    );
                    if verbose {
                        for line in &built.generated {
                            println!("  {line}");
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::from(EXIT_CONFIG)
                }
            }
        }
        Command::Metrics {
            config,
            namespace,
            binding,
        } => {
            init_logging(false);
            metrics(&config, &scrape::Filter { namespace, binding })
        }
        Command::Start {
            config,
            workers,
            verbose,
            exceptions: _,
            resolve,
        } => {
            let exporter = init_logging(verbose);
            for entry in &resolve {
                tracing::info!(%entry, "resolve");
            }
            start(config, workers, &RunOptions { resolve }, &exporter)
        }
    }
}

fn start(
    config: PathBuf,
    workers: Option<usize>,
    run: &RunOptions,
    exporter: &StdoutExporter,
) -> ExitCode {
    let began = Instant::now();
    // Kept for reloads: the factories share what replaced bindings take over (sockets).
    let registry = Registry::builtin();
    let built = match load_file(&config, &registry, run) {
        Ok(built) => built,
        Err(err) => {
            eprintln!("error: {err}");
            let text = std::fs::read_to_string(&config).unwrap_or_default();
            if telemetry::names_stdout_exporter(&text) {
                exporter.enable();
                exporter.export(Level::ERROR, "config_error", &err.to_string());
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if built.stdout_telemetry {
        exporter.enable();
    }
    let workers = workers
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let signals = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start: {err}");
            return ExitCode::from(EXIT_START);
        }
    };
    // Listen for signals before reporting ready, so none is missed.
    let waiter = signals.block_on(async { Signals::new() });
    let waiter = match waiter {
        Ok(w) => w,
        Err(err) => {
            eprintln!("error: cannot handle signals: {err}");
            return ExitCode::from(EXIT_START);
        }
    };
    let start_error = |err: &dyn std::fmt::Display| {
        eprintln!("error: {err}");
        exporter.export(Level::ERROR, "start_error", &err.to_string());
        ExitCode::from(EXIT_START)
    };
    // The exporter answers (its health check: 503) while the bindings start.
    let readiness = built.metrics.readiness();
    let serving = match Exporter::bind(&built.prometheus).and_then(|e| {
        e.map(|e| e.serve(built.metrics.clone(), readiness.clone()))
            .transpose()
    }) {
        Ok(serving) => serving,
        Err(err) => return start_error(&err),
    };
    let jwks_watch = match built.graph.jwks.watch() {
        Ok(watch) => watch,
        Err(err) => return start_error(&format!("cannot watch JWKS files: {err}")),
    };
    let running = match runtime::start(&built.bindings, workers) {
        Ok(running) => running,
        Err(err) => return start_error(&err),
    };
    readiness.set_started();
    tracing::info!(
        config = %config.display(),
        name = %built.name,
        bindings = built.bindings.len(),
        workers,
        elapsed_ms = began.elapsed().as_millis() as u64,
        "started"
    );
    let mut live = Live::new(&config, registry, run.clone(), &built);
    drop(built);
    let signal = signals.block_on(async {
        let mut waiter = waiter;
        let mut watch = tokio::time::interval(WATCH_INTERVAL);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                signal = waiter.recv() => match signal {
                    Signal::Stop(name) => return name,
                    Signal::Hangup => reload(&mut live, &running, &jwks_watch, "SIGHUP", exporter),
                },
                _ = watch.tick() => {
                    if live.changed() {
                        reload(&mut live, &running, &jwks_watch, "file changed", exporter);
                    }
                }
            }
        }
    });
    tracing::info!(signal, "stopping");
    let clean = running.stop();
    drop(serving);
    if !clean {
        tracing::warn!("some streams did not end within the grace period; exiting anyway");
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Reloads the configuration and logs what changed, or why nothing did.
fn reload(
    live: &mut Live,
    running: &runtime::Running,
    jwks_watch: &JwksWatch,
    cause: &str,
    exporter: &StdoutExporter,
) {
    let outcome = live.reload(running);
    // The guards the new configuration built reload their JWKS files too.
    jwks_watch.follow(live.jwks());
    match outcome {
        Ok(Outcome {
            changed,
            refreshed,
            extended,
            added,
            removed,
            kept,
            ended,
            needs_restart,
        }) => {
            tracing::info!(
                cause,
                changed = ?changed,
                refreshed = ?refreshed,
                extended = ?extended,
                added = ?added,
                removed = ?removed,
                kept,
                streams_ended = ended,
                "configuration reloaded"
            );
            if let Some(part) = needs_restart {
                tracing::warn!("configuration reloaded: {part} changed and apply after a restart");
            }
        }
        Err(err) => {
            tracing::error!(
                cause,
                "configuration not reloaded, the running one goes on: {err}"
            );
            exporter.export(Level::ERROR, "config_error", &err.to_string());
        }
    }
}

/// `zilla metrics`: scrapes the engine running with `config` and prints a table.
fn metrics(config: &std::path::Path, filter: &scrape::Filter) -> ExitCode {
    let built = match load_file(config, &Registry::builtin(), &RunOptions::default()) {
        Ok(built) => built,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let Some(endpoint) = built.prometheus.first() else {
        eprintln!(
            "error: {}: no prometheus exporter in telemetry.exporters; add one, e.g. \
             prometheus: {{type: prometheus, options: {{endpoints: [{{scheme: http, port: 7190}}]}}}}",
            config.display()
        );
        return ExitCode::from(EXIT_CONFIG);
    };
    let samples = match scrape::scrape(endpoint, std::time::Duration::from_secs(5)) {
        Ok(samples) => samples,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_START);
        }
    };
    match scrape::table(&samples, filter) {
        Some(table) => print!("{table}"),
        None => eprintln!("no series match"),
    }
    ExitCode::SUCCESS
}

struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

/// What a signal asks for.
enum Signal {
    /// Stop (SIGINT, SIGTERM).
    Stop(&'static str),
    /// Reload the configuration (SIGHUP).
    Hangup,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::Stop("SIGINT"),
            _ = self.terminate.recv() => Signal::Stop("SIGTERM"),
            _ = self.hangup.recv() => Signal::Hangup,
        }
    }
}

/// Installs the logs; returns the stdout exporter's switch, off until the configuration
/// asks for it.
fn init_logging(verbose: bool) -> StdoutExporter {
    let default = if verbose { "debug" } else { "info" };
    let filter = EnvFilter::try_from_env("ZILLA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let human = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(filter);
    let exporter = StdoutExporter::default();
    tracing_subscriber::registry()
        .with(human)
        .with(exporter.clone().with_filter(LevelFilter::INFO))
        .init();
    exporter
}
