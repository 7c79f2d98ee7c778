//! `talky-bench`: measures (does not assert) two hot paths of the REST API against the real
//! server started in this process on `127.0.0.1:0` with a throw-away database.
//!
//! * `csv`   — generates an N-row CSV (default 100 000) and imports it into a campaign
//!   through `POST /api/v1/contacts/bulk?campaign_id=…`; prints rows/s.
//! * `calls` — seeds N calls (default 100 000) for one tenant through the store, then drives
//!   `GET /api/v1/calls` with C concurrent keep-alive clients for T seconds; prints
//!   requests/s and latency percentiles.
//!
//! The database is a temporary SQLite file unless `--engine postgres` is given, in which case
//! a fresh database is created on `TALKY_TEST_POSTGRES_URL` and dropped afterwards. Results
//! and the commands that produced them are recorded in `docs/benchmarks.md`.
//!
//! The load generator shares the machine (and this process's runtime) with the server, so
//! the numbers are a lower bound of what the server alone would do.

use anyhow::{bail, Context};
use async_trait::async_trait;
use chrono::{Duration as ChronoDuration, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use std::sync::Arc;
use std::time::{Duration, Instant};
use talky_core::ids::TenantId;
use talky_core::model::{CallStatus, Outcome};
use talky_core::ports::mail::{MailError, MailMessage, Mailer};
use talky_core::ports::store::{NewCall, NewCampaign, Store};
use talky_server::config::{Config, Secret};
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(
    name = "talky-bench",
    about = "Measures Talky's CSV import and calls-list throughput"
)]
struct Cli {
    /// Database engine of the throw-away database.
    #[arg(long, value_enum, default_value_t = EngineArg::Sqlite, global = true)]
    engine: EngineArg,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EngineArg {
    Sqlite,
    /// A fresh database on `TALKY_TEST_POSTGRES_URL`, dropped at the end.
    Postgres,
}

#[derive(Subcommand)]
enum Cmd {
    /// Import a generated CSV into a campaign through `POST /api/v1/contacts/bulk`.
    Csv {
        /// Data rows in the generated file.
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// Repeat the import this many times (each into a fresh campaign).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Drive `GET /api/v1/calls` on a tenant with many calls.
    Calls {
        /// Calls seeded for the tenant.
        #[arg(long, default_value_t = 100_000)]
        calls: usize,
        /// Concurrent keep-alive clients.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Measured seconds (after a 2 s warm-up).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Path and query of each request (another path is useful to compare against).
        #[arg(long, default_value = "/api/v1/calls?page=1&page_size=20")]
        path: String,
    },
}

/// Hands magic links to the benchmark instead of writing `.eml` files.
struct ChannelMailer(mpsc::UnboundedSender<MailMessage>);

#[async_trait]
impl Mailer for ChannelMailer {
    async fn send(&self, msg: MailMessage) -> Result<(), MailError> {
        let _ = self.0.send(msg);
        Ok(())
    }
}

/// The server under test and what the benchmark needs to talk to it.
struct Bench {
    base: String,
    http: reqwest::Client,
    store: Arc<dyn Store>,
    mail: mpsc::UnboundedReceiver<MailMessage>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pg: Option<talky_store::testing::TestDb>,
    dir: std::path::PathBuf,
}

impl Bench {
    async fn start(engine: EngineArg, tune: impl FnOnce(&mut Config)) -> anyhow::Result<Bench> {
        let dir =
            std::env::temp_dir().join(format!("talky-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let (store, pg): (Arc<dyn Store>, _) = match engine {
            EngineArg::Sqlite => {
                let url = format!("sqlite://{}/talky.db", dir.display());
                (
                    talky_store::connect(&url).await.context("opening SQLite")?,
                    None,
                )
            }
            EngineArg::Postgres => {
                if std::env::var("TALKY_TEST_POSTGRES_URL").map_or(true, |s| s.is_empty()) {
                    bail!("--engine postgres needs TALKY_TEST_POSTGRES_URL (an admin URL; a fresh database is created)");
                }
                let db = talky_store::testing::TestDb::new(talky_store::Engine::Postgres).await;
                (Arc::new(db.store.clone()) as Arc<dyn Store>, Some(db))
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut cfg = Config {
            data_dir: dir.clone(),
            listen: addr,
            ..Config::default()
        };
        cfg.auth.jwt_secret = Some(Secret("bench-secret-bench-secret-bench-secret!".into()));
        cfg.auth.ip_rate_per_min = 1_000_000;
        tune(&mut cfg);
        let (tx, rx) = mpsc::unbounded_channel();
        // The configured defaults (simulated carrier, local recordings, …), with mail
        // captured in-process so the benchmark can read its own sign-in link.
        let mut services = talky_server::app::Services::from_config(&cfg, store.clone())?;
        services.mailer = Arc::new(ChannelMailer(tx));
        let state = talky_server::app::build_state(cfg, services)?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(talky_server::app::serve(listener, state, async {
            let _ = stop_rx.await;
        }));
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(600))
            .build()?;
        Ok(Bench {
            base: format!("http://{addr}"),
            http,
            store,
            mail: rx,
            stop: Some(stop_tx),
            server: Some(server),
            pg,
            dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Registers a tenant by magic link; returns (access token, tenant id).
    async fn register(&mut self, email: &str) -> anyhow::Result<(String, TenantId)> {
        let r = self
            .http
            .post(self.url("/api/v1/auth/register"))
            .json(&serde_json::json!({"email": email, "business_name": "Bench Co", "plan_id": "enterprise"}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("register: {} {}", r.status(), r.text().await?);
        }
        let mail = tokio::time::timeout(Duration::from_secs(10), self.mail.recv())
            .await
            .context("no sign-in mail within 10 s")?
            .context("mailer closed")?;
        let link = mail.link.context("mail without link")?;
        let token = link
            .split("token=")
            .nth(1)
            .context("link without token")?
            .to_string();
        let v: serde_json::Value = self
            .http
            .post(self.url("/api/v1/auth/verify"))
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await?
            .json()
            .await?;
        let access = v["access_token"]
            .as_str()
            .context("verify: no access_token")?
            .to_string();
        let tenant = v["user"]["tenant_id"]
            .as_str()
            .context("verify: no tenant_id")?
            .parse()
            .context("verify: bad tenant_id")?;
        Ok((access, tenant))
    }

    async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
        if let Some(db) = self.pg.take() {
            db.cleanup().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CSV of `rows` distinct, valid US numbers with names, e-mail and one custom column.
fn generate_csv(rows: usize) -> Vec<u8> {
    let mut out = String::with_capacity(rows * 80 + 64);
    out.push_str("phone_number,first_name,last_name,email,company,notes\n");
    for i in 0..rows {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "+1{}{:07},First{i},Last{i},user{i}@example.com,Company {},\"Note, with comma {i}\"",
            212 + (i / 10_000_000) % 700,
            i % 10_000_000,
            i % 997
        );
    }
    out.into_bytes()
}

/// A `multipart/form-data` body with one `file` part.
fn multipart_body(boundary: &str, filename: &str, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(data.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

async fn bench_csv(engine: EngineArg, rows: usize, runs: usize) -> anyhow::Result<()> {
    let csv = generate_csv(rows);
    let max_bytes = (csv.len() + 1024 * 1024).max(10 * 1024 * 1024);
    let mut bench = Bench::start(engine, |cfg| {
        // 100 000 rows is above the default `import.max_rows` (50 000); raised for the benchmark.
        cfg.import.max_rows = cfg.import.max_rows.max(rows);
        cfg.import.max_bytes = cfg.import.max_bytes.max(max_bytes);
    })
    .await?;
    let (token, tenant) = bench.register("csv-bench@example.com").await?;
    println!(
        "csv: {rows} rows, {:.1} MiB, engine {}",
        csv.len() as f64 / (1024.0 * 1024.0),
        engine_name(engine)
    );
    let mut rates = Vec::new();
    for run in 1..=runs.max(1) {
        // A fresh campaign per run, so every run imports every row (no duplicates).
        let campaign = bench
            .store
            .create_campaign(
                tenant,
                NewCampaign {
                    name: format!("CSV bench {run}"),
                    system_prompt: "You are a benchmark.".into(),
                    ..Default::default()
                },
                Utc::now(),
            )
            .await?
            .id;
        let boundary = format!("talkybench{}", uuid::Uuid::new_v4().simple());
        let body = multipart_body(&boundary, "leads.csv", &csv);
        let started = Instant::now();
        let r = bench
            .http
            .post(bench.url(&format!("/api/v1/contacts/bulk?campaign_id={campaign}")))
            .bearer_auth(&token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await?;
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        let elapsed = started.elapsed();
        if !status.is_success() {
            bail!("import failed: {status} {v}");
        }
        let imported = v["imported"].as_u64().unwrap_or(0);
        let rate = rows as f64 / elapsed.as_secs_f64();
        rates.push(rate);
        println!(
            "run {run}: {:.3} s, {rate:.0} rows/s (imported {imported}, failed {}, duplicates_skipped {})",
            elapsed.as_secs_f64(),
            v["failed"],
            v["duplicates_skipped"]
        );
        if imported as usize != rows {
            println!(
                "  warning: expected {rows} imported rows; errors: {}",
                v["errors"]
            );
        }
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "csv summary: best {:.0} rows/s, median {:.0} rows/s over {} run(s)",
        rates.last().copied().unwrap_or(0.0),
        rates[rates.len() / 2],
        rates.len()
    );
    bench.shutdown().await;
    Ok(())
}

const SEED_BATCH: usize = 2_000;

/// Seeds `n` calls spread over the last 90 days with a mix of statuses and outcomes.
async fn seed_calls(store: &Arc<dyn Store>, tenant: TenantId, n: usize) -> anyhow::Result<()> {
    let now = Utc::now();
    let mixes: [(CallStatus, Option<Outcome>, i64); 5] = [
        (CallStatus::Completed, Some(Outcome::Answered), 95),
        (CallStatus::Completed, Some(Outcome::GoalAchieved), 180),
        (CallStatus::NoAnswer, Some(Outcome::NoAnswer), 0),
        (CallStatus::Busy, Some(Outcome::Busy), 0),
        (CallStatus::Completed, Some(Outcome::Voicemail), 25),
    ];
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(SEED_BATCH);
        let inserts = (done..done + batch).map(|i| {
            let (status, outcome, duration) = mixes[i % mixes.len()];
            // Roughly one call every 78 s over 90 days, newest last.
            let offset = ((n - i) as i64) * 90 * 86_400 / n.max(1) as i64;
            let mut c = NewCall::new(
                format!("+1212{:07}", i % 10_000_000),
                now - ChronoDuration::seconds(offset),
            );
            c.status = status;
            c.outcome = outcome;
            c.duration_seconds = duration;
            let store = store.clone();
            async move { store.insert_call(tenant, c).await }
        });
        for r in futures::future::join_all(inserts).await {
            r?;
        }
        done += batch;
    }
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn bench_calls(
    engine: EngineArg,
    calls: usize,
    concurrency: usize,
    seconds: u64,
    path: String,
) -> anyhow::Result<()> {
    let mut bench = Bench::start(engine, |_| {}).await?;
    let (token, tenant) = bench.register("calls-bench@example.com").await?;
    let started = Instant::now();
    seed_calls(&bench.store, tenant, calls).await?;
    let seeded = started.elapsed();
    println!(
        "calls: seeded {calls} calls in {:.1} s ({:.0} rows/s), engine {}",
        seeded.as_secs_f64(),
        calls as f64 / seeded.as_secs_f64(),
        engine_name(engine)
    );

    let url = bench.url(&path);
    // Sanity check before measuring.
    let r = bench.http.get(&url).bearer_auth(&token).send().await?;
    let status = r.status();
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("GET {path}: {status} {v}");
    }
    println!(
        "GET {path}: total {}, {} items per page",
        v["total"],
        v["items"].as_array().map_or(0, Vec::len)
    );

    let warmup = Duration::from_secs(2);
    let measure = Duration::from_secs(seconds.max(1));
    let t0 = Instant::now();
    let (measure_start, measure_end) = (t0 + warmup, t0 + warmup + measure);
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (http, url, token) = (bench.http.clone(), url.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let mut lat_us: Vec<u64> = Vec::with_capacity(64 * 1024);
            let mut errors = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= measure_end {
                    break;
                }
                let ok = match http.get(&url).bearer_auth(&token).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let done = Instant::now();
                if sent >= measure_start && done <= measure_end {
                    if ok {
                        lat_us.push(done.duration_since(sent).as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
            }
            (lat_us, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (lat, e) = w.await?;
        all.extend(lat);
        errors += e;
    }
    all.sort_unstable();
    let rps = all.len() as f64 / measure.as_secs_f64();
    println!(
        "{concurrency} clients, {}s: {} ok requests, {errors} errors, {rps:.0} req/s",
        measure.as_secs(),
        all.len()
    );
    println!(
        "latency ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
        percentile(&all, 0.50),
        percentile(&all, 0.90),
        percentile(&all, 0.99),
        all.last().map_or(0.0, |m| *m as f64 / 1000.0)
    );
    bench.shutdown().await;
    Ok(())
}

fn engine_name(e: EngineArg) -> &'static str {
    match e {
        EngineArg::Sqlite => "sqlite",
        EngineArg::Postgres => "postgres",
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    println!(
        "talky-bench: {} CPU(s), build {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if cfg!(debug_assertions) {
            "debug (use --release for real numbers)"
        } else {
            "release"
        }
    );
    match cli.cmd {
        Cmd::Csv { rows, runs } => bench_csv(cli.engine, rows, runs).await,
        Cmd::Calls {
            calls,
            concurrency,
            seconds,
            path,
        } => bench_calls(cli.engine, calls, concurrency, seconds, path).await,
    }
}
