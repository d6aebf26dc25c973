import { describe, expect, it } from "vitest";
import { LineSplitter } from "../builder/line-splitter.ts";

const bytes = (text: string) => Buffer.from(text);

function splitAll(chunks: Array<string | Uint8Array>): string[] {
  const splitter = new LineSplitter();
  const lines: string[] = [];
  for (const chunk of chunks) {
    const data = typeof chunk === "string" ? bytes(chunk) : chunk;
    lines.push(...splitter.push(data, 0));
  }
  lines.push(...splitter.end(0));
  return lines;
}

describe("line splitter", () => {
  it("splits several lines in one chunk", () => {
    expect(splitAll(["one\ntwo\nthree\n"])).toEqual(["one", "two", "three"]);
  });

  it("joins a line split over chunks", () => {
    expect(splitAll(["hel", "lo wo", "rld\nnext\n"])).toEqual([
      "hello world",
      "next",
    ]);
  });

  it("returns nothing for a chunk without a line end", () => {
    const splitter = new LineSplitter();
    expect(splitter.push(bytes("partial"), 0)).toEqual([]);
    expect(splitter.push(bytes(" line\n"), 0)).toEqual(["partial line"]);
  });

  it("counts a last line without a newline", () => {
    expect(splitAll(["first\nlast"])).toEqual(["first", "last"]);
  });

  it("adds no empty line after a final newline", () => {
    expect(splitAll(["only\n"])).toEqual(["only"]);
    expect(splitAll([])).toEqual([]);
  });

  it("keeps empty lines", () => {
    expect(splitAll(["a\n\n\nb\n"])).toEqual(["a", "", "", "b"]);
  });

  it("treats \\r\\n as one line end, also across chunks", () => {
    expect(splitAll(["one\r\ntwo\r", "\nthree\r\n"])).toEqual([
      "one",
      "two",
      "three",
    ]);
  });

  it("splits a 1 MiB line into 16 pieces of 64 KiB that rejoin to it", () => {
    const line = "abcdefgh".repeat((1024 * 1024) / 8);
    const data = bytes(`${line}\n`);
    const chunks: Uint8Array[] = [];
    for (let offset = 0; offset < data.length; offset += 10_000) {
      chunks.push(data.subarray(offset, offset + 10_000));
    }

    const pieces = splitAll(chunks);

    expect(pieces).toHaveLength(16);
    for (const piece of pieces) {
      expect(Buffer.byteLength(piece)).toBe(64 * 1024);
    }
    expect(pieces.join("")).toBe(line);
  });

  it("never splits a multi-byte character between pieces", () => {
    // 3 bytes each, so no piece boundary falls on a character boundary.
    const line = "€".repeat(50_000);
    const pieces = splitAll([`${line}\n`]);

    expect(pieces.length).toBeGreaterThan(1);
    for (const piece of pieces) {
      expect(Buffer.byteLength(piece)).toBeLessThanOrEqual(64 * 1024);
      expect(piece).not.toContain("\uFFFD");
    }
    expect(pieces.join("")).toBe(line);
  });

  it("keeps a line of exactly the limit as one message", () => {
    const line = "x".repeat(64 * 1024);
    expect(splitAll([`${line}\n`])).toEqual([line]);
  });

  it("turns invalid UTF-8 into U+FFFD without failing", () => {
    const data = Buffer.concat([
      bytes("bad "),
      Buffer.from([0xff, 0xfe]),
      bytes(" end\n"),
      Buffer.from([0xc3]),
    ]);
    expect(splitAll([data])).toEqual(["bad \uFFFD\uFFFD end", "\uFFFD"]);
  });

  it("decodes a character split over chunks", () => {
    const euro = bytes("€\n");
    expect(splitAll([euro.subarray(0, 1), euro.subarray(1)])).toEqual(["€"]);
  });

  it("passes ANSI colour codes through unchanged", () => {
    const line = "\u001b[31merror\u001b[0m \u001b[1;32mok\u001b[0m";
    expect(splitAll([`${line}\n`])).toEqual([line]);
  });

  it("sends a handful of snapshots for 10 000 quick rewrites of a line", () => {
    const splitter = new LineSplitter({ progressIntervalMs: 1000 });
    const lines: string[] = [];

    // 10 000 rewrites over 3 simulated seconds, one chunk each.
    for (let i = 1; i <= 10_000; i += 1) {
      const nowMs = Math.floor((i * 3000) / 10_000);
      lines.push(...splitter.push(bytes(`\rprogress ${i}/10000`), nowMs));
    }
    lines.push(...splitter.push(bytes("\n"), 3000));
    lines.push(...splitter.push(bytes("done\n"), 3000));

    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.length).toBeLessThanOrEqual(6);
    expect(lines.at(-2)).toBe("progress 10000/10000");
    expect(lines.at(-1)).toBe("done");
  });

  it("sends a held-back snapshot on tick once it is due", () => {
    const splitter = new LineSplitter({ progressIntervalMs: 1000 });

    expect(splitter.push(bytes("10%\r20%\r30"), 0)).toEqual(["10%"]);
    expect(splitter.nextTickAtMs()).toBe(1000);
    expect(splitter.tick(999)).toEqual([]);
    expect(splitter.tick(1000)).toEqual(["20%"]);
    expect(splitter.nextTickAtMs()).toBeUndefined();
    expect(splitter.push(bytes("%\r100%\n"), 1200)).toEqual(["100%"]);
  });

  it("does not repeat a final text already sent as a snapshot", () => {
    const splitter = new LineSplitter();
    expect(splitter.push(bytes("50%\r75%\r"), 0)).toEqual(["50%"]);
    expect(splitter.push(bytes("75%\n"), 2000)).toEqual(["75%"]);
    expect(splitter.end(2000)).toEqual([]);
  });

  it("ends a rewritten line left open at the end of the stream", () => {
    expect(splitAll(["1%\r2%\r3%\r"])).toEqual(["1%", "3%"]);
  });
});
