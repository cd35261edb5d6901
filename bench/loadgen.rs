//! Load generator for bench/run.sh: N keep-alive connections sending unique, freshly
//! signed webhook events (a share of them duplicates of earlier ones, as provider
//! retries are), either closed-loop (each connection sends as fast as answers come: max
//! throughput) or open-loop at a fixed total rate (latency measured from each request's
//! *scheduled* send time, so a stalled server cannot hide its queue: no coordinated
//! omission). Prints one JSON line of results.
//!
//! Open-loop send times are released by a timerfd ticking at the send interval, not by
//! tokio's timer: that one ticks in whole milliseconds, so at 20k req/s it released
//! bursts of 20 requests at once and started each up to 2 ms late, which the latency
//! figures then charged to the server under test. A pacer thread was tried too, and
//! its wake-ups alone kept the load generator's core busy.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use hmac::{digest::KeyInit, Mac};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

#[derive(Parser, Clone)]
struct Args {
    /// host:port to send to.
    #[arg(long)]
    target: String,
    #[arg(long, default_value = "/webhooks/smartcv")]
    path: String,
    /// smartcv | standard-webhooks
    #[arg(long, default_value = "smartcv")]
    scheme: String,
    /// The route's secret (standard-webhooks: whsec_...).
    #[arg(long, default_value = "bench-secret")]
    secret: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    #[arg(long, default_value = "5s")]
    duration: humantime::Duration,
    /// Body size in bytes (the JSON event is padded to it).
    #[arg(long, default_value_t = 1024)]
    body_size: usize,
    /// Share of requests that repeat an earlier event.
    #[arg(long, default_value_t = 0.1)]
    duplicates: f64,
    /// Open loop at this many requests per second (all connections together).
    #[arg(long, value_parser = send_rate)]
    rate: Option<f64>,
    /// The upstream's request counter (GET), to check what reached it.
    #[arg(long)]
    count_url: Option<String>,
}

/// A rate the pacer can keep: at least one nanosecond between sends.
fn send_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 1e9 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a rate above 0 and at most 1e9 per second"
        )),
    }
}

#[derive(Default)]
struct Tally {
    ok: u64,
    duplicates: u64,
    errors: u64,
    latency: Option<Histogram<u64>>,
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    let before = upstream_count(&args).await;
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let start = Instant::now();
    let deadline = start + Duration::from(args.duration);
    let mut slots = Vec::new();
    let tasks: Vec<_> = (0..args.connections)
        .map(|conn| {
            let schedule = if args.rate.is_some() {
                let (tx, rx) = mpsc::unbounded_channel();
                slots.push(tx);
                Schedule::Paced(rx)
            } else {
                Schedule::Closed(deadline)
            };
            tokio::spawn(connection(args.clone(), conn, run_id, schedule))
        })
        .collect();
    if let Some(rate) = args.rate {
        tokio::spawn(async move {
            if let Err(e) = pace(slots, rate, start, deadline).await {
                eprintln!("loadgen: pacing stopped: {e}");
            }
        });
    }
    let mut total = Tally {
        latency: Some(Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram")),
        ..Tally::default()
    };
    for t in tasks {
        let t = t.await.expect("task");
        total.ok += t.ok;
        total.duplicates += t.duplicates;
        total.errors += t.errors;
        if let (Some(all), Some(h)) = (total.latency.as_mut(), t.latency.as_ref()) {
            let _ = all.add(h);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = upstream_count(&args).await;
    let h = total.latency.expect("histogram");
    let received = match (before, after) {
        (Some(b), Some(a)) => serde_json::json!(a - b),
        _ => serde_json::Value::Null,
    };
    let out = serde_json::json!({
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "rate": args.rate,
        "connections": args.connections,
        "body_size": args.body_size,
        "scheme": args.scheme,
        "seconds": elapsed,
        "requests": total.ok + total.errors,
        "ok": total.ok,
        "duplicates": total.duplicates,
        "errors": total.errors,
        "rps": (total.ok + total.errors) as f64 / elapsed,
        "upstream_received": received,
        "p50_us": h.value_at_quantile(0.50),
        "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999),
        "max_us": h.max(),
    });
    println!("{out}");
}

async fn upstream_count(args: &Args) -> Option<u64> {
    let url = args.count_url.as_ref()?;
    let uri: http::Uri = url.parse().ok()?;
    let stream = TcpStream::connect(uri.authority()?.as_str()).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    let request = Request::get(uri.path())
        .header("host", "upstream")
        .body(Full::new(Bytes::new()))
        .ok()?;
    let body = sender
        .send_request(request)
        .await
        .ok()?
        .into_body()
        .collect()
        .await
        .ok()?
        .to_bytes();
    std::str::from_utf8(&body).ok()?.trim().parse().ok()
}

/// When a connection sends.
enum Schedule {
    /// As soon as the previous answer came, until the deadline.
    Closed(Instant),
    /// At the times the pacer hands out; latency counts from them.
    Paced(mpsc::UnboundedReceiver<Instant>),
}

/// Hands out send times at `rate` per second from `start` to `deadline`, slot k to
/// connection k mod N. A slot whose connection is still busy waits in its queue, and its
/// latency keeps counting from the scheduled time.
async fn pace(
    slots: Vec<mpsc::UnboundedSender<Instant>>,
    rate: f64,
    start: Instant,
    deadline: Instant,
) -> std::io::Result<()> {
    let every = Duration::from_secs_f64(1.0 / rate);
    let ticks = ticks::Ticks::every(every)?;
    for k in 0u64.. {
        let at = start + every.mul_f64(k as f64);
        if at >= deadline {
            break;
        }
        while Instant::now() < at {
            ticks.next().await?;
        }
        let _ = slots[k as usize % slots.len()].send(at);
    }
    Ok(())
}

#[cfg(target_os = "linux")]
mod ticks {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use std::time::Duration;

    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    struct Fd(TimerFd);

    impl AsRawFd for Fd {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    /// A periodic timerfd in the runtime's own epoll set: no extra thread to wake.
    pub struct Ticks(AsyncFd<Fd>);

    impl Ticks {
        pub fn every(period: Duration) -> io::Result<Self> {
            let timer = TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )?;
            timer.set(
                Expiration::Interval(TimeSpec::from_duration(period)),
                TimerSetTimeFlags::empty(),
            )?;
            // tokio deprecates its safe constructors because a caller could register an
            // fd it does not own; this one owns the timer, which closes only after the
            // registration is dropped. The replacement is `unsafe`, which this crate
            // does not write.
            #[allow(deprecated)]
            let fd = AsyncFd::with_interest(Fd(timer), Interest::READABLE)?;
            Ok(Ticks(fd))
        }

        pub async fn next(&self) -> io::Result<()> {
            loop {
                let mut ready = self.0.readable().await?;
                let read = ready.try_io(|fd| {
                    nix::unistd::read(fd.get_ref().0.as_fd(), &mut [0u8; 8])
                        .map(drop)
                        .map_err(io::Error::from)
                });
                if let Ok(result) = read {
                    return result;
                }
            }
        }
    }
}

/// Elsewhere tokio's millisecond timer has to do, bursts and all.
#[cfg(not(target_os = "linux"))]
mod ticks {
    use std::time::Duration;

    pub struct Ticks(Duration);

    impl Ticks {
        pub fn every(period: Duration) -> std::io::Result<Self> {
            Ok(Ticks(period))
        }

        pub async fn next(&self) -> std::io::Result<()> {
            tokio::time::sleep(self.0).await;
            Ok(())
        }
    }
}

/// One keep-alive connection's share of the load.
async fn connection(args: Args, conn: usize, run_id: u128, mut schedule: Schedule) -> Tally {
    let mut tally = Tally {
        latency: Some(Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram")),
        ..Tally::default()
    };
    let every = if args.duplicates > 0.0 {
        (1.0 / args.duplicates).round().max(1.0) as u64
    } else {
        u64::MAX
    };
    let mut sender = None;
    let mut last_unique: Option<(String, String)> = None;
    let mut seq: u64 = 0;
    loop {
        let scheduled = match &mut schedule {
            Schedule::Paced(slots) => match slots.recv().await {
                Some(at) => at,
                None => break,
            },
            Schedule::Closed(deadline) => {
                let now = Instant::now();
                if now >= *deadline {
                    break;
                }
                now
            }
        };
        seq += 1;
        let (id, body) = match &last_unique {
            Some(previous) if seq.is_multiple_of(every) => previous.clone(),
            _ => {
                let id = format!("evt-{run_id}-{conn}-{seq}");
                let body = event(&id, args.body_size);
                last_unique = Some((id.clone(), body.clone()));
                (id, body)
            }
        };
        if sender.is_none() {
            sender = connect(&args.target).await;
        }
        let Some(s) = sender.as_mut() else {
            tally.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        match send(s, &args, &id, body).await {
            Some((status, duplicate)) if (200..300).contains(&status) => {
                tally.ok += 1;
                tally.duplicates += u64::from(duplicate);
            }
            Some(_) => tally.errors += 1,
            None => {
                tally.errors += 1;
                sender = None;
            }
        }
        let micros = scheduled.elapsed().as_micros() as u64;
        if let Some(h) = tally.latency.as_mut() {
            let _ = h.record(micros.max(1));
        }
    }
    tally
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(target: &str) -> Option<Sender> {
    let stream = TcpStream::connect(target).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(sender)
}

/// A SmartCV-shaped event padded to `size` bytes.
fn event(id: &str, size: usize) -> String {
    let head = format!(
        r#"{{"id":"{id}","type":"resume.created","created":"2024-12-30T10:00:00Z","data":{{"resume":{{"id":"r_1","pad":""#
    );
    let tail = r#""}}}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(pad))
}

/// Sends one signed event; returns the status and whether it was answered as a duplicate.
async fn send(sender: &mut Sender, args: &Args, id: &str, body: String) -> Option<(u16, bool)> {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs()
        .to_string();
    let mut request = Request::post(args.path.as_str())
        .header("host", args.target.as_str())
        .header("content-type", "application/json");
    match args.scheme.as_str() {
        "standard-webhooks" => {
            let key = base64::engine::general_purpose::STANDARD
                .decode(args.secret.trim_start_matches("whsec_"))
                .ok()?;
            let tag = mac(
                &key,
                &[id.as_bytes(), b".", ts.as_bytes(), b".", body.as_bytes()],
            );
            request = request
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.as_str())
                .header(
                    "webhook-signature",
                    format!(
                        "v1,{}",
                        base64::engine::general_purpose::STANDARD.encode(tag)
                    ),
                );
        }
        _ => {
            let tag = mac(
                args.secret.as_bytes(),
                &[ts.as_bytes(), b".", body.as_bytes()],
            );
            request = request.header("x-smartcv-timestamp", ts.as_str()).header(
                "x-smartcv-signature",
                format!("sha256={}", hex::encode(tag)),
            );
        }
    }
    let request = request.body(Full::new(Bytes::from(body))).ok()?;
    sender.ready().await.ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, body.starts_with(br#"{"status":"duplicate""#)))
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}
