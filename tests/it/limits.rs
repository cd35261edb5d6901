//! Rate limits count verified deliveries only, per route, and refill with time (moved
//! by hand on an injected clock, never slept on).

use std::time::{Duration, SystemTime};

use hookwarden::Clock;

use crate::support::{pairs, smartcv_headers, Gateway, Upstream};

const SECRET: &str = "sc";

fn config(upstream: &str) -> String {
    format!(
        r#"
[upstream]
url = "{upstream}"
[[routes]]
name = "limited"
path = "/limited"
provider = "smartcv"
secrets = ["{SECRET}"]
rate_limit = {{ per_second = 1, burst = 3 }}
[[routes]]
name = "other"
path = "/other"
provider = "smartcv"
secrets = ["{SECRET}"]
rate_limit = {{ per_second = 1, burst = 3 }}
"#
    )
}

struct Env {
    gw: Gateway,
    upstream: Upstream,
    clock: Clock,
    next: usize,
}

impl Env {
    async fn new() -> Self {
        let upstream = Upstream::start().await;
        let clock = Clock::manual(SystemTime::now());
        let gw = Gateway::start_at(&config(&upstream.url()), clock.clone()).await;
        Env {
            gw,
            upstream,
            clock,
            next: 0,
        }
    }

    fn ts(&self) -> i64 {
        hookwarden::unix_seconds(self.clock.now())
    }

    async fn deliver(&mut self, path: &str) -> crate::support::Answer {
        self.next += 1;
        let body = format!(r#"{{"id":"e{}","type":"t"}}"#, self.next);
        self.gw
            .post(
                path,
                &pairs(&smartcv_headers(SECRET, self.ts(), &body)),
                body,
            )
            .await
    }
}

#[tokio::test]
async fn a_burst_then_429_with_retry_after_then_refill_and_other_routes_unaffected() {
    let mut env = Env::new().await;
    for _ in 0..3 {
        assert_eq!(env.deliver("/limited").await.status, 200);
    }
    let refused = env.deliver("/limited").await;
    assert_eq!(
        (refused.status, refused.error().as_str()),
        (429, "rate_limited")
    );
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(
        env.deliver("/other").await.status,
        200,
        "another route has its own budget"
    );

    env.clock.advance(Duration::from_secs(1));
    assert_eq!(
        env.deliver("/limited").await.status,
        200,
        "one token came back"
    );
    assert_eq!(env.deliver("/limited").await.status, 429);
    assert_eq!(
        env.upstream.received().len(),
        5,
        "refused requests never reach the app"
    );
}

#[tokio::test]
async fn forged_requests_and_replayed_duplicates_never_spend_the_budget() {
    let mut env = Env::new().await;
    let body = r#"{"id":"x","type":"t"}"#;
    for _ in 0..10 {
        let forged = env
            .gw
            .post(
                "/limited",
                &pairs(&smartcv_headers("wrong", env.ts(), body)),
                body,
            )
            .await;
        assert_eq!(forged.status, 401);
    }
    let signed = smartcv_headers(SECRET, env.ts(), body);
    assert_eq!(
        env.gw.post("/limited", &pairs(&signed), body).await.status,
        200
    );
    // A captured request replayed over and over is answered as a duplicate before the
    // rate limit (docs/request-handling.md check 11), so it cannot keep the real provider at 429.
    for _ in 0..10 {
        assert_eq!(
            env.gw.post("/limited", &pairs(&signed), body).await.json()["status"],
            "duplicate"
        );
    }
    // Burst 3: the first delivery took one token, the duplicates none.
    assert_eq!(env.deliver("/limited").await.status, 200);
    assert_eq!(env.deliver("/limited").await.status, 200);
    assert_eq!(
        env.deliver("/limited").await.status,
        429,
        "the budget is spent by deliveries only"
    );
}
