-- The deployment engine: deployment events and logs, releases, variables, idempotency keys, the
-- durable job queue and the local target's instances.

ALTER TABLE deployments ADD COLUMN release_id TEXT;
ALTER TABLE deployments ADD COLUMN rollback_of TEXT;
ALTER TABLE deployments ADD COLUMN commit_sha TEXT;
ALTER TABLE deployments ADD COLUMN url TEXT;
ALTER TABLE deployments ADD COLUMN reason TEXT;
ALTER TABLE deployments ADD COLUMN replicas INTEGER NOT NULL DEFAULT 1;

CREATE TABLE deployment_events (
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    at            TEXT NOT NULL,
    status        TEXT NOT NULL,
    reason        TEXT NOT NULL,
    PRIMARY KEY (deployment_id, seq)
);

CREATE TABLE deployment_logs (
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    at            TEXT NOT NULL,
    stream        TEXT NOT NULL CHECK (stream IN ('system', 'stdout', 'stderr')),
    line          TEXT NOT NULL,
    PRIMARY KEY (deployment_id, seq)
);

CREATE TABLE releases (
    id            TEXT NOT NULL PRIMARY KEY,
    service       TEXT NOT NULL REFERENCES services (name) ON DELETE CASCADE,
    environment   TEXT NOT NULL REFERENCES environments (name),
    deployment_id TEXT NOT NULL,
    commit_sha    TEXT NOT NULL,
    plan          TEXT NOT NULL CHECK (json_valid(plan)),
    variables     TEXT NOT NULL CHECK (json_valid(variables)),
    created_at    TEXT NOT NULL,
    healthy_at    TEXT
);
CREATE INDEX releases_service ON releases (service, environment, created_at DESC, id DESC);

CREATE TABLE service_variables (
    service     TEXT NOT NULL REFERENCES services (name) ON DELETE CASCADE,
    environment TEXT NOT NULL REFERENCES environments (name),
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (service, environment, name)
);

CREATE TABLE idempotency_keys (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    queue            TEXT NOT NULL,
    kind             TEXT NOT NULL,
    subject          TEXT NOT NULL,
    payload          TEXT NOT NULL CHECK (json_valid(payload)),
    concurrency_key  TEXT,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    run_at           TEXT NOT NULL,
    lease_owner      TEXT,
    lease_until      TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX jobs_ready ON jobs (queue, status, id);
CREATE INDEX jobs_key ON jobs (concurrency_key, status, id);
CREATE INDEX jobs_subject ON jobs (subject, id);
-- Jobs that share a key run one at a time: a second claim of the key fails here.
CREATE UNIQUE INDEX jobs_one_running_per_key ON jobs (concurrency_key) WHERE status = 'running';

CREATE TABLE instances (
    service     TEXT NOT NULL,
    environment TEXT NOT NULL,
    release_id  TEXT NOT NULL,
    slot        INTEGER NOT NULL,
    pid         INTEGER NOT NULL,
    pid_start   INTEGER NOT NULL,
    port        INTEGER NOT NULL,
    state       TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    PRIMARY KEY (service, environment, release_id, slot)
);

-- Runtime figures of what runs, sampled every 15 s (kept 24 h by default) for history charts.
CREATE TABLE runtime_samples (
    service        TEXT NOT NULL REFERENCES services (name) ON DELETE CASCADE,
    environment    TEXT NOT NULL,
    at             TEXT NOT NULL,
    instances      INTEGER NOT NULL,
    cpu_percent    REAL NOT NULL,
    memory_bytes   INTEGER NOT NULL,
    requests       INTEGER NOT NULL,
    errors         INTEGER NOT NULL,
    latency_p50_ms REAL,
    latency_p99_ms REAL,
    PRIMARY KEY (service, environment, at)
);
CREATE INDEX runtime_samples_at ON runtime_samples (at);
