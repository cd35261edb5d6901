//! The request log, `/api/routes`, `/api/requests`, `hookwarden requests` and the console
//! (`/ui`) in a real headless Chromium driven through chromedriver: sign in, see the
//! routes and a refused request, retry a waiting event now (after confirming), pause and
//! resume a queue route, cancel a bulk action, open a dead letter, redeliver it, see it
//! delivered.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::support::{hmac_hex, now, pairs, send, smartcv_headers, Gateway, Upstream};

const SECRET: &str = "console_secret";
const TOKEN: &str = "console-token-0123456789";

fn config(upstream: &str, dir: &std::path::Path, admin: &str) -> String {
    format!(
        r#"
{admin}
[upstream]
url = "{upstream}"
[queue]
dir = "{}"
max_attempts = 2
backoff = {{ initial = "1h", max = "1h" }}
[[routes]]
name = "smartcv"
path = "/webhooks/smartcv"
provider = "smartcv"
secrets = ["{SECRET}"]
[[routes]]
name = "queued"
path = "/webhooks/queued"
provider = "smartcv"
secrets = ["{SECRET}"]
delivery = "queue"
[[routes]]
name = "hrflow"
path = "/webhooks/hrflow"
provider = "hrflow"
secrets = ["{SECRET}"]
"#,
        dir.display()
    )
}

async fn post(gw: &Gateway, path: &str, id: &str, secret: &str) -> u16 {
    let body = format!(r#"{{"id":"{id}","type":"candidate.hired","data":{{}}}}"#);
    let headers = smartcv_headers(secret, now(), &body);
    gw.post(path, &pairs(&headers), body).await.status
}

/// Polls the admin API until `check` holds for the queued event `id` (the gateway's own
/// record of an attempt's outcome), for at most 10 s.
async fn wait_for_event(gw: &Gateway, id: &str, check: impl Fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = gw
            .api("GET", &format!("/api/events/queued/{id}"), Some(TOKEN))
            .await;
        if status == 200 && check(&body) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id}: {body}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn routes_and_requests_are_listed_with_their_filters_and_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), dir.path(), "")).await;
    assert_eq!(post(&gw, "/webhooks/smartcv", "r1", SECRET).await, 200);
    assert_eq!(post(&gw, "/webhooks/smartcv", "r1", SECRET).await, 200);
    assert_eq!(post(&gw, "/webhooks/smartcv", "r2", "forged").await, 401);
    assert_eq!(gw.post("/nowhere", &[], "{}").await.status, 404);
    let batch = r#"[{"type":"a"},{"type":"b"}]"#;
    let sig = hmac_hex(SECRET, &[batch.as_bytes()]);
    let hf = [
        ("content-type", "application/json"),
        ("http-hrflow-signature", sig.as_str()),
    ];
    assert_eq!(gw.post("/webhooks/hrflow", &hf, batch).await.status, 200);
    assert_eq!(post(&gw, "/webhooks/queued", "q1", SECRET).await, 200);
    upstream.arrivals(4).await;

    let (status, routes) = gw.api("GET", "/api/routes", None).await;
    assert_eq!(status, 200);
    let routes = routes["routes"].as_array().expect("routes").clone();
    let names: Vec<&str> = routes
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["smartcv", "queued", "hrflow"]);
    let smartcv = &routes[0];
    assert_eq!(smartcv["path"], "/webhooks/smartcv");
    assert_eq!(smartcv["provider"], "smartcv");
    assert_eq!(smartcv["delivery"], "sync");
    assert_eq!(smartcv["requests"]["delivered"], 1);
    assert_eq!(smartcv["requests"]["duplicate"], 1);
    assert_eq!(smartcv["requests"]["invalid_signature"], 1);
    assert!(smartcv["last_delivered_at"].is_string());
    assert_eq!(smartcv["last_failure"]["outcome"], "invalid_signature");
    assert_eq!(smartcv["last_failure"]["status"], 401);
    assert!(smartcv.get("queue").is_none(), "sync routes have no queue");
    assert_eq!(routes[1]["delivery"], "queue");
    assert_eq!(routes[1]["queue"]["dead"], 0);
    assert!(routes[1]["queue"]["pending"].is_u64());
    assert_eq!(routes[2]["last_failure"], Value::Null);

    let (_, all) = gw.api("GET", "/api/requests", None).await;
    let all = all["requests"].as_array().expect("requests").clone();
    assert_eq!(all.len(), 6);
    let outcomes: Vec<&str> = all
        .iter()
        .map(|r| r["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(
        outcomes,
        [
            "queued",
            "delivered",
            "not_found",
            "invalid_signature",
            "duplicate",
            "delivered"
        ],
        "newest first"
    );
    let forged = &all[3];
    assert_eq!(forged["route"], "smartcv");
    assert_eq!(forged["status"], 401);
    assert_eq!(forged["event_id"], Value::Null, "it did not verify");
    assert_eq!(forged["type"], Value::Null);
    assert_eq!(forged["peer"], "127.0.0.1");
    assert!(forged["duration_ms"].as_f64().is_some());
    assert!(humantime::parse_rfc3339(forged["at"].as_str().expect("at")).is_ok());
    assert_eq!(all[5]["event_id"], "r1");
    assert_eq!(all[5]["type"], "candidate.hired");
    assert_eq!(all[1]["event_id"], Value::Null, "a batch lists its ids");
    assert_eq!(all[1]["event_ids"].as_array().map(Vec::len), Some(2));
    assert_eq!(all[2]["route"], "_unmatched");
    let text = serde_json::to_string(&all).expect("json");
    assert!(!text.contains(SECRET) && !text.contains("candidate.hired\\\",\\\"data"));

    let (_, one) = gw
        .api(
            "GET",
            "/api/requests?route=smartcv&outcome=invalid_signature",
            None,
        )
        .await;
    assert_eq!(one["requests"].as_array().map(Vec::len), Some(1));
    let (_, two) = gw.api("GET", "/api/requests?limit=2", None).await;
    assert_eq!(two["requests"].as_array().map(Vec::len), Some(2));
    let (_, none) = gw.api("GET", "/api/requests?route=nosuch", None).await;
    assert_eq!(none, json!({"requests": []}));
    for bad in [
        "/api/requests?outcome=lost",
        "/api/requests?limit=0",
        "/api/requests?limit=x",
    ] {
        let (status, body) = gw.api("GET", bad, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_request_log_keeps_admin_request_log_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(
        &upstream.url(),
        dir.path(),
        "[admin]\nrequest_log = 3",
    ))
    .await;
    for i in 0..5 {
        post(&gw, "/webhooks/smartcv", &format!("k{i}"), SECRET).await;
    }
    let (_, kept) = gw.api("GET", "/api/requests?limit=1000", None).await;
    let ids: Vec<&str> = kept["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|r| r["event_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["k4", "k3", "k2"]);
}

#[tokio::test]
async fn the_console_is_guarded_like_the_api_and_holds_no_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = Upstream::start().await;
    let text = config(
        &upstream.url(),
        dir.path(),
        &format!("[admin]\ntoken = \"{TOKEN}\""),
    );
    let gw = Gateway::start(&text).await;
    let get = |path: &'static str, auth: Option<String>| {
        let admin = gw.admin;
        async move {
            let headers: Vec<(&str, &str)> = auth
                .as_deref()
                .map(|a| vec![("authorization", a)])
                .unwrap_or_default();
            send(admin, "GET", path, &headers, "".into()).await
        }
    };
    let signed_out = get("/ui", None).await;
    assert_eq!(signed_out.status, 401, "the sign-in page");
    let page = String::from_utf8_lossy(&signed_out.body).into_owned();
    assert!(page.contains("id=\"sign-in-form\""), "{page}");
    let csp = signed_out.headers["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let signed_in = get("/ui", Some(format!("Bearer {TOKEN}"))).await;
    assert_eq!(signed_in.status, 200);
    assert_eq!(
        signed_in.body, signed_out.body,
        "the same page, no data in it"
    );
    let script = get("/ui/app.js", None).await;
    assert_eq!(script.status, 200);
    assert!(script.headers["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/javascript"));
    assert!(
        !String::from_utf8_lossy(&script.body).contains("innerHTML"),
        "text only"
    );
    assert_eq!(get("/ui/app.css", None).await.status, 200);
    // The admin port's root links to the console and the rest, without the token.
    let index = get("/", None).await;
    assert_eq!(index.status, 200);
    assert!(index.headers["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    let index = String::from_utf8_lossy(&index.body).into_owned();
    for link in ["/ui", "/metrics", "/healthz", "/readyz"] {
        assert!(
            index.contains(&format!("href=\"{link}\"")),
            "{link}: {index}"
        );
    }
    assert_eq!(get("/ui/nosuch", None).await.status, 404);
    drop(gw);

    let dir = tempfile::tempdir().expect("tempdir");
    let open = config(
        &upstream.url(),
        dir.path(),
        "[admin]\nlisten = \"0.0.0.0:9090\"",
    );
    let gw = Gateway::start(&open).await;
    let admin = gw.admin;
    for path in ["/ui", "/ui/app.js", "/api/routes", "/api/requests"] {
        let answer = send(admin, "GET", path, &[], "".into()).await;
        assert_eq!(answer.status, 404, "{path} without a token off loopback");
    }
    // `/` says why there is no console rather than linking to a 404.
    let index = send(admin, "GET", "/", &[], "".into()).await;
    let index = String::from_utf8_lossy(&index.body).into_owned();
    assert!(!index.contains("href=\"/ui\""), "{index}");
    assert!(index.contains("/ui and /api are off"), "{index}");
    assert!(index.contains("href=\"/metrics\""), "{index}");
}

#[tokio::test]
async fn hookwarden_requests_prints_json_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&config(&upstream.url(), dir.path(), "")).await;
    post(&gw, "/webhooks/smartcv", "cli1", "forged").await;
    post(&gw, "/webhooks/smartcv", "cli2", SECRET).await;
    let admin = format!("http://{}", gw.admin);
    let bin = env!("CARGO_BIN_EXE_hookwarden");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args([
                "requests",
                "--admin",
                &admin,
                "--outcome",
                "invalid_signature",
            ])
            .env_remove("HOOKWARDEN_CONFIG")
            .output()
    })
    .await
    .expect("join")
    .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["outcome"], "invalid_signature");
}

/// chromedriver on a free port, started for the test and stopped with it.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = crate::support::free_port();
        let mut child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{binary} is needed for the console's browser test (apt-get install -y chromium chromium-driver; .ci/run does it): {e}")
            });
        // Its own word that it listens is the signal.
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let started = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("started successfully"));
        assert!(started, "chromedriver did not start");
        std::thread::spawn(move || for _ in lines {});
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Multi-threaded: the browser's requests are served while the test awaits the driver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_a_person_finds_a_failing_provider_and_redelivers_a_dead_letter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = Upstream::start_down().await;
    let text = config(
        &upstream.url(),
        dir.path(),
        &format!("[admin]\ntoken = \"{TOKEN}\""),
    );
    let gw = Gateway::start(&text).await;
    // An event the app refused once, waiting an hour for its next attempt; and a
    // provider whose signatures fail since its secret rotated.
    assert_eq!(
        post(&gw, "/webhooks/queued", "evt_dead_1", SECRET).await,
        200
    );
    wait_for_event(&gw, "evt_dead_1", |e| e["attempts"] == 1).await;
    for i in 0..3 {
        assert_eq!(
            post(&gw, "/webhooks/smartcv", &format!("bad{i}"), "rotated-away").await,
            401
        );
    }
    // Provider ids can be long and unbroken; the page must still fit a narrow window.
    let long_id = format!("msg_{}", "2KWPBgLlAfxdpx2AI54pPJ85f4W".repeat(3));
    assert_eq!(post(&gw, "/webhooks/smartcv", &long_id, SECRET).await, 502);

    let profile = tempfile::tempdir().expect("profile");
    let driver = Driver::start();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1400,1450",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session");
    let wait = |selector: &'static str| {
        let browser = browser.clone();
        async move {
            browser
                .wait()
                .at_most(Duration::from_secs(20))
                .for_element(Locator::Css(selector))
                .await
                .unwrap_or_else(|e| panic!("{selector}: {e}"))
        }
    };

    // Clicks what `selector` finds. The console redraws its tables as data arrives, so an
    // element found a moment ago may be gone or covered when clicked: it is found again.
    let click = |selector: &'static str| {
        let browser = browser.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let found = browser
                    .wait()
                    .at_most(Duration::from_secs(20))
                    .for_element(Locator::Css(selector))
                    .await
                    .unwrap_or_else(|e| panic!("{selector}: {e}"));
                match found.click().await {
                    Ok(()) => return,
                    Err(e) if tokio::time::Instant::now() < deadline => {
                        eprintln!("{selector}: clicking again after {e}");
                    }
                    Err(e) => panic!("click {selector}: {e}"),
                }
            }
        }
    };

    // The admin port's address, as someone would type it, links to the console.
    browser
        .goto(&format!("http://{}/", gw.admin))
        .await
        .expect("open the admin port");
    click("a[href='/ui']").await;
    // Signed out: the page asks for the token and shows nothing else.
    wait("#sign-in:not([hidden]) #token")
        .await
        .send_keys(TOKEN)
        .await
        .expect("type");
    click("#sign-in-button").await;

    // The routes, and the failing provider's requests with their outcome.
    wait("#routes tr[data-route='smartcv']").await;
    wait("#routes tr[data-route='queued'] td[data-queue]").await;
    let refused = wait("#requests tr[data-outcome='invalid_signature']").await;
    assert!(refused.text().await.expect("text").contains("401"));
    // Its time: a date and a time, in UTC as the heading says, on one line.
    let (when, wraps, heading) = {
        let cell = refused
            .find(Locator::Css("td.time"))
            .await
            .expect("a time cell");
        let style = browser
            .execute(
                "return getComputedStyle(arguments[0]).whiteSpace;",
                vec![serde_json::to_value(&cell).expect("element")],
            )
            .await
            .expect("style");
        let heading = browser
            .find(Locator::Css("#requests th"))
            .await
            .expect("heading")
            .text()
            .await
            .expect("text");
        (cell.text().await.expect("text"), style, heading)
    };
    let today = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    assert_eq!(when.len(), 19, "{when}");
    assert_eq!(&when[..10], &today[..10], "{when}");
    assert_eq!(wraps, "nowrap");
    assert_eq!(heading, "Time (UTC)");
    // The bars' colours are explained once, under the routes.
    let legend = wait("#legend").await.text().await.expect("legend");
    assert!(
        legend.contains("refused") && legend.contains("retries"),
        "{legend}"
    );
    // The queued route answers providers "queued", but its app is down: said so, and
    // its deliveries bar is not green.
    wait("#routes tr[data-route='queued'] [data-app-failing]").await;
    let deliveries = wait("#routes tr[data-route='queued'] .deliveries .bars")
        .await
        .attr("title")
        .await
        .expect("title");
    assert_eq!(deliveries.as_deref(), Some("1 failed"));

    let status_says = |needle: &'static str| {
        let browser = browser.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let line = browser
                    .find(Locator::Css("#status"))
                    .await
                    .expect("status")
                    .text()
                    .await
                    .expect("text");
                if line.contains(needle) {
                    return line;
                }
                assert!(tokio::time::Instant::now() < deadline, "status: {line}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    // "The app is back" (it is not yet): every waiting event is attempted now, once the
    // person confirmed. Its second failure makes it a dead letter (max_attempts = 2).
    click("#routes tr[data-route='queued'] button[data-lever='retry-now']").await;
    let asked = wait("#confirm:not([hidden]) #confirm-text").await;
    assert!(asked.text().await.expect("text").contains("queued"));
    click("#confirm-yes").await;
    status_says("1 event(s) of queued attempted now").await;
    wait_for_event(&gw, "evt_dead_1", |e| e["state"] == "dead").await;

    // The app is back; a maintenance window: paused, events are stored, none is sent.
    upstream.up();
    for i in 0..4 {
        assert_eq!(
            post(&gw, "/webhooks/smartcv", &format!("evt_ok_{i}"), SECRET).await,
            200
        );
    }
    click("#routes tr[data-route='queued'] button[data-lever='pause']").await;
    wait("#routes tr[data-route='queued'] [data-paused]").await;
    status_says("queued paused").await;
    let sent = upstream.received().len();
    assert_eq!(
        post(&gw, "/webhooks/queued", "evt_paused", SECRET).await,
        200
    );
    click("#routes tr[data-route='queued'] button[data-lever='resume']").await;
    status_says("queued resumed").await;
    wait_for_event(&gw, "evt_paused", |e| {
        e["state"] == "delivered" && e["attempts"] == 1
    })
    .await;
    assert_eq!(upstream.received().len(), sent + 1);
    // The app delivered again: no longer said to be failing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !browser
        .find_all(Locator::Css(
            "#routes tr[data-route='queued'] [data-app-failing]",
        ))
        .await
        .expect("find")
        .is_empty()
    {
        assert!(tokio::time::Instant::now() < deadline, "still failing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A bulk action asks first; cancelled, nothing changes.
    click("#routes tr[data-route='queued'] button[data-lever='redeliver-dead']").await;
    click("#confirm-no").await;
    status_says("Nothing changed").await;
    wait_for_event(&gw, "evt_dead_1", |e| e["state"] == "dead").await;

    // The dead letter: open it, and redeliver it.
    let sent = upstream.received().len();
    click("#events tr[data-state='dead'] button").await;
    wait("#detail[data-state='dead']:not([hidden])").await;
    let body = wait("#detail-body").await.text().await.expect("body");
    assert!(body.contains("evt_dead_1"), "{body}");
    click("#redeliver").await;
    upstream.arrivals(sent + 1).await;
    assert_eq!(upstream.received()[sent].json()["id"], "evt_dead_1");
    // The page refreshes itself: the event shows delivered.
    wait("#detail[data-state='delivered']").await;
    wait("#events tr[data-state='delivered']").await;

    // In a window 760 px wide nothing scrolls sideways.
    browser.set_window_size(760, 1000).await.expect("resize");
    let fits = browser
        .execute(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
            vec![],
        )
        .await
        .expect("widths");
    assert!(
        fits[0].as_u64() <= fits[1].as_u64(),
        "page and window widths: {fits}"
    );
    browser.set_window_size(1400, 1450).await.expect("resize");

    // The whole page for the README, from its top.
    browser
        .execute(
            "window.scrollTo(0, 0); document.activeElement.blur();",
            vec![],
        )
        .await
        .expect("scroll");
    let png = browser.screenshot().await.expect("screenshot");
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).expect("target");
    std::fs::write(target.join("console.png"), &png).expect("write the screenshot");
    if std::env::var_os("HOOKWARDEN_UPDATE_SCREENSHOT").is_some() {
        let readme_image =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/admin/ui/console.png");
        std::fs::write(readme_image, &png).expect("write the README's screenshot");
    }
    browser.close().await.expect("close");
}
