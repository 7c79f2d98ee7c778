//! `/clients` (D15): create with D6 phone normalisation and e-mail validation, list by
//! name, get, delete; rejected requests write nothing.

use crate::for_each_engine;
use crate::helpers::json;
use serde_json::{json, Value};

#[tokio::test]
async fn clients_crud() {
    for_each_engine!(|app| {
        let token = app.register_owner("cl@example.com", "Clients").await;
        let (s, v) = json(app.get_auth("/api/v1/clients", &token).await).await;
        assert_eq!((s, v), (200, json!([])));

        let (s, zed) = json(
            app.post_auth(
                "/api/v1/clients",
                &token,
                json!({"name": "  Zed  ", "company": "Acme", "phone": "(555) 123-4567", "email": " Zed@Example.COM ",
                       "tags": ["warm", " vip ", "warm"], "notes": "Met at a conference"}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 200, "{zed}");
        let id = zed["id"].as_str().unwrap().to_string();
        assert!(id.parse::<uuid::Uuid>().is_ok());
        assert_eq!(
            zed,
            json!({"id": id, "name": "Zed", "company": "Acme", "phone": "+15551234567", "email": "zed@example.com", "tags": ["warm", "vip"]})
        );

        let (s, amy) = json(
            app.post_auth(
                "/api/v1/clients",
                &token,
                json!({"name": "Amy", "tags": []}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 200, "{amy}");
        assert_eq!(
            (
                amy["company"].clone(),
                amy["phone"].clone(),
                amy["email"].clone()
            ),
            (Value::Null, Value::Null, Value::Null)
        );
        let (s, bob) = json(
            app.post_auth(
                "/api/v1/clients",
                &token,
                json!({"name": "Bob", "phone": "0044 20 7123 4567", "email": "", "company": " "}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 200, "{bob}");
        assert_eq!(bob["phone"], "+442071234567");
        assert_eq!(
            (
                bob["email"].clone(),
                bob["company"].clone(),
                bob["tags"].clone()
            ),
            (Value::Null, Value::Null, json!([]))
        );

        // Ordered by name.
        let (_, list) = json(app.get_auth("/api/v1/clients", &token).await).await;
        let names: Vec<_> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["Amy", "Bob", "Zed"]);
        assert_eq!(list[2], zed);

        let (s, v) = json(app.get_auth(&format!("/api/v1/clients/{id}"), &token).await).await;
        assert_eq!((s, v), (200, zed.clone()));

        let (s, v) = json(
            app.delete_auth(&format!("/api/v1/clients/{id}"), &token)
                .await,
        )
        .await;
        assert_eq!((s, v), (200, json!({"detail": "Client deleted"})));
        for r in [
            app.get_auth(&format!("/api/v1/clients/{id}"), &token).await,
            app.delete_auth(&format!("/api/v1/clients/{id}"), &token)
                .await,
            app.get_auth(&format!("/api/v1/clients/{}", uuid::Uuid::new_v4()), &token)
                .await,
        ] {
            let (s, v) = json(r).await;
            assert_eq!((s, v["detail"].as_str()), (404, Some("Client not found")));
        }
        let (s, _) = json(app.get_auth("/api/v1/clients/123", &token).await).await;
        assert_eq!(s, 404);
        let (_, list) = json(app.get_auth("/api/v1/clients", &token).await).await;
        assert_eq!(list.as_array().unwrap().len(), 2);
    });
}

#[tokio::test]
async fn client_validation_writes_nothing() {
    for_each_engine!(|app| {
        let token = app.register_owner("clv@example.com", "ClientsV").await;
        for (body, field) in [
            (json!({}), "name"),
            (json!({"name": "   "}), "name"),
            (json!({"name": "x".repeat(256)}), "name"),
            (json!({"name": 5}), "name"),
            (json!({"name": "A", "email": "nope"}), "email"),
            (json!({"name": "A", "email": "a@b"}), "email"),
            (json!({"name": "A", "tags": "warm"}), "tags"),
            (json!({"name": "A", "tags": [""]}), "tags.0"),
            (json!({"name": "A", "company": "c".repeat(256)}), "company"),
            (
                json!({"name": "A", "id": uuid::Uuid::new_v4().to_string()}),
                "id",
            ),
            (
                json!({"name": "A", "created_at": "2025-01-01T00:00:00Z"}),
                "created_at",
            ),
            // A field error wins over a bad phone (422 before 400).
            (json!({"name": "", "phone": "123"}), "name"),
        ] {
            let (s, v) = json(app.post_auth("/api/v1/clients", &token, body.clone()).await).await;
            assert_eq!(s, 422, "{body}: {v}");
            assert_eq!(v["code"], "validation_error");
            assert!(v["fields"][field].is_string(), "{body}: {v}");
        }
        for (phone, reason) in [
            ("555-CALL-NOW", "Invalid phone number"),
            ("123456", "Phone number too short (minimum 7 digits)"),
            (
                "1234567890123456",
                "Phone number too long (maximum 15 digits)",
            ),
            (
                "0123456789",
                "Ambiguous national number; include the country code",
            ),
            ("+0123456789", "Invalid phone number"),
        ] {
            let (s, v) = json(
                app.post_auth(
                    "/api/v1/clients",
                    &token,
                    json!({"name": "A", "phone": phone}),
                )
                .await,
            )
            .await;
            assert_eq!(s, 400, "{phone}: {v}");
            assert_eq!(
                v["detail"],
                format!("Invalid phone number: {reason}"),
                "{phone}"
            );
        }
        let r = app
            .client
            .post(app.url("/api/v1/clients"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{\"name\":")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);

        let (_, list) = json(app.get_auth("/api/v1/clients", &token).await).await;
        assert_eq!(list, json!([]), "rejected requests wrote nothing");
    });
}
