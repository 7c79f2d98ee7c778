//! Store conformance suite: every test runs on every engine of `testing::engines()` (SQLite
//! always, PostgreSQL when `TALKY_TEST_POSTGRES_URL` is set), each on a fresh database that
//! is dropped afterwards, also when the test fails.

use chrono::{DateTime, Duration, TimeZone, Utc};
use sqlx::Connection;
use std::future::Future;
use talky_core::csv_import::{ImportReport, ParsedRow, RowError};
use talky_core::ids::*;
use talky_core::model::*;
use talky_core::phone::E164;
use talky_core::ports::store::*;
use talky_store::testing::{engines, TestDb};
use talky_store::{migration_versions, Engine, SqlStore};

// ---------------------------------------------------------------------------------------
// Harness

/// What a test body gets: the store plus enough to reach the database directly (for
/// arranging rows no port method writes yet, e.g. lead tags, job states).
#[derive(Clone)]
struct Ctx {
    store: SqlStore,
    url: String,
    engine: Engine,
}

async fn on_each_engine<F, Fut>(name: &str, body: F)
where
    F: Fn(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for engine in engines() {
        let db = TestDb::new(engine).await;
        let ctx = Ctx {
            store: db.store.clone(),
            url: db.url.clone(),
            engine,
        };
        let result = tokio::spawn(body(ctx)).await;
        db.cleanup().await;
        if let Err(e) = result {
            eprintln!("{name} failed on {engine:?}");
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            panic!("{name} on {engine:?}: {e}");
        }
    }
}

impl Ctx {
    /// Runs a statement directly on the database; returns rows affected.
    async fn raw(&self, sql: &str) -> u64 {
        match self.engine {
            Engine::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                let n = sqlx::query(sql)
                    .execute(&mut c)
                    .await
                    .unwrap()
                    .rows_affected();
                c.close().await.ok();
                n
            }
            Engine::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let n = sqlx::query(sql)
                    .execute(&mut c)
                    .await
                    .unwrap()
                    .rows_affected();
                c.close().await.ok();
                n
            }
        }
    }

    /// A single BIGINT-valued query, run directly on the database.
    async fn scalar(&self, sql: &str) -> i64 {
        match self.engine {
            Engine::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut c).await.unwrap();
                c.close().await.ok();
                n
            }
            Engine::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut c).await.unwrap();
                c.close().await.ok();
                n
            }
        }
    }

    /// Tries a statement; `Err` is the database's refusal.
    async fn try_raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql)
                    .execute(&mut c)
                    .await
                    .map(|r| r.rows_affected())
            }
            Engine::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql)
                    .execute(&mut c)
                    .await
                    .map(|r| r.rows_affected())
            }
        }
    }

    async fn active_jobs(&self, campaign: CampaignId) -> i64 {
        self.scalar(&format!(
            "SELECT COUNT(*) FROM dialer_jobs WHERE campaign_id = '{campaign}' \
             AND status IN ('pending', 'retry_scheduled', 'processing')"
        ))
        .await
    }

    async fn max_active_jobs_per_lead(&self, campaign: CampaignId) -> i64 {
        self.scalar(&format!(
            "SELECT CAST(COALESCE(MAX(n), 0) AS BIGINT) FROM (SELECT COUNT(*) AS n FROM dialer_jobs \
             WHERE campaign_id = '{campaign}' AND status IN ('pending', 'retry_scheduled', 'processing') \
             GROUP BY lead_id) x"
        ))
        .await
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 10, 12, 0, 0).unwrap()
}

fn phone(s: &str) -> E164 {
    E164::parse(s).unwrap()
}

/// A tenant registered the way the product does it: magic link, then redeem.
async fn new_tenant(store: &SqlStore, email: &str) -> (TenantId, Redeemed) {
    let tenant_id = TenantId::new();
    let token_hash = format!("hash-{email}");
    store
        .create_auth_link(NewAuthLink {
            token_hash: token_hash.clone(),
            email: email.into(),
            payload: LinkPayload::Register {
                tenant_id,
                business_name: format!("Biz {email}"),
                plan_id: "professional".into(),
                name: Some("Owner".into()),
            },
            created_at: t0(),
            expires_at: t0() + Duration::minutes(15),
        })
        .await
        .unwrap();
    let redeemed = store
        .redeem_auth_link(
            &token_hash,
            t0() + Duration::minutes(1),
            t0() + Duration::days(7),
        )
        .await
        .unwrap();
    (tenant_id, redeemed)
}

async fn tenant(store: &SqlStore, email: &str) -> TenantId {
    new_tenant(store, email).await.0
}

fn new_campaign(name: &str) -> NewCampaign {
    NewCampaign {
        name: name.into(),
        system_prompt: "You are a friendly caller.".into(),
        ..Default::default()
    }
}

async fn campaign(store: &SqlStore, t: TenantId, name: &str, at: DateTime<Utc>) -> Campaign {
    store
        .create_campaign(t, new_campaign(name), at)
        .await
        .unwrap()
}

fn row(n: usize, p: &str) -> ParsedRow {
    ParsedRow {
        row: n,
        phone: phone(p),
        raw_phone: p.into(),
        first_name: Some(format!("First{n}")),
        last_name: None,
        email: None,
        name: None,
        company: None,
        custom_fields: Default::default(),
    }
}

/// `count` distinct rows numbered from 2 with phones `+1555…`.
fn rows(count: usize) -> Vec<ParsedRow> {
    (0..count)
        .map(|i| row(i + 2, &format!("+1555{:07}", i)))
        .collect()
}

async fn import(
    store: &SqlStore,
    t: TenantId,
    c: CampaignId,
    rows: Vec<ParsedRow>,
    skip_duplicates: bool,
) -> ImportReport {
    let report = ImportReport::new(rows.len());
    let report = store
        .import_leads(t, c, rows, skip_duplicates, report, t0())
        .await
        .unwrap()
        .finish(100);
    assert!(report.is_balanced(), "{report:?}");
    report
}

async fn all_leads(store: &SqlStore, t: TenantId, c: CampaignId) -> Vec<Lead> {
    store
        .list_leads(t, c, LeadFilter::default(), Page::new(1, 100))
        .await
        .unwrap()
        .0
}

fn is_not_found<T: std::fmt::Debug>(r: StoreResult<T>) -> bool {
    matches!(r, Err(StoreError::NotFound))
}

// ---------------------------------------------------------------------------------------
// Migrations and accounts

#[test]
fn migration_versions_match_across_engines() {
    let sqlite = migration_versions(Engine::Sqlite);
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, migration_versions(Engine::Postgres));
}

#[tokio::test]
async fn register_redeem_once_and_session_lifecycle() {
    on_each_engine(
        "register_redeem_once_and_session_lifecycle",
        |ctx| async move {
            let s = &ctx.store;
            let (tid, redeemed) = new_tenant(s, "owner@example.com").await;
            let m = redeemed
                .context
                .membership
                .clone()
                .expect("owner membership");
            assert_eq!(m.tenant.id, tid);
            assert_eq!(m.role, Role::Owner);
            assert_eq!(m.tenant.minutes_allocated, 1500, "plan minutes");

            // A link redeems once.
            let again = s
                .redeem_auth_link(
                    "hash-owner@example.com",
                    t0() + Duration::minutes(2),
                    t0() + Duration::days(7),
                )
                .await;
            assert!(matches!(again, Err(StoreError::InvalidLink)), "{again:?}");

            let sid = redeemed.session.id;
            let now = t0() + Duration::minutes(3);
            assert!(s.session_context(sid, now).await.unwrap().is_some());
            s.revoke_session(sid, now).await.unwrap();
            assert!(s.session_context(sid, now).await.unwrap().is_none());
        },
    )
    .await;
}

#[tokio::test]
async fn removing_the_last_owner_is_a_conflict() {
    on_each_engine("removing_the_last_owner_is_a_conflict", |ctx| async move {
        let s = &ctx.store;
        let (tid, redeemed) = new_tenant(s, "solo@example.com").await;
        let r = s.remove_member(tid, redeemed.context.user.id, t0()).await;
        assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
        assert_eq!(s.list_members(tid).await.unwrap().len(), 1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Campaigns

#[tokio::test]
async fn campaign_create_get_list_patch() {
    on_each_engine("campaign_create_get_list_patch", |ctx| async move {
        let s = &ctx.store;
        let a = tenant(s, "a@example.com").await;
        let b = tenant(s, "b@example.com").await;
        let mut nc = new_campaign("First");
        nc.description = Some("desc".into());
        nc.key_terms = vec!["Acme".into(), "Zed".into()];
        nc.calling_rules = Some(serde_json::json!({"max_attempts": 2}));
        let c1 = s.create_campaign(a, nc, t0()).await.unwrap();
        assert_eq!(c1.status, CampaignStatus::Draft);
        assert_eq!(c1.language, "en");
        assert_eq!(c1.max_concurrent_calls, 10);
        assert_eq!(c1.max_call_seconds, 7200);
        assert_eq!(c1.key_terms, vec!["Acme".to_string(), "Zed".to_string()]);
        assert_eq!(
            c1.calling_rules,
            Some(serde_json::json!({"max_attempts": 2}))
        );
        assert_eq!(c1.created_at, t0());
        let c2 = campaign(s, a, "Second", t0() + Duration::seconds(1)).await;

        assert_eq!(s.get_campaign(a, c1.id).await.unwrap(), c1);
        let listed: Vec<_> = s
            .list_campaigns(a)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(listed, vec![c2.id, c1.id], "newest first");

        let later = t0() + Duration::minutes(5);
        let patched = s
            .update_campaign(
                a,
                c1.id,
                CampaignPatch {
                    name: Some("Renamed".into()),
                    description: Some(None),
                    max_concurrent_calls: Some(3),
                    calling_rules: Some(None),
                    ..Default::default()
                },
                later,
            )
            .await
            .unwrap();
        assert_eq!(patched.name, "Renamed");
        assert_eq!(patched.description, None);
        assert_eq!(patched.max_concurrent_calls, 3);
        assert_eq!(patched.calling_rules, None);
        assert_eq!(patched.system_prompt, c1.system_prompt, "untouched");
        assert_eq!(patched.key_terms, c1.key_terms, "untouched");
        assert_eq!(patched.updated_at, later);
        assert_eq!(s.get_campaign(a, c1.id).await.unwrap(), patched);

        // Tenant B sees nothing of A's.
        assert!(is_not_found(s.get_campaign(b, c1.id).await));
        assert!(s.list_campaigns(b).await.unwrap().is_empty());
        let r = s
            .update_campaign(
                b,
                c1.id,
                CampaignPatch {
                    name: Some("x".into()),
                    ..Default::default()
                },
                later,
            )
            .await;
        assert!(is_not_found(r));
        assert_eq!(s.get_campaign(a, c1.id).await.unwrap().name, "Renamed");
        assert!(is_not_found(s.get_campaign(a, CampaignId::new()).await));
    })
    .await;
}

#[tokio::test]
async fn start_enqueues_each_callable_lead_once() {
    on_each_engine("start_enqueues_each_callable_lead_once", |ctx| async move {
        let s = &ctx.store;
        let t = tenant(s, "a@example.com").await;
        let c = campaign(s, t, "C", t0()).await;
        let report = import(s, t, c.id, rows(5), false).await;
        assert_eq!(report.imported, 5);
        let leads = all_leads(s, t, c.id).await;
        let by_phone = |p: &str| leads.iter().find(|l| l.phone_number == p).unwrap().clone();
        // Lead 0: VIP with a priority tag (E4 example → 8). Lead 1: deleted. Lead 2: on DNC.
        let vip = by_phone("+15550000000");
        ctx.raw(&format!(
            "UPDATE leads SET is_high_value = TRUE, tags = '[\"appointment\", \"urgent\"]' WHERE id = '{}'",
            vip.id
        ))
        .await;
        let deleted = by_phone("+15550000001");
        s.delete_lead(t, c.id, deleted.id, t0()).await.unwrap();
        s.add_dnc(t, &phone("+15550000002"), None, None, t0()).await.unwrap();

        let now = t0() + Duration::hours(1);
        let started = s.start_campaign(t, c.id, StartOptions::default(), now).await.unwrap().unwrap();
        assert_eq!(started.jobs_enqueued, 3);
        assert_eq!(started.campaign.status, CampaignStatus::Running);
        assert_eq!(started.campaign.started_at, Some(now));
        let (jobs, total) = s.list_jobs(t, c.id, None, Page::new(1, 100)).await.unwrap();
        assert_eq!(total, 3);
        let vip_job = jobs.iter().find(|j| j.lead_id == vip.id).expect("vip job");
        assert_eq!(vip_job.priority, 8);
        assert_eq!(vip_job.status, JobStatus::Pending);
        assert_eq!(vip_job.scheduled_at, now);
        assert!(jobs.iter().filter(|j| j.lead_id != vip.id).all(|j| j.priority == 5));
        assert!(!jobs.iter().any(|j| j.lead_id == deleted.id));

        // Starting again is refused and creates nothing.
        let again = s.start_campaign(t, c.id, StartOptions::default(), now).await.unwrap();
        assert_eq!(again, Err(TransitionError::AlreadyRunning));
        assert_eq!(ctx.active_jobs(c.id).await, 3);

        // Pause → start: every lead already has its job.
        let paused = s.pause_campaign(t, c.id, Some("out_of_minutes".into()), now).await.unwrap().unwrap();
        assert_eq!(paused.status, CampaignStatus::Paused);
        assert_eq!(paused.pause_reason.as_deref(), Some("out_of_minutes"));
        let restarted = s
            .start_campaign(t, c.id, StartOptions { priority_override: Some(2) }, now + Duration::hours(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(restarted.jobs_enqueued, 0);
        assert_eq!(restarted.campaign.pause_reason, None);
        assert_eq!(restarted.campaign.started_at, Some(now), "started_at is kept");
        assert_eq!(ctx.active_jobs(c.id).await, 3);

        // Stop clears the queue; a later start enqueues the same leads again, with the override.
        let stopped = s.stop_campaign(t, c.id, now).await.unwrap().unwrap();
        assert_eq!(stopped.jobs_cleared, 3);
        assert_eq!(ctx.active_jobs(c.id).await, 0);
        let again = s
            .start_campaign(t, c.id, StartOptions { priority_override: Some(2) }, now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.jobs_enqueued, 3);
        assert_eq!(again.campaign.completed_at, None);
        let (pending, n) = s
            .list_jobs(t, c.id, Some(JobStatus::Pending), Page::new(1, 100))
            .await
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(pending.iter().find(|j| j.lead_id == vip.id).unwrap().priority, 5, "2 + 2 + 1");
        assert_eq!(ctx.max_active_jobs_per_lead(c.id).await, 1);
        let (_, skipped) = s.list_jobs(t, c.id, Some(JobStatus::Skipped), Page::new(1, 100)).await.unwrap();
        assert_eq!(skipped, 3);
    })
    .await;
}

#[tokio::test]
async fn one_active_job_per_lead_is_enforced_by_the_database() {
    on_each_engine("one_active_job_per_lead_is_enforced_by_the_database", |ctx| async move {
        let s = &ctx.store;
        let t = tenant(s, "a@example.com").await;
        let c = campaign(s, t, "C", t0()).await;
        import(s, t, c.id, rows(1), false).await;
        s.start_campaign(t, c.id, StartOptions::default(), t0()).await.unwrap().unwrap();
        let lead = all_leads(s, t, c.id).await.remove(0);
        let insert = |status: &str| {
            format!(
                "INSERT INTO dialer_jobs (id, tenant_id, campaign_id, lead_id, status, priority, attempt_number, \
                 scheduled_at, created_at, updated_at) VALUES ('{}', '{t}', '{}', '{}', '{status}', 5, 0, \
                 '2025-03-10T12:00:00.000000Z', '2025-03-10T12:00:00.000000Z', '2025-03-10T12:00:00.000000Z')",
                JobId::new(),
                c.id,
                lead.id
            )
        };
        assert!(ctx.try_raw(&insert("retry_scheduled")).await.is_err(), "second active job");
        assert!(ctx.try_raw(&insert("completed")).await.is_ok(), "terminal jobs are unlimited");
    })
    .await;
}

#[tokio::test]
async fn concurrent_starts_enqueue_once() {
    on_each_engine("concurrent_starts_enqueue_once", |ctx| async move {
        let s = &ctx.store;
        let t = tenant(s, "a@example.com").await;
        let c = campaign(s, t, "C", t0()).await;
        import(s, t, c.id, rows(300), false).await;
        let cid = c.id;
        let mut handles = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            handles.push(tokio::spawn(async move {
                s.start_campaign(t, cid, StartOptions::default(), t0())
                    .await
                    .unwrap()
            }));
        }
        let mut ok = 0;
        let mut enqueued = 0;
        for h in handles {
            match h.await.unwrap() {
                Ok(st) => {
                    ok += 1;
                    enqueued += st.jobs_enqueued;
                }
                Err(e) => assert_eq!(e, TransitionError::AlreadyRunning),
            }
        }
        assert_eq!(ok, 1, "exactly one start wins");
        assert_eq!(enqueued, 300);
        assert_eq!(ctx.active_jobs(c.id).await, 300);
        assert_eq!(ctx.max_active_jobs_per_lead(c.id).await, 1);
    })
    .await;
}

#[tokio::test]
async fn concurrent_start_and_import_leave_every_lead_one_job() {
    on_each_engine(
        "concurrent_start_and_import_leave_every_lead_one_job",
        |ctx| async move {
            let s = &ctx.store;
            let t = tenant(s, "a@example.com").await;
            let c = campaign(s, t, "C", t0()).await;
            let cid = c.id;
            let s1 = s.clone();
            let importer = tokio::spawn(async move {
                let rows = rows(2_000);
                let report = ImportReport::new(rows.len());
                s1.import_leads(t, cid, rows, false, report, t0())
                    .await
                    .unwrap()
            });
            let s2 = s.clone();
            let starter = tokio::spawn(async move {
                s2.start_campaign(t, cid, StartOptions::default(), t0())
                    .await
                    .unwrap()
                    .unwrap()
            });
            let report = importer.await.unwrap();
            starter.await.unwrap();
            assert_eq!(report.imported, 2_000);
            assert_eq!(ctx.active_jobs(c.id).await, 2_000);
            assert_eq!(ctx.max_active_jobs_per_lead(c.id).await, 1);
        },
    )
    .await;
}

#[tokio::test]
async fn pause_and_stop_follow_the_status_machine() {
    on_each_engine(
        "pause_and_stop_follow_the_status_machine",
        |ctx| async move {
            let s = &ctx.store;
            let t = tenant(s, "a@example.com").await;
            let c = campaign(s, t, "C", t0()).await;
            let r = s.pause_campaign(t, c.id, None, t0()).await.unwrap();
            assert_eq!(r, Err(TransitionError::NotAllowed(CampaignStatus::Draft)));
            assert_eq!(
                s.get_campaign(t, c.id).await.unwrap().status,
                CampaignStatus::Draft
            );

            s.start_campaign(t, c.id, StartOptions::default(), t0())
                .await
                .unwrap()
                .unwrap();
            let p1 = s
                .pause_campaign(t, c.id, Some("provider_auth_failed".into()), t0())
                .await
                .unwrap()
                .unwrap();
            let p2 = s
                .pause_campaign(t, c.id, None, t0() + Duration::hours(1))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(p2, p1, "pausing a paused campaign changes nothing");

            let stop_at = t0() + Duration::hours(2);
            let st = s.stop_campaign(t, c.id, stop_at).await.unwrap().unwrap();
            assert_eq!(st.campaign.status, CampaignStatus::Stopped);
            assert_eq!(st.campaign.completed_at, Some(stop_at));
            let again = s
                .stop_campaign(t, c.id, stop_at + Duration::hours(1))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                again.campaign.completed_at,
                Some(stop_at),
                "stop is a no-op when stopped"
            );
            assert_eq!(again.jobs_cleared, 0);
            let r = s.pause_campaign(t, c.id, None, t0()).await.unwrap();
            assert_eq!(r, Err(TransitionError::NotAllowed(CampaignStatus::Stopped)));
        },
    )
    .await;
}

#[tokio::test]
async fn stop_clears_queued_jobs_and_returns_live_calls() {
    on_each_engine(
        "stop_clears_queued_jobs_and_returns_live_calls",
        |ctx| async move {
            let s = &ctx.store;
            let t = tenant(s, "a@example.com").await;
            let c = campaign(s, t, "C", t0()).await;
            let other = campaign(s, t, "Other", t0()).await;
            import(s, t, c.id, rows(4), false).await;
            import(s, t, other.id, rows(2), false).await;
            s.start_campaign(t, c.id, StartOptions::default(), t0())
                .await
                .unwrap()
                .unwrap();
            s.start_campaign(t, other.id, StartOptions::default(), t0())
                .await
                .unwrap()
                .unwrap();
            let leads = all_leads(s, t, c.id).await;
            // One job waits for a retry (its lead queued), one is being dialled.
            ctx.raw(&format!(
                "UPDATE dialer_jobs SET status = 'retry_scheduled' WHERE lead_id = '{}'",
                leads[0].id
            ))
            .await;
            ctx.raw(&format!(
                "UPDATE leads SET status = 'queued' WHERE id = '{}'",
                leads[0].id
            ))
            .await;
            ctx.raw(&format!(
                "UPDATE dialer_jobs SET status = 'processing' WHERE lead_id = '{}'",
                leads[1].id
            ))
            .await;

            let mk = |status: CallStatus, provider_id: Option<&str>, campaign: CampaignId| {
                let mut call = NewCall::new("+15550000001", t0());
                call.campaign_id = Some(campaign);
                call.status = status;
                call.provider = Some("vonage".into());
                call.provider_call_id = provider_id.map(str::to_owned);
                call
            };
            let ringing = s
                .insert_call(t, mk(CallStatus::Ringing, Some("uuid-1"), c.id))
                .await
                .unwrap();
            let initiated = s
                .insert_call(t, mk(CallStatus::Initiated, None, c.id))
                .await
                .unwrap();
            s.insert_call(t, mk(CallStatus::Completed, Some("uuid-2"), c.id))
                .await
                .unwrap();
            s.insert_call(t, mk(CallStatus::Answered, Some("uuid-3"), other.id))
                .await
                .unwrap();

            let st = s
                .stop_campaign(t, c.id, t0() + Duration::hours(1))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                st.jobs_cleared, 3,
                "pending + retry_scheduled, not processing"
            );
            let mut ids: Vec<_> = st.live_calls.iter().map(|l| l.id).collect();
            ids.sort();
            let mut expected = vec![ringing, initiated];
            expected.sort();
            assert_eq!(ids, expected);
            let r = st.live_calls.iter().find(|l| l.id == ringing).unwrap();
            assert_eq!(
                r.carrier_call(),
                Some(talky_core::ports::telephony::CarrierCall {
                    provider: "vonage".into(),
                    provider_call_id: "uuid-1".into()
                })
            );
            assert_eq!(
                st.live_calls
                    .iter()
                    .find(|l| l.id == initiated)
                    .unwrap()
                    .carrier_call(),
                None
            );
            assert_eq!(
                ctx.scalar("SELECT COUNT(*) FROM calls WHERE hangup_requested = TRUE")
                    .await,
                2,
                "live calls of this campaign only"
            );
            let (skipped, n) = s
                .list_jobs(t, c.id, Some(JobStatus::Skipped), Page::new(1, 10))
                .await
                .unwrap();
            assert_eq!(n, 3);
            assert!(skipped
                .iter()
                .all(|j| j.last_error.as_deref() == Some("Campaign stopped")));
            let lead0 = s.get_lead(t, c.id, leads[0].id).await.unwrap();
            assert_eq!(
                lead0.status,
                LeadStatus::Pending,
                "a cleared retry lead can be enqueued again"
            );
            assert_eq!(
                ctx.active_jobs(other.id).await,
                2,
                "other campaign untouched"
            );

            // A stopped campaign's stop still reports its live calls.
            let again = s
                .stop_campaign(t, c.id, t0() + Duration::hours(2))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(again.live_calls.len(), 2);
        },
    )
    .await;
}

#[tokio::test]
async fn completion_needs_no_active_job_and_no_live_call() {
    on_each_engine(
        "completion_needs_no_active_job_and_no_live_call",
        |ctx| async move {
            let s = &ctx.store;
            let t = tenant(s, "a@example.com").await;
            let c = campaign(s, t, "C", t0()).await;
            assert!(
                !s.complete_campaign_if_done(t, c.id, t0()).await.unwrap(),
                "draft never completes"
            );
            import(s, t, c.id, rows(1), false).await;
            s.start_campaign(t, c.id, StartOptions::default(), t0())
                .await
                .unwrap()
                .unwrap();
            assert!(
                !s.complete_campaign_if_done(t, c.id, t0()).await.unwrap(),
                "a job is active"
            );
            ctx.raw(&format!(
                "UPDATE dialer_jobs SET status = 'completed' WHERE campaign_id = '{}'",
                c.id
            ))
            .await;
            let mut call = NewCall::new("+15550000000", t0());
            call.campaign_id = Some(c.id);
            call.status = CallStatus::InProgress;
            let call = s.insert_call(t, call).await.unwrap();
            assert!(
                !s.complete_campaign_if_done(t, c.id, t0()).await.unwrap(),
                "a call is live"
            );
            ctx.raw(&format!(
                "UPDATE calls SET status = 'completed' WHERE id = '{call}'"
            ))
            .await;
            let b = tenant(s, "b@example.com").await;
            assert!(
                !s.complete_campaign_if_done(b, c.id, t0()).await.unwrap(),
                "foreign tenant"
            );
            let done = t0() + Duration::hours(3);
            assert!(s.complete_campaign_if_done(t, c.id, done).await.unwrap());
            let got = s.get_campaign(t, c.id).await.unwrap();
            assert_eq!(got.status, CampaignStatus::Completed);
            assert_eq!(got.completed_at, Some(done));
        },
    )
    .await;
}

#[tokio::test]
async fn jobs_list_pages_newest_first() {
    on_each_engine("jobs_list_pages_newest_first", |ctx| async move {
        let s = &ctx.store;
        let t = tenant(s, "a@example.com").await;
        let c = campaign(s, t, "C", t0()).await;
        import(s, t, c.id, rows(3), false).await;
        s.start_campaign(t, c.id, StartOptions::default(), t0())
            .await
            .unwrap()
            .unwrap();
        s.pause_campaign(t, c.id, None, t0())
            .await
            .unwrap()
            .unwrap();
        // Two more leads join later and get newer jobs.
        import(
            s,
            t,
            c.id,
            vec![row(2, "+15559990001"), row(3, "+15559990002")],
            false,
        )
        .await;
        s.start_campaign(t, c.id, StartOptions::default(), t0() + Duration::hours(1))
            .await
            .unwrap()
            .unwrap();
        let (p1, total) = s.list_jobs(t, c.id, None, Page::new(1, 2)).await.unwrap();
        let (p3, _) = s.list_jobs(t, c.id, None, Page::new(3, 2)).await.unwrap();
        assert_eq!(total, 5);
        assert_eq!(p1.len(), 2);
        assert_eq!(p3.len(), 1);
        assert!(p1.iter().all(|j| j.created_at == t0() + Duration::hours(1)));
        assert_eq!(p3[0].created_at, t0());
        let (none, n) = s
            .list_jobs(t, c.id, Some(JobStatus::Dnc), Page::new(1, 2))
            .await
            .unwrap();
        assert!(none.is_empty());
        assert_eq!(n, 0);
    })
    .await;
}

#[tokio::test]
async fn stats_count_leads_jobs_and_outcomes() {
    on_each_engine("stats_count_leads_jobs_and_outcomes", |ctx| async move {
        let s = &ctx.store;
        let t = tenant(s, "a@example.com").await;
        let c = campaign(s, t, "C", t0()).await;
        import(s, t, c.id, rows(4), false).await;
        let leads = all_leads(s, t, c.id).await;
        s.delete_lead(t, c.id, leads[3].id, t0()).await.unwrap();
        s.start_campaign(t, c.id, StartOptions::default(), t0())
            .await
            .unwrap()
            .unwrap();
        ctx.raw(&format!(
            "UPDATE dialer_jobs SET status = 'goal_achieved' WHERE lead_id = '{}'",
            leads[0].id
        ))
        .await;
        for (outcome, n) in [
            (Some(Outcome::GoalAchieved), 2),
            (Some(Outcome::Busy), 1),
            (None, 1),
        ] {
            for _ in 0..n {
                let mut call = NewCall::new("+15550000000", t0());
                call.campaign_id = Some(c.id);
                call.outcome = outcome;
                call.status = if outcome.is_some() {
                    CallStatus::Completed
                } else {
                    CallStatus::Ringing
                };
                s.insert_call(t, call).await.unwrap();
            }
        }
        // A call of another campaign does not count.
        let other = campaign(s, t, "Other", t0()).await;
        let mut call = NewCall::new("+15550000000", t0());
        call.campaign_id = Some(other.id);
        call.outcome = Some(Outcome::GoalAchieved);
        s.insert_call(t, call).await.unwrap();

        let st = s.campaign_stats(t, c.id).await.unwrap();
        assert_eq!(st.campaign_id, c.id);
        assert_eq!(st.campaign_status, CampaignStatus::Running);
        assert_eq!(st.total_leads, 3);
        assert_eq!(st.job_status_counts["pending"], 2);
        assert_eq!(st.job_status_counts["goal_achieved"], 1);
        assert_eq!(st.job_status_counts["skipped"], 0);
        assert_eq!(st.job_status_counts.len(), JobStatus::ALL.len());
        assert_eq!(st.call_outcome_counts["goal_achieved"], 2);
        assert_eq!(st.call_outcome_counts["busy"], 1);
        assert_eq!(st.call_outcome_counts["no_answer"], 0);
        assert_eq!(st.call_outcome_counts.values().sum::<i64>(), 3);
        assert_eq!(st.goals_achieved, 2);
    })
    .await;
}

#[tokio::test]
async fn campaign_actions_are_tenant_isolated() {
    on_each_engine("campaign_actions_are_tenant_isolated", |ctx| async move {
        let s = &ctx.store;
        let a = tenant(s, "a@example.com").await;
        let b = tenant(s, "b@example.com").await;
        let c = campaign(s, a, "A's", t0()).await;
        import(s, a, c.id, rows(3), false).await;

        assert!(is_not_found(
            s.start_campaign(b, c.id, StartOptions::default(), t0())
                .await
        ));
        assert_eq!(
            ctx.scalar("SELECT COUNT(*) FROM dialer_jobs").await,
            0,
            "B's start created no job"
        );
        assert!(is_not_found(s.pause_campaign(b, c.id, None, t0()).await));
        assert!(is_not_found(s.stop_campaign(b, c.id, t0()).await));
        assert!(is_not_found(
            s.list_jobs(b, c.id, None, Page::default()).await
        ));
        assert!(is_not_found(s.campaign_stats(b, c.id).await));
        assert_eq!(
            s.get_campaign(a, c.id).await.unwrap().status,
            CampaignStatus::Draft
        );

        s.start_campaign(a, c.id, StartOptions::default(), t0())
            .await
            .unwrap()
            .unwrap();
        assert!(is_not_found(s.stop_campaign(b, c.id, t0()).await));
        assert_eq!(ctx.active_jobs(c.id).await, 3, "B's stop cleared nothing");
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Leads

#[tokio::test]
async fn import_writes_leads_with_their_fields() {
    on_each_engine("import_writes_leads_with_their_fields", |ctx| async move {
        let s = &ctx.store;
        let t = tenant(s, "a@example.com").await;
        let c = campaign(s, t, "C", t0()).await;
        let mut r = row(2, "+442071234567");
        r.raw_phone = "0044 20 7123 4567".into();
        r.last_name = Some("Doe".into());
        r.email = Some("jane@example.com".into());
        r.custom_fields.insert("Plan".into(), "=cmd()".into());
        let report = import(s, t, c.id, vec![r, row(3, "+15551234567")], false).await;
        assert_eq!(
            (report.total_rows, report.imported, report.failed),
            (2, 2, 0)
        );
        let leads = all_leads(s, t, c.id).await;
        assert_eq!(leads.len(), 2);
        assert_eq!(
            leads[0].phone_number, "+15551234567",
            "newest first = reverse file order"
        );
        let l = &leads[1];
        assert_eq!(l.phone_number, "+442071234567");
        assert_eq!(l.first_name.as_deref(), Some("First2"));
        assert_eq!(l.last_name.as_deref(), Some("Doe"));
        assert_eq!(l.email.as_deref(), Some("jane@example.com"));
        assert_eq!(l.custom_fields["Plan"], "=cmd()");
        assert_eq!(l.status, LeadStatus::Pending);
        assert_eq!(l.last_call_result, "pending");
        assert_eq!(l.call_attempts, 0);
        assert_eq!(l.priority, 5);
        assert!(!l.is_high_value);
        assert!(l.tags.is_empty());
        assert_eq!(
            ctx.scalar("SELECT COUNT(*) FROM dialer_jobs").await,
            0,
            "draft: no jobs"
        );
    })
    .await;
}

#[tokio::test]
async fn import_handles_duplicates_dnc_and_revival() {
    on_each_engine(
        "import_handles_duplicates_dnc_and_revival",
        |ctx| async move {
            let s = &ctx.store;
            let t = tenant(s, "a@example.com").await;
            let c = campaign(s, t, "C", t0()).await;
            let mut first = row(2, "+15550000001");
            first.last_name = Some("Keep".into());
            first.custom_fields.insert("a".into(), "1".into());
            first.custom_fields.insert("b".into(), "2".into());
            import(
                s,
                t,
                c.id,
                vec![first, row(3, "+15550000002"), row(4, "+15550000003")],
                false,
            )
            .await;
            let leads = all_leads(s, t, c.id).await;
            let gone = leads
                .iter()
                .find(|l| l.phone_number == "+15550000001")
                .unwrap()
                .clone();
            s.delete_lead(t, c.id, gone.id, t0()).await.unwrap();
            s.add_dnc(t, &phone("+15550000009"), None, None, t0())
                .await
                .unwrap();
            // A DNC number of another tenant does not matter here.
            let b = tenant(s, "b@example.com").await;
            s.add_dnc(b, &phone("+15550000010"), None, None, t0())
                .await
                .unwrap();

            let mut revive = row(5, "+15550000001");
            revive.first_name = Some("New".into());
            revive.last_name = None;
            revive.custom_fields.insert("b".into(), "20".into());
            revive.custom_fields.insert("c".into(), "30".into());
            let batch = || {
                vec![
                    row(2, "+15550000002"),
                    revive.clone(),
                    row(7, "+15550000009"),
                    row(8, "+15550000010"),
                    row(9, "+15550000011"),
                ]
            };

            // skip_duplicates = false: an existing number is an error.
            let r = import(s, t, c.id, batch(), false).await;
            assert_eq!(
                (r.imported, r.revived, r.failed, r.duplicates_skipped),
                (3, 1, 2, 0)
            );
            assert_eq!(
                r.errors,
                vec![
                    RowError {
                        row: 2,
                        error: RowError::ALREADY_IN_CAMPAIGN.into(),
                        phone: Some("+15550000002".into())
                    },
                    RowError {
                        row: 7,
                        error: RowError::ON_DNC_LIST.into(),
                        phone: Some("+15550000009".into())
                    },
                ]
            );
            let revived = s.get_lead(t, c.id, gone.id).await.unwrap();
            assert_eq!(revived.status, LeadStatus::Pending, "same id, alive again");
            assert_eq!(revived.first_name.as_deref(), Some("New"));
            assert_eq!(
                revived.last_name.as_deref(),
                Some("Keep"),
                "empty fields do not overwrite"
            );
            assert_eq!(
                serde_json::Value::Object(revived.custom_fields.clone()),
                serde_json::json!({"a": "1", "b": "20", "c": "30"})
            );
            assert_eq!(revived.created_at, gone.created_at);
            assert_eq!(all_leads(s, t, c.id).await.len(), 5);

            // skip_duplicates = true: existing numbers (now including the revived one) are skipped.
            let r = import(s, t, c.id, batch(), true).await;
            assert_eq!((r.imported, r.failed, r.duplicates_skipped), (0, 1, 4));
            assert_eq!(r.errors[0].error, RowError::ON_DNC_LIST);
            assert_eq!(all_leads(s, t, c.id).await.len(), 5);
        },
    )
    .await;
}

#[tokio::test]
async fn import_chunks_and_reports_failing_rows_exactly() {
    on_each_engine(
        "import_chunks_and_reports_failing_rows_exactly",
        |ctx| async move {
            let s = &ctx.store;
            let t = tenant(s, "a@example.com").await;
            let c = campaign(s, t, "C", t0()).await;
            // 1203 rows = chunks of 500, 500, 203. Row 702 repeats row 701's phone (the parser
            // would have caught it; here it forces the second chunk to fail and be retried).
            let mut rs = rows(1203);
            rs[700].phone = rs[699].phone.clone();
            rs[700].raw_phone = "dup".into();
            let report = ImportReport::new(rs.len());
            let report = s
                .import_leads(t, c.id, rs, false, report, t0())
                .await
                .unwrap()
                .finish(100);
            assert!(report.is_balanced());
            assert_eq!(report.imported, 1202);
            assert_eq!(report.failed, 1);
            assert_eq!(
                report.errors,
                vec![RowError {
                    row: 702,
                    error: RowError::DATABASE_INSERT_FAILED.into(),
                    phone: Some("dup".into())
                }]
            );
            let (_, total) = s
                .list_leads(t, c.id, LeadFilter::default(), Page::new(1, 1))
                .await
                .unwrap();
            assert_eq!(total, 1202);
        },
    )
    .await;
}

#[tokio::test]
async fn import_into_running_campaign_enqueues_jobs() {
    on_each_engine(
        "import_into_running_campaign_enqueues_jobs",
        |ctx| async move {
            let s = &ctx.store;
            let t = tenant(s, "a@example.com").await;
            let c = campaign(s, t, "C", t0()).await;
            import(s, t, c.id, rows(2), false).await;
            let gone = all_leads(s, t, c.id).await.remove(0);
            s.delete_lead(t, c.id, gone.id, t0()).await.unwrap();
            s.start_campaign(t, c.id, StartOptions::default(), t0())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(ctx.active_jobs(c.id).await, 1);
            let mut batch = vec![row(2, &gone.phone_number)];
            batch.extend((0..700).map(|i| row(i + 3, &format!("+1666{:07}", i))));
            let r = import(s, t, c.id, batch, false).await;
            assert_eq!((r.imported, r.revived), (701, 1));
            assert_eq!(ctx.active_jobs(c.id).await, 702);
            assert_eq!(ctx.max_active_jobs_per_lead(c.id).await, 1);
        },
    )
    .await;
}

#[tokio::test]
async fn import_into_foreign_campaign_writes_nothing() {
    on_each_engine(
        "import_into_foreign_campaign_writes_nothing",
        |ctx| async move {
            let s = &ctx.store;
            let a = tenant(s, "a@example.com").await;
            let b = tenant(s, "b@example.com").await;
            let c = campaign(s, a, "C", t0()).await;
            let r = s
                .import_leads(b, c.id, rows(3), false, ImportReport::new(3), t0())
                .await;
            assert!(is_not_found(r));
            let r = s
                .import_leads(
                    a,
                    CampaignId::new(),
                    rows(3),
                    false,
                    ImportReport::new(3),
                    t0(),
                )
                .await;
            assert!(is_not_found(r));
            assert_eq!(ctx.scalar("SELECT COUNT(*) FROM leads").await, 0);
        },
    )
    .await;
}

#[tokio::test]
async fn add_lead_creates_revives_and_refuses() {
    on_each_engine("add_lead_creates_revives_and_refuses", |ctx| async move {
        let s = &ctx.store;
        let t = tenant(s, "a@example.com").await;
        let c = campaign(s, t, "C", t0()).await;
        let mut nl = NewLead::new(phone("+15551234567"));
        nl.first_name = Some("Ann".into());
        nl.custom_fields.insert("n".into(), serde_json::json!(1));
        let added = s.add_lead(t, c.id, nl.clone(), t0()).await.unwrap();
        assert!(!added.revived);
        assert_eq!(added.lead.first_name.as_deref(), Some("Ann"));
        assert_eq!(added.lead.custom_fields["n"], 1);
        assert_eq!(added.lead.status, LeadStatus::Pending);

        match s.add_lead(t, c.id, nl.clone(), t0()).await {
            Err(StoreError::Conflict(m)) => {
                assert_eq!(
                    m,
                    "Phone number +15551234567 already exists in this campaign"
                )
            }
            other => panic!("{other:?}"),
        }
        s.add_dnc(t, &phone("+15559999999"), None, None, t0())
            .await
            .unwrap();
        match s
            .add_lead(t, c.id, NewLead::new(phone("+15559999999")), t0())
            .await
        {
            Err(StoreError::Conflict(m)) => assert_eq!(m, "Number is on the do-not-call list"),
            other => panic!("{other:?}"),
        }

        s.delete_lead(t, c.id, added.lead.id, t0()).await.unwrap();
        s.start_campaign(t, c.id, StartOptions::default(), t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ctx.active_jobs(c.id).await, 0);
        let mut again = NewLead::new(phone("+15551234567"));
        again.last_name = Some("Lee".into());
        let revived = s
            .add_lead(t, c.id, again, t0() + Duration::hours(1))
            .await
            .unwrap();
        assert!(revived.revived);
        assert_eq!(revived.lead.id, added.lead.id);
        assert_eq!(revived.lead.first_name.as_deref(), Some("Ann"));
        assert_eq!(revived.lead.last_name.as_deref(), Some("Lee"));
        assert_eq!(
            ctx.active_jobs(c.id).await,
            1,
            "running campaign: the lead gets its job"
        );

        let fresh = s
            .add_lead(t, c.id, NewLead::new(phone("+15557654321")), t0())
            .await
            .unwrap();
        assert!(!fresh.revived);
        assert_eq!(ctx.active_jobs(c.id).await, 2);

        let b = tenant(s, "b@example.com").await;
        assert!(is_not_found(
            s.add_lead(b, c.id, NewLead::new(phone("+15550000000")), t0())
                .await
        ));
    })
    .await;
}

#[tokio::test]
async fn lead_list_filters_and_delete() {
    on_each_engine("lead_list_filters_and_delete", |ctx| async move {
        let s = &ctx.store;
        let t = tenant(s, "a@example.com").await;
        let b = tenant(s, "b@example.com").await;
        let c = campaign(s, t, "C", t0()).await;
        import(s, t, c.id, rows(5), false).await;
        let leads = all_leads(s, t, c.id).await;
        assert_eq!(leads.len(), 5);
        ctx.raw(&format!(
            "UPDATE leads SET status = 'called', last_call_result = 'busy' WHERE id = '{}'",
            leads[1].id
        ))
        .await;

        let (p, total) = s.list_leads(t, c.id, LeadFilter::default(), Page::new(2, 2)).await.unwrap();
        assert_eq!(total, 5);
        assert_eq!(p.iter().map(|l| l.id).collect::<Vec<_>>(), vec![leads[2].id, leads[3].id]);
        let f = LeadFilter { status: Some(LeadStatus::Called), last_call_result: None };
        let (called, n) = s.list_leads(t, c.id, f, Page::default()).await.unwrap();
        assert_eq!((called.len(), n), (1, 1));
        let f = LeadFilter { status: None, last_call_result: Some("busy".into()) };
        assert_eq!(s.list_leads(t, c.id, f, Page::default()).await.unwrap().1, 1);
        let f = LeadFilter { status: Some(LeadStatus::Pending), last_call_result: Some("pending".into()) };
        assert_eq!(s.list_leads(t, c.id, f, Page::default()).await.unwrap().1, 4);

        // Delete: soft, cancels the active job, then the lead is gone from every read.
        s.start_campaign(t, c.id, StartOptions::default(), t0()).await.unwrap().unwrap();
        let victim = leads[0].id;
        assert!(is_not_found(s.delete_lead(b, c.id, victim, t0()).await), "foreign tenant");
        let other = campaign(s, t, "Other", t0()).await;
        assert!(is_not_found(s.delete_lead(t, other.id, victim, t0()).await), "wrong campaign");
        s.delete_lead(t, c.id, victim, t0()).await.unwrap();
        assert!(is_not_found(s.delete_lead(t, c.id, victim, t0()).await), "already deleted");
        assert!(is_not_found(s.get_lead(t, c.id, victim).await));
        assert_eq!(s.list_leads(t, c.id, LeadFilter::default(), Page::default()).await.unwrap().1, 4);
        assert_eq!(
            ctx.scalar(&format!(
                "SELECT COUNT(*) FROM dialer_jobs WHERE lead_id = '{victim}' AND status = 'skipped' \
                 AND last_error = 'lead_deleted'"
            ))
            .await,
            1
        );
        assert_eq!(ctx.scalar(&format!("SELECT COUNT(*) FROM leads WHERE id = '{victim}'")).await, 1, "soft");

        assert!(is_not_found(s.list_leads(b, c.id, LeadFilter::default(), Page::default()).await));
        assert!(is_not_found(s.get_lead(b, c.id, leads[2].id).await));
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Clients and DNC

#[tokio::test]
async fn clients_crud_import_and_isolation() {
    on_each_engine("clients_crud_import_and_isolation", |ctx| async move {
        let s = &ctx.store;
        let a = tenant(s, "a@example.com").await;
        let b = tenant(s, "b@example.com").await;
        let zed = s
            .create_client(
                a,
                NewClient {
                    name: "Zed".into(),
                    company: Some("Acme".into()),
                    phone: Some(phone("(555) 123-4567")),
                    email: Some("z@example.com".into()),
                    tags: vec!["warm".into()],
                    notes: Some("met at conference".into()),
                },
                t0(),
            )
            .await
            .unwrap();
        assert_eq!(zed.phone.as_deref(), Some("+15551234567"));
        assert_eq!(zed.tags, vec!["warm".to_string()]);
        let amy = s
            .create_client(
                a,
                NewClient {
                    name: "Amy".into(),
                    ..Default::default()
                },
                t0(),
            )
            .await
            .unwrap();
        assert_eq!(s.get_client(a, zed.id).await.unwrap(), zed);
        let names: Vec<_> = s
            .list_clients(a)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, vec!["Amy", "Zed"]);

        let mut r1 = row(2, "+15550000001");
        r1.name = Some("Carl".into());
        r1.company = Some("Co".into());
        r1.custom_fields.insert("Region".into(), "North".into());
        let mut r2 = row(3, "+15550000002");
        r2.last_name = Some("Berg".into());
        let report = s
            .import_clients(a, vec![r1, r2], ImportReport::new(2), t0())
            .await
            .unwrap()
            .finish(100);
        assert_eq!((report.imported, report.failed), (2, 0));
        let all = s.list_clients(a).await.unwrap();
        let names: Vec<_> = all.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["Amy", "Carl", "First3 Berg", "Zed"]);
        let carl = all.iter().find(|c| c.name == "Carl").unwrap();
        assert_eq!(carl.company.as_deref(), Some("Co"));
        assert_eq!(carl.phone.as_deref(), Some("+15550000001"));
        assert_eq!(carl.custom_fields["Region"], "North");

        assert!(is_not_found(s.get_client(b, zed.id).await));
        assert!(is_not_found(s.delete_client(b, zed.id).await));
        assert!(s.list_clients(b).await.unwrap().is_empty());
        s.delete_client(a, amy.id).await.unwrap();
        assert!(is_not_found(s.get_client(a, amy.id).await));
        assert!(is_not_found(s.delete_client(a, amy.id).await));
        assert_eq!(s.list_clients(a).await.unwrap().len(), 3);
    })
    .await;
}

#[tokio::test]
async fn dnc_add_list_delete_and_isolation() {
    on_each_engine("dnc_add_list_delete_and_isolation", |ctx| async move {
        let s = &ctx.store;
        let a = tenant(s, "a@example.com").await;
        let b = tenant(s, "b@example.com").await;
        let p1 = phone("+15550000001");
        let added = s
            .add_dnc(a, &p1, None, Some("asked".into()), t0())
            .await
            .unwrap();
        assert!(added.created);
        assert_eq!(added.entry.source, DncSource::Manual);
        assert_eq!(added.entry.reason.as_deref(), Some("asked"));
        assert_eq!(added.entry.created_at, t0());
        let again = s
            .add_dnc(
                a,
                &p1,
                Some(DncSource::Spam),
                None,
                t0() + Duration::hours(1),
            )
            .await
            .unwrap();
        assert!(!again.created, "idempotent");
        assert_eq!(again.entry, added.entry, "the first entry stays");
        for i in 2..=4 {
            let p = phone(&format!("+1555000000{i}"));
            s.add_dnc(
                a,
                &p,
                Some(DncSource::OptOut),
                None,
                t0() + Duration::minutes(i),
            )
            .await
            .unwrap();
        }
        let (page, total) = s.list_dnc(a, Page::new(1, 3)).await.unwrap();
        assert_eq!(total, 4);
        assert_eq!(page[0].phone_number, "+15550000004", "newest first");
        assert_eq!(page[0].source, DncSource::OptOut);
        assert_eq!(s.list_dnc(a, Page::new(2, 3)).await.unwrap().0.len(), 1);

        assert!(s.is_dnc(a, &p1).await.unwrap());
        assert!(!s.is_dnc(b, &p1).await.unwrap());
        assert_eq!(s.list_dnc(b, Page::default()).await.unwrap().1, 0);
        assert!(is_not_found(s.delete_dnc(b, &p1).await));
        assert!(s.is_dnc(a, &p1).await.unwrap());
        s.delete_dnc(a, &p1).await.unwrap();
        assert!(!s.is_dnc(a, &p1).await.unwrap());
        assert!(is_not_found(s.delete_dnc(a, &p1).await));
        // B may list the same number independently.
        assert!(
            s.add_dnc(b, &phone("+15550000002"), None, None, t0())
                .await
                .unwrap()
                .created
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Calls, transcripts, recordings

#[tokio::test]
async fn calls_list_filters_and_detail() {
    on_each_engine("calls_list_filters_and_detail", |ctx| async move {
        let s = &ctx.store;
        let a = tenant(s, "a@example.com").await;
        let b = tenant(s, "b@example.com").await;
        let c = campaign(s, a, "C", t0()).await;
        let added = s
            .add_lead(a, c.id, NewLead::new(phone("+15551230000")), t0())
            .await
            .unwrap();
        let day = |d: u32, h: u32| Utc.with_ymd_and_hms(2025, 3, d, h, 0, 0).unwrap();
        let mut ids = Vec::new();
        for (at, status) in [
            (day(1, 0), CallStatus::Completed),
            (day(1, 23), CallStatus::Busy),
            (day(2, 12), CallStatus::Completed),
            (day(3, 0), CallStatus::NoAnswer),
        ] {
            let mut call = NewCall::new("+15551230000", at);
            call.status = status;
            ids.push(s.insert_call(a, call).await.unwrap());
        }
        let mut rich = NewCall::new("+15551230000", day(2, 13));
        rich.campaign_id = Some(c.id);
        rich.lead_id = Some(added.lead.id);
        rich.status = CallStatus::Completed;
        rich.outcome = Some(Outcome::GoalAchieved);
        rich.answered_at = Some(day(2, 13) + Duration::seconds(5));
        rich.ended_at = Some(day(2, 13) + Duration::seconds(65));
        rich.end_reason = Some("agent_end".into());
        rich.duration_seconds = 60;
        rich.summary = Some("Booked a demo.".into());
        let rich_id = s.insert_call(a, rich.clone()).await.unwrap();
        let mut foreign = NewCall::new("+15550000000", day(2, 12));
        foreign.status = CallStatus::Completed;
        s.insert_call(b, foreign).await.unwrap();

        let (all, total) = s
            .list_calls(a, CallFilter::default(), Page::new(1, 20))
            .await
            .unwrap();
        assert_eq!(total, 5);
        assert_eq!(all[0].id, ids[3], "newest first");
        assert_eq!(all[1].id, rich_id);
        // Inclusive dates 2025-03-01..2025-03-02 = [03-01 00:00, 03-03 00:00).
        let f = CallFilter {
            status: None,
            from: Some(day(1, 0)),
            to: Some(day(3, 0)),
        };
        let (items, n) = s.list_calls(a, f.clone(), Page::new(1, 20)).await.unwrap();
        assert_eq!(n, 4);
        assert!(
            !items.iter().any(|i| i.id == ids[3]),
            "the end bound is exclusive"
        );
        let f = CallFilter {
            status: Some(CallStatus::Completed),
            ..f
        };
        assert_eq!(s.list_calls(a, f, Page::new(1, 20)).await.unwrap().1, 3);
        let (p2, n) = s
            .list_calls(a, CallFilter::default(), Page::new(2, 2))
            .await
            .unwrap();
        assert_eq!(n, 5);
        assert_eq!(
            p2.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![ids[2], ids[1]]
        );
        let item = all.iter().find(|i| i.id == rich_id).unwrap();
        assert_eq!(item.outcome, Some(Outcome::GoalAchieved));
        assert_eq!(item.duration_seconds, 60);
        assert_eq!(item.to_number, "+15551230000");

        let d = s.get_call(a, rich_id).await.unwrap();
        assert_eq!(d.campaign_id, Some(c.id));
        assert_eq!(d.lead_id, Some(added.lead.id));
        assert_eq!(d.answered_at, rich.answered_at);
        assert_eq!(d.ended_at, rich.ended_at);
        assert_eq!(d.end_reason.as_deref(), Some("agent_end"));
        assert_eq!(d.summary.as_deref(), Some("Booked a demo."));
        assert_eq!(d.status, CallStatus::Completed);
        assert_eq!(d.created_at, day(2, 13));
        assert_eq!(d.transcript, None);
        assert_eq!(d.recording_id, None);

        assert!(is_not_found(s.get_call(b, rich_id).await));
        assert_eq!(
            s.list_calls(b, CallFilter::default(), Page::default())
                .await
                .unwrap()
                .1,
            1
        );
        // A call cannot be linked to another tenant's campaign or lead.
        let mut bad = NewCall::new("+15550000000", t0());
        bad.campaign_id = Some(c.id);
        assert!(is_not_found(s.insert_call(b, bad).await));
        let mut bad = NewCall::new("+15550000000", t0());
        bad.lead_id = Some(added.lead.id);
        assert!(is_not_found(s.insert_call(b, bad).await));
        // The same provider id twice is a conflict.
        let mut p = NewCall::new("+15550000000", t0());
        p.provider = Some("vonage".into());
        p.provider_call_id = Some("abc".into());
        s.insert_call(a, p.clone()).await.unwrap();
        p.id = CallId::new();
        assert!(matches!(
            s.insert_call(a, p).await,
            Err(StoreError::Conflict(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn call_totals_stay_exact_through_writes() {
    on_each_engine("call_totals_stay_exact_through_writes", |ctx| async move {
        let s = &ctx.store;
        let a = tenant(s, "a@example.com").await;
        let b = tenant(s, "b@example.com").await;
        let at = |d: u32, h: u32, m: u32| Utc.with_ymd_and_hms(2025, 3, d, h, m, 0).unwrap();
        let statuses = [
            CallStatus::Initiated,
            CallStatus::Completed,
            CallStatus::Busy,
        ];
        let mut ids = Vec::new();
        for i in 0..30u32 {
            let mut call = NewCall::new("+15550000000", at(1 + i % 4, (i * 5) % 24, i % 60));
            call.status = statuses[(i % 3) as usize];
            ids.push(
                s.insert_call(if i % 5 == 0 { b } else { a }, call)
                    .await
                    .unwrap(),
            );
        }
        // Writes others will do: status moves, deletions (E15), a created_at across midnight.
        ctx.raw(&format!(
            "UPDATE calls SET status = 'ringing' WHERE id IN ('{}', '{}')",
            ids[0], ids[1]
        ))
        .await;
        ctx.raw(&format!(
            "UPDATE calls SET status = 'completed' WHERE id = '{}'",
            ids[3]
        ))
        .await;
        ctx.raw(&format!(
            "UPDATE calls SET to_number = '+15559999999' WHERE id = '{}'",
            ids[4]
        ))
        .await;
        ctx.raw(&format!(
            "DELETE FROM calls WHERE id IN ('{}', '{}')",
            ids[6], ids[7]
        ))
        .await;
        ctx.raw(&format!(
            "UPDATE calls SET created_at = '2025-03-02T23:59:59.999999Z' WHERE id = '{}'",
            ids[8]
        ))
        .await;
        let day = |d: u32| Utc.with_ymd_and_hms(2025, 3, d, 0, 0, 0).unwrap();
        for t in [a, b] {
            for status in [None, Some(CallStatus::Completed), Some(CallStatus::Ringing)] {
                for (from, to) in [
                    (None, None),
                    (Some(day(2)), Some(day(4))),
                    (Some(day(3)), None),
                    (None, Some(day(3))),
                    (Some(at(1, 12, 0)), Some(day(4))), // not whole days: counted directly
                ] {
                    let filter = CallFilter { status, from, to };
                    let (_, total) = s.list_calls(t, filter, Page::new(1, 1)).await.unwrap();
                    let mut sql = format!("SELECT COUNT(*) FROM calls WHERE tenant_id = '{t}'");
                    if let Some(st) = status {
                        sql.push_str(&format!(" AND status = '{st}'"));
                    }
                    let fmt = |x: DateTime<Utc>| x.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
                    if let Some(f) = from {
                        let lit = match ctx.engine {
                            Engine::Sqlite => format!("'{}'", fmt(f)),
                            Engine::Postgres => format!("timestamptz '{}'", fmt(f)),
                        };
                        sql.push_str(&format!(" AND created_at >= {lit}"));
                    }
                    if let Some(u) = to {
                        let lit = match ctx.engine {
                            Engine::Sqlite => format!("'{}'", fmt(u)),
                            Engine::Postgres => format!("timestamptz '{}'", fmt(u)),
                        };
                        sql.push_str(&format!(" AND created_at < {lit}"));
                    }
                    assert_eq!(total, ctx.scalar(&sql).await, "{status:?} {from:?} {to:?}");
                }
            }
        }
        assert_eq!(
            ctx.scalar("SELECT COUNT(*) FROM call_counts WHERE n < 0")
                .await,
            0
        );
    })
    .await;
}

#[tokio::test]
async fn transcripts_save_replace_and_read() {
    on_each_engine("transcripts_save_replace_and_read", |ctx| async move {
        let s = &ctx.store;
        let a = tenant(s, "a@example.com").await;
        let b = tenant(s, "b@example.com").await;
        let call = s
            .insert_call(a, NewCall::new("+15550000000", t0()))
            .await
            .unwrap();
        assert_eq!(
            s.get_transcript(a, call).await.unwrap(),
            None,
            "no transcript yet"
        );
        assert!(is_not_found(s.get_transcript(a, CallId::new()).await));
        let turn = |role, content: &str, secs| TranscriptTurn {
            role,
            content: content.into(),
            timestamp: t0() + Duration::seconds(secs),
            confidence: (role == TurnRole::User).then_some(0.875),
            interrupted: false,
        };
        let mut cut = turn(TurnRole::Assistant, "Hi this is", 0);
        cut.interrupted = true;
        let tr = NewTranscript::from_turns(vec![cut, turn(TurnRole::User, "who is this", 2)]);
        s.save_transcript(a, call, tr.clone(), t0()).await.unwrap();
        let got = s.get_transcript(a, call).await.unwrap().unwrap();
        assert_eq!(got.turns, tr.turns);
        assert_eq!(got.full_text, "Assistant: Hi this is\nUser: who is this");
        assert_eq!(
            (
                got.turn_count,
                got.word_count,
                got.user_word_count,
                got.assistant_word_count
            ),
            (2, 6, 3, 3)
        );
        assert_eq!(got.created_at, t0());
        assert_eq!(
            s.get_call(a, call).await.unwrap().transcript.as_deref(),
            Some(got.full_text.as_str())
        );

        // Saving again replaces it.
        let tr2 = NewTranscript::from_turns(vec![turn(TurnRole::User, "bye", 9)]);
        s.save_transcript(a, call, tr2, t0()).await.unwrap();
        let got = s.get_transcript(a, call).await.unwrap().unwrap();
        assert_eq!(got.full_text, "User: bye");
        assert_eq!(got.turn_count, 1);

        assert!(is_not_found(s.get_transcript(b, call).await));
        let r = s
            .save_transcript(b, call, NewTranscript::from_turns(vec![]), t0())
            .await;
        assert!(is_not_found(r));
        assert_eq!(
            s.get_transcript(a, call).await.unwrap().unwrap().full_text,
            "User: bye"
        );
    })
    .await;
}

#[tokio::test]
async fn recordings_rows_link_list_and_isolation() {
    on_each_engine(
        "recordings_rows_link_list_and_isolation",
        |ctx| async move {
            let s = &ctx.store;
            let a = tenant(s, "a@example.com").await;
            let b = tenant(s, "b@example.com").await;
            let c1 = s
                .insert_call(a, NewCall::new("+15550000001", t0()))
                .await
                .unwrap();
            let c2 = s
                .insert_call(a, NewCall::new("+15550000002", t0()))
                .await
                .unwrap();
            let r1 = s
                .insert_recording(
                    a,
                    NewRecording::new(c1, format!("recordings/{a}/x/{c1}.wav"), t0()),
                )
                .await
                .unwrap();
            let mut n2 = NewRecording::new(c2, "k2", t0() + Duration::minutes(1));
            n2.status = RecordingStatus::Completed;
            n2.duration_seconds = 42;
            n2.channels = 2;
            let r2 = s.insert_recording(a, n2).await.unwrap();
            let mut discarded = NewRecording::new(c2, "k3", t0() + Duration::minutes(2));
            discarded.status = RecordingStatus::Discarded;
            s.insert_recording(a, discarded).await.unwrap();

            assert_eq!(s.get_call(a, c1).await.unwrap().recording_id, Some(r1));
            let (items, total) = s.list_recordings(a, None, Page::default()).await.unwrap();
            assert_eq!(total, 1, "completed only");
            assert_eq!(items[0].id, r2);
            assert_eq!(items[0].duration_seconds, 42);

            s.update_recording(
                a,
                r1,
                RecordingUpdate {
                    status: RecordingStatus::Completed,
                    file_size_bytes: Some(1044),
                    duration_seconds: Some(3),
                },
            )
            .await
            .unwrap();
            let (items, total) = s.list_recordings(a, None, Page::default()).await.unwrap();
            assert_eq!(total, 2);
            assert_eq!(
                items.iter().map(|i| i.id).collect::<Vec<_>>(),
                vec![r2, r1],
                "newest first"
            );
            let (only, n) = s
                .list_recordings(a, Some(c1), Page::default())
                .await
                .unwrap();
            assert_eq!((only.len(), n), (1, 1));
            assert_eq!(only[0].call_id, c1);
            let got = s.get_recording(a, r1).await.unwrap();
            assert_eq!(got.file_size_bytes, 1044);
            assert_eq!(got.duration_seconds, 3);
            assert_eq!(got.status, RecordingStatus::Completed);
            assert_eq!(got.mime_type, "audio/wav");
            assert_eq!(got.sample_rate, 16_000);
            assert_eq!(got.storage_path, format!("recordings/{a}/x/{c1}.wav"));
            assert_eq!(s.get_recording(a, r2).await.unwrap().channels, 2);

            assert!(is_not_found(s.get_recording(b, r1).await));
            assert_eq!(
                s.list_recordings(b, None, Page::default()).await.unwrap().1,
                0
            );
            assert_eq!(
                s.list_recordings(b, Some(c1), Page::default())
                    .await
                    .unwrap()
                    .1,
                0
            );
            let upd = RecordingUpdate {
                status: RecordingStatus::Failed,
                file_size_bytes: None,
                duration_seconds: None,
            };
            assert!(is_not_found(s.update_recording(b, r1, upd).await));
            assert!(is_not_found(
                s.insert_recording(b, NewRecording::new(c1, "evil", t0()))
                    .await
            ));
            assert_eq!(
                s.get_recording(a, r1).await.unwrap().status,
                RecordingStatus::Completed
            );
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Reports

#[tokio::test]
async fn dashboard_counts_by_outcome_class() {
    on_each_engine("dashboard_counts_by_outcome_class", |ctx| async move {
        let s = &ctx.store;
        let a = tenant(s, "a@example.com").await;
        let b = tenant(s, "b@example.com").await;
        let (from, to) = talky_core::minutes::billing_period(t0());
        let mk = |outcome: Option<Outcome>, status: CallStatus, at: DateTime<Utc>| {
            let mut c = NewCall::new("+15550000000", at);
            c.outcome = outcome;
            c.status = status;
            c
        };
        for call in [
            mk(Some(Outcome::GoalAchieved), CallStatus::Completed, t0()),
            mk(Some(Outcome::OptedOut), CallStatus::Completed, t0()),
            mk(Some(Outcome::Voicemail), CallStatus::Completed, t0()),
            mk(Some(Outcome::Busy), CallStatus::Busy, t0()),
            mk(None, CallStatus::Ringing, t0()),
            // Outside the period.
            mk(
                Some(Outcome::Answered),
                CallStatus::Completed,
                from - Duration::seconds(1),
            ),
            mk(Some(Outcome::Answered), CallStatus::Completed, to),
        ] {
            s.insert_call(a, call).await.unwrap();
        }
        s.insert_call(b, mk(Some(Outcome::Answered), CallStatus::Completed, t0()))
            .await
            .unwrap();
        let running = campaign(s, a, "R", t0()).await;
        s.start_campaign(a, running.id, StartOptions::default(), t0())
            .await
            .unwrap()
            .unwrap();
        campaign(s, a, "Draft", t0()).await;

        let d = s.dashboard_counts(a, from, to).await.unwrap();
        assert_eq!(
            d,
            DashboardCounts {
                total_calls: 5,
                answered_calls: 2,
                failed_calls: 2,
                active_campaigns: 1
            }
        );
        let d = s.dashboard_counts(b, from, to).await.unwrap();
        assert_eq!(
            d,
            DashboardCounts {
                total_calls: 1,
                answered_calls: 1,
                failed_calls: 0,
                active_campaigns: 0
            }
        );
    })
    .await;
}

#[tokio::test]
async fn analytics_buckets_by_day_week_and_month() {
    on_each_engine(
        "analytics_buckets_by_day_week_and_month",
        |ctx| async move {
            let s = &ctx.store;
            let a = tenant(s, "a@example.com").await;
            let b = tenant(s, "b@example.com").await;
            let at = |m: u32, d: u32, h: u32| Utc.with_ymd_and_hms(2025, m, d, h, 30, 0).unwrap();
            // 2025-03-02 is a Sunday, 03-03 a Monday.
            for (when, outcome) in [
                (at(3, 2, 23), Some(Outcome::Answered)),
                (at(3, 3, 0), Some(Outcome::NoAnswer)),
                (at(3, 3, 10), Some(Outcome::GoalAchieved)),
                (at(3, 9, 12), None),
                (at(4, 1, 0), Some(Outcome::Failed)),
            ] {
                let mut c = NewCall::new("+15550000000", when);
                c.outcome = outcome;
                c.status = if outcome.is_some() {
                    CallStatus::Completed
                } else {
                    CallStatus::InProgress
                };
                s.insert_call(a, c).await.unwrap();
            }
            s.insert_call(b, NewCall::new("+15550000000", at(3, 3, 10)))
                .await
                .unwrap();
            let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
            let bucket = |date: &str, total, answered, failed| AnalyticsBucket {
                date: d(date),
                total_calls: total,
                answered,
                failed,
            };
            let from = Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap();
            let to = Utc.with_ymd_and_hms(2025, 4, 2, 0, 0, 0).unwrap();

            let days = s.call_analytics(a, from, to, GroupBy::Day).await.unwrap();
            assert_eq!(
                days,
                vec![
                    bucket("2025-03-02", 1, 1, 0),
                    bucket("2025-03-03", 2, 1, 1),
                    bucket("2025-03-09", 1, 0, 0),
                    bucket("2025-04-01", 1, 0, 1),
                ]
            );
            let weeks = s.call_analytics(a, from, to, GroupBy::Week).await.unwrap();
            assert_eq!(
                weeks,
                vec![
                    bucket("2025-02-24", 1, 1, 0),
                    bucket("2025-03-03", 3, 1, 1),
                    bucket("2025-03-31", 1, 0, 1)
                ]
            );
            let months = s.call_analytics(a, from, to, GroupBy::Month).await.unwrap();
            assert_eq!(
                months,
                vec![bucket("2025-03-01", 4, 2, 1), bucket("2025-04-01", 1, 0, 1)]
            );
            let narrow = s
                .call_analytics(
                    a,
                    Utc.with_ymd_and_hms(2025, 3, 3, 0, 30, 0).unwrap(),
                    at(3, 9, 0),
                    GroupBy::Day,
                )
                .await
                .unwrap();
            assert_eq!(
                narrow,
                vec![bucket("2025-03-03", 2, 1, 1)],
                "instants bound the range"
            );
            assert!(s
                .call_analytics(b, from, from, GroupBy::Day)
                .await
                .unwrap()
                .is_empty());
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Import speed (measured, not asserted): run with
// `cargo test --release -p talky-store --test conformance -- --ignored --nocapture import_speed`

#[tokio::test]
#[ignore]
async fn import_speed_100k_rows() {
    on_each_engine("import_speed_100k_rows", |ctx| async move {
        let s = &ctx.store;
        let t = tenant(s, "a@example.com").await;
        let c = campaign(s, t, "C", t0()).await;
        let mut rs = rows(100_000);
        for r in rs.iter_mut() {
            r.last_name = Some("Example".into());
            r.email = Some("someone@example.com".into());
            r.custom_fields.insert("Company".into(), "Acme Inc".into());
        }
        let start = std::time::Instant::now();
        let report = s
            .import_leads(t, c.id, rs, false, ImportReport::new(100_000), t0())
            .await
            .unwrap();
        let took = start.elapsed();
        assert_eq!(report.imported, 100_000);
        println!(
            "{:?}: 100000 leads imported in {:.3} s ({:.0} rows/s)",
            ctx.engine,
            took.as_secs_f64(),
            100_000.0 / took.as_secs_f64()
        );
        let start = std::time::Instant::now();
        let st = s
            .start_campaign(t, c.id, StartOptions::default(), t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(st.jobs_enqueued, 100_000);
        println!(
            "{:?}: start enqueued 100000 jobs in {:.3} s",
            ctx.engine,
            start.elapsed().as_secs_f64()
        );
    })
    .await;
}

// `cargo test --release -p talky-store --test conformance -- --ignored --nocapture list_calls_speed`
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
#[ignore]
async fn list_calls_speed_100k_calls() {
    on_each_engine("list_calls_speed_100k_calls", |ctx| async move {
        let s = &ctx.store;
        let t = tenant(s, "a@example.com").await;
        let sql = match ctx.engine {
            Engine::Sqlite => format!(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999) \
                 INSERT INTO calls (id, tenant_id, to_number, status, outcome, duration_seconds, created_at, updated_at) \
                 SELECT printf('00000000-0000-4000-8000-%012d', i), '{t}', '+15551234567', 'completed', 'answered', 60, \
                 strftime('%Y-%m-%dT%H:%M:%S', '2025-01-01', '+' || (i / 4) || ' seconds') || '.000000Z', \
                 strftime('%Y-%m-%dT%H:%M:%S', '2025-01-01', '+' || (i / 4) || ' seconds') || '.000000Z' FROM n"
            ),
            Engine::Postgres => format!(
                "INSERT INTO calls (id, tenant_id, to_number, status, outcome, duration_seconds, created_at, updated_at) \
                 SELECT gen_random_uuid(), '{t}', '+15551234567', 'completed', 'answered', 60, \
                 timestamptz '2025-01-01 00:00:00+00' + (i / 4) * interval '1 second', \
                 timestamptz '2025-01-01 00:00:00+00' + (i / 4) * interval '1 second' FROM generate_series(0, 99999) i"
            ),
        };
        assert_eq!(ctx.raw(&sql).await, 100_000);
        if ctx.engine == Engine::Postgres {
            ctx.raw("ANALYZE calls").await;
        }
        let (first, total) = s.list_calls(t, CallFilter::default(), Page::new(1, 20)).await.unwrap();
        assert_eq!((first.len(), total), (20, 100_000));
        let per_task = 500;
        let tasks = 16;
        let start = std::time::Instant::now();
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let s = s.clone();
            handles.push(tokio::spawn(async move {
                let mut worst = std::time::Duration::ZERO;
                for i in 0..per_task {
                    let t0 = std::time::Instant::now();
                    let page = Page::new(1 + (i % 5), 20);
                    let (items, _) = s.list_calls(t, CallFilter::default(), page).await.unwrap();
                    assert_eq!(items.len(), 20);
                    worst = worst.max(t0.elapsed());
                }
                worst
            }));
        }
        let mut worst = std::time::Duration::ZERO;
        for h in handles {
            worst = worst.max(h.await.unwrap());
        }
        let took = start.elapsed().as_secs_f64();
        println!(
            "{:?}: {} list_calls in {took:.3} s = {:.0}/s (worst {:?})",
            ctx.engine,
            per_task * tasks,
            f64::from(per_task * tasks) / took,
            worst
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Voice session persistence (G2, F2, H8–H9, I4) and its read-back (J1, J2)

/// A running campaign with one lead (`+15550001111`) and a call to it, as the dialer
/// leaves it for a voice session.
async fn session_call_to_lead(s: &SqlStore, t: TenantId) -> (Campaign, CallId) {
    let c = campaign(s, t, "Voice", t0()).await;
    import(s, t, c.id, vec![row(2, "+15550001111")], true).await;
    s.start_campaign(t, c.id, StartOptions::default(), t0())
        .await
        .unwrap()
        .unwrap();
    let lead = all_leads(s, t, c.id).await.remove(0);
    let mut call = NewCall::new("+15550001111", t0());
    call.campaign_id = Some(c.id);
    call.lead_id = Some(lead.id);
    let id = s.insert_call(t, call).await.unwrap();
    (c, id)
}

/// How a session that ends `at` reports itself at teardown.
fn session_end(at: DateTime<Utc>, outcome: Outcome, counters: serde_json::Value) -> SessionEnd {
    SessionEnd {
        connected_at: None,
        ended_at: at,
        outcome,
        end_reason: if outcome == Outcome::OptedOut {
            "opt_out".into()
        } else {
            "caller_hangup".into()
        },
        opted_out: outcome == Outcome::OptedOut,
        goal_achieved: false,
        goal_detail: None,
        counters,
    }
}

#[tokio::test]
async fn a_lost_connect_mark_is_healed_at_teardown() {
    on_each_engine(
        "a_lost_connect_mark_is_healed_at_teardown",
        |ctx| async move {
            let s = &ctx.store;
            let t = tenant(s, "heal@example.com").await;
            // The session connected at +10 s but its F2 mark never reached the database.
            let (_, lost) = session_call_to_lead(s, t).await;
            let connected = t0() + Duration::seconds(10);
            let mut end = session_end(
                connected + Duration::seconds(60),
                Outcome::Answered,
                serde_json::json!({}),
            );
            end.connected_at = Some(connected);
            assert!(s
                .finish_session_call(t, lost, end.clone(), vec![])
                .await
                .unwrap());
            let d = s.get_call(t, lost).await.unwrap();
            assert_eq!(d.answered_at, Some(connected));
            assert_eq!(d.duration_seconds, 60);

            // A mark that did land wins over the session's own time.
            let mut call = NewCall::new("+15550002222", t0());
            call.campaign_id = None;
            let marked = s.insert_call(t, call).await.unwrap();
            let answered = t0() + Duration::seconds(4);
            assert!(s.mark_call_connected(t, marked, answered).await.unwrap());
            assert!(s.finish_session_call(t, marked, end, vec![]).await.unwrap());
            let d = s.get_call(t, marked).await.unwrap();
            assert_eq!(d.answered_at, Some(answered));
            assert_eq!(d.duration_seconds, 66);
        },
    )
    .await;
}

#[tokio::test]
async fn voice_session_snapshot_connect_and_finish_once() {
    on_each_engine(
        "voice_session_snapshot_connect_and_finish_once",
        |ctx| async move {
            let s = &ctx.store;
            let t = tenant(s, "voice@example.com").await;
            let other = tenant(s, "voice-other@example.com").await;
            let (c, id) = session_call_to_lead(s, t).await;

            let snap = s.session_call(t, id).await.unwrap();
            assert_eq!(snap.system_prompt, "You are a friendly caller.");
            assert_eq!(snap.lead_first_name.as_deref(), Some("First2"));
            assert_eq!(snap.status, CallStatus::Initiated);
            assert_eq!(snap.max_call_seconds, 7200);
            assert!(
                is_not_found(s.session_call(other, id).await),
                "foreign tenant"
            );
            assert!(!s.mark_call_connected(other, id, t0()).await.unwrap());

            let connected = t0() + Duration::seconds(5);
            assert!(s.mark_call_connected(t, id, connected).await.unwrap());
            let end = session_end(
                connected + Duration::milliseconds(61_600),
                Outcome::OptedOut,
                serde_json::json!({"inbound_frames": 10}),
            );
            let metric = TurnMetric {
                turn_index: 0,
                first_frame_ms: Some(420),
                ..Default::default()
            };
            assert!(s
                .finish_session_call(t, id, end.clone(), vec![metric.clone()])
                .await
                .unwrap());
            assert!(
                !s.finish_session_call(t, id, end, vec![metric])
                    .await
                    .unwrap(),
                "teardown twice is a no-op"
            );

            let detail = s.get_call(t, id).await.unwrap();
            assert_eq!(detail.status, CallStatus::Completed);
            assert_eq!(detail.duration_seconds, 62);
            assert_eq!(detail.outcome, Some(Outcome::OptedOut));
            assert_eq!(detail.answered_at, Some(connected));
            // Opt-out: number on DNC, the lead's active job ended `dnc`, the lead `dnc`.
            assert!(s.is_dnc(t, &phone("+15550001111")).await.unwrap());
            assert!(!s.is_dnc(other, &phone("+15550001111")).await.unwrap());
            let (jobs, _) = s.list_jobs(t, c.id, None, Page::new(1, 10)).await.unwrap();
            assert_eq!(jobs[0].status, JobStatus::Dnc);
            assert_eq!(all_leads(s, t, c.id).await[0].status, LeadStatus::Dnc);
            let n = ctx
                .scalar(&format!(
                    "SELECT COUNT(*) FROM call_turn_metrics WHERE call_id = '{}'",
                    id
                ))
                .await;
            assert_eq!(n, 1);
        },
    )
    .await;
}

#[tokio::test]
async fn call_metrics_read_back_counters_and_turns_in_order() {
    on_each_engine(
        "call_metrics_read_back_counters_and_turns_in_order",
        |ctx| async move {
            let s = &ctx.store;
            let t = tenant(s, "metrics@example.com").await;
            let other = tenant(s, "metrics-other@example.com").await;
            let (_, id) = session_call_to_lead(s, t).await;

            // Not finalised yet: no counters, no turns.
            let m = s.call_metrics(t, id).await.unwrap();
            assert_eq!(
                m,
                CallMetrics {
                    call_id: id,
                    counters: None,
                    turns: vec![]
                }
            );

            let connected = t0() + Duration::seconds(5);
            assert!(s.mark_call_connected(t, id, connected).await.unwrap());
            let counters =
                serde_json::json!({"inbound_frames": 3000, "barge_ins": 1, "opener_ms": 812});
            let late = TurnMetric {
                turn_index: 1,
                speech_end: Some(connected + Duration::milliseconds(9_250)),
                endpoint_delay_ms: Some(510),
                stt_final_ms: Some(505),
                llm_ttft_ms: Some(101),
                first_sentence_ms: Some(102),
                tts_ttfb_ms: Some(52),
                first_frame_ms: Some(700),
                speculative: false,
            };
            let early = TurnMetric {
                turn_index: 0,
                speech_end: Some(connected + Duration::milliseconds(4_125)),
                first_frame_ms: Some(650),
                speculative: true,
                ..Default::default()
            };
            // Written out of order; read back by turn index.
            assert!(s
                .finish_session_call(
                    t,
                    id,
                    session_end(
                        connected + Duration::seconds(20),
                        Outcome::Answered,
                        counters.clone()
                    ),
                    vec![late.clone(), early.clone()],
                )
                .await
                .unwrap());
            let m = s.call_metrics(t, id).await.unwrap();
            assert_eq!(m.call_id, id);
            assert_eq!(m.counters, Some(counters));
            assert_eq!(m.turns, vec![early, late]);

            // Tenant isolation: a foreign or unknown call is NotFound, never empty metrics.
            assert!(
                is_not_found(s.call_metrics(other, id).await),
                "foreign tenant"
            );
            assert!(
                is_not_found(s.call_metrics(t, CallId::new()).await),
                "unknown call"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn unanswered_session_call_has_zero_duration() {
    on_each_engine(
        "unanswered_session_call_has_zero_duration",
        |ctx| async move {
            let s = &ctx.store;
            let t = tenant(s, "zero@example.com").await;
            let id = s
                .insert_call(t, NewCall::new("+15550002222", t0()))
                .await
                .unwrap();
            let end = SessionEnd {
                connected_at: None,
                ended_at: t0() + Duration::seconds(30),
                outcome: Outcome::AgentError,
                end_reason: "error".into(),
                opted_out: false,
                goal_achieved: false,
                goal_detail: None,
                counters: serde_json::json!({}),
            };
            assert!(s.finish_session_call(t, id, end, vec![]).await.unwrap());
            assert_eq!(s.get_call(t, id).await.unwrap().duration_seconds, 0);
        },
    )
    .await;
}
