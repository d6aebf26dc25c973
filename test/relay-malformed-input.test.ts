/**
 * Nothing anyone can put into Valkey stops a relay: garbage on a log
 * channel is passed on or dropped, and a forged batch on the adapter's
 * channel is dropped, while real lines keep flowing.
 */
import { expect, it } from "vitest";
import { recordFollower, seqRange } from "./support/follower.ts";
import { startRelay } from "./support/relay-process.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";
import { connectStringViewer } from "./support/viewer.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const store = useValkey();

it("survives garbage on log and adapter channels and keeps delivering", async () => {
  const [a, b] = await Promise.all([
    startRelay(store.url),
    startRelay(store.url),
  ]);
  const slug = "garbage";
  const followers = [a, b].map((relay) =>
    recordFollower({ url: relay.url, slug }),
  );
  const strings = [a, b].map((relay) => connectStringViewer(relay.url));
  for (const viewer of strings) viewer.socket.emit("subscribe", `logs:${slug}`);
  await Promise.all([
    ...followers.map((f) => f.subscribed),
    ...strings.map((v) => v.waitForMessages(1)),
  ]);

  const forged = [
    "not json at all",
    "[]",
    "null",
    JSON.stringify({
      uid: "forger",
      nsp: "/",
      type: 3,
      data: { packet: { data: ["relay:batch", { slug, entries: [null] }] } },
    }),
    JSON.stringify({
      uid: "forger",
      nsp: "/",
      type: 3,
      data: {
        packet: { data: ["relay:batch", { slug, entries: [{ payload: 7 }] }] },
      },
    }),
    JSON.stringify({
      uid: "forger",
      nsp: "/",
      type: 3,
      data: {
        packet: { data: ["relay:batch", { slug: "../x", entries: [] }] },
      },
    }),
    JSON.stringify({
      uid: "forger",
      nsp: "/",
      type: 3,
      data: {
        packet: {
          data: [
            "relay:batch",
            { slug, entries: [], tail: { buildId: "../", seq: -1 } },
          ],
        },
      },
    }),
    JSON.stringify({ uid: "forger", nsp: "/", type: 3 }),
  ];
  for (const message of forged) {
    await store.client.spublish(`socket.io#/#logs:${slug}#`, message);
  }
  const junk = [
    "{",
    "42",
    JSON.stringify({ log: "no seq" }),
    JSON.stringify({ type: "line", seq: "x" }),
  ];
  for (const payload of junk)
    await store.client.publish(`logs:${slug}`, payload);

  const build = syntheticBuild(store.url, slug, "after-garbage");
  build.lines(100);
  await build.finish();

  await Promise.all(followers.map((f) => f.finished));
  for (const follower of followers) {
    expect(follower.seen).toEqual(seqRange("after-garbage", 101));
  }
  // String-form viewers get every payload as published, junk included.
  await Promise.all(
    strings.map((v) => v.waitForMessages(1 + junk.length + 101)),
  );
  for (const viewer of strings) {
    expect(viewer.messages.slice(1, 1 + junk.length)).toEqual(junk);
  }
  for (const relay of [a, b]) {
    expect(relay.process.child.exitCode).toBeNull();
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(200);
  }
});
