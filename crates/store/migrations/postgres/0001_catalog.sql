-- The catalog. Names, paths and ids use the "C" collation so that ordering is byte order, the same
-- as SQLite's, whatever the database's locale.

CREATE TABLE teams (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE services (
    name        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    team        TEXT COLLATE "C" NOT NULL REFERENCES teams (name),
    repo_url    TEXT NOT NULL,
    template    TEXT COLLATE "C" NOT NULL,
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX services_team ON services (team, name);
CREATE INDEX services_template ON services (template, name);
-- Registration order, for the platform repository (`all_platform_artifacts`).
CREATE INDEX services_created ON services (created_at, name);

CREATE TABLE environments (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);
INSERT INTO environments (name, created_at) VALUES ('dev', date_trunc('microseconds', now()));

-- `service_name` is '' for platform-wide files (shared modules), which belong to no service; that is
-- also why it carries no foreign key: `delete_service` removes a service's artifacts itself.
CREATE TABLE artifacts (
    service_name TEXT COLLATE "C" NOT NULL DEFAULT '',
    scope        TEXT COLLATE "C" NOT NULL CHECK (scope IN ('platform', 'service')),
    path         TEXT COLLATE "C" NOT NULL,
    content      BYTEA NOT NULL,
    sha256       TEXT NOT NULL,
    generator    TEXT NOT NULL,
    PRIMARY KEY (service_name, scope, path)
);

CREATE TABLE deployments (
    id                    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    service               TEXT COLLATE "C" NOT NULL REFERENCES services (name) ON DELETE CASCADE,
    environment           TEXT COLLATE "C" NOT NULL REFERENCES environments (name),
    git_ref               TEXT,
    status                TEXT NOT NULL CHECK (status IN (
        'QUEUED', 'ANALYZING', 'BUILDING', 'PROVISIONING', 'DEPLOYING', 'HEALTHY', 'EXPOSED',
        'FAILED', 'ROLLING_BACK', 'ROLLED_BACK', 'CANCELLED', 'DESTROYED')),
    status_before_destroy TEXT CHECK (status_before_destroy IN (
        'QUEUED', 'ANALYZING', 'BUILDING', 'PROVISIONING', 'DEPLOYING', 'HEALTHY', 'EXPOSED',
        'FAILED', 'ROLLING_BACK', 'ROLLED_BACK', 'CANCELLED', 'DESTROYED')),
    "trigger"             TEXT NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX deployments_service ON deployments (service, created_at DESC, id DESC);
-- The latest deployment of a service in an environment: without it a lookup would walk the whole
-- environment (every service deploys to dev).
CREATE INDEX deployments_service_environment ON deployments (service, environment, created_at DESC, id DESC);
CREATE INDEX deployments_environment ON deployments (environment, created_at DESC, id DESC);
CREATE INDEX deployments_status ON deployments (status, created_at DESC, id DESC);
CREATE INDEX deployments_created ON deployments (created_at DESC, id DESC);

-- Append-only.
CREATE TABLE audit_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_name TEXT NOT NULL,
    remote_addr TEXT,
    result      TEXT NOT NULL,
    detail      JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_kind ON audit_events (object_kind, id);
CREATE INDEX audit_events_object ON audit_events (object_kind, object_name, id);
CREATE INDEX audit_events_action ON audit_events (action, id);
