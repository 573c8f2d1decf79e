-- Identity: users, their team memberships with a role, and API tokens (stored as SHA-256 hashes; the
-- token itself is shown once). A token belongs to a user, or to a team's service account.
CREATE TABLE users (
    name          TEXT NOT NULL PRIMARY KEY,
    email         TEXT,
    password_hash TEXT,
    admin         INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE memberships (
    username TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    team     TEXT NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    role     TEXT NOT NULL CHECK (role IN ('team-maintainer', 'team-member', 'viewer')),
    PRIMARY KEY (username, team)
);
CREATE INDEX memberships_team ON memberships (team, username);

CREATE TABLE api_tokens (
    id           TEXT NOT NULL PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    username     TEXT REFERENCES users (name) ON DELETE CASCADE,
    team         TEXT REFERENCES teams (name) ON DELETE CASCADE,
    team_role    TEXT CHECK (team_role IN ('team-maintainer', 'team-member', 'viewer')),
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    CHECK ((username IS NULL) <> (team IS NULL))
);
