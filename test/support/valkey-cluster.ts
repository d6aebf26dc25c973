/**
 * A three-shard Valkey Cluster on loopback ports, started from the same
 * server binary as LocalValkey (`--cluster-enabled yes`, then
 * `--cluster create`). No replicas: the tests need sharding, not failover.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { onTestFinished } from "vitest";
import { LocalValkey } from "../../shared/local-valkey.ts";
import { waitFor } from "./wait-for.ts";

const run = promisify(execFile);

export interface ValkeyCluster {
  nodes: LocalValkey[];
  /** The URL of one node: the seed the services are given. */
  url: string;
}

async function cliBinary(): Promise<string> {
  for (const name of ["valkey-cli", "redis-cli"]) {
    try {
      await run(name, ["--version"]);
      return name;
    } catch {
      // try the next one
    }
  }
  throw new Error("no valkey-cli or redis-cli on PATH");
}

export async function startValkeyCluster(shards = 3): Promise<ValkeyCluster> {
  const nodes = await Promise.all(
    Array.from({ length: shards }, () =>
      LocalValkey.start({
        args: ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"],
      }),
    ),
  );
  onTestFinished(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  });

  await run(await cliBinary(), [
    "--cluster",
    "create",
    ...nodes.map((node) => `127.0.0.1:${node.port}`),
    "--cluster-replicas",
    "0",
    "--cluster-yes",
  ]);

  for (const node of nodes) {
    const client = new Redis(node.url);
    try {
      await waitFor(
        () => client.cluster("INFO") as Promise<string>,
        (info) => info.includes("cluster_state:ok"),
        { what: `cluster state ok on ${node.port}` },
      );
    } finally {
      client.disconnect();
    }
  }
  return { nodes, url: nodes[0]!.url };
}
