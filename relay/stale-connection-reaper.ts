/**
 * Closes this node's own dead connections on Valkey's side.
 *
 * After a silent network cut the node gives up on a connection and opens a
 * new one, but Valkey still holds the old one, for minutes, until its own
 * keepalive notices. An old subscriber connection keeps its subscriptions:
 * the channel counts two subscribers, and Valkey buffers every line for a
 * reader that is gone. Every connection of a node has a name unique to the
 * node and its role, so once a connection is back, any older connection of
 * the same name is one of ours that died, and is killed by id.
 */
import { Cluster } from "ioredis";
import type { ValkeyClient } from "../shared/valkey-connection.ts";

/** Kills every connection named `connectionName` but the newest; returns how many. */
export async function reapStaleConnections(
  client: ValkeyClient,
  connectionName: string,
): Promise<number> {
  const servers = client instanceof Cluster ? client.nodes("master") : [client];
  let killed = 0;

  for (const server of servers) {
    const list = (await server.client("LIST")) as string;
    const ids = clientIds(list, connectionName);
    if (ids.length < 2) continue;

    const newest = Math.max(...ids);
    for (const id of ids) {
      if (id === newest) continue;
      killed += Number(await server.client("KILL", "ID", String(id)));
    }
  }
  return killed;
}

/** Ids of the connections named `name` in a CLIENT LIST reply. */
export function clientIds(list: string, name: string): number[] {
  const ids: number[] = [];
  for (const line of list.split("\n")) {
    const fields = new Map(
      line
        .trim()
        .split(" ")
        .map((field) => {
          const at = field.indexOf("=");
          return [field.slice(0, at), field.slice(at + 1)] as const;
        }),
    );
    if (fields.get("name") === name) ids.push(Number(fields.get("id")));
  }
  return ids;
}
