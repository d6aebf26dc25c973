/**
 * What a viewer's connection may ask for, and how each request is checked.
 *
 * The existing dashboard emits `subscribe` with the string `logs:<slug>`
 * and reads `message` events; that contract is kept exactly, and its
 * refusals go out as an `error` event carrying `{ code, message }`. The
 * structured form `{ channel, since?, buildId?, token? }` is answered
 * through its acknowledgement callback (see shared/viewer-protocol.ts).
 */
import type { Socket } from "socket.io";
import { z } from "zod";
import { parseChannelName, type Slug } from "../shared/channel-name.ts";
import { ERROR_EVENT, type SubscribeAck } from "../shared/viewer-protocol.ts";
import { isBuildId, type BuildId, type Seq } from "../shared/wire.ts";
import { RelayError, RelayErrorCode } from "./errors.ts";

export type SubscribeRequest =
  | { form: "string"; slug: Slug }
  | {
      form: "structured";
      slug: Slug;
      since: Seq;
      buildId: BuildId | undefined;
    };

const structuredSchema = z.object({
  channel: z.string().max(200),
  since: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  buildId: z.string().max(128).optional(),
  token: z.string().max(8192).optional(),
});

const CHANNEL_RULE =
  "channel must be logs:<slug>, where slug is 1-63 of a-z 0-9 and inner hyphens";

/** Reads the argument of `subscribe`; throws RelayError when it is not one. */
export function parseSubscribeRequest(raw: unknown): SubscribeRequest {
  if (typeof raw === "string") {
    return { form: "string", slug: slugOf(raw) };
  }

  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new RelayError(
      RelayErrorCode.BAD_REQUEST,
      "subscribe takes logs:<slug> or { channel, since?, buildId?, token? }",
    );
  }

  const parsed = structuredSchema.safeParse(raw);
  if (!parsed.success) {
    const field = parsed.error.issues[0]?.path[0];
    throw new RelayError(
      field === "since" ? RelayErrorCode.BAD_SINCE : RelayErrorCode.BAD_REQUEST,
      field === "since"
        ? "since must be a whole number of at least 0"
        : `subscribe request is malformed at ${String(field ?? "its root")}`,
    );
  }

  const { channel, since, buildId } = parsed.data;
  if (buildId !== undefined && !isBuildId(buildId)) {
    throw new RelayError(RelayErrorCode.BAD_REQUEST, "buildId is malformed");
  }
  return {
    form: "structured",
    slug: slugOf(channel),
    since: since ?? 0,
    buildId,
  };
}

function slugOf(channel: string): Slug {
  const slug = parseChannelName(channel);
  if (slug === undefined) {
    throw new RelayError(RelayErrorCode.BAD_CHANNEL, CHANNEL_RULE);
  }
  return slug;
}

/**
 * Sends a refusal the way the request's form expects it: through the
 * acknowledgement when there is one, else as an `error` event.
 */
export function refuse(
  socket: Socket,
  error: RelayError,
  ack: ((answer: SubscribeAck) => void) | undefined,
): void {
  if (ack) ack({ ok: false, error: error.toJSON() });
  else socket.emit(ERROR_EVENT, error.toJSON());
}
