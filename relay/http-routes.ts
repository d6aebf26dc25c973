/**
 * Plain HTTP endpoints served beside Socket.IO on the same uWebSockets.js
 * app: `/healthz` (the process is alive), `/readyz` (it can serve viewers)
 * and `/metrics` (Prometheus text). Any other path or method, outside
 * Socket.IO's own, gets a JSON 404.
 */
import type { HttpResponse, TemplatedApp } from "uWebSockets.js";
import type { Registry } from "prom-client";
import { RelayError, RelayErrorCode } from "./errors.ts";

export interface HealthSource {
  nodeId: string;
  /** Why the node cannot serve, or an empty list when it can. */
  notReadyReasons(): string[];
}

export function mountHttpRoutes(
  app: TemplatedApp,
  health: HealthSource,
  registry: Registry,
): void {
  app.get("/healthz", (res) => {
    sendJson(res, "200 OK", { status: "ok", nodeId: health.nodeId });
  });

  app.get("/readyz", (res) => {
    const reasons = health.notReadyReasons();
    const ready = reasons.length === 0;
    sendJson(res, ready ? "200 OK" : "503 Service Unavailable", {
      status: ready ? "ready" : "not ready",
      nodeId: health.nodeId,
      reasons,
    });
  });

  app.get("/metrics", (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });

    registry.metrics().then(
      (text) => {
        if (aborted) return;
        res.cork(() => {
          res.writeHeader("Content-Type", registry.contentType).end(text);
        });
      },
      () => {
        if (aborted) return;
        res.cork(() => {
          res.writeStatus("500 Internal Server Error").end();
        });
      },
    );
  });

  // Registered last; uWebSockets.js tries a wildcard after every exact
  // route, Socket.IO's included.
  app.any("/*", (res) => {
    const error = new RelayError(RelayErrorCode.NOT_FOUND, "no such route");
    sendJson(res, "404 Not Found", { error: error.toJSON() });
  });
}

function sendJson(res: HttpResponse, status: string, body: unknown): void {
  res.cork(() => {
    res
      .writeStatus(status)
      .writeHeader("Content-Type", "application/json")
      .end(JSON.stringify(body));
  });
}
