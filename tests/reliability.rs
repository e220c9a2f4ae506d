//! Operational promises over HTTP: security headers, CORS only for configured origins, and a
//! metrics endpoint that can be closed with a token.

mod common;

use common::{spawn_app, spawn_app_with};

#[actix_rt::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in [
        "/healthz",
        "/api/v1/regions/34",
        "/api/v1/nowhere",
        "/docs/",
        "/openapi.yaml",
    ] {
        let r = app.get(path).send().await;
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        if path.starts_with("/docs") {
            assert!(csp.contains("script-src 'self'"), "{csp}");
        } else {
            assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
        }
    }
    // The docs page runs under its policy: no inline script (script-src 'self' would block it).
    let page = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("<script src="), "{html}");
    assert!(!html.contains("<script>"), "an inline script: {html}");
}

#[actix_rt::test]
async fn cors_is_off_by_default_and_on_for_configured_origins_only() {
    let off = spawn_app().await;
    let r = off
        .get("/api/v1/regions/34")
        .header("origin", "https://dasbor.desa.id")
        .send()
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);

    let on = spawn_app_with(|c| c.cors_origins = vec!["https://dasbor.desa.id".into()]).await;
    let preflight = on
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/checkouts", on.base),
        )
        .header("origin", "https://dasbor.desa.id")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, idempotency-key, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://dasbor.desa.id"
    );
    let r = on
        .get("/api/v1/regions/34")
        .header("origin", "https://dasbor.desa.id")
        .send()
        .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://dasbor.desa.id")
    );
    assert!(
        r.header("access-control-expose-headers")
            .unwrap_or_default()
            .contains("etag")
    );
    // Another origin gets no grant (the browser then refuses to hand over the answer).
    let other = on
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/checkouts", on.base),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[actix_rt::test]
async fn metrics_can_require_a_token() {
    let open = spawn_app().await;
    let r = open.get("/metrics").send().await;
    assert_eq!(r.status, 200);

    let closed =
        spawn_app_with(|c| c.metrics_token = Some("metrik-rahasia-desa".to_string().into())).await;
    closed
        .get("/metrics")
        .send()
        .await
        .expect_problem(401, "unauthorized");
    closed
        .get("/metrics")
        .header("authorization", "Bearer salah")
        .send()
        .await
        .expect_problem(401, "unauthorized");
    let ok = closed
        .client
        .get(format!("{}/metrics", closed.base))
        .bearer_auth("metrik-rahasia-desa")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(
        ok.text()
            .await
            .unwrap()
            .contains("pasar_http_requests_total")
    );
}

#[actix_rt::test]
async fn a_known_path_with_another_method_is_405_with_allow() {
    let app = spawn_app().await;
    let r = app.delete("/api/v1/regions/34").send().await;
    assert_eq!(r.status, 405, "{:?}", r.body);
    assert_eq!(r.header("allow"), Some("GET"));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let id = uuid::Uuid::now_v7();
    let r = app.post(&format!("/api/v1/products/{id}")).send().await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, PATCH, DELETE"));
    let r = app.patch("/api/v1/checkouts").send().await;
    assert_eq!(r.header("allow"), Some("POST"));
    app.get("/api/v1/nowhere")
        .send()
        .await
        .expect_problem(404, "not-found");
    app.delete("/api/v1/nowhere/at/all")
        .send()
        .await
        .expect_problem(404, "not-found");
    let head = app
        .client
        .head(format!("{}/api/v1/regions/34", app.base))
        .send()
        .await
        .unwrap();
    // HEAD is not served (clients of this API have no use for it): 405 too, honestly.
    assert_eq!(head.status(), 405);
}
