//! HTTP load on loopback (bench binary): the real server (in process, its own tokio
//! runtime) answering single-customer `POST /v1/predict` requests from a blocking
//! keep-alive load generator.
//!
//! 1. Fixed rate (`CHURN_LOAD_RATE`, default 5000 requests/s, over `CHURN_LOAD_CONNS`
//!    connections, for `CHURN_LOAD_SECS` s): latency measured from each request's
//!    scheduled send time, so a stall counts against every request it delays
//!    (no coordinated omission).
//! 2. The same fixed rate while `CHURN_LOAD_ATTACKERS` (default 200) connections send a
//!    request head one byte a second and others open and send nothing (slowloris): the
//!    legitimate latency, and how the header timeout (1 s here) closes the attackers.
//! 3. Maximum throughput, closed loop, against the churn server and against a trivial
//!    axum handler on the same route with a static JSON answer.
//!
//! The churn server runs behind its own connection layer (`churn_serve::serve`: the
//! connection cap, header timeout and body limits it has in production).

mod common;

use churn_serve::registry::{LoadLimits, Registry};
use churn_serve::{App, Limits};
use churn_testkit::http::Client;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap()
}

/// Starts the churn server, with its connection layer, on a free port in a background
/// runtime.
fn start_churn(app: Arc<App>, threads: usize) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime(threads).block_on(async move {
            let listener = churn_serve::conn::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            churn_serve::serve(listener, app, std::future::pending())
                .await
                .unwrap();
        })
    });
    rx.recv().unwrap()
}

/// Keeps `n` connections open that never finish a request head (half send one byte a
/// second, half nothing), opening a new one for each the server closes. Returns how
/// many were opened and how many the server closed.
fn slowloris(addr: SocketAddr, n: usize, secs: u64) -> std::thread::JoinHandle<(usize, usize)> {
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let open = |k: usize| {
            let s = std::net::TcpStream::connect(addr).ok()?;
            s.set_nonblocking(true).ok()?;
            Some((s, k.is_multiple_of(2)))
        };
        let mut conns: Vec<(std::net::TcpStream, bool)> = (0..n).filter_map(open).collect();
        let mut opened = conns.len();
        let head = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        let mut closed = 0;
        for tick in 0..secs {
            conns.retain_mut(|(s, drips)| {
                let mut buf = [0u8; 64];
                let gone = match s.read(&mut buf) {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                };
                let gone =
                    gone || (*drips && s.write_all(&[head[tick as usize % head.len()]]).is_err());
                if gone {
                    closed += 1;
                }
                !gone
            });
            while conns.len() < n {
                match open(opened) {
                    Some(c) => {
                        conns.push(c);
                        opened += 1;
                    }
                    None => break,
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        (opened, closed)
    })
}

/// Starts a router on a free port in a background runtime.
fn start(router: axum::Router, threads: usize) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime(threads).block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router).await.unwrap();
        })
    });
    rx.recv().unwrap()
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn fixed_rate(addr: SocketAddr, body: &[u8], rate: u64, conns: u64, secs: u64) {
    let interval = Duration::from_nanos(1_000_000_000 * conns / rate);
    let per_conn = rate * secs / conns;
    let start = Instant::now() + Duration::from_millis(100);
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let body = body.to_vec();
            std::thread::spawn(move || {
                let mut client = Client::connect(addr).unwrap();
                let offset = interval * c as u32 / conns as u32;
                let mut lat = Vec::with_capacity(per_conn as usize);
                let mut errors = 0;
                for k in 0..per_conn {
                    let due = start + offset + interval * k as u32;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    match client.post("/v1/predict", &body) {
                        Ok(r) if r.status == 200 => {}
                        _ => errors += 1,
                    }
                    lat.push(due.elapsed().as_nanos() as u64);
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t.join().unwrap();
        all.extend(l);
        errors += e;
    }
    let took = start.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "fixed rate {rate}/s over {conns} connections, {secs} s: {} requests ({:.0}/s achieved), {errors} errors; latency us: p50 {:.0}, p90 {:.0}, p99 {:.0}, p99.9 {:.0}, max {:.0}",
        all.len(),
        all.len() as f64 / took,
        percentile(&all, 0.5),
        percentile(&all, 0.9),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
        percentile(&all, 1.0),
    );
}

fn max_throughput(addr: SocketAddr, body: &[u8], conns: u64, secs: u64) -> f64 {
    let stop = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let body = body.to_vec();
            std::thread::spawn(move || {
                let mut client = Client::connect(addr).unwrap();
                let mut n = 0u64;
                while Instant::now() < stop {
                    let r = client.post("/v1/predict", &body).unwrap();
                    assert_eq!(r.status, 200, "{}", r.text());
                    n += 1;
                }
                n
            })
        })
        .collect();
    let n: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    n as f64 / secs as f64
}

fn main() {
    let rate = common::env("CHURN_LOAD_RATE", 5000);
    let conns = common::env("CHURN_LOAD_CONNS", 4);
    let secs = common::env("CHURN_LOAD_SECS", 10);
    let threads = common::env("CHURN_LOAD_SERVER_THREADS", 1) as usize;
    let data = tempfile::tempdir().unwrap();
    let fx = churn_testkit::simulate(data.path(), 1000, 3);
    let models = tempfile::tempdir().unwrap();
    // Trained and saved as `churn-train train` does: with the reference profile live
    // drift is measured against.
    let dir = churn_testkit::train_and_publish(&fx, models.path(), "churn");
    let (a, _) = churn_model::artifact::load(&dir).unwrap();
    let (_, table) = churn_testkit::latest_rows(&fx);
    let scorer = churn_scoring::Scorer::new(a);
    // One customer's row, every feature given (as a client sends it).
    let body = common::request_body(&table, 1);
    println!(
        "request body {} bytes ({} features); server runtime threads {threads}",
        body.len(),
        scorer.schema().len()
    );

    let attackers = common::env("CHURN_LOAD_ATTACKERS", 200) as usize;
    let registry = Registry::open(models.path(), Default::default()).unwrap();
    let limits = Limits {
        header_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let app = Arc::new(App::new(registry, None, limits, None));
    let churn = start_churn(app, threads);
    let trivial = start(
        axum::Router::new().route(
            "/v1/predict",
            axum::routing::post(|_body: axum::body::Bytes| async {
                axum::Json(serde_json::json!({"ok": true}))
            }),
        ),
        threads,
    );
    // Warm up.
    max_throughput(churn, &body, 2, 1);
    fixed_rate(churn, &body, rate, conns, secs);
    println!("the same while {attackers} slowloris connections are opened and kept trying:");
    let attack = slowloris(churn, attackers, secs + 2);
    fixed_rate(churn, &body, rate, conns, secs);
    let (opened, closed) = attack.join().unwrap();
    println!(
        "slowloris: {opened} connections opened, {closed} closed by the server (header timeout 1 s)"
    );
    let mut churn_rps = Vec::new();
    let mut trivial_rps = Vec::new();
    for _ in 0..3 {
        churn_rps.push(max_throughput(churn, &body, conns, 5));
        trivial_rps.push(max_throughput(trivial, &body, conns, 5));
    }
    churn_rps.sort_by(f64::total_cmp);
    trivial_rps.sort_by(f64::total_cmp);
    println!(
        "max throughput over {conns} connections (median of 3 x 5 s): churn-serve {:.0}/s, trivial axum handler {:.0}/s: {:.0} %",
        churn_rps[1],
        trivial_rps[1],
        100.0 * churn_rps[1] / trivial_rps[1]
    );

    // Live drift's cost: the same server with the drift window off, alternating runs.
    let no_drift = Registry::open(
        models.path(),
        LoadLimits {
            drift_window: Duration::ZERO,
            ..LoadLimits::default()
        },
    )
    .unwrap();
    let no_drift = start_churn(
        Arc::new(App::new(no_drift, None, Limits::default(), None)),
        threads,
    );
    max_throughput(no_drift, &body, 2, 1);
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        on.push(1e6 / max_throughput(churn, &body, 1, 3));
        off.push(1e6 / max_throughput(no_drift, &body, 1, 3));
    }
    on.sort_by(f64::total_cmp);
    off.sort_by(f64::total_cmp);
    println!(
        "live drift: single-request latency over 1 connection (median of 5 x 3 s, alternating): {:.1} us with the drift window, {:.1} us without: {:+.1} %",
        on[2],
        off[2],
        100.0 * (on[2] / off[2] - 1.0)
    );
}
