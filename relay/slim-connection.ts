/**
 * What a connected viewer keeps on its node, cut to what the relay uses.
 *
 * Most viewers sit idle for minutes, and a node holds tens of thousands of
 * them, so every object a connection keeps and nothing reads is memory
 * paid per viewer for as long as it stays (the benchmark's idle scenario
 * measures it).
 */
import type { IncomingHttpHeaders } from "node:http";
import type { ParsedUrlQuery } from "node:querystring";
import type { Socket } from "socket.io";

const NO_HEADERS: IncomingHttpHeaders = Object.freeze({});
const NO_QUERY: ParsedUrlQuery = Object.freeze({});
const NO_AUTH: Record<string, unknown> = Object.freeze({});

/**
 * Cuts a new connection down; call it first thing on `connection`.
 *
 * The relay reads nothing a client sent to open its connection once the
 * connection is made, so this drops it: `socket.request` and
 * `socket.conn.request` become undefined, and `socket.handshake` keeps the
 * address, the times and the flags but no headers, query, url or `auth`
 * payload (which may carry an access token). Whatever needs one of those
 * reads it before this, in a middleware or at the start of the
 * `connection` handler. The handshake's `time`, a date string that
 * `issued` holds as a number too, becomes empty. Socket.IO builds the
 * handshake of a later namespace connection on the same Engine.IO
 * connection from the request, so that one has no headers, no query and
 * no url.
 */
export function slimConnection(socket: Socket): void {
  leaveOwnRoom(socket);
  dropRequest(socket);
  dropHeadersListener(socket.conn.transport);
  compactListeners(socket, socket.conn, socket.conn.transport);
}

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
function leaveOwnRoom(socket: Socket): void {
  void socket.leave(socket.id);
}

/** The parts of Engine.IO's uWebSockets.js transport used here. */
interface UwsTransport {
  socket?: { getUserData(): { response?: unknown } };
}

/**
 * Engine.IO keeps the opening request (with its headers, query and
 * response) on the connection, and Socket.IO copies its headers, query and
 * url into the handshake, beside the `auth` payload of the client's
 * CONNECT packet. On uWebSockets.js, with a middleware registered (the
 * CORS one, here), each WebSocket also keeps its upgrade's response, to
 * tell such middleware when the connection closes; the relay's CORS
 * middleware does not listen. A connection that starts on polling gets
 * its WebSocket at the upgrade, so its response is dropped then.
 */
function dropRequest(socket: Socket): void {
  const conn = socket.conn as unknown as { request: unknown };
  conn.request = undefined;
  socket.handshake.headers = NO_HEADERS;
  socket.handshake.query = NO_QUERY;
  socket.handshake.url = "";
  socket.handshake.auth = NO_AUTH;
  socket.handshake.time = "";

  dropUpgradeResponse(socket.conn.transport as unknown as UwsTransport);
  if (socket.conn.transport.name !== "websocket") {
    socket.conn.once("upgrade", (transport: Socket["conn"]["transport"]) => {
      dropUpgradeResponse(transport as unknown as UwsTransport);
      dropHeadersListener(transport);
      compactListeners(transport);
    });
  }
}

/**
 * Engine.IO listens on every transport for `headers`, the event by which a
 * polling transport lets the server add headers to its next response. A
 * WebSocket transport never emits it, yet each one keeps the listener and
 * the handshake's scope it closes over. A polling connection keeps its
 * listener until it upgrades; its polling transport then goes away whole.
 */
function dropHeadersListener(transport: Socket["conn"]["transport"]): void {
  if (transport.name === "websocket") transport.removeAllListeners("headers");
}

/**
 * Node's EventEmitter keeps its listeners in an object with no prototype,
 * which V8 stores as a hash table: 160 to 450 bytes for the handful of
 * events a connection's three emitters listen to. Copied once the
 * listeners are in place, the same entries take an object of V8's compact
 * kind, whose layout all connections share. A later `removeListener` of
 * an event's last listener turns it back into a table, which happens when
 * the connection closes.
 */
function compactListeners(...emitters: object[]): void {
  for (const emitter of emitters as Array<{ _events?: object }>) {
    if (emitter._events === undefined) continue;
    emitter._events = Object.setPrototypeOf({ ...emitter._events }, null);
  }
}

function dropUpgradeResponse(transport: UwsTransport): void {
  const userData = transport.socket?.getUserData();
  if (userData) userData.response = undefined;
}
