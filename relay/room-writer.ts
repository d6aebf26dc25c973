/**
 * Writes an encoded Socket.IO packet to every local member of a room.
 *
 * Socket.IO's broadcast on uWebSockets.js publishes to the room's topic
 * for WebSocket viewers, then walks every member of the room to find
 * those still on HTTP long-polling. With thousands of viewers of one
 * channel that walk, once per line for string-form viewers, took a
 * quarter of a relay's CPU. This writer publishes the same way and keeps
 * the long-polling sockets apart, so a line costs one publish plus a
 * write per polling member.
 */
import type { TemplatedApp } from "uWebSockets.js";
import type { Socket } from "socket.io";

/** Socket.IO's separator between a namespace and a room in a topic name. */
const TOPIC_SEPARATOR = "\x1f";
/** Engine.IO's packet types of a message and of a ping. */
const ENGINE_MESSAGE = "4";
const ENGINE_PING = "2";

export class RoomWriter {
  private readonly polling = new Set<Socket>();

  constructor(private readonly app: TemplatedApp) {}

  /**
   * Watches a new connection. Socket.IO subscribes a socket to its rooms'
   * topics when its transport turns to WebSocket; it leaves the polling
   * set at the same moment.
   */
  track(socket: Socket): void {
    const conn = socket.conn;
    if (conn.transport.name === "websocket") return;
    this.polling.add(socket);
    const done = (): void => {
      this.polling.delete(socket);
      conn.off("upgrade", done);
      conn.off("close", done);
    };
    conn.on("upgrade", done);
    conn.on("close", done);
  }

  /** Writes `packet` (a Socket.IO packet, encoded) to the room's local members. */
  publish(room: string, packet: string): void {
    this.app.publish(topicOf(room), ENGINE_MESSAGE + packet, false);
    if (this.polling.size === 0) return;
    for (const socket of this.polling) {
      if (socket.rooms.has(room)) writeEncoded(socket, [packet]);
    }
  }

  /**
   * Pings the room's WebSocket members (see read-receipts.ts); polling
   * viewers' pings travel with their polls.
   */
  ping(room: string): void {
    this.app.publish(topicOf(room), ENGINE_PING, false);
  }
}

/** The uWebSockets.js topic of a room of the main namespace. */
export function topicOf(room: string): string {
  return `/${TOPIC_SEPARATOR}${room}`;
}

/** Writes packets encoded once through the socket's connection. */
export function writeEncoded(socket: Socket, packets: string[]): void {
  const client = socket.client as unknown as {
    writeToEngine(packets: string[], options: { preEncoded: boolean }): void;
  };
  client.writeToEngine(packets, { preEncoded: true });
}
