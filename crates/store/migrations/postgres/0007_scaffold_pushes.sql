-- The push of a scaffolded service's repository to the remote given at registration: pending
-- until the first attempt ends, then pushed or failed (with git's message); a retry updates it.
CREATE TABLE scaffold_pushes (
    service    TEXT NOT NULL PRIMARY KEY REFERENCES services (name) ON DELETE CASCADE,
    remote     TEXT NOT NULL,
    branch     TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'pushed', 'failed')),
    commit_sha TEXT,
    error      TEXT,
    attempts   BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL
);
