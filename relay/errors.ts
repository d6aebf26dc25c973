/**
 * The relay's refusals, each with a stable code. Clients and tests branch on
 * `code`, never on `message`.
 */

export const RelayErrorCode = {
  /** The channel is not `logs:<slug>` with a valid slug. */
  BAD_CHANNEL: "RELAY_ERR_BAD_CHANNEL",
  /** The subscribe request is not a string or `{ channel, since?, token? }`. */
  BAD_REQUEST: "RELAY_ERR_BAD_REQUEST",
  /** `since` is not a whole number of at least 0. */
  BAD_SINCE: "RELAY_ERR_BAD_SINCE",
  /** The connection already follows as many channels as allowed. */
  TOO_MANY_CHANNELS: "RELAY_ERR_TOO_MANY_CHANNELS",
  /** The node is shutting down or cannot reach Valkey. */
  UNAVAILABLE: "RELAY_ERR_UNAVAILABLE",
  /** HTTP: no such path (or method) on the relay. */
  NOT_FOUND: "RELAY_ERR_NOT_FOUND",
} as const;

export type RelayErrorCode =
  (typeof RelayErrorCode)[keyof typeof RelayErrorCode];

export interface RelayErrorBody {
  code: RelayErrorCode;
  message: string;
}

export class RelayError extends Error {
  constructor(
    readonly code: RelayErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "RelayError";
  }

  toJSON(): RelayErrorBody {
    return { code: this.code, message: this.message };
  }
}
