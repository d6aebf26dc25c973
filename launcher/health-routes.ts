/**
 * `/healthz` (the process answers), `/readyz` (Valkey is connected and the
 * launcher takes builds) and `/metrics` (Prometheus text).
 */
import type { FastifyInstance } from "fastify";
import type { BuildService } from "./build-service.ts";
import type { LauncherMetrics } from "./launcher-metrics.ts";

export function registerHealthRoutes(
  app: FastifyInstance,
  service: BuildService,
  metrics: LauncherMetrics,
): void {
  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_request, reply) => {
    const valkey = service.storeConnected;
    const accepting = service.accepting;
    const status = valkey && accepting ? "ready" : "unready";

    return reply
      .status(status === "ready" ? 200 : 503)
      .send({ status, valkey, accepting });
  });

  app.get("/metrics", async (_request, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  });
}
