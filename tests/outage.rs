//! PostgreSQL goes away while buyers are checking out: requests answer 503 with Retry-After
//! within 2 s, /healthz stays 200 and /readyz says 503; when it returns the service recovers by
//! itself; clients retrying with their keys end with every checkout done exactly once and the
//! books whole (no order or ledger transaction half-written).

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::fixtures::{self, A, B};
use common::money::{assert_global, funded_buyers, key, stock_snapshot};
use common::proxy::ChaosProxy;
use common::{spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[actix_rt::test]
async fn checkouts_through_a_database_outage_answer_503_fast_and_recover() {
    // The world lives in `probe`'s database; `app` reaches it through a proxy we can cut.
    let probe = spawn_app().await;
    let w = fixtures::world(&probe);
    let products = probe.with_conn(|c| {
        vec![
            fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Beras", 11_000, 1000),
            fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Gula", 13_000, 1000),
        ]
    });
    let initial = stock_snapshot(&probe);
    let treasurer = probe.login(&w.a.treasurer.phone, A).await;
    let buyers = funded_buyers(&probe, &w.platform, A, &treasurer, 1, 6, 1_000_000).await;
    let url = url::Url::parse(&probe.db.url).unwrap();
    let proxy = ChaosProxy::start(format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port().unwrap_or(5432)
    ))
    .await;
    let mut proxied = url.clone();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    proxied.set_port(Some(proxy.port)).unwrap();
    let app = spawn_app_with(|c| c.database_url = proxied.to_string()).await;

    let started = Instant::now();
    let slowest_503 = Mutex::new(Duration::ZERO);
    let seen_503 = Mutex::new(0usize);
    let done = Mutex::new(Vec::<(u16, Value)>::new());
    // Six buyers, each placing checkouts one after another for 5 s; every checkout is retried
    // with its key until it has a final answer.
    let load = futures_util::future::join_all(buyers.iter().enumerate().map(|(i, b)| {
        let (app, products, slowest_503, seen_503, done) =
            (&app, &products, &slowest_503, &seen_503, &done);
        async move {
            let mut n = 0;
            while started.elapsed() < Duration::from_secs(5) {
                let k = key();
                let body = json!({"lines": [{"product_id": products[(i + n) % 2], "quantity": 1}],
                                  "delivery": {"method": "pickup"}});
                n += 1;
                loop {
                    let t = Instant::now();
                    let r = app
                        .post("/api/v1/checkouts")
                        .token(&b.token)
                        .header("idempotency-key", &k)
                        .json(&body)
                        .send()
                        .await;
                    let took = t.elapsed();
                    match r.status.as_u16() {
                        503 => {
                            assert!(r.header("retry-after").is_some(), "503 without Retry-After");
                            *seen_503.lock().unwrap() += 1;
                            {
                                let mut s = slowest_503.lock().unwrap();
                                *s = (*s).max(took);
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        409 if r.body["retryable"] == true => {}
                        status => {
                            done.lock().unwrap().push((status, r.body));
                            break;
                        }
                    }
                }
            }
        }
    }));
    let chaos = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        proxy.cut();
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.get("/healthz").send().await.expect(200);
        app.get("/readyz")
            .send()
            .await
            .expect_problem(503, "unavailable");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        proxy.restore();
    };
    tokio::join!(load, chaos);
    app.get("/readyz").send().await.expect(200);
    let done = done.into_inner().unwrap();
    let slowest = slowest_503.into_inner().unwrap();
    let outages = seen_503.into_inner().unwrap();
    eprintln!(
        "{} checkouts done, {outages} answers 503 (slowest {slowest:?})",
        done.len()
    );
    assert!(outages > 0, "the outage was seen");
    assert!(slowest < Duration::from_secs(2), "a 503 took {slowest:?}");
    for (status, body) in &done {
        assert_eq!(*status, 201, "{body}");
    }
    let orders = common::money::count(&probe, "SELECT count(*) AS n FROM orders");
    assert_eq!(
        orders as usize,
        done.len(),
        "one order per finished checkout, no more"
    );
    assert_global(&probe, &initial);
}
