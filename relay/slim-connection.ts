/**
 * What a connected viewer keeps on its node, cut to what the relay uses.
 *
 * Most viewers sit idle for minutes, and a node holds tens of thousands of
 * them, so every object a connection keeps and nothing reads is memory
 * paid per viewer for as long as it stays (the benchmark's idle scenario
 * measures it).
 */
import type { Socket } from "socket.io";

/**
 * Socket.IO joins every socket to a room named after its id, so that
 * `io.to(socket.id)` reaches it through the adapter. The relay emits to one
 * viewer on its socket and to many through channel rooms, never to a
 * socket id, so that room only costs, per viewer, a Set and an entry in the
 * adapter and a topic of uWebSockets.js of its own.
 *
 * Without it, `io.to(socket.id)` reaches nobody, and `socket.to(room)` or
 * `socket.broadcast` no longer leave the sending socket out: the relay uses
 * neither.
 */
export function slimConnection(socket: Socket): void {
  void socket.leave(socket.id);
}
