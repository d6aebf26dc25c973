/**
 * A feed follows one build of a slug at a time. Lines of an earlier build
 * that arrive after a newer build started reach string-form viewers live,
 * interleaved as the single server sent them, and structured viewers only
 * from history, where asking for that build finds them; they are counted.
 */
import { expect, it, onTestFinished } from "vitest";
import { recordFollower, seqRange } from "./support/follower.ts";
import { startRelay } from "./support/relay-process.ts";
import { sampleValue, scrapeMetrics } from "./support/prometheus-text.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";
import { connectStringViewer } from "./support/viewer.ts";
import { waitFor } from "./support/wait-for.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const store = useValkey();

it("sends an earlier build's lines that come after a newer build started to string-form viewers, and keeps them in history", async () => {
  const relay = await startRelay(store.url);
  const slug = "overlap";
  const viewer = connectStringViewer(relay.url);
  viewer.socket.emit("subscribe", `logs:${slug}`);
  await viewer.waitForMessages(1);

  const first = syntheticBuild(store.url, slug, "overlap-1");
  const second = syntheticBuild(store.url, slug, "overlap-2");
  onTestFinished(() => {
    first.close();
    second.close();
  });
  first.lines(5);
  await first.flush();
  await viewer.waitForMessages(1 + 5);
  second.lines(3);
  await second.flush();
  await viewer.waitForMessages(1 + 5 + 3);
  first.lines(2);
  await first.finish(3);
  await viewer.waitForMessages(1 + 5 + 3 + 3);

  const metrics = await waitFor(
    () => scrapeMetrics(relay.url),
    (families) => sampleValue(families, "relay_superseded_lines_total") === 3,
    { what: "the first build's 2 lines and status counted" },
  );
  expect(sampleValue(metrics, "relay_superseded_lines_total")).toBe(3);
  const received = viewer.messages
    .slice(1)
    .map((m) => JSON.parse(m) as { buildId: string; seq: number });
  expect(received.map((m) => `${m.buildId}:${m.seq}`)).toEqual([
    ...[1, 2, 3, 4, 5].map((seq) => `overlap-1:${seq}`),
    ...[1, 2, 3].map((seq) => `overlap-2:${seq}`),
    ...[6, 7, 8].map((seq) => `overlap-1:${seq}`),
  ]);

  // History has all of the first build: asking for it gets every line.
  const replay = recordFollower({
    url: relay.url,
    slug,
    buildId: "overlap-1",
  });
  await replay.finished;
  expect(replay.seen.slice(0, 8)).toEqual(seqRange("overlap-1", 8));
  // Past the end of a finished build a follower moves on to the next one:
  // whatever it holds beyond the first build is the second one, in order.
  expect(replay.seen.slice(8)).toEqual(
    seqRange("overlap-2", 3).slice(0, replay.seen.length - 8),
  );
});
