/**
 * Starts `bin/relay` as its own OS process (Socket.IO's uWebSockets.js
 * integration allows one node per process) on a free port.
 */
import { onTestFinished } from "vitest";
import { ServiceProcess } from "./service-process.ts";

export interface RelayHandle {
  process: ServiceProcess;
  port: number;
  url: string;
  nodeId: string;
}

export async function startRelay(
  valkeyUrl: string,
  env: Record<string, string> = {},
  { cleanup = true } = {},
): Promise<RelayHandle> {
  const nodeId =
    env.RELAY_NODE_ID ?? `relay-test-${Math.random().toString(36).slice(2, 8)}`;
  const process = new ServiceProcess("relay", [], {
    REDIS_URL: valkeyUrl,
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    RELAY_NODE_ID: nodeId,
    ...env,
  });
  if (cleanup) onTestFinished(() => process.stop("SIGKILL").then(() => {}));

  const port = await process.ready();
  return { process, port, url: `http://127.0.0.1:${port}`, nodeId };
}
