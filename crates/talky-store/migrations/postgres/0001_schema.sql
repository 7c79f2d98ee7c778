-- The whole Talky schema (PostgreSQL flavour). Later migrations only add behaviour.
-- uuid / timestamptz / jsonb natively; every tenant-owned table carries tenant_id so
-- each query can filter on it. Mirrors migrations/sqlite/0001_schema.sql column for column.

CREATE TABLE plans (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    price            DOUBLE PRECISION NOT NULL,
    description      TEXT NOT NULL,
    minutes          BIGINT NOT NULL,
    agents           BIGINT NOT NULL,
    concurrent_calls BIGINT NOT NULL,
    features         JSONB NOT NULL,
    not_included     JSONB NOT NULL,
    popular          BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE tenants (
    id                UUID PRIMARY KEY,
    business_name     TEXT NOT NULL,
    plan_id           TEXT NOT NULL REFERENCES plans(id),
    minutes_allocated BIGINT NOT NULL,
    calling_rules     JSONB NOT NULL DEFAULT '{}',
    recording         JSONB NOT NULL DEFAULT '{}',
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    id                UUID PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,
    name              TEXT,
    is_platform_admin BOOLEAN NOT NULL DEFAULT FALSE,
    is_active         BOOLEAN NOT NULL DEFAULT TRUE,
    profile_created_at TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL
);

-- A user belongs to at most one tenant (A9), hence user_id is the key.
CREATE TABLE memberships (
    user_id    UUID PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    tenant_id  UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX memberships_tenant ON memberships(tenant_id);

CREATE TABLE sessions (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Magic links: only sha256(token) is stored (A3).
CREATE TABLE auth_links (
    id         UUID PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('login', 'register', 'invite')),
    email      TEXT NOT NULL,
    payload    JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX auth_links_email ON auth_links(email, created_at);

CREATE TABLE campaigns (
    id                   UUID PRIMARY KEY,
    tenant_id            UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
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
    max_concurrent_calls BIGINT NOT NULL DEFAULT 10,
    calling_rules        JSONB,
    voicemail_message    TEXT,
    max_call_seconds     BIGINT NOT NULL DEFAULT 7200,
    key_terms            JSONB NOT NULL DEFAULT '[]',
    pause_reason         TEXT,
    calls_completed      BIGINT NOT NULL DEFAULT 0,
    calls_failed         BIGINT NOT NULL DEFAULT 0,
    started_at           TIMESTAMPTZ,
    completed_at         TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX campaigns_tenant ON campaigns(tenant_id, created_at);

CREATE TABLE leads (
    id               UUID PRIMARY KEY,
    tenant_id        UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    campaign_id      UUID NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    phone_number     TEXT NOT NULL,
    first_name       TEXT,
    last_name        TEXT,
    email            TEXT,
    custom_fields    JSONB NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL DEFAULT 'pending',
    last_call_result TEXT NOT NULL DEFAULT 'pending',
    call_attempts    BIGINT NOT NULL DEFAULT 0,
    priority         BIGINT NOT NULL DEFAULT 5,
    is_high_value    BOOLEAN NOT NULL DEFAULT FALSE,
    tags             JSONB NOT NULL DEFAULT '[]',
    last_called_at   TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (campaign_id, phone_number)
);
CREATE INDEX leads_tenant_campaign ON leads(tenant_id, campaign_id, created_at);

CREATE TABLE dialer_jobs (
    id             UUID PRIMARY KEY,
    tenant_id      UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    campaign_id    UUID NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    lead_id        UUID NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    status         TEXT NOT NULL DEFAULT 'pending',
    priority       BIGINT NOT NULL DEFAULT 5,
    attempt_number BIGINT NOT NULL DEFAULT 0,
    scheduled_at   TIMESTAMPTZ NOT NULL,
    last_error     TEXT,
    leased_by      TEXT,
    leased_until   TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
-- E5: at most one active job per lead, enforced by the database.
CREATE UNIQUE INDEX dialer_jobs_one_active ON dialer_jobs(lead_id)
    WHERE status IN ('pending', 'retry_scheduled', 'processing');
CREATE INDEX dialer_jobs_due ON dialer_jobs(status, scheduled_at);
CREATE INDEX dialer_jobs_campaign ON dialer_jobs(tenant_id, campaign_id, created_at);

CREATE TABLE calls (
    id                 UUID PRIMARY KEY,
    tenant_id          UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    campaign_id        UUID REFERENCES campaigns(id) ON DELETE SET NULL,
    lead_id            UUID REFERENCES leads(id) ON DELETE SET NULL,
    job_id             UUID REFERENCES dialer_jobs(id) ON DELETE SET NULL,
    to_number          TEXT NOT NULL,
    from_number        TEXT,
    provider           TEXT,
    provider_call_id   TEXT,
    conversation_uuid  TEXT,
    status             TEXT NOT NULL DEFAULT 'initiated',
    outcome            TEXT,
    end_reason         TEXT,
    attempt_number     BIGINT NOT NULL DEFAULT 1,
    is_test            BOOLEAN NOT NULL DEFAULT FALSE,
    hangup_requested   BOOLEAN NOT NULL DEFAULT FALSE,
    answered_at        TIMESTAMPTZ,
    ended_at           TIMESTAMPTZ,
    finalized_at       TIMESTAMPTZ,
    duration_seconds   BIGINT NOT NULL DEFAULT 0,
    price              DOUBLE PRECISION,
    rate               DOUBLE PRECISION,
    summary            TEXT,
    goal_achieved      BOOLEAN NOT NULL DEFAULT FALSE,
    goal_detail        TEXT,
    opted_out          BOOLEAN NOT NULL DEFAULT FALSE,
    recording_id       UUID,
    counters           JSONB NOT NULL DEFAULT '{}',
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (provider, provider_call_id)
);
CREATE INDEX calls_tenant_created ON calls(tenant_id, created_at);
CREATE INDEX calls_status ON calls(status);
CREATE INDEX calls_campaign ON calls(campaign_id);

CREATE TABLE call_events (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_id     UUID NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    payload     JSONB NOT NULL DEFAULT '{}',
    occurred_at TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX call_events_call ON call_events(call_id, occurred_at);

-- J1 per-turn latency records.
CREATE TABLE call_turn_metrics (
    id                UUID PRIMARY KEY,
    tenant_id         UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_id           UUID NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    turn_index        BIGINT NOT NULL,
    speech_end        TIMESTAMPTZ,
    endpoint_delay_ms BIGINT,
    stt_final_ms      BIGINT,
    llm_ttft_ms       BIGINT,
    first_sentence_ms BIGINT,
    tts_ttfb_ms       BIGINT,
    first_frame_ms    BIGINT,
    speculative       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX call_turn_metrics_call ON call_turn_metrics(call_id, turn_index);

CREATE TABLE recordings (
    id               UUID PRIMARY KEY,
    tenant_id        UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_id          UUID NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    storage_path     TEXT NOT NULL,
    duration_seconds BIGINT NOT NULL DEFAULT 0,
    file_size_bytes  BIGINT NOT NULL DEFAULT 0,
    mime_type        TEXT NOT NULL DEFAULT 'audio/wav',
    channels         BIGINT NOT NULL DEFAULT 1,
    sample_rate      BIGINT NOT NULL DEFAULT 16000,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'completed', 'failed', 'discarded')),
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX recordings_tenant_created ON recordings(tenant_id, created_at);
CREATE INDEX recordings_call ON recordings(call_id);

CREATE TABLE transcripts (
    id                   UUID PRIMARY KEY,
    tenant_id            UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_id              UUID NOT NULL UNIQUE REFERENCES calls(id) ON DELETE CASCADE,
    turns                JSONB NOT NULL DEFAULT '[]',
    full_text            TEXT NOT NULL DEFAULT '',
    turn_count           BIGINT NOT NULL DEFAULT 0,
    word_count           BIGINT NOT NULL DEFAULT 0,
    user_word_count      BIGINT NOT NULL DEFAULT 0,
    assistant_word_count BIGINT NOT NULL DEFAULT 0,
    created_at           TIMESTAMPTZ NOT NULL
);

CREATE TABLE clients (
    id         UUID PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    company    TEXT,
    phone      TEXT,
    email      TEXT,
    tags       JSONB NOT NULL DEFAULT '[]',
    notes      TEXT,
    custom_fields JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX clients_tenant_name ON clients(tenant_id, name);

CREATE TABLE dnc (
    tenant_id    UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    phone_number TEXT NOT NULL,
    source       TEXT NOT NULL,
    reason       TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, phone_number)
);

INSERT INTO plans (id, name, price, description, minutes, agents, concurrent_calls, features, not_included, popular) VALUES
 ('basic', 'Basic', 29.0, 'Perfect for startups and solo entrepreneurs.', 300, 1, 1,
  '["300 minutes/month", "1 AI agent", "Basic analytics", "Email support"]',
  '["API access", "Custom voices", "Priority support"]', FALSE),
 ('professional', 'Professional', 79.0, 'Ideal for growing businesses.', 1500, 3, 3,
  '["1500 minutes/month", "3 AI agents", "Advanced analytics", "Priority support", "Custom voices"]',
  '["API access", "White-label"]', TRUE),
 ('enterprise', 'Enterprise', 199.0, 'For large scale operations.', 5000, 10, 10,
  '["5000 minutes/month", "10 AI agents", "Full analytics", "24/7 support", "API access", "White-label"]',
  '[]', FALSE);
