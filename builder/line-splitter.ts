/**
 * Turns the bytes a process writes to one pipe into log lines.
 *
 * - A chunk is not a line: text is split on line ends, a line split over
 *   chunks is joined, and a last line without a line end still counts.
 * - `\n` and `\r\n` end a line, even when the `\r` and the `\n` arrive in
 *   different chunks.
 * - Bytes are decoded as streaming UTF-8; invalid sequences become U+FFFD.
 *   Everything else, ANSI escape codes included, passes through unchanged.
 * - A line longer than `lineMaxBytes` (UTF-8) goes out as consecutive
 *   pieces of at most that many bytes, never splitting a character.
 * - A line rewritten in place with `\r` (a progress bar) is one line, not
 *   one per rewrite: each rendition ended by `\r` is a snapshot, snapshots
 *   go out at most once per `progressIntervalMs`, and the line's final text
 *   goes out when it ends. A snapshot held back by the throttle goes out on
 *   a later `push` or `tick` once its time has come, or is replaced by a
 *   newer one.
 *
 * The class is pure: the caller passes the time, and calls `tick` when
 * `nextTickAtMs` says a held-back snapshot is due.
 */

export interface LineSplitterOptions {
  /** Longest piece of a line, in UTF-8 bytes. Default 65 536. */
  lineMaxBytes?: number;
  /** Least time between two snapshots of a rewritten line. Default 1000. */
  progressIntervalMs?: number;
}

const LF = 0x0a;

export class LineSplitter {
  private readonly lineMaxBytes: number;
  private readonly progressIntervalMs: number;
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });

  // The text of the current line (or of its current rendition) so far.
  private parts: string[] = [];
  private bytes = 0;
  // Pieces of the current text already went out because it was too long.
  private piecesOut = false;
  // The last character was `\r`; the next one decides what it meant.
  private carriageReturn = false;

  // The latest complete rendition of a line rewritten with `\r`.
  private snapshot: string | undefined;
  private snapshotDue = false;
  private snapshotSent: string | undefined;
  private snapshotSentAtMs = -Infinity;

  constructor(options: LineSplitterOptions = {}) {
    this.lineMaxBytes = options.lineMaxBytes ?? 65_536;
    this.progressIntervalMs = options.progressIntervalMs ?? 1000;

    // A UTF-8 character takes up to 4 bytes and is never split.
    if (!(this.lineMaxBytes >= 4)) {
      throw new RangeError("lineMaxBytes must be at least 4");
    }
  }

  /** Takes the next chunk read at `nowMs`; returns the lines it completes. */
  push(chunk: Uint8Array, nowMs: number): string[] {
    const out: string[] = [];
    this.consume(this.decoder.decode(chunk, { stream: true }), nowMs, out);
    this.sendDueSnapshot(nowMs, out);
    return out;
  }

  /** The stream ended: returns what is left, the last line included. */
  end(nowMs: number): string[] {
    const out: string[] = [];
    this.consume(this.decoder.decode(), nowMs, out);

    if (this.carriageReturn) {
      this.carriageReturn = false;
      this.rewriteLine(nowMs, out);
    }
    if (this.parts.length > 0 || this.snapshot !== undefined) {
      this.endLine(out);
    }
    this.piecesOut = false;
    return out;
  }

  /** Returns a held-back snapshot when its time has come. */
  tick(nowMs: number): string[] {
    const out: string[] = [];
    this.sendDueSnapshot(nowMs, out);
    return out;
  }

  /** When `tick` will have something to return, if ever. */
  nextTickAtMs(): number | undefined {
    if (!this.snapshotDue) return undefined;
    return this.snapshotSentAtMs + this.progressIntervalMs;
  }

  private consume(text: string, nowMs: number, out: string[]): void {
    const lineEnd = /[\r\n]/g;
    let start = 0;

    while (start < text.length) {
      if (this.carriageReturn) {
        this.carriageReturn = false;
        if (text.charCodeAt(start) === LF) {
          this.endLine(out);
          start += 1;
          continue;
        }
        this.rewriteLine(nowMs, out);
      }

      lineEnd.lastIndex = start;
      const match = lineEnd.exec(text);
      const stop = match ? match.index : text.length;
      if (stop > start) this.append(text.slice(start, stop), out);
      if (!match) break;

      if (text.charCodeAt(stop) === LF) this.endLine(out);
      else this.carriageReturn = true;
      start = stop + 1;
    }
  }

  /** Adds text to the current line, sending full pieces as they fill. */
  private append(segment: string, out: string[]): void {
    const size = Buffer.byteLength(segment);
    if (this.bytes + size <= this.lineMaxBytes) {
      this.parts.push(segment);
      this.bytes += size;
      return;
    }

    const encoded = Buffer.from(segment);
    let offset = 0;

    while (offset < encoded.length) {
      const room = this.lineMaxBytes - this.bytes;
      let cut = Math.min(offset + room, encoded.length);
      // Back up to the first byte of a character, never into its middle.
      while (cut > offset && (encoded[cut]! & 0xc0) === 0x80) cut -= 1;

      if (cut === offset) {
        // Full: the piece goes out only now that more text follows it, so a
        // line of exactly lineMaxBytes stays one message.
        out.push(this.takeText());
        this.piecesOut = true;
        continue;
      }

      this.parts.push(encoded.toString("utf8", offset, cut));
      this.bytes += cut - offset;
      offset = cut;
    }
  }

  /** A `\r` not followed by `\n`: what came before it is a snapshot. */
  private rewriteLine(nowMs: number, out: string[]): void {
    const text = this.takeText();
    this.piecesOut = false;

    // An empty rendition ("\r\r") leaves the previous one on screen.
    if (text === "" || text === this.snapshot) return;

    this.snapshot = text;
    this.snapshotDue = text !== this.snapshotSent;
    this.sendDueSnapshot(nowMs, out);
  }

  private sendDueSnapshot(nowMs: number, out: string[]): void {
    if (!this.snapshotDue || this.snapshot === undefined) return;
    if (nowMs - this.snapshotSentAtMs < this.progressIntervalMs) return;

    out.push(this.snapshot);
    this.snapshotSent = this.snapshot;
    this.snapshotSentAtMs = nowMs;
    this.snapshotDue = false;
  }

  private endLine(out: string[]): void {
    const text = this.takeText();
    const piecesOut = this.piecesOut;
    const snapshot = this.snapshot;
    const snapshotSent = this.snapshotSent;

    this.piecesOut = false;
    this.snapshot = undefined;
    this.snapshotDue = false;
    this.snapshotSent = undefined;
    this.snapshotSentAtMs = -Infinity;

    if (text !== "") {
      if (text !== snapshotSent) out.push(text);
      return;
    }

    // Nothing after the last `\r`: the last rendition is the final text.
    if (snapshot !== undefined) {
      if (snapshot !== snapshotSent) out.push(snapshot);
      return;
    }

    // An empty line is a line, unless its text already went out in pieces.
    if (!piecesOut) out.push("");
  }

  private takeText(): string {
    const text = this.parts.length === 1 ? this.parts[0]! : this.parts.join("");
    this.parts = [];
    this.bytes = 0;
    return text;
  }
}
