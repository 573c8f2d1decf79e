-- Memory (MiB) and CPU (thousandths of a CPU) a deployment asked for per instance; NULL: what the
-- repository's plan or the operator's defaults say.
ALTER TABLE deployments ADD COLUMN memory_mb INTEGER, ADD COLUMN cpu_millis INTEGER;
