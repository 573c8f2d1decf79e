// Container health check (the ECS task definition runs `node dist/healthcheck.js`): exits 0 when
// /health answers 200 within two seconds, 1 otherwise.

import { get } from "node:http";
import { portFromEnv } from "./app";

const req = get({ host: "127.0.0.1", port: portFromEnv(), path: "/health", timeout: 2000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on("timeout", () => req.destroy(new Error("timed out")));
req.on("error", () => process.exit(1));
