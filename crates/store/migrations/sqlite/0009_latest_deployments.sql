-- The newest deployment of each service in each environment, and of each service in all its
-- environments (environment '*', which no environment's name can be). Written with the deployment
-- in one transaction, so "the services whose newest deployment failed" reads one row per service
-- instead of every deployment. Newest is the lists' order: created_at, then id.
CREATE TABLE latest_deployments (
    service       TEXT NOT NULL REFERENCES services (name) ON DELETE CASCADE,
    environment   TEXT NOT NULL,
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (service, environment)
);
CREATE INDEX latest_deployments_deployment ON latest_deployments (deployment_id);
INSERT INTO latest_deployments (service, environment, deployment_id, created_at)
SELECT d.service, d.environment, d.id, d.created_at FROM deployments d
WHERE NOT EXISTS (SELECT 1 FROM deployments n WHERE n.service = d.service
                  AND n.environment = d.environment
                  AND (n.created_at, n.id) > (d.created_at, d.id));
INSERT INTO latest_deployments (service, environment, deployment_id, created_at)
SELECT d.service, '*', d.id, d.created_at FROM deployments d
WHERE NOT EXISTS (SELECT 1 FROM deployments n WHERE n.service = d.service
                  AND (n.created_at, n.id) > (d.created_at, d.id));
