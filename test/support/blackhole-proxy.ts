/**
 * A TCP proxy on a free loopback port that can cut every connection through
 * it silently, as a network cut does to a half-open TCP connection.
 *
 * - `forward` (the start): each accepted connection gets its own upstream
 *   connection and bytes flow both ways.
 * - `blackhole()`: every open connection goes dead. Its sockets stay open
 *   on both sides, but the proxy stops reading them (so neither peer's
 *   bytes are acknowledged past the socket buffers) and writes nothing,
 *   not even a FIN or RST, whatever either peer does. A connection
 *   accepted meanwhile is held open the same way and never reaches
 *   upstream.
 * - `restore()`: new connections are forwarded again. Dead ones stay dead,
 *   as half-open connections do after a network heals: their peers must
 *   notice by themselves.
 *
 * `close()` destroys everything; tests register it right after `start`.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export type ProxyMode = "forward" | "blackhole";

interface Connection {
  client: Socket;
  upstream: Socket | undefined;
  dead: boolean;
}

export class BlackholeProxy {
  readonly url: string;
  private mode: ProxyMode = "forward";
  private readonly connections = new Set<Connection>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    this.url = `redis://127.0.0.1:${port}`;
    server.on("connection", (client) => this.accept(client));
  }

  /** Listens on a free loopback port in front of `target`. */
  static async start(target: {
    host?: string;
    port: number;
  }): Promise<BlackholeProxy> {
    const server = createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", () => {
      // Accept errors concern one connection; the proxy keeps listening.
    });

    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    return new BlackholeProxy(server, port, {
      host: target.host ?? "127.0.0.1",
      port: target.port,
    });
  }

  get currentMode(): ProxyMode {
    return this.mode;
  }

  /** Open connections: forwarding, and dead since a blackhole. */
  counts(): { forwarding: number; dead: number } {
    let dead = 0;
    for (const connection of this.connections) if (connection.dead) dead += 1;
    return { forwarding: this.connections.size - dead, dead };
  }

  /** Silently kills every open connection, and every new one until `restore`. */
  blackhole(): void {
    this.mode = "blackhole";
    for (const connection of this.connections) this.kill(connection);
  }

  /** Forwards new connections again; those already dead stay dead. */
  restore(): void {
    this.mode = "forward";
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.connections) {
      client.destroy();
      upstream?.destroy();
    }
    this.connections.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const connection: Connection = { client, upstream: undefined, dead: false };
    this.connections.add(connection);
    client.on("error", () => {});

    if (this.mode === "blackhole") {
      // Accepted by the kernel, never read and never answered.
      connection.dead = true;
      return;
    }

    const upstream = connect(this.target.port, this.target.host);
    connection.upstream = upstream;
    upstream.on("error", () => {});

    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();

    // While alive, a close on one side closes the other, as TCP would.
    const closeBoth = (): void => {
      if (connection.dead) return;
      client.destroy();
      upstream.destroy();
      this.connections.delete(connection);
    };
    client.on("close", closeBoth);
    upstream.on("close", closeBoth);
  }

  private kill(connection: Connection): void {
    if (connection.dead) return;
    connection.dead = true;

    const { client, upstream } = connection;
    client.unpipe();
    client.pause();
    if (upstream) {
      upstream.unpipe();
      upstream.pause();
    }
  }
}
