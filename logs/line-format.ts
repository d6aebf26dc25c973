/**
 * How `bin/logs` shows a message: stdout lines as they are (their ANSI
 * colours kept), stderr and system lines marked at the start.
 */
import type { ViewerMessage } from "../shared/viewer-protocol.ts";

const DIM = "\u001b[2m";
const RED = "\u001b[31m";
const RESET = "\u001b[0m";

export function formatLine(message: ViewerMessage, color: boolean): string {
  if (message.stream === "stdout") return message.log;

  const mark = message.stream === "stderr" ? "stderr |" : "system |";
  if (!color) return `${mark} ${message.log}`;

  const tint = message.stream === "stderr" ? RED : DIM;
  return `${tint}${mark}${RESET} ${message.log}`;
}
