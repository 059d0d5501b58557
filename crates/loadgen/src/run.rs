//! Running a scenario: connect the subscribers, produce, watch the target, gather the figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::cli::{Args, HttpVersion, Scenario};
use crate::net::{self, Net, NetError, TlsOptions};
use crate::procstat;
use crate::produce::{self, Plan, ProduceError, Target};
use crate::report::{Report, Value};
use crate::stats::Stats;
use crate::subscriber::{Ctx, Phase, Subscriber, unix_nanos};
use crate::template::{TemplateError, UrlTemplate};
use crate::{h1, h2};

/// A run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad `--url`.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Bad `--header`.
    #[error("--header must be 'Name: value' with a valid name and value, not {0:?}")]
    Header(String),
    /// The scenario needs something the options do not give.
    #[error("{0}")]
    Usage(&'static str),
    /// Network setup failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// Producing failed.
    #[error("producing: {0}")]
    Produce(#[from] ProduceError),
    /// `--fetch-count-cmd` failed or printed no integer.
    #[error("--fetch-count-cmd: {0}")]
    FetchCount(String),
    /// `--pid` names no process.
    #[error("--pid {0}: no such process")]
    NoProcess(u32),
    /// The histograms could not be made.
    #[error("histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
}

/// Parses `Name: value` headers, checking them as HTTP/2 would.
pub fn parse_headers(raw: &[String]) -> Result<Vec<(String, String)>, RunError> {
    raw.iter()
        .map(|h| {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| RunError::Header(h.clone()))?;
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
            http::HeaderName::from_bytes(name.as_bytes())
                .ok()
                .and(http::HeaderValue::from_str(&value).ok())
                .ok_or_else(|| RunError::Header(h.clone()))?;
            Ok((name, value))
        })
        .collect()
}

/// Samples the target's RSS in the background, keeping the peak.
struct Sampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Sampler {
    fn start(proc: Option<procstat::Proc>) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (peak, stop) = (Arc::clone(&peak), Arc::clone(&stop));
            async move {
                let Some(mut proc) = proc else { return };
                while !stop.load(Relaxed) {
                    if let Some(s) = proc.sample() {
                        peak.fetch_max(s.rss_bytes, Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Self { peak, stop, task }
    }

    async fn finish(self) -> Option<u64> {
        self.stop.store(true, Relaxed);
        let _ = self.task.await;
        Some(self.peak.load(Relaxed)).filter(|&p| p > 0)
    }
}

async fn fetch_count(cmd: Option<&str>) -> Result<Option<i64>, RunError> {
    let Some(cmd) = cmd else { return Ok(None) };
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .await
        .map_err(|e| RunError::FetchCount(e.to_string()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| RunError::FetchCount(format!("printed {:?}", text.trim())))
}

/// The subscriber tasks, each returning its subscribers for the final accounting.
type Tasks = Vec<JoinHandle<Vec<Subscriber>>>;

fn spawn_subscribers(args: &Args, ctx: &Arc<Ctx>, n: usize) -> Tasks {
    let own_key_only = ctx.template.has_key();
    let subs = (0..n).map(|i| Subscriber::new(i, ctx.keys, own_key_only));
    match args.http {
        HttpVersion::H1 => subs
            .map(|sub| {
                let ctx = Arc::clone(ctx);
                tokio::spawn(async move { vec![h1::run(sub, ctx).await] })
            })
            .collect(),
        HttpVersion::H2 => {
            let per = args.streams_per_conn.max(1);
            let mut tasks = Vec::new();
            let mut subs = subs.peekable();
            let mut conn = 0;
            while subs.peek().is_some() {
                let group: Vec<Subscriber> = subs.by_ref().take(per).collect();
                tasks.push(tokio::spawn(h2::run_group(group, conn, Arc::clone(ctx))));
                conn += 1;
            }
            tasks
        }
    }
}

/// Waits until `done()` or `limit` passes; returns whether it is done.
async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Waits until `target` deliveries, or until deliveries stall for `stall`, or `limit` passes.
async fn drain(stats: &Stats, target: u64, stall: Duration, limit: Duration) {
    let start = Instant::now();
    let mut last = (stats.delivered_total(), Instant::now());
    while start.elapsed() < limit {
        let now = stats.delivered_total();
        if now >= target {
            return;
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= stall {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Runs the scenario and returns its figures.
pub async fn run(args: &Args) -> Result<Report, RunError> {
    let keys = args.key_count();
    let template = UrlTemplate::parse(&args.url)?;
    if args.scenario == Scenario::Filtered && !template.has_key() {
        return Err(RunError::Usage("filtered needs {key} in --url"));
    }
    let needs_producer = matches!(
        args.scenario,
        Scenario::Fanout | Scenario::Filtered | Scenario::Reconnect
    ) || (args.scenario == Scenario::Replay && args.prefill > 0);
    if needs_producer && args.produce.is_none() {
        return Err(RunError::Usage("this scenario needs --produce"));
    }
    let n = if args.scenario == Scenario::Replay {
        1
    } else {
        args.subscribers
    };
    let headers = parse_headers(&args.headers)?;
    let connections = match args.http {
        HttpVersion::H1 => n,
        HttpVersion::H2 => n.div_ceil(args.streams_per_conn.max(1)),
    } as u64;
    let fd_limit = net::raise_fd_limit(connections + 4096);
    if fd_limit < connections + 32 {
        eprintln!(
            "zilla-loadgen: the open-file limit {fd_limit} leaves room for about {} connections, \
             not {connections}",
            fd_limit.saturating_sub(32)
        );
    }
    let tls = template.tls.then_some(TlsOptions {
        ca: args.ca.as_deref(),
        insecure: args.insecure,
        alpn: match args.http {
            HttpVersion::H1 => b"http/1.1",
            HttpVersion::H2 => b"h2",
        },
    });
    let net = Net::new(&template.host, template.port, args.sources, tls).await?;
    let (phase_tx, phase_rx) = watch::channel(Phase::Run { epoch: 0 });
    let ctx = Arc::new(Ctx {
        template,
        net,
        headers,
        keys,
        stats: Stats::new()?,
        phase: phase_rx,
        connecting: Semaphore::new(args.connect_concurrency.max(1)),
    });
    let stats = &ctx.stats;

    let mut report = Report::default();
    report.set(
        "scenario",
        Value::Text(format!("{:?}", args.scenario).to_lowercase()),
    );
    report.set("label", Value::Text(args.label.clone()));
    report.int("n", Some(n as u64));
    report.int("keys", Some(keys as u64));
    report.set(
        "http",
        Value::Text(match args.http {
            HttpVersion::H1 => "1.1".into(),
            HttpVersion::H2 => format!("2 ({} streams/conn)", args.streams_per_conn.max(1)),
        }),
    );
    report.int("fd_limit", Some(fd_limit));

    let mut proc = match args.pid {
        Some(pid) => Some(procstat::Proc::open(pid).ok_or(RunError::NoProcess(pid))?),
        None => None,
    };
    let mut sample = move || proc.as_mut().and_then(procstat::Proc::sample);
    let sampler = Sampler::start(args.pid.and_then(procstat::Proc::open));
    let fetch_before = fetch_count(args.fetch_count_cmd.as_deref()).await?;
    let before = sample();

    // Replay prefills the topic before its subscriber connects.
    let mut plan = Plan {
        rate: args.rate,
        size: args.size,
        keys,
        total: (args.rate as f64 * args.duration.max(0.0)) as u64,
    };
    let mut produce_errors = 0;
    if args.scenario == Scenario::Replay {
        plan = Plan {
            rate: 0,
            total: args.prefill,
            ..plan
        };
        if let Some(url) = args.produce.as_deref().filter(|_| args.prefill > 0) {
            let mut target = Target::connect(url, &args.kafka_headers, args.partitions).await?;
            let took = produce::run(&mut target, plan).await?;
            produce_errors += target.finish().await?;
            report.float(
                "prefill_records_per_s",
                Some(args.prefill as f64 / took.as_secs_f64().max(1e-9)),
            );
        }
    }

    let connect_start = Instant::now();
    let read_start_nanos = unix_nanos();
    let tasks = spawn_subscribers(args, &ctx, n);
    let all_connected = wait_until(secs(args.connect_timeout), || {
        stats.connected.load(Relaxed) >= n as u64
    })
    .await;
    report.int("connected", Some(stats.connected.load(Relaxed)));
    report.float("connect_s", Some(connect_start.elapsed().as_secs_f64()));
    if !all_connected {
        eprintln!(
            "zilla-loadgen: only {} of {n} subscribers connected within {} s",
            stats.connected.load(Relaxed),
            args.connect_timeout
        );
    }

    let mut window = None;
    match args.scenario {
        Scenario::Idle => {
            tokio::time::sleep(secs(args.duration)).await;
            let after = sample();
            let connected = stats.connected.load(Relaxed).max(1);
            if let (Some(b), Some(a)) = (before, after) {
                report.int("rss_before_bytes", Some(b.rss_bytes));
                report.int("rss_after_bytes", Some(a.rss_bytes));
                report.int(
                    "rss_per_conn_bytes",
                    Some(a.rss_bytes.saturating_sub(b.rss_bytes) / connected),
                );
                report.float("cpu_percent", Some(procstat::cpu_percent(&b, &a)));
            }
        }
        Scenario::Replay => {
            let count = args.replay_count.unwrap_or(args.prefill);
            // Until all are read, or nothing came for --drain seconds.
            drain(
                stats,
                count,
                secs(args.drain.max(1.0)),
                Duration::from_secs(24 * 3600),
            )
            .await;
            let last = stats.last_delivery_nanos.load(Relaxed);
            let took = last.saturating_sub(read_start_nanos) as f64 / 1e9;
            report.int("replayed", Some(stats.delivered_total()));
            report.float(
                "replay_records_per_s",
                (took > 0.0).then(|| stats.delivered_total() as f64 / took),
            );
        }
        Scenario::Fanout | Scenario::Filtered | Scenario::Reconnect => {
            tokio::time::sleep(secs(args.warmup)).await;
            let url = args.produce.as_deref().unwrap_or_default();
            let mut target = Target::connect(url, &args.kafka_headers, args.partitions).await?;
            let cpu_start = sample();
            let delivered_before = stats.delivered_total();
            let start_nanos = unix_nanos();
            let reconnect = async {
                if args.scenario != Scenario::Reconnect {
                    return None;
                }
                tokio::time::sleep(secs(args.reconnect_at.unwrap_or(args.duration / 2.0))).await;
                let resumed_before = stats.resumed.load(Relaxed);
                let dropped = Instant::now();
                let _ = phase_tx.send(Phase::Run { epoch: 1 });
                let all = wait_until(secs(args.connect_timeout), || {
                    stats.resumed.load(Relaxed) - resumed_before >= n as u64
                })
                .await;
                Some((dropped.elapsed(), all))
            };
            let (produced, resume) = tokio::join!(produce::run(&mut target, plan), reconnect);
            produced?;
            produce_errors += target.finish().await?;
            let expected = expected_deliveries(&ctx, n, &plan);
            drain(stats, expected, Duration::from_secs(1), secs(args.drain)).await;
            let cpu_end = sample();
            let delivered_in_window = stats.delivered_total().saturating_sub(delivered_before);
            if let (Some(a), Some(b)) = (cpu_start, cpu_end) {
                report.float("cpu_percent", Some(procstat::cpu_percent(&a, &b)));
                let cpu_seconds = procstat::cpu_seconds(&a, &b);
                report.float("cpu_seconds", Some(cpu_seconds));
                report.float(
                    "cpu_us_per_delivery",
                    (delivered_in_window > 0)
                        .then(|| cpu_seconds * 1e6 / delivered_in_window as f64),
                );
            }
            if let Some((took, all)) = resume {
                report.int("resume_ms", all.then_some(took.as_millis() as u64));
                report.int("resumed", Some(stats.resumed.load(Relaxed)));
            }
            report.int("rate", Some(args.rate));
            report.int("size", Some(args.size as u64));
            report.int("produced", Some(plan.total));
            report.int("expected", Some(expected));
            window = Some(start_nanos);
        }
    }

    let _ = phase_tx.send(Phase::Stop);
    let mut subscribers = Vec::with_capacity(n);
    for task in tasks {
        if let Ok(subs) = task.await {
            subscribers.extend(subs);
        }
    }
    if args.scenario != Scenario::Idle {
        for sub in &subscribers {
            sub.finish(|k| plan.produced(k), stats);
        }
    }

    let delivered = stats.delivered_total();
    report.int("delivered", Some(delivered));
    if let Some(start) = window {
        let last = stats.last_delivery_nanos.load(Relaxed);
        let took = last.saturating_sub(start) as f64 / 1e9;
        report.float(
            "delivered_per_s",
            (took > 0.0).then(|| delivered as f64 / took),
        );
    }
    let latency = stats.latency();
    let has = latency.count > 0;
    report.int("p50_us", has.then_some(latency.p50));
    report.int("p99_us", has.then_some(latency.p99));
    report.int("p999_us", has.then_some(latency.p999));
    report.int("max_us", has.then_some(latency.max));
    let idle = args.scenario == Scenario::Idle;
    report.int("lost", (!idle).then(|| stats.lost_total()));
    report.int("duplicated", (!idle).then(|| stats.duplicated_total()));
    report.int("errors", Some(stats.errors.load(Relaxed)));
    report.int("produce_errors", Some(produce_errors));
    report.int("peak_rss_bytes", sampler.finish().await);
    let fetch_after = fetch_count(args.fetch_count_cmd.as_deref()).await?;
    report.int(
        "fetch_requests",
        fetch_before
            .zip(fetch_after)
            .map(|(b, a)| u64::try_from(a - b).unwrap_or(0)),
    );
    for name in [
        "rate",
        "size",
        "delivered_per_s",
        "rss_per_conn_bytes",
        "cpu_percent",
        "cpu_seconds",
        "cpu_us_per_delivery",
        "resume_ms",
        "replay_records_per_s",
    ] {
        if report.get(name).is_none() {
            report.set(name, Value::Int(None));
        }
    }
    Ok(report)
}

/// Deliveries if nothing is lost: each subscriber gets its key's messages, or all of them.
fn expected_deliveries(ctx: &Ctx, n: usize, plan: &Plan) -> u64 {
    if ctx.template.has_key() {
        (0..n).map(|i| plan.produced(i % ctx.keys)).sum()
    } else {
        n as u64 * plan.total
    }
}
