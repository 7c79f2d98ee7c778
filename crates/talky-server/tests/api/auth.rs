//! Accounts and authentication (behaviour.md A1–A13).

use crate::for_each_engine;
use crate::helpers::{json, spawn_app_with, Options, TestApp};
use chrono::Duration;
use serde_json::json;

#[tokio::test]
async fn register_verify_me_and_duplicate() {
    for_each_engine!(|app| {
        // Unknown plan and invalid e-mail write nothing and send nothing.
        let (s, v) = json(
            app.post(
                "/api/v1/auth/register",
                json!({"email":"a@example.com","business_name":"A","plan_id":"gold"}),
            )
            .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (400, Some("Invalid plan_id")));
        let (s, v) = json(
            app.post(
                "/api/v1/auth/register",
                json!({"email":"nope","business_name":"A"}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 422);
        assert!(v["fields"]["email"].is_string(), "{v}");
        let (s, _) = json(
            app.post(
                "/api/v1/auth/register",
                json!({"email":"a@example.com","business_name":"  "}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 422);
        let (s, _) = json(
            app.post(
                "/api/v1/auth/register",
                json!({"email":"a@example.com","business_name":"A","role":"owner"}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 422, "unknown body field");
        assert!(app.pending_mail().await.is_empty());

        let (s, v) = json(app.post("/api/v1/auth/register", json!({"email":" Ann@Example.COM ","business_name":"Acme","plan_id":"professional","name":"Ann"})).await).await;
        assert_eq!(s, 200);
        assert_eq!(v["email"], "ann@example.com");
        assert_eq!(v["role"], "owner");
        assert_eq!(v["minutes_remaining"], 1500);
        assert_eq!(
            v["message"],
            "Magic link sent to your email. Please check your inbox."
        );
        let tenant_id = v["id"].as_str().unwrap().to_string();
        // Nothing exists until the link is verified (no orphan tenant).
        assert!(app
            .store
            .find_user_by_email("ann@example.com")
            .await
            .unwrap()
            .is_none());

        let mail = app.next_mail().await;
        let token = TestApp::token_of(&mail);
        assert_eq!(token.len(), 43);
        assert!(mail
            .link
            .as_ref()
            .unwrap()
            .starts_with(&format!("{}/auth/verify?token=", app.base)));
        let (s, v) = json(app.verify(&token).await).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["token_type"], "bearer");
        assert_eq!(v["expires_in"], 43200);
        assert_eq!(v["user"]["tenant_id"], tenant_id.as_str());
        assert_eq!(v["user"]["name"], "Ann");
        let at = v["access_token"].as_str().unwrap().to_string();

        let (s, me) = json(app.get_auth("/api/v1/auth/me", &at).await).await;
        assert_eq!(s, 200);
        for key in [
            "id",
            "email",
            "name",
            "role",
            "tenant_id",
            "business_name",
            "plan_id",
            "minutes_allocated",
            "minutes_used",
            "minutes_remaining",
            "minutes_unlimited",
            "is_platform_admin",
        ] {
            assert!(me.get(key).is_some(), "missing {key}");
        }
        assert_eq!(me["role"], "owner");
        assert_eq!(me["plan_id"], "professional");
        assert_eq!(me["minutes_allocated"], 1500);
        assert_eq!(me["minutes_used"], 0);
        assert_eq!(me["minutes_unlimited"], false);
        assert_eq!(me["is_platform_admin"], false);

        // The address now has an account.
        let (s, v) = json(
            app.post(
                "/api/v1/auth/register",
                json!({"email":"ann@example.com","business_name":"Again"}),
            )
            .await,
        )
        .await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (400, Some("Email already registered"))
        );
        assert!(app.pending_mail().await.is_empty());
    });
}

#[tokio::test]
async fn verify_is_single_use_even_when_racing() {
    for_each_engine!(|app| {
        app.post(
            "/api/v1/auth/register",
            json!({"email":"race@example.com","business_name":"R"}),
        )
        .await;
        let token = TestApp::token_of(&app.next_mail().await);
        let (a, b) = tokio::join!(app.verify(&token), app.verify(&token));
        let mut codes = [a.status().as_u16(), b.status().as_u16()];
        codes.sort();
        assert_eq!(codes, [200, 401]);
        let (s, v) = json(app.verify(&token).await).await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (401, Some("Invalid or expired link"))
        );
        let (s, v) = json(app.verify("x".repeat(43).as_str()).await).await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (401, Some("Invalid or expired link"))
        );
        // GET on the API route never consumes anything.
        let r = app
            .client
            .get(app.url("/api/v1/auth/verify?token=abc"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
        assert!(r
            .headers()
            .get("allow")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("POST"));
    });
}

#[tokio::test]
async fn expired_and_superseded_links_fail() {
    for_each_engine!(|app| {
        app.post(
            "/api/v1/auth/register",
            json!({"email":"late@example.com","business_name":"L"}),
        )
        .await;
        let old = TestApp::token_of(&app.next_mail().await);
        app.clock.advance(Duration::minutes(16));
        let (s, v) = json(app.verify(&old).await).await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (401, Some("Invalid or expired link"))
        );

        // A newer link for the same address and purpose invalidates the older one.
        app.post(
            "/api/v1/auth/register",
            json!({"email":"late@example.com","business_name":"L1"}),
        )
        .await;
        let first = TestApp::token_of(&app.next_mail().await);
        app.post(
            "/api/v1/auth/register",
            json!({"email":"late@example.com","business_name":"L2"}),
        )
        .await;
        let second = TestApp::token_of(&app.next_mail().await);
        assert_eq!(app.verify(&first).await.status(), 401);
        let (s, v) = json(app.verify(&second).await).await;
        assert_eq!(s, 200);
        assert_eq!(v["user"]["business_name"], "L2");
    });
}

#[tokio::test]
async fn login_answers_uniformly_and_mails_only_accounts() {
    for_each_engine!(|app| {
        app.register_owner("known@example.com", "K").await;
        let known = app
            .post("/api/v1/auth/login", json!({"email":"Known@example.com"}))
            .await;
        let kh = known.headers().get("content-length").cloned();
        let (ks, kv) = json(known).await;
        let mail = app.next_mail().await;
        assert_eq!(mail.to, "known@example.com");
        let unknown = app
            .post("/api/v1/auth/login", json!({"email":"ghost@example.com"}))
            .await;
        let uh = unknown.headers().get("content-length").cloned();
        let (us, uv) = json(unknown).await;
        assert_eq!(ks, us);
        assert_eq!(kv["message"], uv["message"]);
        assert_eq!(
            kv["message"],
            "If an account exists for this address, a sign-in link has been sent."
        );
        assert_eq!(kh.map(|h| h.len()), uh.map(|h| h.len()));
        // Login never creates users.
        assert!(app
            .store
            .find_user_by_email("ghost@example.com")
            .await
            .unwrap()
            .is_none());
        let at = app.login("known@example.com").await;
        assert_eq!(app.get_auth("/api/v1/auth/me", &at).await.status(), 200);
        assert!(
            app.pending_mail().await.is_empty(),
            "no mail for the unknown address"
        );
    });
}

#[tokio::test]
async fn link_mails_are_capped_per_address() {
    for_each_engine!(|app| {
        // Register checks the cap inside the request, so the count is deterministic.
        for i in 0..5 {
            let r = app
                .post(
                    "/api/v1/auth/register",
                    json!({"email":"cap@example.com","business_name": format!("C{i}")}),
                )
                .await;
            assert_eq!(r.status(), 200);
            app.next_mail().await;
        }
        let r = app
            .post(
                "/api/v1/auth/register",
                json!({"email":"cap@example.com","business_name":"C6"}),
            )
            .await;
        assert_eq!(r.status(), 200, "the endpoint answers as usual");
        // After an hour links flow again.
        app.clock.advance(Duration::minutes(61));
        let r = app
            .post(
                "/api/v1/auth/register",
                json!({"email":"cap@example.com","business_name":"C7"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let mail = app.next_mail().await;
        let (s, v) = json(app.verify(&TestApp::token_of(&mail)).await).await;
        assert_eq!(s, 200);
        assert_eq!(
            v["user"]["business_name"], "C7",
            "the sixth request sent nothing"
        );
        assert!(app.pending_mail().await.is_empty());
    });
}

#[tokio::test]
async fn header_cases_and_logout_revocation() {
    for_each_engine!(|app| {
        let at = app.register_owner("h@example.com", "H").await;
        let me = app.url("/api/v1/auth/me");
        let cases: Vec<(Option<String>, &str)> = vec![
            (None, "Authorization header missing"),
            (
                Some("Basic abc".into()),
                "Invalid authorization header format. Use: Bearer <token>",
            ),
            (
                Some("Bearer".into()),
                "Invalid authorization header format. Use: Bearer <token>",
            ),
            (
                Some("Bearer a b".into()),
                "Invalid authorization header format. Use: Bearer <token>",
            ),
            (
                Some(format!("Token {at}")),
                "Invalid authorization header format. Use: Bearer <token>",
            ),
            (Some("Bearer not.a.jwt".into()), "Invalid or expired token"),
            (Some(format!("Bearer {at}x")), "Invalid or expired token"),
        ];
        for (header, detail) in cases {
            let mut req = app.client.get(&me);
            if let Some(h) = &header {
                req = req.header("authorization", h);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
            let (s, v) = json(r).await;
            assert_eq!((s, v["detail"].as_str()), (401, Some(detail)), "{header:?}");
            assert_eq!(v["code"], "unauthorized");
        }
        // Scheme is case-insensitive.
        let r = app
            .client
            .get(&me)
            .header("authorization", format!("bEaReR {at}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        let second = app.login("h@example.com").await;
        let (s, v) = json(app.post_auth("/api/v1/auth/logout", &at, json!({})).await).await;
        assert_eq!((s, v["detail"].as_str()), (200, Some("Logged out")));
        let (s, v) = json(app.get_auth("/api/v1/auth/me", &at).await).await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (401, Some("Invalid or expired token"))
        );
        assert_eq!(app.get_auth("/api/v1/auth/me", &second).await.status(), 200);
        // ?all=true revokes every session of the user.
        let third = app.login("h@example.com").await;
        let r = app
            .client
            .post(app.url("/api/v1/auth/logout?all=true"))
            .bearer_auth(&third)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(app.get_auth("/api/v1/auth/me", &second).await.status(), 401);
        assert_eq!(app.get_auth("/api/v1/auth/me", &third).await.status(), 401);

        // Sessions expire with the token (12 h + leeway).
        let fourth = app.login("h@example.com").await;
        app.clock
            .advance(Duration::hours(12) + Duration::minutes(2));
        assert_eq!(app.get_auth("/api/v1/auth/me", &fourth).await.status(), 401);
    });
}

#[tokio::test]
async fn profile_routes() {
    for_each_engine!(|app| {
        let at = app.register_owner("p@example.com", "P").await;
        let (s, v) = json(
            app.post_auth("/api/v1/auth/create-profile", &at, json!({}))
                .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (200, Some("Profile created")));
        let (_, v) = json(
            app.post_auth("/api/v1/auth/create-profile", &at, json!({}))
                .await,
        )
        .await;
        assert_eq!(v["detail"], "Profile already exists");
        let (s, v) = json(
            app.patch_auth("/api/v1/auth/me", &at, json!({"name":"Pat"}))
                .await,
        )
        .await;
        assert_eq!((s, v["name"].as_str()), (200, Some("Pat")));
        let (s, _) = json(
            app.patch_auth("/api/v1/auth/me", &at, json!({"name":""}))
                .await,
        )
        .await;
        assert_eq!(s, 422);
        let (s, _) = json(
            app.patch_auth("/api/v1/auth/me", &at, json!({"name":"x","email":"e@x.io"}))
                .await,
        )
        .await;
        assert_eq!(s, 422);
        let (_, v) = json(app.get_auth("/api/v1/auth/me", &at).await).await;
        assert_eq!(v["name"], "Pat");
    });
}

#[tokio::test]
async fn auth_routes_are_rate_limited_per_ip() {
    let app = spawn_app_with(
        talky_store::Engine::Sqlite,
        Options {
            ip_rate_per_min: 20,
            ..Default::default()
        },
    )
    .await;
    for i in 0..20 {
        let r = app
            .post(
                "/api/v1/auth/login",
                json!({"email": format!("r{i}@example.com")}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let r = app.post("/api/v1/auth/verify", json!({"token":"x"})).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let (_, v) = json(r).await;
    assert_eq!(v["code"], "rate_limited");
    app.clock.advance(Duration::seconds(61));
    assert_eq!(
        app.post("/api/v1/auth/login", json!({"email":"z@example.com"}))
            .await
            .status(),
        200
    );
    app.cleanup().await;
}
