-- Artifact contents stored once per SHA-256: most generated files are byte-identical across
-- services (the Helm chart's templates, shared workflow steps), and storing each copy made the
-- database grow ~80 KB per service. An artifact row names its content by `sha256`; a content no
-- artifact names any more is deleted by the transaction that dropped its last reference.
CREATE TABLE artifact_contents (
    sha256  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    content BYTEA NOT NULL
);
INSERT INTO artifact_contents (sha256, content)
SELECT sha256, content FROM artifacts ON CONFLICT (sha256) DO NOTHING;

-- Every file must stay byte-identical: two artifacts claiming one sha256 with different contents
-- (which no Slipway wrote) would lose one of them. The upgrade stops here instead, database
-- untouched.
DO $$
DECLARE
    artifact TEXT;
BEGIN
    SELECT a.service_name || '/' || a.scope || '/' || a.path INTO artifact
    FROM artifacts a JOIN artifact_contents c ON c.sha256 = a.sha256
    WHERE a.content <> c.content LIMIT 1;
    IF artifact IS NOT NULL THEN
        RAISE EXCEPTION 'artifact % has the sha256 of another artifact but a different content: upgrade stopped, database unchanged', artifact;
    END IF;
END
$$;

-- The table without its contents, rebuilt (not a dropped column) so that the old contents' space
-- is given back now rather than at some later VACUUM FULL.
CREATE TABLE artifacts_0010 (
    service_name     TEXT COLLATE "C" NOT NULL DEFAULT '',
    scope            TEXT COLLATE "C" NOT NULL CHECK (scope IN ('platform', 'service')),
    path             TEXT COLLATE "C" NOT NULL,
    sha256           TEXT COLLATE "C" NOT NULL REFERENCES artifact_contents (sha256),
    generator        TEXT NOT NULL,
    generated_sha256 TEXT,
    PRIMARY KEY (service_name, scope, path)
);
INSERT INTO artifacts_0010 (service_name, scope, path, sha256, generator, generated_sha256)
SELECT service_name, scope, path, sha256, generator, generated_sha256 FROM artifacts;
DROP TABLE artifacts;
ALTER TABLE artifacts_0010 RENAME TO artifacts;
ALTER INDEX artifacts_0010_pkey RENAME TO artifacts_pkey;
ALTER TABLE artifacts RENAME CONSTRAINT artifacts_0010_scope_check TO artifacts_scope_check;
ALTER TABLE artifacts RENAME CONSTRAINT artifacts_0010_sha256_fkey TO artifacts_sha256_fkey;
-- Is a content still named? (and the foreign key's check when one is deleted)
CREATE INDEX artifacts_sha256 ON artifacts (sha256);
