/**
 * A TCP proxy on a free loopback port that can cut every connection going
 * through it at once, as a server or a network would: the viewer sees its
 * transport close without a word from the relay.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { onTestFinished } from "vitest";

export class CuttingProxy {
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  port = 0;

  static async start(targetPort: number): Promise<CuttingProxy> {
    const proxy = new CuttingProxy();
    await proxy.listen(targetPort);
    onTestFinished(() => proxy.close());
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Destroys every connection open now; new ones are proxied as before. */
  cutAll(): number {
    const count = this.sockets.size;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    return count;
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>(
      (resolve) => this.server?.close(() => resolve()) ?? resolve(),
    );
  }

  private listen(targetPort: number): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(targetPort, "127.0.0.1");
      this.sockets.add(client);
      this.sockets.add(upstream);
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
      client.pipe(upstream);
      upstream.pipe(client);
    });

    return new Promise((resolve) => {
      this.server!.listen(0, "127.0.0.1", () => {
        const address = this.server!.address();
        this.port = typeof address === "object" && address ? address.port : 0;
        resolve();
      });
    });
  }
}
