/**
 * Reads the build id, seq and timestamp of every log message in a raw
 * `logs` or `message` frame without decoding it to a string or parsing
 * its JSON, so a benchmark viewer process can check millions of lines a
 * second and the load generator does not become the bottleneck.
 *
 * It relies on the builder writing a message's fields in one order
 * (`{"type":..,"log":..,"buildId":..,"seq":..,"ts":..}`, see
 * builder/build-messages.ts) and on JSON escaping every quote inside a
 * string: a `"` preceded by anything but `\` is structure, never text. In
 * a string-form `message` frame the payload is itself a JSON string, so
 * the same fields appear one escaping level deeper (`\"seq\":`). Anything
 * else (a gap notice, a field order it does not know) makes it return
 * false, and the caller parses the frame instead.
 */

export type MessageVisitor = (
  buildId: string,
  seq: number,
  ts: number,
  isStatus: boolean,
) => void;

interface Patterns {
  type: Buffer;
  quote: Buffer;
  buildId: Buffer;
  seq: Buffer;
  ts: Buffer;
}

const PLAIN: Patterns = patterns("");
const ESCAPED: Patterns = patterns("\\");

function patterns(escape: string): Patterns {
  const q = `${escape}"`;
  return {
    type: Buffer.from(`{${q}type${q}:${q}`),
    quote: Buffer.from(q),
    buildId: Buffer.from(`,${q}buildId${q}:${q}`),
    seq: Buffer.from(`${q},${q}seq${q}:`),
    ts: Buffer.from(`,${q}ts${q}:`),
  };
}

const LINE = Buffer.from("line");
const STATUS = Buffer.from("status");
const ZERO = 0x30;
const NINE = 0x39;

/**
 * Calls `visit` for each message in `frame` from byte `start` on. Returns
 * false, possibly after some visits, when the frame is not of the expected
 * shape; the caller must then parse the whole frame and must not count the
 * visits already made.
 */
export function scanLogFrame(
  frame: Buffer,
  start: number,
  escaped: boolean,
  visit: MessageVisitor,
): boolean {
  const p = escaped ? ESCAPED : PLAIN;
  let cachedId: Buffer | undefined;
  let cachedIdText = "";
  let at = frame.indexOf(p.type, start);
  if (at < 0) return false;

  while (at >= 0) {
    at += p.type.length;
    const typeEnd = frame.indexOf(p.quote, at);
    if (typeEnd < 0) return false;
    const isStatus = equalAt(frame, at, typeEnd, STATUS);
    if (!isStatus && !equalAt(frame, at, typeEnd, LINE)) return false;

    const idStart = frame.indexOf(p.buildId, typeEnd);
    if (idStart < 0) return false;
    const idFrom = idStart + p.buildId.length;
    const idTo = frame.indexOf(p.quote, idFrom);
    if (idTo < 0) return false;

    if (cachedId === undefined || !equalAt(frame, idFrom, idTo, cachedId)) {
      cachedId = frame.subarray(idFrom, idTo);
      cachedIdText = cachedId.toString("latin1");
    }

    if (!equalAt(frame, idTo, idTo + p.seq.length, p.seq)) return false;
    const seq = readDigits(frame, idTo + p.seq.length);
    if (seq === undefined) return false;

    if (!equalAt(frame, seq.end, seq.end + p.ts.length, p.ts)) return false;
    const ts = readDigits(frame, seq.end + p.ts.length);
    if (ts === undefined) return false;

    visit(cachedIdText, seq.value, ts.value, isStatus);
    at = frame.indexOf(p.type, ts.end);
  }
  return true;
}

/** True when `frame[from..to)` holds exactly `expected`. */
function equalAt(
  frame: Buffer,
  from: number,
  to: number,
  expected: Buffer,
): boolean {
  if (to - from !== expected.length || to > frame.length) return false;
  return frame.compare(expected, 0, expected.length, from, to) === 0;
}

function readDigits(
  frame: Buffer,
  from: number,
): { value: number; end: number } | undefined {
  let value = 0;
  let at = from;
  while (at < frame.length) {
    const byte = frame[at]!;
    if (byte < ZERO || byte > NINE) break;
    value = value * 10 + (byte - ZERO);
    at += 1;
  }
  return at === from ? undefined : { value, end: at };
}

/** True when `frame` begins with `prefix`. */
export function startsWith(frame: Buffer, prefix: Buffer): boolean {
  return (
    frame.length >= prefix.length &&
    frame.compare(prefix, 0, prefix.length, 0, prefix.length) === 0
  );
}
