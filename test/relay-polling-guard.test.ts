/**
 * Oversized or unsized long-polling bodies are refused before Engine.IO,
 * whose own 413 path leaves a timer that crashes the process 30 s later.
 */
import { request } from "node:http";
import { expect, it } from "vitest";
import { startRelay } from "./support/relay-process.ts";
import { useValkey } from "./support/valkey-fixture.ts";
import { connectStringViewer } from "./support/viewer.ts";

const store = useValkey();

function post(
  url: string,
  body: Buffer,
  headers: Record<string, string>,
  chunked = false,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    if (chunked) {
      req.write(body.subarray(0, 10));
      req.end(body.subarray(10));
    } else {
      req.end(body);
    }
  });
}

async function openSession(url: string): Promise<string> {
  const text = await fetch(`${url}/socket.io/?EIO=4&transport=polling`).then(
    (r) => r.text(),
  );
  return (JSON.parse(text.slice(1)) as { sid: string }).sid;
}

it("refuses a 2 MB polling body and an unsized one, and keeps serving", async () => {
  const relay = await startRelay(store.url);
  const sid = await openSession(relay.url);
  const target = `${relay.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`;

  expect(
    await post(target, Buffer.from("40"), {
      "content-type": "text/plain;charset=UTF-8",
    }),
  ).toBe(200);

  const huge = Buffer.alloc(2 * 1024 * 1024, "x");
  expect(
    await post(target, huge, {
      "content-type": "text/plain",
      "content-length": String(huge.length),
    }),
  ).toBe(413);
  expect(
    await post(
      target,
      Buffer.from("4" + "x".repeat(100)),
      { "content-type": "text/plain", "transfer-encoding": "chunked" },
      true,
    ),
  ).toBe(411);

  const metrics = await fetch(`${relay.url}/metrics`).then((r) => r.text());
  expect(metrics).toContain('relay_refused_requests_total{status="413"} 1');
  expect(metrics).toContain('relay_refused_requests_total{status="411"} 1');

  // Engine.IO never saw them: no error was logged for the session.
  expect(relay.process.stderr.join("\n")).not.toContain("HttpResponse");
  const viewer = connectStringViewer(relay.url);
  viewer.socket.emit("subscribe", "logs:after-guard");
  await viewer.waitForMessages(1);
  expect(viewer.messages[0]).toBe("Joined logs:after-guard");
});
