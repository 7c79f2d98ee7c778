//! The HTTP edge: root, health, plans, error shape, request ids, limits, CLI (§0, K).

use crate::for_each_engine;
use crate::helpers::json;
use serde_json::json;

#[tokio::test]
async fn root_health_and_plans_with_or_without_slash() {
    for_each_engine!(|app| {
        let (s, v) = json(app.client.get(app.url("/")).send().await.unwrap()).await;
        assert_eq!(
            (s, v),
            (200, json!({"message":"Talky API","status":"running"}))
        );
        let (s, v) = json(app.client.get(app.url("/health")).send().await.unwrap()).await;
        assert_eq!(
            (s, v),
            (
                200,
                json!({"status":"healthy","db":"ok","active_sessions":0})
            )
        );
        for path in ["/api/v1/plans", "/api/v1/plans/"] {
            let r = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            let plans: serde_json::Value = r.json().await.unwrap();
            let ids: Vec<_> = plans
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(ids, ["basic", "professional", "enterprise"]);
            let pro = &plans[1];
            assert_eq!(pro["price"], 79.0);
            assert_eq!(pro["popular"], true);
            assert_eq!(pro["concurrent_calls"], 3);
            assert_eq!(pro["not_included"], json!(["API access", "White-label"]));
            assert_eq!(
                plans[0]["description"],
                "Perfect for startups and solo entrepreneurs."
            );
        }
    });
}

#[tokio::test]
async fn errors_share_one_shape_and_carry_request_ids() {
    for_each_engine!(|app| {
        let r = app
            .client
            .get(app.url("/api/v1/nothing-here"))
            .header("x-request-id", "abc-123")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers().get("x-request-id").unwrap(), "abc-123");
        let (s, v) = json(r).await;
        assert_eq!((s, v["code"].as_str()), (404, Some("not_found")));
        assert!(v["detail"].is_string());

        let r = app.client.get(app.url("/")).send().await.unwrap();
        assert!(
            r.headers().get("x-request-id").is_some(),
            "generated when absent"
        );

        let r = app
            .client
            .delete(app.url("/api/v1/plans"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
        assert!(r.headers().get("allow").is_some());
        let (_, v) = json(r).await;
        assert_eq!(v["code"], "method_not_allowed");

        let r = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415);
        let r = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body("{\"email\":")
            .send()
            .await
            .unwrap();
        let (s, v) = json(r).await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (400, Some("Malformed JSON body"))
        );
        let r = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": 5}))
            .send()
            .await
            .unwrap();
        let (s, v) = json(r).await;
        assert_eq!(s, 422);
        assert!(v["fields"]["email"].is_string(), "{v}");
        let big = format!("{{\"email\":\"{}\"}}", "a".repeat(1024 * 1024 + 10));
        let r = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap();
        let (s, v) = json(r).await;
        assert_eq!((s, v["code"].as_str()), (413, Some("payload_too_large")));
    });
}

#[test]
fn cli_config_example_and_admin_create() {
    let bin = env!("CARGO_BIN_EXE_talky");
    let out = std::process::Command::new(bin)
        .args(["config", "example"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for key in [
        "# listen = \"127.0.0.1:8000\"",
        "[auth]",
        "# link_ttl_secs = 900",
        "[llm]",
        "# model = \"llama-3.1-8b-instant\"",
    ] {
        assert!(text.contains(key), "{key} missing in:\n{text}");
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .env("TALKY_DATA_DIR", dir.path())
            .env_remove("TALKY_DATABASE_URL")
            .output()
            .unwrap()
    };
    let out = run(&["admin", "create", "--email", "Root@Example.com"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("created platform admin root@example.com")
    );
    let out = run(&["admin", "create", "--email", "root@example.com"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("flagged existing user"));
    let out = run(&["admin", "create", "--email", "bad"]);
    assert!(!out.status.success());
    let out = run(&["migrate"]);
    assert!(out.status.success());
    assert!(dir.path().join("talky.db").exists());
    // An invalid value fails at startup naming its key.
    let out = std::process::Command::new(bin)
        .args(["migrate"])
        .env("TALKY_LISTEN", "nope")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen"));
}

#[tokio::test]
async fn openapi_lists_routes_and_docs_work_offline() {
    let app = crate::helpers::spawn_app(talky_store::Engine::Sqlite).await;
    let (s, doc) = json(
        app.client
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/plans", "get"),
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/verify", "post"),
        ("/api/v1/auth/me", "get"),
        ("/api/v1/auth/me", "patch"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/create-profile", "post"),
        ("/api/v1/tenant", "get"),
        ("/api/v1/tenant", "patch"),
        ("/api/v1/tenant/members", "get"),
        ("/api/v1/tenant/members", "post"),
        ("/api/v1/tenant/members/{user_id}", "delete"),
        ("/api/v1/admin/tenants", "get"),
        ("/api/v1/admin/tenants/{tenant_id}", "get"),
        ("/api/v1/admin/tenants/{tenant_id}/minutes", "patch"),
        ("/api/v1/admin/users", "get"),
        ("/api/v1/campaigns", "get"),
        ("/api/v1/campaigns", "post"),
        ("/api/v1/campaigns/{campaign_id}", "get"),
        ("/api/v1/campaigns/{campaign_id}", "patch"),
        ("/api/v1/campaigns/{campaign_id}/start", "post"),
        ("/api/v1/campaigns/{campaign_id}/pause", "post"),
        ("/api/v1/campaigns/{campaign_id}/stop", "post"),
        ("/api/v1/campaigns/{campaign_id}/jobs", "get"),
        ("/api/v1/campaigns/{campaign_id}/stats", "get"),
        ("/api/v1/campaigns/{campaign_id}/test-call", "post"),
        ("/api/v1/dnc", "get"),
        ("/api/v1/dnc", "post"),
        ("/api/v1/calls", "get"),
        ("/api/v1/recordings", "get"),
        ("/api/v1/dashboard/summary", "get"),
        ("/api/v1/analytics/calls", "get"),
        ("/api/v1/clients", "get"),
        ("/api/v1/clients", "post"),
        ("/api/v1/contacts/bulk", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // Operation ids are unique (OpenAPI requires it).
    let mut ids: Vec<String> = paths
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| {
            op.get("operationId")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate operationId");
    let r = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("/api/v1/openapi.json"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "docs page must not fetch external assets"
    );
    app.cleanup().await;
}
