/**
 * How much a viewer's connection has waiting to be written, and whether it
 * can take more.
 *
 * A WebSocket viewer is judged by the bytes uWebSockets.js holds for it, a
 * long-polling viewer by the packets waiting for its next poll. Above the
 * high mark a viewer is behind; below a quarter of it there is room again.
 * The gap between the two keeps a viewer from flapping between live
 * delivery and catch-up on every line.
 */
import type { Socket } from "socket.io";

export interface ViewerBacklogOptions {
  slowViewerBufferBytes: number;
  slowViewerMaxPackets: number;
}

export type BacklogKind = "buffer" | "packets";

interface EngineConnection {
  transport: { socket?: { getBufferedAmount?(): number } };
  writeBuffer: unknown[];
  /** Set while Engine.IO waits for the answer to its ping. */
  pingTimeoutTimer: NodeJS.Timeout | null;
}

/** How often a paced sender looks at a viewer's backlog again. */
const ROOM_POLL_MS = 20;

export class ViewerBacklog {
  private readonly lowBytes: number;
  private readonly lowPackets: number;
  /** What one paced write may carry: what fits between the two marks. */
  readonly pageBytes: number;

  constructor(private readonly options: ViewerBacklogOptions) {
    this.lowBytes = Math.floor(options.slowViewerBufferBytes / 4);
    this.lowPackets = Math.floor(options.slowViewerMaxPackets / 4);
    this.pageBytes = Math.min(512 * 1024, this.lowBytes);
  }

  /** Which limit the viewer is over, if any. */
  behind(socket: Socket): BacklogKind | undefined {
    const { bytes, packets } = measure(socket);
    if (bytes > this.options.slowViewerBufferBytes) return "buffer";
    if (packets > this.options.slowViewerMaxPackets) return "packets";
    return undefined;
  }

  /** The viewer has drained to below the low marks. */
  hasRoom(socket: Socket): boolean {
    const { bytes, packets } = measure(socket);
    return bytes <= this.lowBytes && packets <= this.lowPackets;
  }

  /**
   * Resolves once the viewer has room, or when `wanted` turns false or the
   * viewer disconnects (the caller checks which).
   */
  async untilRoom(socket: Socket, wanted: () => boolean): Promise<void> {
    while (socket.connected && wanted() && !this.hasRoom(socket)) {
      await new Promise((resolve) => setTimeout(resolve, ROOM_POLL_MS));
    }
    if (socket.connected) keptReading(socket);
  }
}

/**
 * A viewer that drained its backlog is alive, even when the answer to
 * Engine.IO's last ping is still queued behind the data it is reading: the
 * ping's deadline starts over. One that reads nothing still times out.
 */
export function keptReading(socket: Socket): void {
  const conn = socket.conn as unknown as EngineConnection;
  conn.pingTimeoutTimer?.refresh();
}

export function bufferedBytes(socket: Socket): number {
  return measure(socket).bytes;
}

function measure(socket: Socket): { bytes: number; packets: number } {
  const conn = socket.conn as unknown as EngineConnection;
  let bytes = 0;
  try {
    bytes = conn.transport.socket?.getBufferedAmount?.() ?? 0;
  } catch {
    // uWebSockets.js throws on a WebSocket it has closed: nothing waits.
  }
  return { bytes, packets: conn.writeBuffer.length };
}
