-- Jobs still to run (queued, or running under a lease that may expire), by queue in id order: the
-- claim walks this instead of every job ever finished. Without it a claim read all of the queue's
-- history (2026-12-07: 19 ms on PostgreSQL and 8.5 ms on SQLite per claim with 100,000 finished
-- jobs, 0.1-0.4 ms and 0.007 ms with it); every idle worker claims once per poll.
CREATE INDEX jobs_pending ON jobs (queue, id) WHERE status IN ('queued', 'running');
