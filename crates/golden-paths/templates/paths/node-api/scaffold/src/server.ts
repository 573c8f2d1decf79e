// Entry point: listens on $PORT and stops gracefully on SIGTERM (what Docker, ECS, Kubernetes
// and Slipway send) and SIGINT.

import type { AddressInfo } from "node:net";
import { createLogger, createServer, portFromEnv, shutdown } from "./app";

const logger = createLogger();
let port: number;
try {
  port = portFromEnv();
} catch (error) {
  logger.error("cannot start", { error: (error as Error).message });
  process.exit(1);
}
const { server } = createServer({ logger });

server.on("error", (error) => {
  logger.error("server error", { error: String(error) });
  process.exit(1);
});
server.listen(port, "0.0.0.0", () => {
  logger.info("listening", { port: (server.address() as AddressInfo).port });
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    logger.info("stopping", { signal });
    void shutdown(server).then(() => {
      logger.info("stopped");
      process.exit(0);
    });
  });
}
