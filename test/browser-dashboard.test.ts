/**
 * The existing dashboard's code path in a real browser: headless Chromium
 * loads a page from another origin, connects with socket.io-client's browser
 * build and its defaults (long-polling, then the upgrade), subscribes with
 * the string form and reads `message` events.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { chromium, type Browser } from "playwright-core";
import {
  afterAll,
  beforeAll,
  describe,
  expect,
  it,
  onTestFinished,
} from "vitest";
import { LocalValkey } from "../shared/local-valkey.ts";
import { startRelay } from "./support/relay-process.ts";
import { ROOT } from "./support/service-process.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";
import { lookUpBinary } from "./support/system-binary.ts";

const chromiumBinary = lookUpBinary("chromium", "chromium");

/** What the page keeps on its window, read back through page.evaluate. */
interface PageState {
  received: string[];
  transportName(): string;
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>build log</title>
<script src="/socket.io.min.js"></script></head>
<body><pre id="log"></pre><script>
  window.received = [];
  const params = new URLSearchParams(location.search);
  const socket = io(params.get("relay"));
  window.transportName = () => socket.io.engine.transport.name;
  socket.on("connect", () => socket.emit("subscribe", "logs:" + params.get("slug")));
  socket.on("message", (payload) => {
    window.received.push(payload);
    const line = payload.startsWith("{") ? JSON.parse(payload).log : payload;
    document.getElementById("log").textContent += line + "\\n";
  });
</script></body></html>`;

/** The dashboard's stand-in: a page server on its own origin. */
async function servePage(): Promise<string> {
  const bundle = readFileSync(
    `${ROOT}node_modules/socket.io-client/dist/socket.io.min.js`,
  );
  const server = createServer((request, response) => {
    if (request.url?.startsWith("/socket.io.min.js")) {
      response
        .writeHead(200, { "content-type": "text/javascript" })
        .end(bundle);
      return;
    }
    response.writeHead(200, { "content-type": "text/html" }).end(PAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(
    () => new Promise<void>((resolve) => server.close(() => resolve())),
  );
  const address = server.address();
  return `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
}

describe.skipIf(chromiumBinary.skip)("in a browser", () => {
  let valkey: LocalValkey;
  let browser: Browser;

  beforeAll(async () => {
    valkey = await LocalValkey.start();
    browser = await chromium.launch({
      executablePath: chromiumBinary.path(),
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await valkey?.stop();
  });

  it("shows every line of a build, polling first and then over WebSocket", async () => {
    const relay = await startRelay(valkey.url);
    const pageOrigin = await servePage();
    const page = await browser.newPage();
    onTestFinished(() => page.close());

    const slug = "in-browser";
    await page.goto(
      `${pageOrigin}/?relay=${encodeURIComponent(relay.url)}&slug=${slug}`,
    );
    await page.waitForFunction(
      () => (globalThis as unknown as PageState).received.length >= 1,
    );
    expect(
      await page.evaluate(
        () => (globalThis as unknown as PageState).received[0],
      ),
    ).toBe(`Joined logs:${slug}`);

    const build = syntheticBuild(valkey.url, slug, "browser-build");
    build.lines(500);
    await build.finish();

    await page.waitForFunction(
      () => (globalThis as unknown as PageState).received.length >= 502,
    );
    const received = await page.evaluate(
      () => (globalThis as unknown as PageState).received,
    );
    expect(received.slice(1).map((m) => JSON.parse(m).seq)).toEqual(
      Array.from({ length: 501 }, (_, i) => i + 1),
    );
    expect(
      await page.evaluate(() =>
        (globalThis as unknown as PageState).transportName(),
      ),
    ).toBe("websocket");
    expect(await page.textContent("#log")).toContain("line 500");
  });
});
