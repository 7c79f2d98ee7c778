//! `/dashboard/summary` (C5, with C1 minutes) and `/analytics/calls` (C6).

use crate::calls::{at, seed_call, seed_campaign, set_clock, tenant_of};
use crate::for_each_engine;
use crate::helpers::json;
use serde_json::json;
use talky_core::model::{CallStatus, Outcome};
use talky_core::ports::store::StartOptions;

#[tokio::test]
async fn dashboard_counts_current_period_and_minutes() {
    for_each_engine!(|app| {
        set_clock(&app, at("2025-06-18T12:00:00Z"));
        let token = app.register_owner("dash@example.com", "Dash").await;
        let tenant = tenant_of(&app, &token).await;

        let (s, v) = json(app.get_auth("/api/v1/dashboard/summary", &token).await).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v,
            json!({"total_calls":0,"answered_calls":0,"failed_calls":0,"minutes_used":0,"minutes_remaining":300,"active_campaigns":0})
        );

        // June (the current period): two connected, three unconnected finished, one live.
        seed_call(
            &app,
            tenant,
            at("2025-06-01T00:00:00Z"),
            CallStatus::Completed,
            Some(Outcome::GoalAchieved),
            61,
        )
        .await;
        seed_call(
            &app,
            tenant,
            at("2025-06-05T09:00:00Z"),
            CallStatus::Completed,
            Some(Outcome::Answered),
            60,
        )
        .await;
        seed_call(
            &app,
            tenant,
            at("2025-06-06T09:00:00Z"),
            CallStatus::NoAnswer,
            Some(Outcome::NoAnswer),
            0,
        )
        .await;
        seed_call(
            &app,
            tenant,
            at("2025-06-07T09:00:00Z"),
            CallStatus::Busy,
            Some(Outcome::Busy),
            0,
        )
        .await;
        seed_call(
            &app,
            tenant,
            at("2025-06-08T09:00:00Z"),
            CallStatus::Completed,
            Some(Outcome::Voicemail),
            20,
        )
        .await;
        seed_call(
            &app,
            tenant,
            at("2025-06-18T11:59:00Z"),
            CallStatus::InProgress,
            None,
            30,
        )
        .await;
        // May: another period, not counted at all.
        seed_call(
            &app,
            tenant,
            at("2025-05-31T23:59:59Z"),
            CallStatus::Completed,
            Some(Outcome::Answered),
            600,
        )
        .await;

        // One running campaign, one draft.
        let running = seed_campaign(&app, tenant, "Running").await;
        app.store
            .start_campaign(
                tenant,
                running,
                StartOptions::default(),
                at("2025-06-18T12:00:00Z"),
            )
            .await
            .unwrap()
            .unwrap();
        seed_campaign(&app, tenant, "Draft").await;

        // 61 + 60 + 20 + 30 = 171 s → ceil(171 / 60) = 3 minutes (C1, no status filter).
        let (s, v) = json(app.get_auth("/api/v1/dashboard/summary", &token).await).await;
        assert_eq!(s, 200);
        assert_eq!(
            v,
            json!({"total_calls":6,"answered_calls":2,"failed_calls":3,"minutes_used":3,"minutes_remaining":297,"active_campaigns":1})
        );
        // /auth/me reports the same minutes (the one C1 function).
        let (_, me) = json(app.get_auth("/api/v1/auth/me", &token).await).await;
        assert_eq!(
            (
                me["minutes_used"].as_i64(),
                me["minutes_remaining"].as_i64()
            ),
            (Some(3), Some(297))
        );

        // Allocation below usage clamps at 0; ≤ 0 is unlimited (remaining null).
        app.store.admin_set_minutes(tenant, 2).await.unwrap();
        let (_, v) = json(app.get_auth("/api/v1/dashboard/summary", &token).await).await;
        assert_eq!(
            (v["minutes_used"].as_i64(), v["minutes_remaining"].as_i64()),
            (Some(3), Some(0))
        );
        app.store.admin_set_minutes(tenant, 0).await.unwrap();
        let (_, v) = json(app.get_auth("/api/v1/dashboard/summary", &token).await).await;
        assert_eq!(v["minutes_remaining"], serde_json::Value::Null);
        assert_eq!(v["minutes_used"], 3);

        // Next month: a fresh period (sign in again: the session has expired by then).
        app.clock.advance(chrono::Duration::days(14));
        let token = app.login("dash@example.com").await;
        let (_, v) = json(app.get_auth("/api/v1/dashboard/summary", &token).await).await;
        assert_eq!(
            (
                v["total_calls"].as_i64(),
                v["minutes_used"].as_i64(),
                v["active_campaigns"].as_i64()
            ),
            (Some(0), Some(0), Some(1))
        );
    });
}

#[tokio::test]
async fn analytics_buckets_by_day_week_month() {
    for_each_engine!(|app| {
        // 2025-06-18 is a Wednesday; the default range is 2025-05-19 ..= 2025-06-18.
        set_clock(&app, at("2025-06-18T12:00:00Z"));
        let token = app.register_owner("ana@example.com", "Ana").await;
        let tenant = tenant_of(&app, &token).await;

        let (s, v) = json(app.get_auth("/api/v1/analytics/calls", &token).await).await;
        assert_eq!((s, v), (200, json!({"series": []})));

        let seed = |t: &'static str, status, outcome| {
            let app = &app;
            async move { seed_call(app, tenant, at(t), status, outcome, 10).await }
        };
        seed(
            "2025-05-18T10:00:00Z",
            CallStatus::Completed,
            Some(Outcome::Answered),
        )
        .await; // before default range
        seed(
            "2025-05-19T00:00:00Z",
            CallStatus::Completed,
            Some(Outcome::Answered),
        )
        .await; // first default day
        seed(
            "2025-06-02T10:00:00Z",
            CallStatus::Completed,
            Some(Outcome::Declined),
        )
        .await; // Monday
        seed(
            "2025-06-04T10:00:00Z",
            CallStatus::Busy,
            Some(Outcome::Busy),
        )
        .await; // Wednesday
        seed(
            "2025-06-08T23:59:59Z",
            CallStatus::NoAnswer,
            Some(Outcome::NoAnswer),
        )
        .await; // Sunday
        seed(
            "2025-06-09T00:00:00Z",
            CallStatus::Completed,
            Some(Outcome::GoalAchieved),
        )
        .await; // Monday
        seed("2025-06-18T11:00:00Z", CallStatus::InProgress, None).await; // today, live
        seed(
            "2025-07-01T08:00:00Z",
            CallStatus::Completed,
            Some(Outcome::Answered),
        )
        .await; // after today

        let (s, v) = json(app.get_auth("/api/v1/analytics/calls", &token).await).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v,
            json!({"series": [
                {"date": "2025-05-19", "total_calls": 1, "answered": 1, "failed": 0},
                {"date": "2025-06-02", "total_calls": 1, "answered": 1, "failed": 0},
                {"date": "2025-06-04", "total_calls": 1, "answered": 0, "failed": 1},
                {"date": "2025-06-08", "total_calls": 1, "answered": 0, "failed": 1},
                {"date": "2025-06-09", "total_calls": 1, "answered": 1, "failed": 0},
                {"date": "2025-06-18", "total_calls": 1, "answered": 0, "failed": 0},
            ]})
        );

        let (_, v) = json(
            app.get_auth(
                "/api/v1/analytics/calls?from=2025-06-01&to=2025-06-30&group_by=week",
                &token,
            )
            .await,
        )
        .await;
        assert_eq!(
            v,
            json!({"series": [
                {"date": "2025-06-02", "total_calls": 3, "answered": 1, "failed": 2},
                {"date": "2025-06-09", "total_calls": 1, "answered": 1, "failed": 0},
                {"date": "2025-06-16", "total_calls": 1, "answered": 0, "failed": 0},
            ]})
        );
        // A week bucket is labelled by its Monday even when the range starts mid-week.
        let (_, v) = json(
            app.get_auth(
                "/api/v1/analytics/calls?from=2025-06-04&to=2025-06-08&group_by=week",
                &token,
            )
            .await,
        )
        .await;
        assert_eq!(
            v,
            json!({"series": [{"date": "2025-06-02", "total_calls": 2, "answered": 0, "failed": 2}]})
        );

        let (_, v) = json(
            app.get_auth(
                "/api/v1/analytics/calls?from=2025-05-01&to=2025-07-31&group_by=month",
                &token,
            )
            .await,
        )
        .await;
        assert_eq!(
            v,
            json!({"series": [
                {"date": "2025-05-01", "total_calls": 2, "answered": 2, "failed": 0},
                {"date": "2025-06-01", "total_calls": 5, "answered": 2, "failed": 2},
                {"date": "2025-07-01", "total_calls": 1, "answered": 1, "failed": 0},
            ]})
        );

        // Inclusive `to`: a single day includes its last second.
        let (_, v) = json(
            app.get_auth(
                "/api/v1/analytics/calls?from=2025-06-08&to=2025-06-08&group_by=day",
                &token,
            )
            .await,
        )
        .await;
        assert_eq!(
            v,
            json!({"series": [{"date": "2025-06-08", "total_calls": 1, "answered": 0, "failed": 1}]})
        );
        // Only `from`: `to` defaults to today.
        let (_, v) = json(
            app.get_auth("/api/v1/analytics/calls?from=2025-06-09", &token)
                .await,
        )
        .await;
        assert_eq!(v["series"].as_array().unwrap().len(), 2);
        // Only `to`: `from` defaults to `to` − 30 days.
        let (_, v) = json(
            app.get_auth(
                "/api/v1/analytics/calls?to=2025-06-17&group_by=month",
                &token,
            )
            .await,
        )
        .await;
        assert_eq!(
            v,
            json!({"series": [
                {"date": "2025-05-01", "total_calls": 2, "answered": 2, "failed": 0},
                {"date": "2025-06-01", "total_calls": 4, "answered": 2, "failed": 2},
            ]})
        );

        let (s, v) = json(
            app.get_auth(
                "/api/v1/analytics/calls?from=2024-01-01&to=2024-01-31",
                &token,
            )
            .await,
        )
        .await;
        assert_eq!((s, v), (200, json!({"series": []})));

        for (q, field) in [
            ("group_by=year", "group_by"),
            ("from=2025-06-10&to=2025-06-01", "from"),
            ("from=yesterday", "from"),
            ("to=2025-02-30", "to"),
            ("from=2025-06-19", "from"),
            ("bogus=1", "bogus"),
        ] {
            let (s, v) = json(
                app.get_auth(&format!("/api/v1/analytics/calls?{q}"), &token)
                    .await,
            )
            .await;
            assert_eq!(s, 422, "{q}: {v}");
            assert!(v["fields"][field].is_string(), "{q}: {v}");
        }
    });
}
