-- Call counts per tenant, UTC day and status, kept current by triggers on `calls`.
-- Why: `GET /calls` reports the total of its filter (behaviour.md H7) on every page; counting
-- a large tenant's rows per request made that COUNT(*) nearly all of the page's cost. With
-- whole-day filters (what the route passes) the total is a SUM over at most days × statuses
-- rows of this table. `day` is 'YYYY-MM-DD' text, as on SQLite, so queries share their text.
-- Mirrors migrations/sqlite/0002_call_counts.sql.

CREATE TABLE call_counts (
    tenant_id UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day       TEXT NOT NULL,
    status    TEXT NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, status)
);

INSERT INTO call_counts (tenant_id, day, status, n)
SELECT tenant_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), status, COUNT(*)
FROM calls GROUP BY 1, 2, 3;

CREATE FUNCTION call_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE call_counts SET n = n - 1
        WHERE tenant_id = OLD.tenant_id
          AND day = to_char(OLD.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
          AND status = OLD.status;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO call_counts (tenant_id, day, status, n)
        VALUES (NEW.tenant_id, to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), NEW.status, 1)
        ON CONFLICT (tenant_id, day, status) DO UPDATE SET n = call_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER call_counts_insert_delete AFTER INSERT OR DELETE ON calls
    FOR EACH ROW EXECUTE FUNCTION call_counts_track();

CREATE TRIGGER call_counts_update AFTER UPDATE OF tenant_id, status, created_at ON calls
    FOR EACH ROW
    WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id OR OLD.status IS DISTINCT FROM NEW.status
          OR (OLD.created_at AT TIME ZONE 'UTC')::date IS DISTINCT FROM (NEW.created_at AT TIME ZONE 'UTC')::date)
    EXECUTE FUNCTION call_counts_track();
