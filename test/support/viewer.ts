/**
 * A viewer using the existing dashboard's contract: socket.io-client with
 * its defaults, `subscribe` with the channel name, `message` events.
 */
import {
  io,
  type Socket,
  type ManagerOptions,
  type SocketOptions,
} from "socket.io-client";
import { onTestFinished } from "vitest";

export interface StringViewer {
  socket: Socket;
  messages: string[];
  errors: Array<{ code: string; message: string }>;
  /** Resolves once `count` messages have arrived; rejects past `timeoutMs`. */
  waitForMessages(count: number, timeoutMs?: number): Promise<string[]>;
  waitForError(timeoutMs?: number): Promise<{ code: string; message: string }>;
}

export function connectStringViewer(
  url: string,
  options: Partial<ManagerOptions & SocketOptions> = {},
): StringViewer {
  const socket = io(url, { forceNew: true, ...options });
  onTestFinished(() => {
    socket.close();
  });

  const messages: string[] = [];
  const errors: Array<{ code: string; message: string }> = [];
  let wake: (() => void) | undefined;

  socket.on("message", (payload: string) => {
    messages.push(payload);
    wake?.();
  });
  socket.on("error", (error: { code: string; message: string }) => {
    errors.push(error);
    wake?.();
  });

  const until = (done: () => boolean, timeoutMs: number, what: string) =>
    new Promise<void>((resolve, reject) => {
      if (done()) return resolve();
      const timer = setTimeout(() => {
        wake = undefined;
        reject(
          new Error(
            `${what} not seen within ${timeoutMs} ms (${messages.length} messages)`,
          ),
        );
      }, timeoutMs);
      wake = () => {
        if (!done()) return;
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
    });

  return {
    socket,
    messages,
    errors,
    async waitForMessages(count, timeoutMs = 20_000) {
      await until(
        () => messages.length >= count,
        timeoutMs,
        `${count} messages`,
      );
      return messages;
    },
    async waitForError(timeoutMs = 5_000) {
      await until(() => errors.length > 0, timeoutMs, "an error");
      return errors[0]!;
    },
  };
}
