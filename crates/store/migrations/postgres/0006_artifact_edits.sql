-- A team's edit of a generated file (a commit to the platform repository that the start-up
-- reconciler adopted instead of reverting): the artifact's content and sha256 are the team's, and
-- `generated_sha256` keeps the sha256 of what its generator (`generator`) produced. NULL means the
-- content is exactly the generator's output. `slipway templates upgrade` never overwrites an
-- artifact whose `generated_sha256` is set; it reports a conflict instead.
ALTER TABLE artifacts ADD COLUMN generated_sha256 TEXT;
