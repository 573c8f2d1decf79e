-- Artifact contents stored once per SHA-256: most generated files are byte-identical across
-- services (the Helm chart's templates, shared workflow steps), and storing each copy made the
-- database grow ~80 KB per service. An artifact row names its content by `sha256`; a content no
-- artifact names any more is deleted by the transaction that dropped its last reference.
CREATE TABLE artifact_contents (
    sha256  TEXT NOT NULL PRIMARY KEY,
    content BLOB NOT NULL
);
INSERT INTO artifact_contents (sha256, content)
SELECT sha256, content FROM artifacts WHERE true ON CONFLICT (sha256) DO NOTHING;

-- Every file must stay byte-identical: two artifacts claiming one sha256 with different contents
-- (which no Slipway wrote) would lose one of them. The upgrade stops here instead, database
-- untouched; SQLite's message names the constraint.
CREATE TEMP TABLE migration_0010_check (
    artifact TEXT,
    CONSTRAINT "two artifacts have the same sha256 but different contents: upgrade stopped, database unchanged"
        CHECK (artifact IS NULL)
);
INSERT INTO migration_0010_check (artifact)
SELECT a.service_name || '/' || a.scope || '/' || a.path
FROM artifacts a JOIN artifact_contents c ON c.sha256 = a.sha256
WHERE a.content <> c.content LIMIT 1;
DROP TABLE migration_0010_check;

-- The table without its contents, rebuilt because SQLite adds no foreign key to an existing column.
CREATE TABLE artifacts_0010 (
    service_name     TEXT NOT NULL DEFAULT '',
    scope            TEXT NOT NULL CHECK (scope IN ('platform', 'service')),
    path             TEXT NOT NULL,
    sha256           TEXT NOT NULL REFERENCES artifact_contents (sha256),
    generator        TEXT NOT NULL,
    generated_sha256 TEXT,
    PRIMARY KEY (service_name, scope, path)
);
INSERT INTO artifacts_0010 (service_name, scope, path, sha256, generator, generated_sha256)
SELECT service_name, scope, path, sha256, generator, generated_sha256 FROM artifacts;
DROP TABLE artifacts;
ALTER TABLE artifacts_0010 RENAME TO artifacts;
-- Is a content still named? (and the foreign key's check when one is deleted)
CREATE INDEX artifacts_sha256 ON artifacts (sha256);
