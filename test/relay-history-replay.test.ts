/**
 * Structured viewers: history first, then live, no gap and no duplicate at
 * the seam, batched `logs` events, resume with `since` after a reconnect.
 */
import { describe, expect, it } from "vitest";
import { io } from "socket.io-client";
import type { SubscribeAck } from "../shared/viewer-protocol.ts";
import { recordFollower, seqRange } from "./support/follower.ts";
import { startRelay } from "./support/relay-process.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const store = useValkey();

describe("structured subscribe", () => {
  it("gives a viewer joining at line 5,000 of 10,000 exactly lines 1..10,000", async () => {
    const relay = await startRelay(store.url);
    const build = syntheticBuild(store.url, "late-join", "build-1");
    build.lines(5000);
    await build.flush();

    const viewer = recordFollower({ url: relay.url, slug: "late-join" });
    const subscribed = new Promise((resolve) =>
      viewer.follower.once("subscribed", resolve),
    );
    // The rest is published while the viewer is still being caught up.
    build.lines(5000);
    const ack = await subscribed;
    await build.finish();

    const status = await viewer.finished;
    expect(status.status).toBe("succeeded");
    expect(viewer.seen).toEqual(seqRange("build-1", 10_001));
    expect(ack).toMatchObject({
      ok: true,
      channel: "logs:late-join",
      buildId: "build-1",
    });
  });

  it("batches live lines into few logs events", async () => {
    const relay = await startRelay(store.url, {
      BATCH_WINDOW_MS: "20",
      BATCH_MAX_LINES: "200",
    });
    const viewer = recordFollower({ url: relay.url, slug: "batched" });
    await new Promise((resolve) => viewer.follower.once("subscribed", resolve));

    const build = syntheticBuild(store.url, "batched", "build-b");
    build.lines(3000);
    await build.finish();
    await viewer.finished;

    expect(viewer.seen).toEqual(seqRange("build-b", 3001));
    const delivered = viewer.batchSizes.reduce((a, b) => a + b, 0);
    expect(delivered).toBe(3001);
    expect(Math.max(...viewer.batchSizes)).toBeLessThanOrEqual(200);
    // 3,001 messages in at least 16 events, and far fewer events than lines.
    expect(viewer.batchSizes.length).toBeLessThan(3001 / 10);
  });

  it("resumes with exactly the missed lines after the connection drops", async () => {
    const relay = await startRelay(store.url);
    const viewer = recordFollower({ url: relay.url, slug: "resume" });
    await new Promise((resolve) => viewer.follower.once("subscribed", resolve));

    const build = syntheticBuild(store.url, "resume", "build-r");
    build.lines(1000);
    await build.flush();

    let reconnects = 0;
    viewer.follower.on("subscribed", () => (reconnects += 1));
    for (let cut = 0; cut < 3; cut++) {
      const resubscribed = new Promise((resolve) =>
        viewer.follower.once("subscribed", resolve),
      );
      // A transport that dies under the client, as a network cut does.
      viewer.follower.socket.io.engine.close();
      build.lines(1000);
      await resubscribed;
    }
    await build.finish();
    await viewer.finished;

    expect(reconnects).toBe(3);
    expect(viewer.seen).toEqual(seqRange("build-r", 4001));
  });

  it("tells viewers about a new build of the same slug", async () => {
    const relay = await startRelay(store.url);
    const first = syntheticBuild(store.url, "rebuild", "build-old");
    first.lines(10);
    await first.finish();

    const viewer = recordFollower({
      url: relay.url,
      slug: "rebuild",
      since: 5,
      buildId: "build-old",
    });
    const builds: string[] = [];
    viewer.follower.on("build", (id) => builds.push(id));
    await viewer.finished;

    const second = syntheticBuild(store.url, "rebuild", "build-new");
    const nextStatus = new Promise((resolve) =>
      viewer.follower.on("status", resolve),
    );
    second.lines(20);
    await second.finish();
    await nextStatus;

    expect(viewer.seen).toEqual([
      ...seqRange("build-old", 11).slice(5),
      ...seqRange("build-new", 21),
    ]);
    expect(builds).toEqual(["build-new"]);
    expect(viewer.statuses.map((s) => s.buildId)).toEqual([
      "build-old",
      "build-new",
    ]);
  });

  it("refuses malformed structured requests through the acknowledgement", async () => {
    const relay = await startRelay(store.url);
    const socket = io(relay.url, { forceNew: true });
    try {
      const ask = (request: unknown) =>
        socket
          .timeout(5000)
          .emitWithAck("subscribe", request) as Promise<SubscribeAck>;

      const answers = await Promise.all([
        ask({ channel: "foo" }),
        ask({ channel: "logs:ok", since: -1 }),
        ask({ channel: "logs:ok", since: 1.5 }),
        ask({ channel: 7 }),
        ask({ channel: "logs:ok", buildId: "../x" }),
      ]);
      expect(answers.map((a) => (a.ok ? "ok" : a.error.code))).toEqual([
        "RELAY_ERR_BAD_CHANNEL",
        "RELAY_ERR_BAD_SINCE",
        "RELAY_ERR_BAD_SINCE",
        "RELAY_ERR_BAD_REQUEST",
        "RELAY_ERR_BAD_REQUEST",
      ]);

      const good = await ask({ channel: "logs:no-builds-yet" });
      expect(good).toEqual({
        ok: true,
        channel: "logs:no-builds-yet",
        buildId: null,
        lastSeq: 0,
      });
    } finally {
      socket.close();
    }
  });

  it("answers a subscribe with no request, and an unsubscribe, through the acknowledgement", async () => {
    const relay = await startRelay(store.url);
    const socket = io(relay.url, { forceNew: true });
    try {
      const bare = (await socket
        .timeout(5000)
        .emitWithAck("subscribe")) as SubscribeAck;
      expect(bare.ok ? "ok" : bare.error.code).toBe("RELAY_ERR_BAD_REQUEST");

      const left = await socket
        .timeout(5000)
        .emitWithAck("unsubscribe", "logs:ok");
      expect(left).toEqual({ ok: true, channel: "logs:ok" });
      const refused = (await socket
        .timeout(5000)
        .emitWithAck("unsubscribe", "nope")) as {
        ok: boolean;
        error?: { code: string };
      };
      expect(refused.ok ? "ok" : refused.error?.code).toBe(
        "RELAY_ERR_BAD_CHANNEL",
      );
      const nothing = (await socket
        .timeout(5000)
        .emitWithAck("unsubscribe")) as { ok: boolean };
      expect(nothing.ok).toBe(false);
      expect(socket.connected).toBe(true);
    } finally {
      socket.close();
    }
  });

  it("waits for a named build that has not started, past other builds", async () => {
    const relay = await startRelay(store.url);
    const earlier = syntheticBuild(store.url, "named", "named-earlier");
    earlier.lines(5);
    await earlier.finish();

    const viewer = recordFollower({
      url: relay.url,
      slug: "named",
      buildId: "named-wanted",
    });
    const ack = await viewer.subscribed;
    expect(ack).toMatchObject({
      ok: true,
      buildId: "named-wanted",
      lastSeq: 0,
    });

    const other = syntheticBuild(store.url, "named", "named-other");
    other.lines(7);
    await other.finish();
    const wanted = syntheticBuild(store.url, "named", "named-wanted");
    wanted.lines(9);
    await wanted.finish();

    await viewer.finished;
    expect(viewer.seen).toEqual(seqRange("named-wanted", 10));
  });

  it("moves a viewer past the end of a finished build on to the next one", async () => {
    const relay = await startRelay(store.url);
    const first = syntheticBuild(store.url, "past-end", "past-first");
    first.lines(4);
    await first.finish();

    const viewer = recordFollower({
      url: relay.url,
      slug: "past-end",
      buildId: "past-first",
      // The build ended at seq 5: this viewer asks for more than there is.
      since: 9,
    });
    await viewer.subscribed;
    const next = syntheticBuild(store.url, "past-end", "past-next");
    next.lines(3);
    await next.finish();

    await viewer.finished;
    expect(viewer.seen).toEqual(seqRange("past-next", 4));
  });
});
