/**
 * What a viewer's connection may ask for, and how each request is checked.
 *
 * The existing dashboard emits `subscribe` with the string `logs:<slug>` and
 * reads `message` events; that contract is kept exactly. Refusals go out as
 * an `error` event carrying `{ code, message }`, and nothing is joined.
 */
import type { Socket } from "socket.io";
import { parseChannelName, type Slug } from "../shared/channel-name.ts";
import { RelayError, RelayErrorCode } from "./errors.ts";

export interface SubscribeRequest {
  slug: Slug;
}

/** Reads the argument of `subscribe`; throws RelayError when it is not one. */
export function parseSubscribeRequest(raw: unknown): SubscribeRequest {
  if (typeof raw !== "string") {
    throw new RelayError(
      RelayErrorCode.BAD_REQUEST,
      "subscribe takes a channel name such as logs:<slug>",
    );
  }

  const slug = parseChannelName(raw);
  if (slug === undefined) {
    throw new RelayError(
      RelayErrorCode.BAD_CHANNEL,
      "channel must be logs:<slug>, where slug is 1-63 of a-z 0-9 and inner hyphens",
    );
  }
  return { slug };
}

/** Sends a refusal the way every client can read it: an `error` event. */
export function refuse(socket: Socket, error: RelayError): void {
  socket.emit("error", error.toJSON());
}
