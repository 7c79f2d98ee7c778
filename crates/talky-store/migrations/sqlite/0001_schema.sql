-- The whole Talky schema (SQLite flavour). Later migrations only add behaviour.
-- uuid, timestamps (RFC 3339 UTC, fixed width so text order is time order) and JSON as TEXT,
-- booleans as INTEGER; every tenant-owned table carries tenant_id so
-- each query can filter on it. Mirrors migrations/postgres/0001_schema.sql column for column.

CREATE TABLE plans (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    price            REAL NOT NULL,
    description      TEXT NOT NULL,
    minutes          INTEGER NOT NULL,
    agents           INTEGER NOT NULL,
    concurrent_calls INTEGER NOT NULL,
    features         TEXT NOT NULL,
    not_included     TEXT NOT NULL,
    popular          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE tenants (
    id                TEXT PRIMARY KEY,
    business_name     TEXT NOT NULL,
    plan_id           TEXT NOT NULL REFERENCES plans(id),
    minutes_allocated INTEGER NOT NULL,
    calling_rules     TEXT NOT NULL DEFAULT '{}',
    recording         TEXT NOT NULL DEFAULT '{}',
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,
    name              TEXT,
    is_platform_admin INTEGER NOT NULL DEFAULT 0,
    is_active         INTEGER NOT NULL DEFAULT 1,
    profile_created_at TEXT,
    created_at        TEXT NOT NULL
);

-- A user belongs to at most one tenant (A9), hence user_id is the key.
CREATE TABLE memberships (
    user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    created_at TEXT NOT NULL
);
CREATE INDEX memberships_tenant ON memberships(tenant_id);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Magic links: only sha256(token) is stored (A3).
CREATE TABLE auth_links (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('login', 'register', 'invite')),
    email      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX auth_links_email ON auth_links(email, created_at);

CREATE TABLE campaigns (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    description          TEXT,
    status               TEXT NOT NULL DEFAULT 'draft',
    system_prompt        TEXT NOT NULL,
    voice_id             TEXT,
    agent_name           TEXT,
    company_name         TEXT,
    call_reason          TEXT,
    opener               TEXT,
    goal                 TEXT,
    language             TEXT NOT NULL DEFAULT 'en',
    max_concurrent_calls INTEGER NOT NULL DEFAULT 10,
    calling_rules        TEXT,
    voicemail_message    TEXT,
    max_call_seconds     INTEGER NOT NULL DEFAULT 7200,
    key_terms            TEXT NOT NULL DEFAULT '[]',
    pause_reason         TEXT,
    calls_completed      INTEGER NOT NULL DEFAULT 0,
    calls_failed         INTEGER NOT NULL DEFAULT 0,
    started_at           TEXT,
    completed_at         TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX campaigns_tenant ON campaigns(tenant_id, created_at);

CREATE TABLE leads (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    campaign_id      TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    phone_number     TEXT NOT NULL,
    first_name       TEXT,
    last_name        TEXT,
    email            TEXT,
    custom_fields    TEXT NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL DEFAULT 'pending',
    last_call_result TEXT NOT NULL DEFAULT 'pending',
    call_attempts    INTEGER NOT NULL DEFAULT 0,
    priority         INTEGER NOT NULL DEFAULT 5,
    is_high_value    INTEGER NOT NULL DEFAULT 0,
    tags             TEXT NOT NULL DEFAULT '[]',
    last_called_at   TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (campaign_id, phone_number)
);
CREATE INDEX leads_tenant_campaign ON leads(tenant_id, campaign_id, created_at);

CREATE TABLE dialer_jobs (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    campaign_id    TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    lead_id        TEXT NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    status         TEXT NOT NULL DEFAULT 'pending',
    priority       INTEGER NOT NULL DEFAULT 5,
    attempt_number INTEGER NOT NULL DEFAULT 0,
    scheduled_at   TEXT NOT NULL,
    last_error     TEXT,
    leased_by      TEXT,
    leased_until   TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
-- E5: at most one active job per lead, enforced by the database.
CREATE UNIQUE INDEX dialer_jobs_one_active ON dialer_jobs(lead_id)
    WHERE status IN ('pending', 'retry_scheduled', 'processing');
CREATE INDEX dialer_jobs_due ON dialer_jobs(status, scheduled_at);
CREATE INDEX dialer_jobs_campaign ON dialer_jobs(tenant_id, campaign_id, created_at);

CREATE TABLE calls (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    campaign_id        TEXT REFERENCES campaigns(id) ON DELETE SET NULL,
    lead_id            TEXT REFERENCES leads(id) ON DELETE SET NULL,
    job_id             TEXT REFERENCES dialer_jobs(id) ON DELETE SET NULL,
    to_number          TEXT NOT NULL,
    from_number        TEXT,
    provider           TEXT,
    provider_call_id   TEXT,
    conversation_uuid  TEXT,
    status             TEXT NOT NULL DEFAULT 'initiated',
    outcome            TEXT,
    end_reason         TEXT,
    attempt_number     INTEGER NOT NULL DEFAULT 1,
    is_test            INTEGER NOT NULL DEFAULT 0,
    hangup_requested   INTEGER NOT NULL DEFAULT 0,
    answered_at        TEXT,
    ended_at           TEXT,
    finalized_at       TEXT,
    duration_seconds   INTEGER NOT NULL DEFAULT 0,
    price              REAL,
    rate               REAL,
    summary            TEXT,
    goal_achieved      INTEGER NOT NULL DEFAULT 0,
    goal_detail        TEXT,
    opted_out          INTEGER NOT NULL DEFAULT 0,
    recording_id       TEXT,
    counters           TEXT NOT NULL DEFAULT '{}',
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    UNIQUE (provider, provider_call_id)
);
CREATE INDEX calls_tenant_created ON calls(tenant_id, created_at);
CREATE INDEX calls_status ON calls(status);
CREATE INDEX calls_campaign ON calls(campaign_id);

CREATE TABLE call_events (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_id     TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL DEFAULT '{}',
    occurred_at TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX call_events_call ON call_events(call_id, occurred_at);

-- J1 per-turn latency records.
CREATE TABLE call_turn_metrics (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_id           TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    turn_index        INTEGER NOT NULL,
    speech_end        TEXT,
    endpoint_delay_ms INTEGER,
    stt_final_ms      INTEGER,
    llm_ttft_ms       INTEGER,
    first_sentence_ms INTEGER,
    tts_ttfb_ms       INTEGER,
    first_frame_ms    INTEGER,
    speculative       INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL
);
CREATE INDEX call_turn_metrics_call ON call_turn_metrics(call_id, turn_index);

CREATE TABLE recordings (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_id          TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    storage_path     TEXT NOT NULL,
    duration_seconds INTEGER NOT NULL DEFAULT 0,
    file_size_bytes  INTEGER NOT NULL DEFAULT 0,
    mime_type        TEXT NOT NULL DEFAULT 'audio/wav',
    channels         INTEGER NOT NULL DEFAULT 1,
    sample_rate      INTEGER NOT NULL DEFAULT 16000,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'completed', 'failed', 'discarded')),
    created_at       TEXT NOT NULL
);
CREATE INDEX recordings_tenant_created ON recordings(tenant_id, created_at);
CREATE INDEX recordings_call ON recordings(call_id);

CREATE TABLE transcripts (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_id              TEXT NOT NULL UNIQUE REFERENCES calls(id) ON DELETE CASCADE,
    turns                TEXT NOT NULL DEFAULT '[]',
    full_text            TEXT NOT NULL DEFAULT '',
    turn_count           INTEGER NOT NULL DEFAULT 0,
    word_count           INTEGER NOT NULL DEFAULT 0,
    user_word_count      INTEGER NOT NULL DEFAULT 0,
    assistant_word_count INTEGER NOT NULL DEFAULT 0,
    created_at           TEXT NOT NULL
);

CREATE TABLE clients (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    company    TEXT,
    phone      TEXT,
    email      TEXT,
    tags       TEXT NOT NULL DEFAULT '[]',
    notes      TEXT,
    custom_fields TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE INDEX clients_tenant_name ON clients(tenant_id, name);

CREATE TABLE dnc (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    phone_number TEXT NOT NULL,
    source       TEXT NOT NULL,
    reason       TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, phone_number)
);

INSERT INTO plans (id, name, price, description, minutes, agents, concurrent_calls, features, not_included, popular) VALUES
 ('basic', 'Basic', 29.0, 'Perfect for startups and solo entrepreneurs.', 300, 1, 1,
  '["300 minutes/month", "1 AI agent", "Basic analytics", "Email support"]',
  '["API access", "Custom voices", "Priority support"]', 0),
 ('professional', 'Professional', 79.0, 'Ideal for growing businesses.', 1500, 3, 3,
  '["1500 minutes/month", "3 AI agents", "Advanced analytics", "Priority support", "Custom voices"]',
  '["API access", "White-label"]', 1),
 ('enterprise', 'Enterprise', 199.0, 'For large scale operations.', 5000, 10, 10,
  '["5000 minutes/month", "10 AI agents", "Full analytics", "24/7 support", "API access", "White-label"]',
  '[]', 0);
