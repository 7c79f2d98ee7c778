-- Call counts per tenant, UTC day and status, kept current by triggers on `calls`.
-- Why: `GET /calls` reports the total of its filter (behaviour.md H7) on every page; counting
-- a large tenant's rows per request made that COUNT(*) nearly all of the page's cost. With
-- whole-day filters (what the route passes) the total is a SUM over at most days × statuses
-- rows of this table. Mirrors migrations/postgres/0002_call_counts.sql.

CREATE TABLE call_counts (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day       TEXT NOT NULL, -- 'YYYY-MM-DD', the UTC day of calls.created_at
    status    TEXT NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day, status)
);

INSERT INTO call_counts (tenant_id, day, status, n)
SELECT tenant_id, substr(created_at, 1, 10), status, COUNT(*) FROM calls GROUP BY 1, 2, 3;

CREATE TRIGGER call_counts_insert AFTER INSERT ON calls
BEGIN
    INSERT INTO call_counts (tenant_id, day, status, n)
    VALUES (NEW.tenant_id, substr(NEW.created_at, 1, 10), NEW.status, 1)
    ON CONFLICT (tenant_id, day, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER call_counts_delete AFTER DELETE ON calls
BEGIN
    UPDATE call_counts SET n = n - 1
    WHERE tenant_id = OLD.tenant_id AND day = substr(OLD.created_at, 1, 10) AND status = OLD.status;
END;

CREATE TRIGGER call_counts_update AFTER UPDATE OF tenant_id, status, created_at ON calls
WHEN OLD.tenant_id IS NOT NEW.tenant_id OR OLD.status IS NOT NEW.status
  OR substr(OLD.created_at, 1, 10) IS NOT substr(NEW.created_at, 1, 10)
BEGIN
    UPDATE call_counts SET n = n - 1
    WHERE tenant_id = OLD.tenant_id AND day = substr(OLD.created_at, 1, 10) AND status = OLD.status;
    INSERT INTO call_counts (tenant_id, day, status, n)
    VALUES (NEW.tenant_id, substr(NEW.created_at, 1, 10), NEW.status, 1)
    ON CONFLICT (tenant_id, day, status) DO UPDATE SET n = n + 1;
END;
