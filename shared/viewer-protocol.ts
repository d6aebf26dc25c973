/**
 * The Socket.IO events between a relay and its viewers.
 *
 * Client to relay:
 * - `subscribe` with the string `logs:<slug>` (the existing dashboard's
 *   form): the relay answers `message` `Joined logs:<slug>`, then one
 *   `message` per payload, the JSON string exactly as the builder
 *   published it.
 * - `subscribe` with a {@link SubscribeRequest} and an acknowledgement
 *   callback (the structured form): the relay answers with a
 *   {@link SubscribeAck}, sends the build's lines from history after
 *   `since`, then live lines, as {@link LogsEvent} batches.
 * - `unsubscribe` with the channel name; with an acknowledgement, the
 *   relay answers an {@link UnsubscribeAck}.
 *
 * Relay to client:
 * - `message`: a payload string (string form only).
 * - `logs`: a {@link LogsEvent}, at most one per channel per batch window.
 * - `status`: a {@link StatusEvent}, the build's final status, also
 *   present in the `logs` batch that carries it.
 * - `error`: a {@link ProtocolError}, for a string-form request refused.
 */
import type { BuildId, LogMessage, Seq, StatusMessage } from "./wire.ts";

export interface SubscribeRequest {
  /** `logs:<slug>`. */
  channel: string;
  /** Send lines after this seq; 0 or absent means from the first line. */
  since?: Seq;
  /** The build `since` refers to; absent means the slug's latest build. */
  buildId?: string;
  /** Reserved for access control; accepted and ignored today. */
  token?: string;
}

export interface ProtocolError {
  code: string;
  message: string;
}

export type SubscribeAck =
  | {
      ok: true;
      channel: string;
      /** The build being followed, or null when the slug has none yet. */
      buildId: BuildId | null;
      /** The last seq of that build in history when the viewer joined. */
      lastSeq: Seq;
    }
  | { ok: false; error: ProtocolError };

export type UnsubscribeAck =
  { ok: true; channel: string } | { ok: false; error: ProtocolError };

/**
 * Told when lines of a build can no longer be sent: history was capped or
 * has expired, or the builder dropped lines while Valkey was away.
 */
export interface GapNotice {
  type: "gap";
  buildId: BuildId;
  /** First and last seq that will not arrive. */
  fromSeq: Seq;
  toSeq: Seq;
  stream: "system";
  log: string;
}

export type ViewerMessage = LogMessage | GapNotice;

export interface LogsEvent {
  channel: string;
  messages: ViewerMessage[];
}

export type StatusEvent = StatusMessage & { channel: string };

export const SUBSCRIBE_EVENT = "subscribe";
export const UNSUBSCRIBE_EVENT = "unsubscribe";
export const LOGS_EVENT = "logs";
export const STATUS_EVENT = "status";
export const MESSAGE_EVENT = "message";
export const ERROR_EVENT = "error";
