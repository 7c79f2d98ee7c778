//! B2/B4/B8 for the campaign, contact and DNC routes: tenant B gets exactly the 404 of a
//! random id for each of tenant A's objects, never sees A's rows, cannot start A's campaign
//! by any means, and a client-supplied foreign `tenant_id` is 403 with nothing written.

use crate::campaigns::{campaign_count, create_campaign, stats, tenant_of, total_jobs};
use crate::contacts::{add_contact, contacts, post_form, Part};
use crate::for_each_engine;
use crate::helpers::{json, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use talky_core::ids::{CampaignId, LeadId};

/// Sends `method path` as `token` with an optional JSON body.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    json(req.send().await.unwrap()).await
}

#[tokio::test]
async fn tenants_cannot_reach_each_others_campaigns_contacts_or_dnc() {
    for_each_engine!(|app| {
        let a = app.register_owner("a@example.com", "Tenant A").await;
        let b = app.register_owner("b@example.com", "Tenant B").await;
        let tenant_a = tenant_of(&app, &a).await;
        let tenant_b = tenant_of(&app, &b).await;

        let ca = create_campaign(&app, &a, "A campaign").await;
        let la = add_contact(&app, &a, &ca, "+15556000001").await;
        add_contact(&app, &a, &ca, "+15556000002").await;
        let (s, _) = json(
            app.post_auth("/api/v1/dnc", &a, json!({"phone_number": "+15556000099"}))
                .await,
        )
        .await;
        assert_eq!(s, 201);
        let cb = create_campaign(&app, &b, "B campaign").await;
        add_contact(&app, &b, &cb, "+15557000001").await;

        let random_c = CampaignId::new().to_string();
        let random_l = LeadId::new().to_string();
        let csv = b"phone_number\n+15556000003\n".as_slice();

        // Every id-taking route: A's id and a random id give the same 404 to B.
        let routes: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, "/api/v1/campaigns/{c}".into(), None),
            (
                Method::PATCH,
                "/api/v1/campaigns/{c}".into(),
                Some(json!({"name": "hijacked"})),
            ),
            (Method::POST, "/api/v1/campaigns/{c}/start".into(), None),
            (Method::POST, "/api/v1/campaigns/{c}/pause".into(), None),
            (Method::POST, "/api/v1/campaigns/{c}/stop".into(), None),
            (Method::GET, "/api/v1/campaigns/{c}/jobs".into(), None),
            (Method::GET, "/api/v1/campaigns/{c}/stats".into(), None),
            (Method::GET, "/api/v1/campaigns/{c}/contacts".into(), None),
            (
                Method::POST,
                "/api/v1/campaigns/{c}/contacts".into(),
                Some(json!({"phone_number": "+15556000004"})),
            ),
            (
                Method::DELETE,
                "/api/v1/campaigns/{c}/contacts/{l}".into(),
                None,
            ),
        ];
        for (method, template, body) in &routes {
            let theirs = template.replace("{c}", &ca).replace("{l}", &la);
            let random = template.replace("{c}", &random_c).replace("{l}", &random_l);
            let (s1, v1) = send(&app, method.clone(), &theirs, &b, body.clone()).await;
            let (s2, v2) = send(&app, method.clone(), &random, &b, body.clone()).await;
            assert_eq!(s1, 404, "{method} {theirs}: {v1}");
            assert_eq!(
                (s1, &v1),
                (s2, &v2),
                "{method} {template}: foreign and random ids look the same"
            );
            assert_eq!(v1["detail"], "Campaign not found");
        }
        // A's contact through B's own campaign: the contact 404.
        let (s1, v1) = send(
            &app,
            Method::DELETE,
            &format!("/api/v1/campaigns/{cb}/contacts/{la}"),
            &b,
            None,
        )
        .await;
        let (s2, v2) = send(
            &app,
            Method::DELETE,
            &format!("/api/v1/campaigns/{cb}/contacts/{random_l}"),
            &b,
            None,
        )
        .await;
        assert_eq!(
            (s1, &v1),
            (
                404,
                &json!({"detail": "Contact not found in this campaign", "code": "not_found"})
            )
        );
        assert_eq!((s1, v1), (s2, v2));
        // Uploads into A's campaign, by path and by /contacts/bulk (form and query).
        for c in [&ca, &random_c] {
            let (s, v) = json(
                post_form(
                    &app,
                    &format!("/api/v1/campaigns/{c}/contacts/upload"),
                    &b,
                    &[Part::file("x.csv", "text/csv", csv)],
                )
                .await,
            )
            .await;
            assert_eq!((s, v["detail"].as_str()), (404, Some("Campaign not found")));
            let (s, v) = json(
                post_form(
                    &app,
                    "/api/v1/contacts/bulk",
                    &b,
                    &[
                        Part::file("x.csv", "text/csv", csv),
                        Part::text("campaign_id", c),
                    ],
                )
                .await,
            )
            .await;
            assert_eq!((s, v["detail"].as_str()), (404, Some("Campaign not found")));
            let (s, v) = json(
                post_form(
                    &app,
                    &format!("/api/v1/contacts/bulk?campaign_id={c}"),
                    &b,
                    &[Part::file("x.csv", "text/csv", csv)],
                )
                .await,
            )
            .await;
            assert_eq!((s, v["detail"].as_str()), (404, Some("Campaign not found")));
        }
        // A's DNC entry is not B's to delete.
        let (s1, v1) = send(&app, Method::DELETE, "/api/v1/dnc/%2B15556000099", &b, None).await;
        let (s2, v2) = send(&app, Method::DELETE, "/api/v1/dnc/%2B15556000098", &b, None).await;
        assert_eq!(s1, 404);
        assert_eq!((s1, v1), (s2, v2));

        // Lists never show A's rows.
        let (_, v) = json(app.get_auth("/api/v1/campaigns", &b).await).await;
        let ids: Vec<_> = v["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, vec![cb.as_str()]);
        let leads = contacts(&app, &b, &cb).await;
        assert_eq!(leads.len(), 1);
        assert_eq!(leads[0]["phone_number"], "+15557000001");
        let (_, v) = json(app.get_auth("/api/v1/dnc", &b).await).await;
        assert_eq!(v["total"], 0);
        // B may add a number A lists (the lists are separate).
        let (s, _) = json(
            app.post_auth(
                &format!("/api/v1/campaigns/{cb}/contacts"),
                &b,
                json!({"phone_number": "+15556000099"}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201);

        // B starting A's campaign: without, with the query and with the body tenant_id of A.
        let start = format!("/api/v1/campaigns/{ca}/start");
        let (s, _) = send(&app, Method::POST, &start, &b, None).await;
        assert_eq!(s, 404);
        let (s, v) = send(
            &app,
            Method::POST,
            &format!("{start}?tenant_id={tenant_a}"),
            &b,
            None,
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (403, Some("Forbidden")));
        let (s, v) = send(
            &app,
            Method::POST,
            &start,
            &b,
            Some(json!({"tenant_id": tenant_a.to_string()})),
        )
        .await;
        assert_eq!((s, v["detail"].as_str()), (403, Some("Forbidden")));
        let st = stats(&app, &a, &ca).await;
        assert_eq!(st["campaign_status"], "draft");
        assert_eq!(total_jobs(&app, &a, &ca).await, 0, "no job was created");

        // A foreign tenant_id (query or body) is 403 and writes nothing, on every route.
        let q = format!("tenant_id={tenant_a}");
        for path in [
            "/api/v1/campaigns".to_string(),
            format!("/api/v1/campaigns/{cb}"),
            format!("/api/v1/campaigns/{cb}/jobs"),
            format!("/api/v1/campaigns/{cb}/stats"),
            format!("/api/v1/campaigns/{cb}/contacts"),
            "/api/v1/dnc".to_string(),
        ] {
            let (s, _) = json(app.get_auth(&format!("{path}?{q}"), &b).await).await;
            assert_eq!(s, 403, "{path}");
        }
        let foreign = json!(tenant_a.to_string());
        let writes: Vec<(Method, String, Value)> = vec![
            (
                Method::POST,
                "/api/v1/campaigns".into(),
                json!({"name": "x", "system_prompt": "p", "tenant_id": foreign}),
            ),
            (
                Method::PATCH,
                format!("/api/v1/campaigns/{cb}"),
                json!({"name": "x", "tenant_id": foreign}),
            ),
            (
                Method::POST,
                format!("/api/v1/campaigns/{cb}/start"),
                json!({"tenant_id": foreign}),
            ),
            (
                Method::POST,
                format!("/api/v1/campaigns/{cb}/contacts"),
                json!({"phone_number": "+15557000002", "tenant_id": foreign}),
            ),
            (
                Method::POST,
                "/api/v1/dnc".into(),
                json!({"phone_number": "+15557000003", "tenant_id": foreign}),
            ),
        ];
        for (method, path, body) in writes {
            let (s, v) = send(&app, method.clone(), &path, &b, Some(body)).await;
            assert_eq!(
                (s, v["detail"].as_str()),
                (403, Some("Forbidden")),
                "{method} {path}"
            );
        }
        for (method, path) in [
            (Method::POST, format!("/api/v1/campaigns/{cb}/pause?{q}")),
            (Method::POST, format!("/api/v1/campaigns/{cb}/stop?{q}")),
            (
                Method::DELETE,
                format!("/api/v1/campaigns/{cb}/contacts/{random_l}?{q}"),
            ),
            (Method::DELETE, format!("/api/v1/dnc/%2B15557000001?{q}")),
        ] {
            let (s, _) = send(&app, method.clone(), &path, &b, None).await;
            assert_eq!(s, 403, "{method} {path}");
        }
        let up = format!("/api/v1/campaigns/{cb}/contacts/upload");
        let (s, _) = json(
            post_form(
                &app,
                &format!("{up}?{q}"),
                &b,
                &[Part::file("x.csv", "text/csv", csv)],
            )
            .await,
        )
        .await;
        assert_eq!(s, 403);
        let (s, _) = json(
            post_form(
                &app,
                &up,
                &b,
                &[
                    Part::file("x.csv", "text/csv", csv),
                    Part::text("tenant_id", &tenant_a.to_string()),
                ],
            )
            .await,
        )
        .await;
        assert_eq!(s, 403);
        let (s, _) = json(
            post_form(
                &app,
                "/api/v1/contacts/bulk",
                &b,
                &[
                    Part::file("x.csv", "text/csv", csv),
                    Part::text("tenant_id", &tenant_a.to_string()),
                ],
            )
            .await,
        )
        .await;
        assert_eq!(s, 403);
        assert_eq!(campaign_count(&app, &b).await, 1);
        assert_eq!(contacts(&app, &b, &cb).await.len(), 2);
        assert_eq!(status_of_b(&app, &b, &cb).await, "draft");
        assert!(app.store.list_clients(tenant_b).await.unwrap().is_empty());
        // The caller's own tenant_id is accepted.
        let (s, _) = json(
            app.get_auth(&format!("/api/v1/campaigns?tenant_id={tenant_b}"), &b)
                .await,
        )
        .await;
        assert_eq!(s, 200);
        let (s, v) = json(
            post_form(
                &app,
                &up,
                &b,
                &[
                    Part::file("x.csv", "text/csv", csv),
                    Part::text("tenant_id", &tenant_b.to_string()),
                ],
            )
            .await,
        )
        .await;
        assert_eq!((s, v["imported"].as_u64()), (200, Some(1)), "{v}");

        // A's objects are intact.
        let (_, v) = json(app.get_auth(&format!("/api/v1/campaigns/{ca}"), &a).await).await;
        assert_eq!(v["campaign"]["name"], "A campaign");
        assert_eq!(contacts(&app, &a, &ca).await.len(), 2);
        let (_, v) = json(app.get_auth("/api/v1/dnc", &a).await).await;
        assert_eq!(v["total"], 1);
    });
}

async fn status_of_b(app: &TestApp, token: &str, id: &str) -> String {
    let (_, v) = json(
        app.get_auth(&format!("/api/v1/campaigns/{id}"), token)
            .await,
    )
    .await;
    v["campaign"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
