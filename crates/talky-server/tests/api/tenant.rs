//! Tenant settings, members, roles and platform admin (A9–A13, B1–B3, B6).

use crate::for_each_engine;
use crate::helpers::{json, TestApp};
use serde_json::json;

#[tokio::test]
async fn members_roles_and_last_owner() {
    for_each_engine!(|app| {
        let owner = app.register_owner("o@example.com", "Org").await;
        let (_, me) = json(app.get_auth("/api/v1/auth/me", &owner).await).await;
        let owner_id = me["id"].as_str().unwrap().to_string();

        let (s, v) = json(
            app.post_auth(
                "/api/v1/tenant/members",
                &owner,
                json!({"email":"M@example.com","role":"member"}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let invite = app.next_mail().await;
        assert_eq!(invite.to, "m@example.com");
        let (s, v) = json(app.verify(&TestApp::token_of(&invite)).await).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["user"]["role"], "member");
        assert_eq!(v["user"]["tenant_id"], me["tenant_id"]);
        let member = v["access_token"].as_str().unwrap().to_string();
        let member_id = v["user"]["id"].as_str().unwrap().to_string();

        let (s, list) = json(app.get_auth("/api/v1/tenant/members", &member).await).await;
        assert_eq!(s, 200);
        assert_eq!(list.as_array().unwrap().len(), 2);

        // Members may read but not change settings or members.
        assert_eq!(app.get_auth("/api/v1/tenant", &member).await.status(), 200);
        let (s, v) = json(
            app.patch_auth("/api/v1/tenant", &member, json!({"business_name":"X"}))
                .await,
        )
        .await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (403, Some("Owner access required"))
        );
        let (s, _) = json(
            app.post_auth(
                "/api/v1/tenant/members",
                &member,
                json!({"email":"z@example.com"}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 403);

        // Someone who already belongs to a tenant cannot be invited.
        let other = app.register_owner("other@example.com", "Other").await;
        let (s, v) = json(
            app.post_auth(
                "/api/v1/tenant/members",
                &other,
                json!({"email":"m@example.com"}),
            )
            .await,
        )
        .await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (409, Some("User already belongs to a tenant"))
        );

        // The last owner cannot be removed; a foreign or unknown member id is 404.
        let (s, _) = json(
            app.delete_auth(&format!("/api/v1/tenant/members/{owner_id}"), &owner)
                .await,
        )
        .await;
        assert_eq!(s, 409);
        let (s, _) = json(
            app.delete_auth(&format!("/api/v1/tenant/members/{member_id}"), &other)
                .await,
        )
        .await;
        assert_eq!(s, 404);
        let (s, _) = json(
            app.delete_auth("/api/v1/tenant/members/not-a-uuid", &owner)
                .await,
        )
        .await;
        assert_eq!(s, 404);

        // Removing a member revokes their sessions.
        let (s, v) = json(
            app.delete_auth(&format!("/api/v1/tenant/members/{member_id}"), &owner)
                .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (200, Some("Member removed")));
        assert_eq!(app.get_auth("/api/v1/auth/me", &member).await.status(), 401);
    });
}

#[tokio::test]
async fn tenant_settings_validate_and_ignore_own_tenant_id() {
    for_each_engine!(|app| {
        let owner = app.register_owner("s@example.com", "Set").await;
        let (_, t) = json(app.get_auth("/api/v1/tenant", &owner).await).await;
        let tid = t["id"].as_str().unwrap().to_string();
        let (s, v) = json(
            app.patch_auth(
                "/api/v1/tenant",
                &owner,
                json!({"calling_rules":{"time_window_start":"10:00","time_window_end":"10:00"}}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 422);
        assert!(
            v["fields"]["calling_rules.time_window_end"].is_string(),
            "{v}"
        );
        let (s, _) = json(
            app.patch_auth(
                "/api/v1/tenant",
                &owner,
                json!({"calling_rules":{"timezone":"Nowhere/Land"}}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 422);
        let (s, _) = json(
            app.patch_auth(
                "/api/v1/tenant",
                &owner,
                json!({"recording":{"channels":3}}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 422);
        // Nothing changed by the rejected requests.
        let (_, t2) = json(app.get_auth("/api/v1/tenant", &owner).await).await;
        assert_eq!(t["calling_rules"], t2["calling_rules"]);

        let (s, v) = json(app.patch_auth("/api/v1/tenant", &owner, json!({"business_name":"Renamed","tenant_id":tid,"calling_rules":{"timezone":"Europe/Berlin","allowed_days":[0,1,2,3,4,5,6]}})).await).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["business_name"], "Renamed");
        assert_eq!(v["calling_rules"]["timezone"], "Europe/Berlin");
        assert_eq!(v["calling_rules"]["time_window_start"], "09:00");

        let foreign = uuid::Uuid::new_v4().to_string();
        let (s, v) = json(
            app.patch_auth(
                "/api/v1/tenant",
                &owner,
                json!({"business_name":"Evil","tenant_id":foreign}),
            )
            .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (403, Some("Forbidden")));
        let r = app
            .client
            .get(app.url(&format!("/api/v1/tenant?tenant_id={foreign}")))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let (_, t3) = json(app.get_auth("/api/v1/tenant", &owner).await).await;
        assert_eq!(t3["business_name"], "Renamed");
    });
}

#[tokio::test]
async fn platform_admin_routes() {
    for_each_engine!(|app| {
        let owner = app.register_owner("boss@example.com", "Boss Co").await;
        let (_, me) = json(app.get_auth("/api/v1/auth/me", &owner).await).await;
        let tid = me["tenant_id"].as_str().unwrap().to_string();
        let (s, v) = json(app.get_auth("/api/v1/admin/tenants", &owner).await).await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (403, Some("Admin access required"))
        );

        app.store
            .create_platform_admin("root@example.com", chrono::Utc::now())
            .await
            .unwrap();
        let admin = app.login("root@example.com").await;
        let (_, ame) = json(app.get_auth("/api/v1/auth/me", &admin).await).await;
        assert_eq!(ame["is_platform_admin"], true);
        assert!(ame["role"].is_null());
        // No tenant data without a membership (B3).
        let (s, v) = json(app.get_auth("/api/v1/tenant", &admin).await).await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (403, Some("Tenant membership required"))
        );

        let (s, list) = json(app.get_auth("/api/v1/admin/tenants", &admin).await).await;
        assert_eq!(s, 200);
        let t = &list.as_array().unwrap()[0];
        let mut keys: Vec<_> = t.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "business_name",
                "id",
                "minutes_allocated",
                "minutes_used",
                "plan_id"
            ]
        );
        let (s, v) = json(
            app.get_auth(&format!("/api/v1/admin/tenants/{tid}"), &admin)
                .await,
        )
        .await;
        assert_eq!((s, v["minutes_allocated"].as_i64()), (200, Some(300)));
        let (s, v) = json(
            app.get_auth(
                &format!("/api/v1/admin/tenants/{}", uuid::Uuid::new_v4()),
                &admin,
            )
            .await,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (404, Some("Tenant not found")));
        assert_eq!(
            app.get_auth("/api/v1/admin/tenants/nope", &admin)
                .await
                .status(),
            404
        );

        let patch = |q: String| {
            let app = &app;
            let admin = admin.clone();
            async move {
                json(
                    app.client
                        .patch(app.url(&q))
                        .bearer_auth(&admin)
                        .send()
                        .await
                        .unwrap(),
                )
                .await
            }
        };
        let (s, v) = patch(format!(
            "/api/v1/admin/tenants/{tid}/minutes?minutes_allocated=2000"
        ))
        .await;
        assert_eq!(
            (s, v["detail"].as_str(), v["minutes_allocated"].as_i64()),
            (200, Some("Minutes updated"), Some(2000))
        );
        for bad in ["-2", "100000001", "abc"] {
            let (s, _) = patch(format!(
                "/api/v1/admin/tenants/{tid}/minutes?minutes_allocated={bad}"
            ))
            .await;
            assert_eq!(s, 422, "{bad}");
        }
        let (s, _) = patch(format!("/api/v1/admin/tenants/{tid}/minutes")).await;
        assert_eq!(s, 422);
        let (s, _) = patch(format!(
            "/api/v1/admin/tenants/{}/minutes?minutes_allocated=5",
            uuid::Uuid::new_v4()
        ))
        .await;
        assert_eq!(s, 404);
        // The owner sees the new allocation; -1 means unlimited.
        let (_, me) = json(app.get_auth("/api/v1/auth/me", &owner).await).await;
        assert_eq!(me["minutes_remaining"], 2000);
        patch(format!(
            "/api/v1/admin/tenants/{tid}/minutes?minutes_allocated=-1"
        ))
        .await;
        let (_, me) = json(app.get_auth("/api/v1/auth/me", &owner).await).await;
        assert_eq!(me["minutes_unlimited"], true);
        assert!(me["minutes_remaining"].is_null());

        let (s, users) = json(app.get_auth("/api/v1/admin/users", &admin).await).await;
        assert_eq!(s, 200);
        let users = users.as_array().unwrap();
        assert_eq!(users.len(), 2);
        let boss = users
            .iter()
            .find(|u| u["email"] == "boss@example.com")
            .unwrap();
        assert_eq!(boss["role"], "owner");
        assert_eq!(boss["tenant_id"], tid.as_str());
    });
}
