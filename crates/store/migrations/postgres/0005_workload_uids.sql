-- The unprivileged uid each service's builds and processes run as (workload isolation on the
-- local target when Slipway runs as root). Allocated once, never shared between services.
CREATE TABLE service_uids (
    service TEXT NOT NULL PRIMARY KEY REFERENCES services (name) ON DELETE CASCADE,
    uid     BIGINT NOT NULL UNIQUE
);
