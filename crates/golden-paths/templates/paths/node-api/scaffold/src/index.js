"use strict";

const { createServer, createLogger } = require("./app");

const port = Number(process.env.PORT || 8080);
const logger = createLogger();
const { server } = createServer({ logger });
server.listen(port, "0.0.0.0", () => logger.info("listening", { port }));
// Finish the requests in flight, then exit.
process.on("SIGTERM", () => server.close(() => process.exit(0)));
