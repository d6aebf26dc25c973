/**
 * Refuses HTTP long-polling bodies that are too large before Engine.IO sees
 * them.
 *
 * Engine.IO's uWebSockets.js polling transport answers an oversized body
 * with 413 but leaves its body timer running; 30 s later the timer writes
 * to the finished response, which throws inside a timer and ends the
 * process. One request could take a relay down. So the relay answers such
 * requests itself: a POST to the Socket.IO path must declare its length
 * (socket.io-client always does), and the length must be within
 * `maxBodyBytes`; anything else gets 411 or 413 here and never reaches
 * Engine.IO.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from "uWebSockets.js";

export function guardPollingBodies(
  app: TemplatedApp,
  path: string,
  maxBodyBytes: number,
  onRefused: (status: 411 | 413) => void,
): void {
  app.post(path, (res: HttpResponse, req: HttpRequest) => {
    const declared = req.getHeader("content-length");
    const length = /^\d{1,15}$/.test(declared) ? Number(declared) : undefined;

    if (length !== undefined && length <= maxBodyBytes) {
      // Within bounds: let Engine.IO's own handler take it.
      req.setYield(true);
      return;
    }

    const status = length === undefined ? 411 : 413;
    onRefused(status);
    res.cork(() => {
      res
        .writeStatus(
          status === 411 ? "411 Length Required" : "413 Payload Too Large",
        )
        .writeHeader("Connection", "close")
        .end();
    });
  });
}
